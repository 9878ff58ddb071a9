import type { CoreV1EventList, V1Node, V1Status } from '@kubernetes/client-node';
import { createLogger, KubernetesEventRecorder, KubernetesKeyDistributor, type DistributorEvent } from '@veil/agent-core';
import { KubeCluster, type ApiResponse, type Credentials } from '@veil/kube-cluster';
import { describePrivileged } from '@veil/test-utils';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { renderChart } from '../src/index.js';
import { CHART_DIR } from './helpers.js';

const NS = 'kube-system';
const MERGE = 'application/merge-patch+json';
const logger = createLogger({ level: 'silent' });

async function until(cond: () => boolean | Promise<boolean>, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 100));
  }
}

/**
 * The chart installed for real (its ServiceAccount, RBAC and ValidatingAdmissionPolicy), two Nodes,
 * and for each node the token a kubelet would give the agent's Pod there.
 */
describePrivileged(
  'node-restricted key publication (real kube-apiserver, the chart’s RBAC and admission policy)',
  ['helm', 'etcd', 'kube-apiserver'],
  () => {
    let cluster: KubeCluster;
    let sa: string;
    const creds: Record<'n1' | 'n2' | 'unbound', Credentials> = {} as never;

    // The tests read the body of refusals only: a Status.
    const patchNode = (who: Credentials, node: string, patch: unknown, query = ''): Promise<ApiResponse<V1Status>> =>
      cluster.request<V1Status>('PATCH', `/api/v1/nodes/${node}${query}`, patch, { creds: who, contentType: MERGE });
    const getNode = async (node: string): Promise<V1Node> =>
      (await cluster.request<V1Node>('GET', `/api/v1/nodes/${node}`, undefined, { expect: [200] })).body;
    const annotations = async (node: string): Promise<Record<string, string>> =>
      (await getNode(node)).metadata?.annotations ?? {};

    beforeAll(async () => {
      cluster = await KubeCluster.start({ log: (l) => process.stderr.write(`[kube-cluster] ${l}\n`) });
      const { manifests } = await renderChart(CHART_DIR, { release: { name: 'veil', namespace: NS } });
      for (const m of manifests) {
        if (m.kind === 'ServiceMonitor') continue;
        const { template: _t, ...obj } = m;
        await cluster.request('POST', await cluster.collectionPath(m.apiVersion, m.kind, m.metadata.namespace), obj, {
          expect: [201],
        });
      }
      const serviceAccount = manifests.find((m) => m.kind === 'ServiceAccount');
      if (!serviceAccount) throw new Error('the chart rendered no ServiceAccount');
      sa = serviceAccount.metadata.name;
      for (const [i, name] of ['n1', 'n2'].entries()) {
        await cluster.request(
          'POST',
          '/api/v1/nodes',
          {
            metadata: {
              name,
              labels: { 'kubernetes.io/hostname': name },
              annotations: { 'node.alpha.kubernetes.io/ttl': '0', 'veil.io/wireguard-public-key': `key-of-${name}` },
            },
            spec: { podCIDR: `10.244.${i}.0/24`, podCIDRs: [`10.244.${i}.0/24`] },
          },
          { expect: [201] },
        );
        await cluster.request(
          'PATCH',
          `/api/v1/nodes/${name}/status`,
          { status: { addresses: [{ type: 'InternalIP', address: `192.0.2.${i + 1}` }] } },
          { contentType: MERGE, expect: [200] },
        );
      }
      creds.n1 = { token: (await cluster.nodeBoundToken({ namespace: NS, serviceAccount: sa, node: 'n1' })).token };
      creds.n2 = { token: (await cluster.nodeBoundToken({ namespace: NS, serviceAccount: sa, node: 'n2' })).token };
      creds.unbound = { token: await cluster.issueToken({ namespace: NS, serviceAccount: sa }) };
      // The policy takes effect once the apiserver has compiled it; probe with a dry run.
      await until(
        async () =>
          (await patchNode(creds.n1, 'n2', { metadata: { annotations: { 'veil.io/probe': 'x' } } }, '?dryRun=All')).status ===
          403,
      );
    }, 300_000);
    afterAll(async () => {
      await cluster?.stop();
    });

    it('the credentials are what the kubelet would give: the chart’s ServiceAccount, bound to a Pod on the node', async () => {
      const who = await cluster.whoAmI(creds.n1);
      expect(who.username).toBe(`system:serviceaccount:${NS}:${sa}`);
      expect(who.extra['authentication.kubernetes.io/node-name']).toEqual(['n1']);
    });

    it('n1 publishes, changes and removes its own veil.io/* annotations', async () => {
      expect(
        (
          await patchNode(creds.n1, 'n1', {
            metadata: { annotations: { 'veil.io/wireguard-public-key': 'new-key-of-n1', 'veil.io/node-id': '7' } },
          })
        ).status,
      ).toBe(200);
      expect(await annotations('n1')).toMatchObject({
        'veil.io/wireguard-public-key': 'new-key-of-n1',
        'veil.io/node-id': '7',
        'node.alpha.kubernetes.io/ttl': '0',
      });
      expect((await patchNode(creds.n1, 'n1', { metadata: { annotations: { 'veil.io/node-id': null } } })).status).toBe(200);
      expect(await annotations('n1')).not.toHaveProperty('veil.io/node-id');
    });

    it('n1 cannot change n2’s annotations (its key stays)', async () => {
      const res = await patchNode(creds.n1, 'n2', {
        metadata: { annotations: { 'veil.io/wireguard-public-key': 'attacker-key' } },
      });
      expect(res.status).toBe(403);
      expect(res.body.message).toContain('the veil agent on node n1 may not change Node n2');
      expect((await annotations('n2'))['veil.io/wireguard-public-key']).toBe('key-of-n2');
    });

    it.each([
      [
        'a non-Veil annotation',
        { metadata: { annotations: { 'node.alpha.kubernetes.io/ttl': '30' } } },
        'only veil.io/* annotations',
      ],
      ['a new non-Veil annotation', { metadata: { annotations: { 'example.com/x': 'y' } } }, 'only veil.io/* annotations'],
      [
        'removing a non-Veil annotation',
        { metadata: { annotations: { 'node.alpha.kubernetes.io/ttl': null } } },
        'only veil.io/* annotations',
      ],
      ['a label', { metadata: { labels: { 'node-role.kubernetes.io/control-plane': '' } } }, 'spec, labels'],
      ['a taint', { spec: { taints: [{ key: 'evil', effect: 'NoSchedule' }] } }, 'spec, labels'],
      ['unschedulable', { spec: { unschedulable: true } }, 'spec, labels'],
      ['a finalizer', { metadata: { finalizers: ['example.com/hold'] } }, 'spec, labels'],
    ])('n1 cannot change %s of its own Node', async (_what, patch, message) => {
      const before = await getNode('n1');
      const res = await patchNode(creds.n1, 'n1', patch);
      expect(res.status).toBe(403);
      expect(res.body.message).toContain(message);
      const after = await getNode('n1');
      expect(after.metadata?.resourceVersion).toBe(before.metadata?.resourceVersion);
    });

    it('nor its status, nor create or delete Nodes (RBAC), and an unbound token of the same ServiceAccount changes no Node', async () => {
      expect(
        (
          await cluster.request(
            'PATCH',
            '/api/v1/nodes/n1/status',
            { status: { addresses: [] } },
            { creds: creds.n1, contentType: MERGE },
          )
        ).status,
      ).toBe(403);
      expect((await cluster.request('DELETE', '/api/v1/nodes/n2', undefined, { creds: creds.n1 })).status).toBe(403);
      expect((await cluster.request('POST', '/api/v1/nodes', { metadata: { name: 'n3' } }, { creds: creds.n1 })).status).toBe(
        403,
      );
      const res = await patchNode(creds.unbound, 'n1', { metadata: { annotations: { 'veil.io/wireguard-public-key': 'x' } } });
      expect(res.status).toBe(403);
      expect(res.body.message).toContain('not bound to a Pod on a Node');
    });

    it('the policy binds only Veil’s ServiceAccount: the admin still edits any Node', async () => {
      expect((await patchNode({ admin: true }, 'n2', { metadata: { labels: { 'example.com/admin': 'yes' } } })).status).toBe(200);
    });

    it('the agent’s own client works under this RBAC: list/watch Nodes, patch its own, and not another', async () => {
      const kubeConfig = cluster.kubeConfig(creds.n1);
      const dist = new KubernetesKeyDistributor({
        kubeConfig,
        nodeName: 'n1',
        logger,
        restartBackoff: { initialMs: 50, maxMs: 500 },
      });
      const events: DistributorEvent[] = [];
      const pump = (async () => {
        for await (const ev of dist.events()) events.push(ev);
      })();
      try {
        await until(() => dist.synced);
        const upserts = events.filter((e): e is Extract<DistributorEvent, { type: 'upsert' }> => e.type === 'upsert');
        expect(upserts.map((e) => e.node.name).sort()).toEqual(['n1', 'n2']);
        const n2 = upserts.find((e) => e.node.name === 'n2')!.node;
        expect(n2).toMatchObject({
          internalIPs: ['192.0.2.2'],
          podCIDRs: ['10.244.1.0/24'],
          annotations: { 'veil.io/wireguard-public-key': 'key-of-n2' },
        });

        await dist.publishLocal({ 'veil.io/wireguard-public-key': 'published-by-agent-n1' });
        expect((await annotations('n1'))['veil.io/wireguard-public-key']).toBe('published-by-agent-n1');
        // The watch delivers its own update, as on any node.
        await until(() =>
          events.some(
            (e) =>
              e.type === 'upsert' &&
              e.node.name === 'n1' &&
              e.node.annotations['veil.io/wireguard-public-key'] === 'published-by-agent-n1',
          ),
        );

        // The same client, told it is n2 (a compromised or misconfigured agent), is refused.
        const liar = new KubernetesKeyDistributor({ kubeConfig, nodeName: 'n2', logger });
        await expect(liar.publishLocal({ 'veil.io/wireguard-public-key': 'attacker-key' })).rejects.toMatchObject({ code: 403 });
        expect((await annotations('n2'))['veil.io/wireguard-public-key']).toBe('key-of-n2');
        await liar.close();
      } finally {
        await dist.close();
        await pump;
      }
    });

    it('Events: the agent’s recorder creates them in the namespace the chart configures; the server refuses Node events elsewhere', async () => {
      const recorder = new KubernetesEventRecorder(cluster.kubeConfig(creds.n1), {
        namespace: 'default',
        component: 'veil-agent',
        host: 'n1',
        logger,
      });
      recorder.record({ node: 'n2', type: 'Warning', reason: 'PeerRefused', message: 'test event from n1' });
      await recorder.flush();
      const list = await cluster.request<CoreV1EventList>(
        'GET',
        '/api/v1/namespaces/default/events?fieldSelector=reason%3DPeerRefused',
        undefined,
        { expect: [200] },
      );
      expect(list.body.items.map((e) => [e.involvedObject.name, e.source?.host, e.message])).toEqual([
        ['n2', 'n1', 'test event from n1'],
      ]);

      const event = {
        metadata: { generateName: 'n2.veil.' },
        involvedObject: { kind: 'Node', name: 'n2', apiVersion: 'v1' },
        type: 'Normal',
        reason: 'Test',
        message: 'm',
        source: { component: 'veil-agent' },
      };
      // RBAC: only `create`, only in `default`.
      expect((await cluster.request('POST', `/api/v1/namespaces/${NS}/events`, event, { creds: creds.n1 })).status).toBe(403);
      expect(
        (
          await cluster.request(
            'PATCH',
            `/api/v1/namespaces/default/events/${list.body.items[0]?.metadata.name}`,
            { count: 2 },
            { creds: creds.n1, contentType: MERGE },
          )
        ).status,
      ).toBe(403);
      // Validation (even for the admin): an Event about a cluster-scoped Node is legal only in `default`.
      const wrongNs = await cluster.request<V1Status>('POST', `/api/v1/namespaces/${NS}/events`, event);
      expect(wrongNs.status).toBe(422);
      expect(wrongNs.body.message).toContain('involvedObject.namespace');
    });
  },
);
