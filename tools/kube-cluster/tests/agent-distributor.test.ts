import { createServer, connect, type Server, type Socket } from 'node:net';
import type { V1Node, V1NodeList } from '@kubernetes/client-node';
import { createLogger, KubernetesKeyDistributor, type DistributorEvent } from '@veil/agent-core';
import { describePrivileged } from '@veil/test-utils';
import { afterAll, afterEach, beforeAll, expect, it } from 'vitest';
import { KubeCluster } from '../src/index.js';

// The scenarios of packages/agent-core/tests/kubernetes-distributor.test.ts (written against the
// API double), against the real kube-apiserver: the agent's own client, the real list/watch.

const logger = createLogger({ level: 'silent' });
const KEY = 'veil.io/test-public-key';
const MERGE = 'application/merge-patch+json';

async function until(cond: () => boolean, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** A TCP relay in front of the apiserver that a test can cut (a network partition) and restore. */
class Partition {
  private server: Server | undefined;
  private readonly sockets = new Set<Socket>();
  port = 0;
  constructor(private readonly target: number) {}

  async open(): Promise<void> {
    const srv = createServer((client) => {
      const upstream = connect(this.target, '127.0.0.1');
      for (const s of [client, upstream]) {
        this.sockets.add(s);
        s.on('close', () => this.sockets.delete(s));
        s.on('error', () => undefined);
      }
      client.pipe(upstream).pipe(client);
    });
    await new Promise<void>((resolve) => srv.listen(this.port, '127.0.0.1', resolve));
    this.port = (srv.address() as { port: number }).port;
    this.server = srv;
  }

  /** Drops every connection and refuses new ones until {@link open}. */
  async cut(): Promise<void> {
    const srv = this.server;
    this.server = undefined;
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((resolve) => (srv ? srv.close(() => resolve()) : resolve()));
  }
}

describePrivileged('KubernetesKeyDistributor against the real kube-apiserver', ['etcd', 'kube-apiserver'], () => {
  let cluster: KubeCluster;
  let dist: KubernetesKeyDistributor | undefined;
  let partition: Partition | undefined;
  const names = new Set<string>();

  beforeAll(async () => {
    cluster = await KubeCluster.start({ log: (l) => process.stderr.write(`[kube-cluster] ${l}\n`) });
  }, 300_000);
  afterEach(async () => {
    await dist?.close();
    await partition?.cut();
    dist = partition = undefined;
    // DELETE the whole collection rather than 1,000 requests (the admin may; nothing else holds nodes).
    if (names.size > 0) await cluster.request('DELETE', '/api/v1/nodes', undefined, { expect: [200] });
    names.clear();
  });
  afterAll(async () => {
    await cluster?.stop();
  });

  async function createNode(i: number, annotations: Record<string, string> = { [KEY]: `key-${i}` }): Promise<void> {
    const name = `node-${i}`;
    names.add(name);
    await cluster.request(
      'POST',
      '/api/v1/nodes',
      { metadata: { name, annotations: { ...annotations, 'example.com/other': 'x' } }, spec: { podCIDR: `10.244.${i}.0/24` } },
      { expect: [201] },
    );
    await cluster.request(
      'PATCH',
      `/api/v1/nodes/${name}/status`,
      { status: { addresses: [{ type: 'InternalIP', address: `192.0.2.${i}` }] } },
      { contentType: MERGE, expect: [200] },
    );
  }
  const setKey = (i: number, key: string): Promise<unknown> =>
    cluster.request(
      'PATCH',
      `/api/v1/nodes/node-${i}`,
      { metadata: { annotations: { [KEY]: key } } },
      { contentType: MERGE, expect: [200] },
    );

  function start(local: string, server?: string): DistributorEvent[] {
    dist = new KubernetesKeyDistributor({
      kubeConfig: cluster.kubeConfig({ admin: true }, server),
      nodeName: local,
      logger,
      restartBackoff: { initialMs: 100, maxMs: 1_000 },
    });
    const out: DistributorEvent[] = [];
    const d = dist;
    void (async () => {
      for await (const ev of d.events()) out.push(ev);
    })();
    return out;
  }
  const upserted = (events: DistributorEvent[], name: string, key?: string): boolean =>
    events.some((e) => e.type === 'upsert' && e.node.name === name && (key === undefined || e.node.annotations[KEY] === key));

  it('lists (in pages), signals synced after the initial list, then streams changes', async () => {
    for (let i = 1; i <= 5; i++) await createNode(i);
    dist = new KubernetesKeyDistributor({ kubeConfig: cluster.kubeConfig(), nodeName: 'node-1', logger, listPageSize: 2 });
    const events: DistributorEvent[] = [];
    const d = dist;
    void (async () => {
      for await (const ev of d.events()) events.push(ev);
    })();
    await until(() => d.synced);
    expect(events.map((e) => e.type)).toEqual(['upsert', 'upsert', 'upsert', 'upsert', 'upsert', 'synced']);
    const first = events[0] as Extract<DistributorEvent, { type: 'upsert' }>;
    // createdAt is the server's creationTimestamp (the durable tie-break for conflicting claims).
    const { createdAt, ...rest } = first.node;
    expect(rest).toEqual({
      name: 'node-1',
      internalIPs: ['192.0.2.1'],
      podCIDRs: ['10.244.1.0/24'],
      annotations: { [KEY]: 'key-1' },
    });
    expect(Date.parse(createdAt ?? '')).toBeGreaterThan(Date.now() - 3_600_000);
    await setKey(2, 'key-2b');
    await cluster.request('DELETE', '/api/v1/nodes/node-3', undefined, { expect: [200] });
    await until(() => upserted(events, 'node-2', 'key-2b') && events.some((e) => e.type === 'delete' && e.name === 'node-3'));
  });

  it('publishLocal merge-patches only the local node, keeping other annotations', async () => {
    await createNode(1);
    await createNode(2);
    const before2 = (await cluster.request<V1Node>('GET', '/api/v1/nodes/node-2')).body;
    start('node-1');
    await dist!.publishLocal({ [KEY]: 'published', 'veil.io/gone': null });
    const after = (await cluster.request<V1Node>('GET', '/api/v1/nodes/node-1')).body;
    expect(after.metadata?.annotations).toEqual({ [KEY]: 'published', 'example.com/other': 'x' });
    expect((await cluster.request<V1Node>('GET', '/api/v1/nodes/node-2')).body.metadata?.resourceVersion).toBe(
      before2.metadata?.resourceVersion,
    );
  });

  it('restarts the informer after the apiserver goes away and comes back', async () => {
    await createNode(1);
    const events = start('local');
    await until(() => dist!.synced);
    await cluster.restartApiserver();
    await setKey(1, 'after-restart');
    await createNode(2);
    await until(() => upserted(events, 'node-1', 'after-restart') && upserted(events, 'node-2'), 60_000);
    expect(dist!.restarts).toBeGreaterThan(0);
    expect(events.filter((e) => e.type === 'delete')).toEqual([]);
  }, 240_000);

  it('lists 1,000 nodes in pages (real continue tokens) and then follows their key changes', async () => {
    const N = 1000;
    const create = async (i: number): Promise<void> => {
      names.add(`big-${i}`);
      await cluster.request(
        'POST',
        '/api/v1/nodes',
        { metadata: { name: `big-${i}`, annotations: { [KEY]: `k${i}` } } },
        { expect: [201] },
      );
    };
    for (let i = 0; i < N; i += 20) await Promise.all(Array.from({ length: Math.min(20, N - i) }, (_, j) => create(i + j)));
    dist = new KubernetesKeyDistributor({ kubeConfig: cluster.kubeConfig(), nodeName: 'big-0', logger, listPageSize: 100 });
    const seen = new Map<string, string | undefined>();
    let synced = false;
    const d = dist;
    void (async () => {
      for await (const ev of d.events()) {
        if (ev.type === 'upsert') seen.set(ev.node.name, ev.node.annotations[KEY]);
        if (ev.type === 'synced') synced = true;
      }
    })();
    await until(() => synced, 60_000);
    expect(seen.size).toBe(N);
    for (let i = 0; i < N; i += 20) {
      await Promise.all(
        Array.from({ length: Math.min(20, N - i) }, (_, j) =>
          cluster.request(
            'PATCH',
            `/api/v1/nodes/big-${i + j}`,
            { metadata: { annotations: { [KEY]: `k${i + j}-2` } } },
            { contentType: MERGE, expect: [200] },
          ),
        ),
      );
    }
    await until(() => [...seen.entries()].every(([n, k]) => k === `${n.replace('big-', 'k')}-2`), 60_000);
  }, 240_000);

  it('relists after 410 Gone (its resourceVersion compacted away) and reports nodes deleted meanwhile', async () => {
    for (let i = 1; i <= 3; i++) await createNode(i);
    partition = new Partition(cluster.apiserverPort);
    await partition.open();
    const events = start('local', `https://127.0.0.1:${partition.port}`);
    await until(() => dist!.synced);
    // Nothing changes from here to the cut, so the agent's resourceVersion is at most this one.
    const rvAtSync = (await cluster.request<V1NodeList>('GET', '/api/v1/nodes', undefined, { expect: [200] })).body.metadata
      ?.resourceVersion as string;
    // Cut off from the agent: node-2 goes, node-4 comes, etcd compacts, the apiserver restarts
    // (its watch cache starts after the agent's resourceVersion).
    await partition.cut();
    await cluster.request('DELETE', '/api/v1/nodes/node-2', undefined, { expect: [200] });
    names.delete('node-2');
    await createNode(4);
    await cluster.compactEtcd();
    await cluster.restartApiserver();
    // A watch from the agent's resourceVersion (or any older one) is now refused with 410 Gone.
    const stale = await cluster.request('GET', `/api/v1/nodes?watch=1&resourceVersion=${rvAtSync}&timeoutSeconds=1`);
    expect(typeof stale.body === 'string' ? stale.body : JSON.stringify(stale.body)).toMatch(/"code":\s*410/);
    await partition.open();
    await until(() => events.some((e) => e.type === 'delete' && e.name === 'node-2') && upserted(events, 'node-4'), 60_000);
    expect(dist!.restarts).toBeGreaterThan(0);
  }, 240_000);
});
