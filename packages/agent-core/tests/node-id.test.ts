import { ContainerModule } from 'inversify';
import { describe, expect, it } from 'vitest';
import {
  Agent,
  InMemoryCluster,
  NodeIdAllocationError,
  NodeIdAllocator,
  NodeIdConflictError,
  NodeIdExhaustedError,
  TOKENS,
} from '../src/index.js';
import { FakeBackend, FakeDatapath, MemoryNodeIdStore, RecordingEventRecorder } from '../src/fake/index.js';
import { NODE_ID_ANNOTATION } from '../src/types/peer.js';
import { KubeApiServerDouble } from '@veil/kube-apiserver-double';
import { kubernetesModule } from '../src/index.js';
import { kubeConfigFor, toNodeObject } from './drivers.js';
import { agentPerTest, captureLogger, node, testConfig, until } from './helpers.js';

function allocator(store: MemoryNodeIdStore, name: string, maxId?: number): NodeIdAllocator {
  return new NodeIdAllocator(store, name, undefined, maxId);
}

describe('NodeIdAllocator', () => {
  it('40 nodes racing for IDs get 40 distinct ones, each claim held by its node', async () => {
    const store = new MemoryNodeIdStore();
    const names = Array.from({ length: 40 }, (_, i) => `node-${i}`);
    for (const n of names) store.addNode(n);
    // A tiny ID space forces the racers onto the same candidates: conflicts must be resolved by
    // the store's create-only semantics, not by luck of the hash.
    const results = await Promise.all(names.map((n) => allocator(store, n, 64).claim(0)));
    const ids = results.map((r) => r.id);
    expect(new Set(ids).size).toBe(40);
    for (const [i, r] of results.entries()) {
      expect(r.id).toBeGreaterThanOrEqual(1);
      expect(r.id).toBeLessThanOrEqual(64);
      expect(store.claims.get(r.id)?.holder).toBe(names[i]);
    }
    expect(store.claims.size).toBe(40);
  });

  it('a restart keeps the ID: the node finds its own claim and creates nothing', async () => {
    const store = new MemoryNodeIdStore();
    store.addNode('a');
    store.addNode('b');
    const first = await allocator(store, 'a').claim(0);
    await allocator(store, 'b').claim(0);
    const creates = store.calls.createClaim;
    const again = await allocator(store, 'a').claim(0);
    expect(again).toMatchObject({ id: first.id, how: 'kept', reclaimed: [], released: [] });
    expect(store.calls.createClaim).toBe(creates);
  });

  it('a claim lost while the agent was down: the ID the Node still publishes is claimed again', async () => {
    const store = new MemoryNodeIdStore();
    store.addNode('a', 4242);
    const r = await allocator(store, 'a').claim(0);
    expect(r).toMatchObject({ id: 4242, how: 'claimed' });
  });

  it("a deleted Node's claim is reclaimed, and its ID can be taken again", async () => {
    const store = new MemoryNodeIdStore();
    store.addNode('gone');
    store.addNode('b');
    const { id } = await allocator(store, 'gone').claim(0);
    store.nodes.delete('gone');
    const r = await allocator(store, 'b').claim(id);
    expect(r).toMatchObject({ id, how: 'claimed', reclaimed: [id] });
    expect(store.claims.get(id)?.holder).toBe('b');
  });

  it('an explicit ID another node holds is refused with NodeIdConflictError naming nodeId and the holder', async () => {
    const store = new MemoryNodeIdStore();
    store.addNode('a');
    store.addNode('b');
    const { id } = await allocator(store, 'a').claim(0);
    const err = await allocator(store, 'b')
      .claim(id)
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(NodeIdConflictError);
    expect(err).toMatchObject({ field: 'nodeId', nodeId: id, holder: 'a', how: 'claimed' });
    expect((err as Error).message).toMatch(new RegExp(`^nodeId: node ID ${id} is already claimed by node a`));
    expect(store.claims.get(id)?.holder).toBe('a');
  });

  it('an explicit ID another node publishes (without a claim) is refused, and never allocated to others', async () => {
    const store = new MemoryNodeIdStore();
    store.addNode('legacy', 7);
    store.addNode('b');
    await expect(allocator(store, 'b').claim(7)).rejects.toMatchObject({ name: 'NodeIdConflictError', how: 'annotated' });
    const tiny = new MemoryNodeIdStore();
    tiny.addNode('legacy', 1);
    tiny.addNode('c');
    expect((await allocator(tiny, 'c', 2).claim(0)).id).toBe(2);
  });

  it('two nodes racing for the same explicit ID: exactly one wins, the other gets NodeIdConflictError', async () => {
    const store = new MemoryNodeIdStore();
    store.addNode('a');
    store.addNode('b');
    const results = await Promise.allSettled([allocator(store, 'a').claim(9), allocator(store, 'b').claim(9)]);
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
    const lost = results.find((r): r is PromiseRejectedResult => r.status === 'rejected')!;
    expect(lost.reason).toBeInstanceOf(NodeIdConflictError);
    expect(store.claims.get(9)?.holder).toBe(['a', 'b'][results.findIndex((r) => r.status === 'fulfilled')]);
  });

  it('a changed explicit ID releases the old claim; the same explicit ID after a restart is kept', async () => {
    const store = new MemoryNodeIdStore();
    store.addNode('a');
    expect((await allocator(store, 'a').claim(5)).how).toBe('claimed');
    expect((await allocator(store, 'a').claim(5)).how).toBe('kept');
    const r = await allocator(store, 'a').claim(6);
    expect(r).toMatchObject({ id: 6, released: [5] });
    expect([...store.claims.keys()]).toEqual([6]);
  });

  it('a re-registered Node (new UID) keeps its ID, and the claim points at the new Node', async () => {
    const store = new MemoryNodeIdStore();
    store.addNode('a');
    const { id } = await allocator(store, 'a').claim(0);
    const uid = store.addNode('a');
    expect(await allocator(store, 'a').claim(0)).toMatchObject({ id, how: 'kept' });
    expect(store.claims.get(id)?.ownerUid).toBe(uid);
  });

  it('refuses to claim for a Node that does not exist (retryable NodeIdAllocationError)', async () => {
    const store = new MemoryNodeIdStore();
    await expect(allocator(store, 'nobody').claim(0)).rejects.toBeInstanceOf(NodeIdAllocationError);
    expect(store.claims.size).toBe(0);
  });

  it('NodeIdExhaustedError when every ID is held by a live node', async () => {
    const store = new MemoryNodeIdStore();
    for (const n of ['a', 'b', 'c', 'd']) store.addNode(n);
    for (const n of ['a', 'b', 'c']) await allocator(store, n, 3).claim(0);
    await expect(allocator(store, 'd', 3).claim(0)).rejects.toBeInstanceOf(NodeIdExhaustedError);
  });

  it('verify(): a claim deleted behind its back is created again; one taken by another node is a problem', async () => {
    const store = new MemoryNodeIdStore();
    store.addNode('a');
    store.addNode('b');
    const a = allocator(store, 'a');
    const { id } = await a.claim(0);
    expect(await a.verify()).toBe('ok');
    store.claims.delete(id);
    expect(await a.verify()).toBe('restored');
    expect(store.claims.get(id)?.holder).toBe('a');
    store.claims.delete(id);
    await allocator(store, 'b').claim(id);
    expect(await a.verify()).toBe('conflict');
    expect(a.problem).toContain(`node ID ${id} in use here is now claimed by node b`);
  });
});

