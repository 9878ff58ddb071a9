/** Issue 12, defect 2: the agent keeps its own published material level-triggered. */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ContainerModule } from 'inversify';
import { KubeApiServerDouble } from '@veil/kube-apiserver-double';
import { afterEach, describe, expect, it } from 'vitest';
import { Agent, KubernetesKeyDistributor, TOKENS, kubernetesModule } from '../src/index.js';
import { StatusRouteError } from '../src/observability/status-api.js';
import type { KeyRotationResult, LocalMaterial } from '../src/index.js';
import { NODE_ID_ANNOTATION } from '../src/types/peer.js';
import { FAKE_KEY_ANNOTATION, FakeBackend, FakeDatapath } from '../src/fake/index.js';
import { kubeConfigFor, toNodeObject } from './drivers.js';
import { captureLogger, node, testConfig, until } from './helpers.js';

describe('own material is kept in the API (level-triggered)', () => {
  let agent: Agent | undefined;
  let server: KubeApiServerDouble | undefined;
  let dir: string | undefined;
  afterEach(async () => {
    await agent?.stop();
    await server?.close();
    if (dir) await rm(dir, { recursive: true, force: true });
    agent = server = dir = undefined;
  });

  async function startAgent(backend: FakeBackend = new FakeBackend()): Promise<{ log: ReturnType<typeof captureLogger> }> {
    server = await KubeApiServerDouble.start();
    server.apply('nodes', toNodeObject({ ...node(0, { key: undefined }), name: 'local' }));
    server.apply('nodes', toNodeObject(node(1)));
    dir = await mkdtemp(join(tmpdir(), 'veil-own-'));
    const log = captureLogger();
    agent = await Agent.create({
      config: testConfig({
        nodeId: 12,
        metrics: { enabled: false, port: 0, host: '127.0.0.1' },
        health: { port: 0, host: '127.0.0.1' },
        status: { socketPath: join(dir, 'status.sock') },
      }),
      platformModules: [
        kubernetesModule(kubeConfigFor(server)),
        new ContainerModule(({ bind }) => void bind(TOKENS.Datapath).toConstantValue(new FakeDatapath())),
      ],
      backendModule: new ContainerModule(({ bind }) => void bind(TOKENS.EncryptionBackend).toConstantValue(backend)),
      logger: log.logger,
    });
    await agent.start();
    await until(() => agent!.ready && agent!.materialPublished);
    return { log };
  }

  async function restoredTotal(): Promise<number> {
    const m = await agent!.registry.getSingleMetric('veil_local_material_restored_total')?.get();
    return m?.values.reduce((a, v) => a + v.value, 0) ?? 0;
  }

  it('restores its annotations after someone edits or removes them, and reports what it restored', async () => {
    const { log } = await startAgent();
    const published = { ...(server!.get('nodes', 'local')!.metadata.annotations as Record<string, string>) };
    expect(published[FAKE_KEY_ANNOTATION]).toBeDefined();
    server!.modify('nodes', 'local', (o) => {
      const a = o.metadata.annotations as Record<string, string>;
      delete a[FAKE_KEY_ANNOTATION];
      a[NODE_ID_ANNOTATION] = '99';
    });
    await until(
      () => {
        const a = server!.get('nodes', 'local')!.metadata.annotations as Record<string, string>;
        return a[FAKE_KEY_ANNOTATION] === published[FAKE_KEY_ANNOTATION] && a[NODE_ID_ANNOTATION] === '12';
      },
      10_000,
      'annotations restored',
    );
    expect(await restoredTotal()).toBeGreaterThanOrEqual(1);
    expect(log.text()).toMatch(
      /restored own annotations.*veil.io\/fake-public-key|veil.io\/fake-public-key.*restored own annotations/,
    );
    // The agent's own view follows once the watch delivers the restored Node.
    await until(async () => (await agent!.status()).localMaterial.inApi === true, 10_000, 'status shows the material in the API');
    const st = await agent!.status();
    // eslint-disable-next-line @typescript-eslint/no-unsafe-assignment -- vitest's asymmetric matchers (expect.any) are typed any
    expect(st.localMaterial).toMatchObject({ inApi: true, restored: expect.any(Number) });
    expect(st.localMaterial.restored).toBeGreaterThanOrEqual(1);
    expect(st.localMaterial.lastRestoredKeys).toEqual(expect.arrayContaining([FAKE_KEY_ANNOTATION, NODE_ID_ANNOTATION]));
  });

  it('restores them after the API server lost its state (node object recreated without them)', async () => {
    await startAgent();
    const key = (server!.get('nodes', 'local')!.metadata.annotations as Record<string, string>)[FAKE_KEY_ANNOTATION];
    server!.delete('nodes', 'local');
    server!.apply('nodes', toNodeObject({ ...node(0, { key: undefined }), name: 'local' }));
    await until(
      () =>
        (server!.get('nodes', 'local')?.metadata.annotations as Record<string, string> | undefined)?.[FAKE_KEY_ANNOTATION] ===
        key,
      10_000,
      'annotations restored',
    );
  });
  it('refuses a key rotation while the API server cannot be written, changing nothing; rotates once it answers', async () => {
    /** A backend whose rotation hands out a new public key each time (as WireGuard's does). */
    class RotatingBackend extends FakeBackend {
      rotations = 0;
      private current: string | undefined;
      override localMaterial(): LocalMaterial {
        return this.current === undefined ? super.localMaterial() : { [FAKE_KEY_ANNOTATION]: this.current };
      }
      async rotateKeys(): Promise<KeyRotationResult> {
        this.rotations++;
        this.current = Buffer.alloc(32, this.rotations).toString('base64');
        return { material: this.localMaterial() };
      }
    }
    const backend = new RotatingBackend();
    await startAgent(backend);
    const before = (server!.get('nodes', 'local')!.metadata.annotations as Record<string, string>)[FAKE_KEY_ANNOTATION];
    await server!.stop();
    const refused = await agent!.rotateKeys().then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(refused).toBeInstanceOf(StatusRouteError);
    expect(refused).toMatchObject({ statusCode: 503, code: 'CONTROL_PLANE_UNREACHABLE' });
    expect((refused as Error).message).toMatch(/cannot be written.*nothing was changed/);
    expect(backend.rotations).toBe(0);
    expect(backend.localMaterial()[FAKE_KEY_ANNOTATION]).toBe(before);
    await server!.restart();
    const r = await agent!.rotateKeys();
    expect(backend.rotations).toBe(1);
    expect(r.published).toBe(true);
    const after = (server!.get('nodes', 'local')!.metadata.annotations as Record<string, string>)[FAKE_KEY_ANNOTATION];
    expect(after).toBe(Buffer.alloc(32, 1).toString('base64'));
    expect(after).not.toBe(before);
  });
});

