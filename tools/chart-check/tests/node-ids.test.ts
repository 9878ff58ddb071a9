import type { V1Lease, V1Node } from '@kubernetes/client-node';
import { LeaseNodeIdStore, NODE_ID_LEASE_PREFIX, NodeIdAllocator, NodeIdConflictError, createLogger } from '@veil/agent-core';
import { KubeCluster, type Credentials } from '@veil/kube-cluster';
import { describePrivileged } from '@veil/test-utils';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { renderChart } from '../src/index.js';
import { CHART_DIR } from './helpers.js';

const NS = 'kube-system';
const NODES = ['n0', 'n1', 'n2', 'n3', 'n4', 'n5'];
const logger = createLogger({ level: 'silent' });

/**
 * Node-ID allocation against the real kube-apiserver, each node's allocator running with the
 * token a kubelet would give the agent's Pod there, under the chart's own RBAC for an IPsec
 * install (so the Role grants enough, and the Leases' owner references are accepted).
 */
describePrivileged(
  'node IDs as Leases (real kube-apiserver, the chart’s RBAC for encryption.type=ipsec)',
  ['helm', 'etcd', 'kube-apiserver'],
  () => {
    let cluster: KubeCluster;
    const creds: Record<string, Credentials> = {};
    const allocatorFor = (node: string, maxId?: number): NodeIdAllocator =>
      new NodeIdAllocator(new LeaseNodeIdStore(cluster.kubeConfig(creds[node]), NS), node, logger, maxId);
    const lease = async (id: number): Promise<V1Lease | undefined> => {
      const r = await cluster.request<V1Lease>(
        'GET',
        `/apis/coordination.k8s.io/v1/namespaces/${NS}/leases/${NODE_ID_LEASE_PREFIX}${id}`,
      );
      return r.status === 200 ? r.body : undefined;
    };
    const nodeUid = async (name: string): Promise<string | undefined> =>
      (await cluster.request<V1Node>('GET', `/api/v1/nodes/${name}`, undefined, { expect: [200] })).body.metadata?.uid;
    const addNode = async (name: string): Promise<void> => {
      await cluster.request('POST', '/api/v1/nodes', { metadata: { name } }, { expect: [201] });
    };

    beforeAll(async () => {
      cluster = await KubeCluster.start({ log: (l) => process.stderr.write(`[kube-cluster] ${l}\n`) });
      const { manifests } = await renderChart(CHART_DIR, {
        release: { name: 'veil', namespace: NS },
        values: { encryption: { enabled: true, type: 'ipsec' } },
      });
      for (const m of manifests) {
        if (m.kind === 'ServiceMonitor') continue;
        const { template: _t, ...obj } = m;
        await cluster.request('POST', await cluster.collectionPath(m.apiVersion, m.kind, m.metadata.namespace), obj, {
          expect: [201],
        });
      }
      const sa = manifests.find((m) => m.kind === 'ServiceAccount')!.metadata.name;
      for (const name of [...NODES, 'late']) {
        await addNode(name);
        creds[name] = { token: (await cluster.nodeBoundToken({ namespace: NS, serviceAccount: sa, node: name })).token };
      }
    }, 300_000);
    afterAll(async () => {
      await cluster?.stop();
    });

    it('six agents racing over a small ID space claim six distinct IDs, each a Lease held by and owned by its Node', async () => {
      // maxId 8: the racers collide on candidates, so create-only (409) decides, not the hash.
      const results = await Promise.all(NODES.map((n) => allocatorFor(n, 8).claim(0)));
      const ids = results.map((r) => r.id);
      expect(new Set(ids).size).toBe(NODES.length);
      for (const [i, r] of results.entries()) {
        const l = await lease(r.id);
        expect(l?.spec?.holderIdentity).toBe(NODES[i]);
        expect(l?.metadata?.ownerReferences).toEqual([
          { apiVersion: 'v1', kind: 'Node', name: NODES[i], uid: await nodeUid(NODES[i]!) },
        ]);
        expect(l?.metadata?.labels?.['veil.io/node-id']).toBe(String(r.id));
      }
    });

    it('a restart keeps the ID (the node finds its own Lease)', async () => {
      const before = await allocatorFor('n3').claim(0);
      const again = await allocatorFor('n3').claim(0);
      expect(again).toMatchObject({ id: before.id, how: 'kept' });
    });

    it('an explicit ID another node holds is refused with NodeIdConflictError; its Lease is untouched', async () => {
      const held = await allocatorFor('n0').claim(0);
      const err = await allocatorFor('n1')
        .claim(held.id)
        .catch((e: unknown) => e);
      expect(err).toBeInstanceOf(NodeIdConflictError);
      expect(err).toMatchObject({ field: 'nodeId', nodeId: held.id, holder: 'n0' });
      expect((await lease(held.id))?.spec?.holderIdentity).toBe('n0');
    });

    it("a deleted Node's ID is reclaimed and can be claimed by a new node", async () => {
      const gone = await allocatorFor('n5').claim(0);
      await cluster.request('DELETE', '/api/v1/nodes/n5', undefined, { expect: [200] });
      const r = await allocatorFor('late').claim(gone.id);
      expect(r).toMatchObject({ id: gone.id, how: 'claimed', reclaimed: [gone.id] });
      expect((await lease(gone.id))?.spec?.holderIdentity).toBe('late');
    });

    it('a Lease deleted behind a running agent’s back is claimed again by verify()', async () => {
      const a = allocatorFor('n2');
      const { id } = await a.claim(0);
      await cluster.request(
        'DELETE',
        `/apis/coordination.k8s.io/v1/namespaces/${NS}/leases/${NODE_ID_LEASE_PREFIX}${id}`,
        undefined,
        {
          expect: [200],
        },
      );
      expect(await a.verify()).toBe('restored');
      expect((await lease(id))?.spec?.holderIdentity).toBe('n2');
    });
  },
);
