/**
 * Agent-core benchmark against the API server double (in its own process) with the fake backend:
 *  1. initial sync of N nodes (time, RSS after sync),
 *  2. U node updates sent as fast as the double serves them; latency from the double's watch
 *     send timestamp to the fake backend's upsertPeer call (p50/p99).
 * Baseline, same run: a bare client-node informer (no agent) doing the same list and receiving the
 * same updates (latency send → informer callback). Reported as ratios agent/baseline.
 *
 * Usage: npm run bench -w @veil/agent-core  [-- --nodes 5000 --updates 10000]
 */
import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { KubeConfig, CoreV1Api, makeInformer, type V1Node } from '@kubernetes/client-node';
import { KubeApiServerDouble, type KubeObject } from '@veil/kube-apiserver-double';
import 'reflect-metadata';
import { Container } from 'inversify';
import { Writable } from 'node:stream';
import { Registry } from 'prom-client';
import { DEFAULT_CONFIG, KubernetesKeyDistributor, Reconciler, TOKENS, createLogger } from '../src/index.js';
import { AgentMetrics } from '../src/observability/metrics.js';
import { FAKE_KEY_ANNOTATION, FakeBackend, FakeDatapath, RecordingEventRecorder } from '../src/fake/index.js';

const self = fileURLToPath(import.meta.url);
const arg = (name: string, dflt: number): number => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : dflt;
};
const now = (): number => performance.timeOrigin + performance.now();

function keyFor(i: number, v: number): string {
  const raw = Buffer.alloc(32);
  raw.writeUInt32BE(i, 0);
  raw.writeUInt32BE(v, 4);
  raw.write('veil-bench-key', 8);
  return raw.toString('base64');
}

function nodeObject(i: number): KubeObject {
  return {
    metadata: {
      name: `node-${i}`,
      labels: {
        'kubernetes.io/hostname': `node-${i}`,
        'kubernetes.io/os': 'linux',
        'node.kubernetes.io/instance-type': 'm5.large',
      },
      annotations: {
        [FAKE_KEY_ANNOTATION]: keyFor(i, 0),
        'node.alpha.kubernetes.io/ttl': '0',
        'volumes.kubernetes.io/controller-managed-attach-detach': 'true',
      },
    },
    spec: { podCIDR: `10.${(i >> 8) & 255}.${i & 255}.0/24`, podCIDRs: [`10.${(i >> 8) & 255}.${i & 255}.0/24`] },
    status: {
      addresses: [
        { type: 'InternalIP', address: `172.16.${(i >> 8) & 255}.${i & 255}` },
        { type: 'Hostname', address: `node-${i}` },
      ],
      capacity: { cpu: '2', memory: '8Gi', pods: '110' },
      conditions: [{ type: 'Ready', status: 'True', reason: 'KubeletReady', message: 'kubelet is posting ready status' }],
      nodeInfo: { kubeletVersion: 'v1.31.0', kernelVersion: '6.1.0', osImage: 'Debian GNU/Linux 12', architecture: 'amd64' },
    },
  };
}

// ---- the double, in its own process --------------------------------------------------------

async function runDouble(): Promise<void> {
  const sent = new Map<string, number>();
  const server = await KubeApiServerDouble.start({
    onWatchEventSent: (type, o, at) => {
      if (type !== 'MODIFIED') return;
      const key = (o.metadata.annotations as Record<string, string> | undefined)?.[FAKE_KEY_ANNOTATION];
      if (key) sent.set(`${o.metadata.name}@${key}`, at);
    },
  });
  process.on('message', (m: { cmd: string; nodes?: number; updates?: number }) => {
    void (async () => {
      if (m.cmd === 'seed') {
        for (let i = 1; i <= (m.nodes ?? 0); i++) server.apply('nodes', nodeObject(i));
        process.send!({ cmd: 'seeded' });
      } else if (m.cmd === 'update') {
        const n = m.nodes ?? 1;
        for (let u = 0; u < (m.updates ?? 0); u++) {
          const i = (u % n) + 1;
          const v = 1 + Math.floor(u / n);
          server.modify('nodes', `node-${i}`, (o) => {
            (o.metadata.annotations as Record<string, string>)[FAKE_KEY_ANNOTATION] = keyFor(i, v);
          });
          // Yield so the server's sockets drain while generating (as fast as it can serve).
          if (u % 50 === 49) await new Promise((r) => setImmediate(r));
        }
        process.send!({ cmd: 'updated' });
      } else if (m.cmd === 'now') {
        process.send!({ cmd: 'now', at: now() });
      } else if (m.cmd === 'sent') {
        process.send!({ cmd: 'sent', sent: [...sent] });
      } else if (m.cmd === 'exit') {
        await server.close();
        process.exit(0);
      }
    })();
  });
  process.send!({ cmd: 'ready', url: server.url, options: server.kubeConfigOptions() });
}

