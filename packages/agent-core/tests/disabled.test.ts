/** Issue 12, defect 7: `encryption.enabled=false` publishes nothing and steers nothing, as documented. */
import { ContainerModule } from 'inversify';
import { describe, expect, it } from 'vitest';
import { Agent, InMemoryCluster, IpcacheFlags, TOKENS } from '../src/index.js';
import { NODE_ID_ANNOTATION } from '../src/types/peer.js';
import { FAKE_KEY_ANNOTATION, FakeBackend, FakeDatapath, RecordingEventRecorder } from '../src/fake/index.js';
import { agentPerTest, captureLogger, keyFor, node, testConfig, until } from './helpers.js';

describe('encryption.enabled=false', () => {
  const perTest = agentPerTest('veil-disabled-');

  it('publishes nothing (withdraws what an earlier run published) and steers nothing, while reporting disabled', async () => {
    const cluster = new InMemoryCluster();
    cluster.upsertNode(node(1));
    // What an earlier, enabled run of this agent left: its key on the Node, a peer in the ipcache.
    cluster.upsertNode({
      ...node(0, { key: keyFor(99) }),
      name: 'local',
      annotations: { [FAKE_KEY_ANNOTATION]: keyFor(99), [NODE_ID_ANNOTATION]: '7' },
    });
    const datapath = new FakeDatapath([
      {
        nodeName: 'node-1',
        nodeIPs: ['192.168.0.1'],
        podCIDRs: ['10.0.1.0/24'],
        flags: IpcacheFlags.REMOTE | IpcacheFlags.ENCRYPT_READY,
        keyIndex: 0,
        nodeId: 0,
      },
    ]);
    const backend = new FakeBackend();
    const socketPath = await perTest.statusSocket();
    const base = testConfig();
    const agent = perTest.track(
      await Agent.create({
        config: testConfig({
          encryption: { ...base.encryption, enabled: false },
          nodeId: 7,
          metrics: { enabled: false, port: 0, host: '127.0.0.1' },
          health: { port: 0, host: '127.0.0.1' },
          status: { socketPath },
        }),
        platformModules: [
          new ContainerModule(({ bind }) => {
            bind(TOKENS.KeyDistributor).toConstantValue(cluster.distributor('local'));
            bind(TOKENS.Datapath).toConstantValue(datapath);
            bind(TOKENS.EventRecorder).toConstantValue(new RecordingEventRecorder());
          }),
        ],
        backendModule: new ContainerModule(({ bind }) => void bind(TOKENS.EncryptionBackend).toConstantValue(backend)),
        attachTargets: [{ kind: 'pod-veth', ifname: 'lxc1' }],
        logger: captureLogger().logger,
      }),
    );
    await agent.start();
    await until(() => agent.ready, 5_000, 'ready');
    await until(() => cluster.getNode('local')?.annotations[FAKE_KEY_ANNOTATION] === undefined, 5_000, 'material withdrawn');
    // Publishes nothing: no key, no node ID on the Node (peers stop encrypting towards it).
    expect(cluster.getNode('local')?.annotations).toEqual({});
    // Steers nothing: no steering, no encrypt-ready peer, no new attachment, no backend device.
    expect(datapath.steeringConfig).toEqual({ kind: 'none' });
    expect([...datapath.ipcache.values()].filter((e) => e.flags & IpcacheFlags.ENCRYPT_READY)).toEqual([]);
    expect(datapath.targets.size).toBe(0);
    expect(backend.callsOf('init')).toEqual([]);
    expect(backend.callsOf('upsertPeer')).toEqual([]);
    const st = await agent.status();
    expect(st).toMatchObject({ encryption: { enabled: false }, ready: true, peers: [] });
  });
});
