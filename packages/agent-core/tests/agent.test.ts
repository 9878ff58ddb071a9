import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { ContainerModule } from 'inversify';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import {
  Agent,
  BackendLoadError,
  ConfigError,
  InMemoryCluster,
  loadAgentConfig,
  TOKENS,
  getJsonOverUnixSocket,
  kubernetesModule,
  loadBackendModule,
  type AgentStatus,
  type LocalMaterial,
} from '../src/index.js';
import { backendSpecifier } from '../src/di/load-backend.js';
import { NODE_ID_ANNOTATION } from '../src/types/peer.js';
import { KubeApiServerDouble } from '@veil/kube-apiserver-double';
import { FakeBackend, FakeDatapath, RecordingEventRecorder } from '../src/fake/index.js';
import { kubeConfigFor, toNodeObject } from './drivers.js';
import { captureLogger, keyFor, node, testConfig, until } from './helpers.js';

const EXAMPLE = resolve(import.meta.dirname, '../examples/plaintext-backend');

function platform(cluster: InMemoryCluster, datapath: FakeDatapath, events = new RecordingEventRecorder()): ContainerModule[] {
  return [
    new ContainerModule(({ bind }) => {
      bind(TOKENS.KeyDistributor).toConstantValue(cluster.distributor('local'));
      bind(TOKENS.Datapath).toConstantValue(datapath);
      bind(TOKENS.EventRecorder).toConstantValue(events);
    }),
  ];
}

function backendModule(backend: FakeBackend): ContainerModule {
  return new ContainerModule(({ bind }) => {
    bind(TOKENS.EncryptionBackend).toConstantValue(backend);
  });
}

const tmpDirs: string[] = [];
afterAll(async () => {
  for (const d of tmpDirs) await rm(d, { recursive: true, force: true });
});

async function socketPath(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'veil-agent-'));
  tmpDirs.push(dir);
  return join(dir, 'status.sock');
}

/** An agent on the fakes with no HTTP listeners (only the status socket). */
async function quietAgent(cluster: InMemoryCluster, datapath: FakeDatapath, backend: FakeBackend): Promise<Agent> {
  return Agent.create({
    config: testConfig({ status: { socketPath: await socketPath() } }),
    platformModules: platform(cluster, datapath),
    backendModule: backendModule(backend),
    logger: captureLogger().logger,
    noListeners: true,
  });
}