function request<T>(child: ChildProcess, msg: object, reply: string): Promise<T> {
  return new Promise((resolve) => {
    const on = (m: { cmd: string }): void => {
      if (m.cmd !== reply) return;
      child.off('message', on);
      resolve(m as T);
    };
    child.on('message', on);
    child.send(msg);
  });
}

function startChild(
  mode: string,
  extra: string[] = [],
  execArgv: string[] = process.execArgv,
): { child: ChildProcess; ready: Promise<{ options: Record<string, unknown> }> } {
  const child = fork(self, [mode, ...extra], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'], execArgv });
  const ready = new Promise<{ options: Record<string, unknown> }>((resolve) => {
    child.once('message', (m: { options: Record<string, unknown> }) => resolve(m));
  });
  return { child, ready };
}

// ---- one measured phase (baseline or agent), in its own process ------------------------------

interface PhaseResult {
  syncMs: number;
  /** CPU (user+system) of this process during sync / during the update phase, ms. */
  syncCpuMs: number;
  updateCpuMs: number;
  rssMb: number;
  heapMb: number;
  latencies: number[];
  delivered: number;
  updateWallMs: number;
}

async function runPhase(kind: 'baseline' | 'agent', nodes: number, updates: number): Promise<void> {
  const dbl = startChild('double');
  const { options } = await dbl.ready;
  await request(dbl.child, { cmd: 'seed', nodes }, 'seeded');
  const kc = new KubeConfig();
  kc.loadFromOptions(options);
  const finalVariant = 1 + Math.floor((updates - 1) / nodes);
  const seen = new Map<string, number>();
  const current = new Map<string, string>();
  let doneCount = 0;
  const observe = (name: string, key: string | undefined): void => {
    if (!key) return;
    const id = `${name}@${key}`;
    if (!seen.has(id)) seen.set(id, now());
    if (current.get(name) !== key) {
      current.set(name, key);
      if (key === keyFor(Number(name.slice(5)), finalVariant)) doneCount++;
    }
  };
  const t0 = now();
  const c0 = process.cpuUsage();
  let stop: () => Promise<void>;
  if (kind === 'baseline') {
    const api = kc.makeApiClient(CoreV1Api);
    const inf = makeInformer<V1Node>(kc, '/api/v1/nodes', () => api.listNode());
    const cb = (o: V1Node): void => observe(o.metadata!.name!, o.metadata?.annotations?.[FAKE_KEY_ANNOTATION]);
    inf.on('add', cb);
    inf.on('update', cb);
    await inf.start();
    stop = () => inf.stop();
  } else {
    const sink = new Writable({ write: (_c, _e, cb) => cb() });
    const logger = createLogger({ level: 'warn' }, sink);
    const backend = new FakeBackend();
    backend.onUpsert = (p) => observe(p.name, p.backend[FAKE_KEY_ANNOTATION]);
    const dist = new KubernetesKeyDistributor({ kubeConfig: kc, nodeName: 'local', logger });
    const datapath = new FakeDatapath();
    const c = new Container();
    c.bind(TOKENS.KeyDistributor).toConstantValue(dist);
    c.bind(TOKENS.EncryptionBackend).toConstantValue(backend);
    c.bind(TOKENS.Datapath).toConstantValue(datapath);
    c.bind(TOKENS.EventRecorder).toConstantValue(new RecordingEventRecorder());
    c.bind(TOKENS.Logger).toConstantValue(logger);
    c.bind(TOKENS.AgentMetrics).toConstantValue(
      new AgentMetrics(new Registry(), () => datapath.counters(), { defaultMetrics: false }),
    );
    c.bind(TOKENS.Config).toConstantValue({ ...DEFAULT_CONFIG, nodeName: 'local' });
    c.bind(TOKENS.ReconcilerOptions).toConstantValue({});
    c.bind(Reconciler).toSelf().inSingletonScope();
    const rec = c.get(Reconciler);
    rec.start({ backendPeers: await backend.init(), datapathEntries: await datapath.entries() });
    await rec.whenSynced();
    if (backend.peers.size !== nodes) throw new Error(`synced with ${backend.peers.size}/${nodes} peers`);
    stop = async () => {
      await dist.close();
      await rec.stop();
    };
  }
  const syncMs = now() - t0;
  const c1 = process.cpuUsage(c0);
  global.gc?.();
  const mem = process.memoryUsage();
  const u0 = now();
  const c2 = process.cpuUsage();
  const updated = request(dbl.child, { cmd: 'update', nodes, updates }, 'updated');
  while (doneCount < nodes) await new Promise((r) => setTimeout(r, 5));
  const updateWallMs = now() - u0;
  const c3 = process.cpuUsage(c2);
  await updated;
  const { sent } = await request<{ sent: [string, number][] }>(dbl.child, { cmd: 'sent' }, 'sent');
  // Each process's performance.timeOrigin is fixed from the wall clock at its start; if the clock
  // was stepped in between (it is, on this VM) the two differ. Estimate the offset over IPC.
  const offset = await clockOffset(dbl.child);
  const latencies: number[] = [];
  for (const [id, at] of sent) {
    const got = seen.get(id);
    if (got !== undefined) latencies.push(got - (at - offset));
  }
  await stop();
  dbl.child.send({ cmd: 'exit' });
  const result: PhaseResult = {
    syncMs,
    syncCpuMs: (c1.user + c1.system) / 1000,
    updateCpuMs: (c3.user + c3.system) / 1000,
    rssMb: mem.rss / 2 ** 20,
    heapMb: mem.heapUsed / 2 ** 20,
    latencies,
    delivered: latencies.length,
    updateWallMs,
  };
  process.send!({ cmd: 'result', result });
  process.exit(0);
}

/** double clock − local clock, from the IPC round trip with the smallest RTT. */
async function clockOffset(child: ChildProcess): Promise<number> {
  let best = { rtt: Infinity, offset: 0 };
  for (let i = 0; i < 20; i++) {
    const t0 = now();
    const { at } = await request<{ at: number }>(child, { cmd: 'now' }, 'now');
    const t1 = now();
    if (t1 - t0 < best.rtt) best = { rtt: t1 - t0, offset: at - (t0 + t1) / 2 };
  }
  return best.offset;
}

function pct(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] as number;
}

