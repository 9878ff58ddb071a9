/** Issue 12, defect 5: readiness and status tell the truth about what traffic is affected. */
import { ContainerModule } from 'inversify';
import { describe, expect, it } from 'vitest';
import { Agent, InMemoryCluster, TOKENS, type KeyDistributor, type LocalMaterial } from '../src/index.js';
import { FAKE_KEY_ANNOTATION, FakeBackend, FakeDatapath, RecordingEventRecorder } from '../src/fake/index.js';
import { agentPerTest, captureLogger, keyFor, node, testConfig, until } from './helpers.js';

describe('readiness reflects affected traffic', () => {
  const perTest = agentPerTest('veil-ready-');

  async function start(cluster: InMemoryCluster, distributor: KeyDistributor = cluster.distributor('local')): Promise<Agent> {
    const socketPath = await perTest.statusSocket();
    const agent = perTest.track(
      await Agent.create({
        config: testConfig({
          metrics: { enabled: false, port: 0, host: '127.0.0.1' },
          health: { port: 0, host: '127.0.0.1' },
          status: { socketPath },
        }),
        platformModules: [
          new ContainerModule(({ bind }) => {
            bind(TOKENS.KeyDistributor).toConstantValue(distributor);
            bind(TOKENS.Datapath).toConstantValue(new FakeDatapath());
            bind(TOKENS.EventRecorder).toConstantValue(new RecordingEventRecorder());
          }),
        ],
        backendModule: new ContainerModule(({ bind }) => void bind(TOKENS.EncryptionBackend).toConstantValue(new FakeBackend())),
        logger: captureLogger().logger,
        pendingGraceMs: 300,
      }),
    );
    await agent.start();
    return agent;
  }

  it("is not ready while the node's own material is missing from the API", async () => {
    const cluster = new InMemoryCluster();
    cluster.upsertNode(node(1));
    const dist = cluster.distributor('local');
    let apiDown = false;
    const publish = dist.publishLocal.bind(dist);
    dist.publishLocal = async (m: LocalMaterial) => {
      if (apiDown) throw new Error('injected: API server unavailable');
      return publish(m);
    };
    const a = await start(cluster, dist);
    await until(() => a.ready && a.materialPublished);
    apiDown = true;
    cluster.annotate('local', { [FAKE_KEY_ANNOTATION]: null });
    await until(() => !a.ready, 5_000, 'not ready');
    expect(a.notReadyReason()).toContain(`own material missing from the API: ${FAKE_KEY_ANNOTATION}`);
    const st = await a.status();
    expect(st.localMaterial).toMatchObject({ inApi: false, missing: [FAKE_KEY_ANNOTATION] });
    expect(st.errors.join('\n')).toContain('own material missing from the API');
    apiDown = false;
    await until(() => a.ready, 10_000, 'ready after the restore');
  });

  it('is not ready while a peer is stuck pending with nothing programmed for it', async () => {
    const cluster = new InMemoryCluster();
    cluster.upsertNode(node(1));
    cluster.upsertNode(node(3, { key: undefined }));
    const a = await start(cluster);
    await until(() => !a.ready && (a.notReadyReason() ?? '').includes('pending'), 5_000, 'not ready: pending');
    expect(a.notReadyReason()).toMatch(/peers pending with no encryption for over .*: node-3/);
    expect((await a.status()).errors.join('\n')).toMatch(/node-3: pending .*not encrypted/);
    cluster.upsertNode(node(3));
    await until(() => a.ready, 5_000, 'ready once node-3 publishes its key');
  });

  it('is not ready while a refused peer has its traffic affected (displaced by an older node)', async () => {
    const cluster = new InMemoryCluster();
    cluster.upsertNode({ ...node(1), createdAt: '2020-01-01T00:00:00Z' });
    cluster.upsertNode({ ...node(2), createdAt: '2021-01-01T00:00:00Z' });
    const a = await start(cluster);
    await until(() => a.ready, 5_000, 'ready');
    cluster.upsertNode({ ...node(1, { key: keyFor(2) }) });
    await until(() => !a.ready, 5_000, 'not ready');
    expect(a.notReadyReason()).toContain('refused peers with affected traffic: node-2');
    expect((await a.status()).peers.find((p) => p.name === 'node-2')).toMatchObject({ state: 'refused', trafficAffected: true });
    // A refused peer that never ran (nothing of its traffic was encrypted) does not make us unready.
    cluster.upsertNode({ ...node(1) });
    await until(() => a.ready, 5_000, 'ready again');
    cluster.upsertNode(node(4, { key: keyFor(1) }));
    await until(() => a.reconciler.peers().find((p) => p.name === 'node-4')?.state === 'refused');
    expect(a.ready).toBe(true);
  });
});