describe('KubernetesKeyDistributor retry backoff', () => {
  it('backs off exponentially while the API server is unreachable, even after the initial sync', async () => {
    const server = await KubeApiServerDouble.start();
    server.apply('nodes', toNodeObject(node(1)));
    const dist = new KubernetesKeyDistributor({
      kubeConfig: kubeConfigFor(server),
      nodeName: 'local',
      logger: captureLogger().logger,
      restartBackoff: { initialMs: 20, maxMs: 5_000 },
    });
    try {
      void (async () => {
        for await (const _ of dist.events()) void _;
      })();
      await until(() => dist.synced);
      await server.stop();
      const before = dist.restarts;
      await new Promise((r) => setTimeout(r, 2_500));
      // 20, 40, 80, … ms with jitter: at most ~8 restarts in 2.5 s; a backoff reset on every
      // attempt keeps it at 10–20 ms (well over 50).
      expect(dist.restarts - before).toBeLessThanOrEqual(10);
      expect(dist.restarts - before).toBeGreaterThanOrEqual(3);
      // And it recovers once the server is back, resetting the backoff.
      server.apply('nodes', toNodeObject(node(2)));
      await server.restart();
      await until(() => dist.backoffAttempts === 0, 15_000, 'backoff reset after recovery');
    } finally {
      await dist.close();
      await server.close();
    }
  });
});