async function main(): Promise<void> {
  const nodes = arg('nodes', 5000);
  const updates = arg('updates', 10000);
  const fmt = (n: number, d = 1): string => n.toFixed(d);
  console.log(`agent-core bench: ${nodes} nodes, ${updates} updates (double in its own process, fake backend)`);
  console.log(
    `load average at start: ${(await import('node:os'))
      .loadavg()
      .map((l) => l.toFixed(2))
      .join(' ')} (2 shared cores: latencies are noisy, compare ratios)`,
  );
  // V8's default young generation (16 MB semi-spaces) inflates RSS by tens of MB for a process
  // this size; the DaemonSet is meant to run with a small one. Both are measured.
  const v8Configs: [string, string[]][] = [
    ['default V8 flags', []],
    ['--max-semi-space-size=2', ['--max-semi-space-size=2']],
  ];
  for (const [label, flags] of v8Configs) {
    const results: Record<string, PhaseResult> = {};
    for (const kind of ['baseline', 'agent'] as const) {
      const ph = startChild(kind, ['--nodes', String(nodes), '--updates', String(updates)], ['--expose-gc', ...flags]);
      const m = await new Promise<{ result: PhaseResult }>((resolve) =>
        ph.child.on('message', (msg: { cmd: string; result: PhaseResult }) => msg.cmd === 'result' && resolve(msg)),
      );
      results[kind] = m.result;
    }
    console.log(`\n[${label}]`);
    console.log(
      'phase      sync_ms  sync_cpu_ms  rss_mb  heap_mb  upd_wall_ms  upd_cpu_us/update  delivered  p50_ms  p99_ms  max_ms',
    );
    for (const [k, r] of Object.entries(results)) {
      const s = [...r.latencies].sort((a, b) => a - b);
      console.log(
        `${k.padEnd(9)}  ${fmt(r.syncMs, 0).padStart(7)}  ${fmt(r.syncCpuMs, 0).padStart(11)}  ${fmt(r.rssMb).padStart(6)}  ${fmt(r.heapMb).padStart(7)}  ${fmt(r.updateWallMs, 0).padStart(11)}  ${fmt((r.updateCpuMs * 1000) / updates).padStart(17)}  ${String(r.delivered).padStart(9)}  ${fmt(pct(s, 50), 2).padStart(6)}  ${fmt(pct(s, 99), 2).padStart(6)}  ${fmt(s[s.length - 1] ?? NaN, 2).padStart(6)}`,
      );
    }
    const a = results.agent!,
      b = results.baseline!;
    const as = [...a.latencies].sort((x, y) => x - y),
      bs = [...b.latencies].sort((x, y) => x - y);
    console.log(
      `ratio agent/baseline: sync ${fmt(a.syncMs / b.syncMs, 2)}x, sync cpu ${fmt(a.syncCpuMs / b.syncCpuMs, 2)}x, rss ${fmt(a.rssMb / b.rssMb, 2)}x, ` +
        `update cpu ${fmt(a.updateCpuMs / b.updateCpuMs, 2)}x, p50 ${fmt(pct(as, 50) / pct(bs, 50), 2)}x, p99 ${fmt(pct(as, 99) / pct(bs, 99), 2)}x`,
    );
    const met = (ok: boolean): string => (ok ? 'met' : 'NOT met');
    console.log(
      `targets: sync < 2000 ms ${met(a.syncMs < 2000)} (${fmt(a.syncMs, 0)}), RSS < 150 MB ${met(a.rssMb < 150)} (${fmt(a.rssMb)}), p99 < 20 ms ${met(pct(as, 99) < 20)} (${fmt(pct(as, 99), 2)})`,
    );
  }
}

const mode = process.argv[2];
if (mode === 'double') void runDouble();
else if (mode === 'baseline' || mode === 'agent') void runPhase(mode, arg('nodes', 5000), arg('updates', 10000));
else void main();