describe('loadBackendModule', () => {
  it('maps built-in names to packages and paths to file URLs', () => {
    expect(backendSpecifier('wireguard')).toBe('@veil/backend-wireguard');
    expect(backendSpecifier('ipsec')).toBe('@veil/backend-ipsec');
    expect(backendSpecifier('@acme/veil-foo')).toBe('@acme/veil-foo');
    expect(backendSpecifier('./x/y.js', '/opt')).toBe('file:///opt/x/y.js');
  });

  it('loads the example plaintext backend by path (directory and file) without editing core', async () => {
    for (const spec of [EXAMPLE, join(EXAMPLE, 'index.js')]) {
      const mod = await loadBackendModule(spec);
      expect(typeof mod.load).toBe('function');
    }
  });

  it('validates the example backend’s own config section and hands it to the backend', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'veil-plain-'));
    let agent: Agent | undefined;
    try {
      // encryption.enabled: with it off (the default) the agent starts no backend (issue 12).
      const { config, backend } = await loadAgentConfig({
        env: {},
        argv: [
          '--nodeName=n1',
          '--encryption.enabled',
          `--encryption.type=${EXAMPLE}`,
          '--encryption.plaintext.banner=ops@example know',
        ],
      });
      expect(backend.config?.section).toBe('plaintext');
      expect(config.encryption.plaintext).toEqual({ banner: 'ops@example know' });
      const cluster = new InMemoryCluster();
      const log = captureLogger();
      agent = await Agent.create({
        config: {
          ...config,
          stateDir: dir,
          metrics: { enabled: false, port: 0, host: '127.0.0.1' },
          health: { port: 0, host: '127.0.0.1' },
          status: { socketPath: join(dir, 's.sock') },
        },
        platformModules: platform(cluster, new FakeDatapath()),
        logger: log.logger,
      });
      await agent.start();
      expect((await agent.status()).backendDetails).toMatchObject({ banner: 'ops@example know' });
      expect(log.text()).toContain('plaintext backend: ops@example know');
      // A bad value is refused naming the full key path, before any backend runs.
      const err = await loadAgentConfig({
        env: {},
        argv: ['--nodeName=n1', `--encryption.type=${EXAMPLE}`, '--encryption.plaintext.banner='],
      }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(ConfigError);
      expect((err as ConfigError).issues.map((i) => i.key)).toEqual(['encryption.plaintext.banner']);
    } finally {
      await agent?.stop();
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('refuses missing modules, modules without a default export, and non-ContainerModule defaults', async () => {
    const cases: [string, string][] = [
      ['@veil/backend-does-not-exist', 'MODULE_NOT_FOUND'],
      ['./tests/fixtures/missing.js', 'MODULE_NOT_FOUND'],
      ['./tests/fixtures/no-default.js', 'NO_DEFAULT_EXPORT'],
      ['./tests/fixtures/not-a-module.js', 'NOT_A_CONTAINER_MODULE'],
      ['./tests/fixtures/throws.js', 'IMPORT_FAILED'],
      ['', 'MODULE_NOT_FOUND'],
    ];
    for (const [spec, code] of cases) {
      const err = await loadBackendModule(spec, resolve(import.meta.dirname, '..')).catch((e: unknown) => e);
      expect(err, spec).toBeInstanceOf(BackendLoadError);
      expect((err as BackendLoadError).code, spec).toBe(code);
      expect((err as BackendLoadError).requested).toBe(spec);
    }
  });
});

describe('Agent', () => {
  let agent: Agent | undefined;
  afterEach(async () => {
    await agent?.stop();
    agent = undefined;
  });

  it('runs with a backend loaded by path from encryption.type (the example plaintext backend)', async () => {
    const cluster = new InMemoryCluster();
    cluster.upsertNode(node(1, { key: undefined }));
    const datapath = new FakeDatapath();
    const log = captureLogger();
    agent = await Agent.create({
      config: testConfig({
        encryption: { ...testConfig().encryption, enabled: true, type: EXAMPLE },
        metrics: { enabled: true, port: 0, host: '127.0.0.1' },
        health: { port: 0, host: '127.0.0.1' },
        status: { socketPath: await socketPath() },
      }),
      platformModules: platform(cluster, datapath),
      logger: log.logger,
    });
    await agent.start();
    await until(() => agent!.ready);
    const st = await agent.status();
    expect(st).toMatchObject({ backend: 'plaintext', driver: 'none', ready: true });
    expect(st.peers).toEqual([expect.objectContaining({ name: 'node-1', state: 'active', backend: { detail: 'unencrypted' } })]);
    expect(datapath.steeringConfig).toEqual({ kind: 'none' });
    await until(() => cluster.getNode('local')?.annotations['veil.io/plaintext-enabled'] !== undefined);
    expect(cluster.getNode('local')?.annotations).toEqual({ 'veil.io/plaintext-enabled': 'true' });
  });

  it('serves /metrics, /healthz, /readyz with readiness only after initial sync AND datapath attach', async () => {
    const cluster = new InMemoryCluster();
    cluster.upsertNode(node(1));
    cluster.upsertNode(node(2, { key: keyFor(1) }));
    const datapath = new FakeDatapath();
    datapath.verdicts = { encrypt: 5n, pass: 7n, drop_strict: 1n };
    let openGate!: () => void;
    datapath.attachGate = new Promise((r) => (openGate = r));
    const backend = new FakeBackend();
    agent = await Agent.create({
      config: testConfig({
        metrics: { enabled: true, port: 0, host: '127.0.0.1' },
        health: { port: 0, host: '127.0.0.1' },
        status: { socketPath: await socketPath() },
      }),
      platformModules: platform(cluster, datapath),
      backendModule: backendModule(backend),
      logger: captureLogger().logger,
    });
    const url = (p: string): string => `http://127.0.0.1:${agent!.healthPort}${p}`;
    await agent.start();
    expect((await fetch(url('/healthz'))).status).toBe(200);
    await agent.reconciler.whenSynced();
    const notReady = await fetch(url('/readyz'));
    expect(notReady.status).toBe(503);
    expect(await notReady.text()).toContain('datapath not attached');
    openGate();
    await until(() => agent!.ready);
    expect((await fetch(url('/readyz'))).status).toBe(200);

    const metrics = await (await fetch(`http://127.0.0.1:${agent.metricsPort}/metrics`)).text();
    expect(metrics).toMatch(/^veil_peers\{state="active"\} 1$/m);
    expect(metrics).toMatch(/^veil_peers\{state="refused"\} 1$/m);
    expect(metrics).toMatch(/^veil_refused_peers_total\{reason="duplicate-key"\} 1$/m);
    expect(metrics).toMatch(/^veil_bpf_verdicts\{verdict="encrypt"\} 5$/m);
    expect(metrics).toMatch(/^veil_reconcile_duration_seconds_count\{result="success"\} \d+$/m);
    expect(metrics).toContain('veil_reconcile_errors_total');
    expect(metrics).toMatch(/^veil_fake_backend_upserts_total \d+$/m); // backend metrics hook
    expect(metrics).toContain('veil_agent_process_resident_memory_bytes');

    await agent.stop();
    expect((await fetch(url('/readyz')).catch(() => undefined))?.status).toBeUndefined();
    agent = undefined;
  });

  it('forwards a backend steering change (new device ifindex) to the datapath, and stops after stop()', async () => {
    const cluster = new InMemoryCluster();
    const datapath = new FakeDatapath();
    const backend = new FakeBackend();
    agent = await quietAgent(cluster, datapath, backend);
    await agent.start();
    expect(datapath.steeringConfig).toEqual({ kind: 'redirect', ifindex: 42 });
    backend.changeSteering({ kind: 'redirect', ifindex: 77 });
    await until(() => (datapath.steeringConfig as { ifindex?: number } | undefined)?.ifindex === 77);
    await agent.stop();
    agent = undefined;
    const calls = datapath.calls.filter((c) => c.op === 'setSteering').length;
    backend.changeSteering({ kind: 'redirect', ifindex: 99 });
    await new Promise((r) => setTimeout(r, 20));
    expect(datapath.calls.filter((c) => c.op === 'setSteering').length).toBe(calls);
    expect(datapath.steeringConfig).toEqual({ kind: 'redirect', ifindex: 77 });
  });

  it('status names backend peers that no node claims (e.g. a removal that did not happen)', async () => {
    const cluster = new InMemoryCluster();
    cluster.upsertNode(node(1));
    const datapath = new FakeDatapath();
    const backend = new FakeBackend();
    agent = await quietAgent(cluster, datapath, backend);
    await agent.start();
    await agent.reconciler.whenSynced();
    await until(() => backend.peers.has('node-1'));
    expect((await agent.status()).errors.filter((e) => e.startsWith('backend peers no node claims'))).toEqual([]);
    expect((await agent.status()).orphanPeers).toEqual([]);
    backend.peers.set('ghost', { ...backend.peers.get('node-1')!, name: 'ghost' });
    expect((await agent.status()).errors).toContain('backend peers no node claims: ghost');
    expect((await agent.status()).orphanPeers).toEqual(['ghost']);
  });

  it('serves the status JSON on a unix socket, without private keys', async () => {
    const cluster = new InMemoryCluster();
    cluster.upsertNode(node(1));
    cluster.upsertNode(node(2, { podCIDRs: ['not-a-cidr'] }));
    const backend = new FakeBackend({ keyIndex: 3 });
    const sock = await socketPath();
    agent = await Agent.create({
      config: testConfig({
        metrics: { enabled: true, port: 0, host: '127.0.0.1' },
        health: { port: 0, host: '127.0.0.1' },
        status: { socketPath: sock },
      }),
      platformModules: platform(cluster, new FakeDatapath()),
      backendModule: backendModule(backend),
      logger: captureLogger().logger,
    });
    await agent.start();
    await until(() => agent!.ready);
    const raw = await getJsonOverUnixSocket(sock);
    const st = raw as AgentStatus;
    expect(st).toMatchObject({
      node: 'local',
      backend: 'fake',
      driver: 'in-memory',
      keyIndex: 3,
      ready: true,
      synced: true,
      datapathAttached: true,
    });
    expect(st.peers.map((p) => [p.name, p.state, p.keyIndex])).toEqual([
      ['node-1', 'active', 3],
      ['node-2', 'refused', 0],
    ]);
    expect(st.errors.join('\n')).toContain('node-2: refused (malformed-cidr) spec.podCIDRs');
    expect(st.counters).toEqual({ encrypt: '0', pass: '0', drop_strict: '0' });
    const text = JSON.stringify(raw);
    expect(text).not.toContain(backend.privateKey.reveal());
    expect(text).toContain('[REDACTED]');
  });

  it('never logs private keys (pino redaction + Secret)', async () => {
    const cluster = new InMemoryCluster();
    cluster.upsertNode(node(1));
    const backend = new FakeBackend();
    backend.failUpsert.add('node-1');
    const log = captureLogger('trace');
    agent = await Agent.create({
      config: testConfig({
        metrics: { enabled: false, port: 0, host: '127.0.0.1' },
        health: { port: 0, host: '127.0.0.1' },
        status: { socketPath: await socketPath() },
      }),
      platformModules: platform(cluster, new FakeDatapath()),
      backendModule: backendModule(backend),
      logger: log.logger,
      reconciler: { initialRetryMs: 5, maxRetryMs: 20 },
    });
    await agent.start();
    await until(() => log.text().includes('peer reconcile failed'));
    const secret = backend.privateKey.reveal();
    // Whatever a backend author might log by mistake:
    log.logger.info({ privateKey: secret, peer: { privateKey: secret }, wg: { peer: { presharedKey: secret } } }, 'config');
    log.logger.info({ key: backend.privateKey }, 'secret object');
    log.logger.info({ status: await backend.status() }, 'status');
    log.logger.error({ err: new Error(`failed with ${String(backend.privateKey)}`) }, 'error with secret in message');
    backend.failUpsert.clear();
    await until(() => agent!.ready);
    expect(log.lines.length).toBeGreaterThan(5);
    expect(log.text()).not.toContain(secret);
    expect(log.text()).toContain('[REDACTED]');
  });

  it('runs on Kubernetes (kubernetesModule against the API server double): publishes, programs, posts events', async () => {
    const server = await KubeApiServerDouble.start();
    try {
      server.apply('nodes', toNodeObject({ ...node(0, { key: undefined }), name: 'local' }));
      server.apply('nodes', toNodeObject(node(1)));
      server.apply('nodes', toNodeObject(node(2, { key: keyFor(1) })));
      const backend = new FakeBackend();
      const datapath = new FakeDatapath();
      agent = await Agent.create({
        config: testConfig({
          nodeId: 12,
          metrics: { enabled: false, port: 0, host: '127.0.0.1' },
          health: { port: 0, host: '127.0.0.1' },
          status: { socketPath: await socketPath() },
        }),
        platformModules: [
          kubernetesModule(kubeConfigFor(server)),
          new ContainerModule(({ bind }) => void bind(TOKENS.Datapath).toConstantValue(datapath)),
        ],
        backendModule: backendModule(backend),
        logger: captureLogger().logger,
      });
      await agent.start();
      const localAnnotations = () => server.get('nodes', 'local')?.metadata.annotations as Record<string, string> | undefined;
      await until(() => agent!.ready && localAnnotations()?.['veil.io/fake-public-key'] !== undefined);
      expect([...backend.peers.keys()]).toEqual(['node-1']);
      expect(server.get('nodes', 'local')?.metadata.annotations).toMatchObject({
        [NODE_ID_ANNOTATION]: '12',
        // eslint-disable-next-line @typescript-eslint/no-unsafe-assignment -- vitest's asymmetric matchers (expect.any/stringMatching) are typed any
        'veil.io/fake-public-key': expect.any(String),
      });
      await until(() => server.list('events').length === 1);
      expect(server.list('events')[0]).toMatchObject({ involvedObject: { name: 'node-2' }, reason: 'PeerRefused' });
    } finally {
      await agent?.stop();
      agent = undefined;
      await server.close();
    }
  });

  it('restart adopts existing backend/datapath state without teardown', async () => {
    const cluster = new InMemoryCluster();
    cluster.upsertNode(node(1));
    cluster.upsertNode(node(2));
    const backend = new FakeBackend();
    const datapath = new FakeDatapath();
    const cfg = testConfig({
      metrics: { enabled: false, port: 0, host: '127.0.0.1' },
      health: { port: 0, host: '127.0.0.1' },
      status: { socketPath: await socketPath() },
    });
    agent = await Agent.create({
      config: cfg,
      platformModules: platform(cluster, datapath),
      backendModule: backendModule(backend),
      logger: captureLogger().logger,
    });
    await agent.start();
    await until(() => agent!.ready);
    await agent.stop();
    expect(backend.callsOf('removePeer')).toEqual([]);
    expect(backend.peers.size).toBe(2);
    // "New process": a fresh backend object sees the kernel state the old one left.
    const backend2 = new FakeBackend({ preexisting: [...backend.peers.values()] });
    const datapath2 = new FakeDatapath([...datapath.ipcache.values()]);
    cluster.deleteNode('node-2');
    agent = await Agent.create({
      config: cfg,
      platformModules: platform(cluster, datapath2),
      backendModule: backendModule(backend2),
      logger: captureLogger().logger,
    });
    await agent.start();
    await until(() => agent!.ready);
    expect(backend2.callsOf('upsertPeer')).toEqual([{ op: 'upsertPeer', name: 'node-1', changed: false }]);
    expect(backend2.callsOf('prune')[0]?.removed).toEqual(['node-2']);
    expect(datapath2.calls.filter((c) => c.op === 'upsert')).toEqual([]);
    expect([...datapath2.ipcache.keys()]).toEqual(['node-1']);
  });
});

describe('backend-initiated material changes and reprogramming', () => {
  /** A backend that changes its material and per-peer key index on its own (as IPsec rotation does). */
  class RotatingBackend extends FakeBackend {
    private material: Record<string, string> = {};
    private readonly materialListeners = new Set<(m: LocalMaterial) => void>();
    private readonly reprogramListeners = new Set<(n: readonly string[]) => void>();
    index = 3;
    override localMaterial(): LocalMaterial {
      return { ...super.localMaterial(), ...this.material };
    }
    override async upsertPeer(peer: Parameters<FakeBackend['upsertPeer']>[0]): Promise<{ keyIndex: number }> {
      await super.upsertPeer(peer);
      return { keyIndex: this.index };
    }
    onMaterialChange(l: (m: LocalMaterial) => void): () => void {
      this.materialListeners.add(l);
      return () => this.materialListeners.delete(l);
    }
    onReprogramPeers(l: (n: readonly string[]) => void): () => void {
      this.reprogramListeners.add(l);
      return () => this.reprogramListeners.delete(l);
    }
    rotate(): void {
      this.index = 4;
      this.material = { 'veil.io/fake-ready-index': '4' };
      for (const l of this.materialListeners) l(this.localMaterial());
      for (const l of this.reprogramListeners) l(['node-1', 'no-such-node']);
    }
  }

  it('publishes the new material and programs unchanged peers again, applying the new key index', async () => {
    const cluster = new InMemoryCluster();
    cluster.upsertNode(node(1));
    const datapath = new FakeDatapath();
    const backend = new RotatingBackend();
    const a = await Agent.create({
      config: testConfig({ status: { socketPath: await socketPath() } }),
      platformModules: platform(cluster, datapath),
      backendModule: backendModule(backend),
      logger: captureLogger().logger,
      noListeners: true,
    });
    try {
      await a.start();
      await until(async () => (await datapath.entries()).get('node-1')?.keyIndex === 3);
      const upserts = backend.callsOf('upsertPeer').length;
      backend.rotate();
      await until(() => cluster.getNode('local')?.annotations['veil.io/fake-ready-index'] === '4');
      await until(async () => (await datapath.entries()).get('node-1')?.keyIndex === 4);
      const again = backend.callsOf('upsertPeer').slice(upserts);
      expect(again.map((c) => c.name)).toEqual(['node-1']);
      expect(again[0]!.changed).toBe(false);
    } finally {
      await a.stop();
    }
  });
});