describe('Agent node IDs', () => {
  const per = agentPerTest('veil-nodeid-');

  async function startAgent(
    store: MemoryNodeIdStore,
    cluster: InMemoryCluster,
    nodeId = 0,
    nodeIdRecheckMs?: number,
  ): Promise<Agent> {
    const agent = await Agent.create({
      ...(nodeIdRecheckMs !== undefined ? { nodeIdRecheckMs } : {}),
      config: testConfig({
        nodeId,
        metrics: { enabled: false, port: 0, host: '127.0.0.1' },
        health: { port: 0, host: '127.0.0.1' },
        status: { socketPath: await per.statusSocket() },
      }),
      platformModules: [
        new ContainerModule(({ bind }) => {
          bind(TOKENS.KeyDistributor).toConstantValue(cluster.distributor('local'));
          bind(TOKENS.Datapath).toConstantValue(new FakeDatapath());
          bind(TOKENS.EventRecorder).toConstantValue(new RecordingEventRecorder());
          bind(TOKENS.NodeIdStore).toConstantValue(store);
        }),
      ],
      backendModule: new ContainerModule(({ bind }) => {
        bind(TOKENS.EncryptionBackend).toConstantValue(new FakeBackend({ needsNodeId: true }));
      }),
      logger: captureLogger().logger,
    });
    return per.track(agent);
  }

  it('nodeId 0 with a backend that needs IDs: allocated before init, published, shown in status', async () => {
    const store = new MemoryNodeIdStore();
    store.addNode('local');
    const cluster = new InMemoryCluster();
    const agent = await startAgent(store, cluster);
    await agent.start();
    const st = await agent.status();
    expect(st.nodeId).toBeGreaterThan(0);
    expect(st.nodeIdSource).toBe('allocated');
    expect(store.claims.get(st.nodeId)?.holder).toBe('local');
    await until(() => cluster.getNode('local')?.annotations[NODE_ID_ANNOTATION] === String(st.nodeId));
  });

  it('an explicit ID held by another node: start() fails with NodeIdConflictError, the backend is never initialised', async () => {
    const store = new MemoryNodeIdStore();
    store.addNode('local');
    store.addNode('other');
    await allocator(store, 'other').claim(77);
    const agent = await startAgent(store, new InMemoryCluster(), 77);
    await expect(agent.start()).rejects.toBeInstanceOf(NodeIdConflictError);
    const backend = agent.container.get(TOKENS.EncryptionBackend) as FakeBackend;
    expect(backend.calls.filter((c) => c.op === 'init')).toEqual([]);
  });

  it('a running agent re-creates its deleted Lease, and shows in status when another node took its ID', async () => {
    const store = new MemoryNodeIdStore();
    store.addNode('local');
    store.addNode('thief');
    const agent = await startAgent(store, new InMemoryCluster(), 0, 20);
    await agent.start();
    const { nodeId } = await agent.status();
    store.claims.delete(nodeId);
    await until(() => store.claims.get(nodeId)?.holder === 'local');
    // Replaced in one step (the agent re-checks every 20 ms): another node holds it now.
    store.claims.set(nodeId, { id: nodeId, holder: 'thief', ownerUid: store.nodes.get('thief')!.uid, version: 'v-thief' });
    await until(async () => (await agent.status()).errors.some((e) => e.includes(`now claimed by node thief`)));
    expect((await agent.status()).nodeId).toBe(nodeId);
  });

  it('until its Node exists the agent retries and says why it is not ready', async () => {
    const store = new MemoryNodeIdStore();
    const agent = await startAgent(store, new InMemoryCluster());
    const started = agent.start();
    await until(() => (agent.notReadyReason() ?? '').includes('node ID not claimed yet'));
    expect(agent.notReadyReason()).toContain('Node local does not exist');
    store.addNode('local');
    await started;
    expect((await agent.status()).nodeId).toBeGreaterThan(0);
  });

  it('an API server without Leases (the lab’s double): an explicit ID is used unclaimed; 0 waits and says why', async () => {
    const server = await KubeApiServerDouble.start();
    try {
      server.apply('nodes', toNodeObject({ ...node(0, { key: undefined }), name: 'local' }));
      const make = async (nodeId: number): Promise<Agent> =>
        per.track(
          await Agent.create({
            config: testConfig({
              nodeId,
              metrics: { enabled: false, port: 0, host: '127.0.0.1' },
              health: { port: 0, host: '127.0.0.1' },
              status: { socketPath: await per.statusSocket() },
            }),
            platformModules: [
              kubernetesModule(kubeConfigFor(server)),
              new ContainerModule(({ bind }) => void bind(TOKENS.Datapath).toConstantValue(new FakeDatapath())),
            ],
            backendModule: new ContainerModule(({ bind }) => {
              bind(TOKENS.EncryptionBackend).toConstantValue(new FakeBackend({ needsNodeId: true }));
            }),
            logger: captureLogger().logger,
          }),
        );
      const explicit = await make(12);
      await explicit.start();
      expect(await explicit.status()).toMatchObject({ nodeId: 12, nodeIdSource: 'config' });
      const annotations = () => server.get('nodes', 'local')?.metadata.annotations as Record<string, string> | undefined;
      await until(() => annotations()?.[NODE_ID_ANNOTATION] === '12');
      await explicit.stop();

      const auto = await make(0);
      void auto.start().catch(() => undefined);
      await until(() => (auto.notReadyReason() ?? '').includes('does not serve coordination.k8s.io/v1 Leases'));
      expect((await auto.status()).errors.join('\n')).toContain('node ID not claimed yet');
    } finally {
      await server.close();
    }
  });
});
