/**
 * Agent-core benchmark against the API server double (in its own process) with the fake backend:
 *  1. initial sync of N nodes (time, RSS after sync),
 *  2. a burst of U node updates sent as fast as the double serves them; latency from the double's
 *     watch send timestamp to the fake backend's upsertPeer call (p50/p99), CPU per update,
 *     peak RSS,
 *  3. a steady stream of S updates at R per second (p99 at a realistic rate).
 * Baseline, same run: a bare client-node informer (no agent) doing the same list and receiving the
 * same updates (latency send → informer callback). Reported as ratios agent/baseline.
 *
 * V8 flags: once with none at all, and once "as shipped": the NODE_OPTIONS the chart's DaemonSet
 * sets (charts/veil/values.yaml `nodeOptions`), which the image sets too (Dockerfile ENV); the
 * bench checks that the two agree. Rows of both go to the bench reporter (bench/rows.ts).
 *
 * Usage: npm run bench -w @veil/agent-core  [-- --nodes 10000 --updates 10000 --steady 1000 --rate 100]
 * Env: VEIL_BENCH_CPU_PROF=<dir> writes a --cpu-prof of each agent phase there;
 *      VEIL_BENCH_HEAP_SNAPSHOT=<dir> a heap snapshot of each phase after its sync;
 *      VEIL_BENCH_V8=default|shipped|both (default both).
 */
import { fork, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { writeHeapSnapshot } from 'node:v8';
import { fileURLToPath } from 'node:url';
import { KubeConfig, CoreV1Api, makeInformer, type V1Node } from '@kubernetes/client-node';
import { KubeApiServerDouble, type KubeObject } from '@veil/kube-apiserver-double';
import 'reflect-metadata';
import { Container } from 'inversify';
import { Writable } from 'node:stream';
import { Registry } from 'prom-client';
import { DEFAULT_CONFIG, KubernetesKeyDistributor, Reconciler, TOKENS, createLogger } from '../src/index.js';
import { AgentMetrics } from '../src/observability/metrics.js';
import { formatTarget } from '@veil/test-utils/bench-report';
import { agentBenchRows, pct, recordAgentRows, type AgentRow, type PhaseResult } from './rows.js';
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
  process.on('message', (m: { cmd: string; nodes?: number; updates?: number; from?: number; rate?: number }) => {
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
      } else if (m.cmd === 'steady') {
        // Updates numbered from `from` on (continuing the burst's variants), `rate` per second,
        // each sent at its own due time (no catch-up bursts: a late one is sent at once).
        const n = m.nodes ?? 1;
        const rate = m.rate ?? 100;
        const t0 = performance.now();
        for (let k = 0; k < (m.updates ?? 0); k++) {
          const due = t0 + (k * 1000) / rate;
          const wait = due - performance.now();
          if (wait > 0) await new Promise((r) => setTimeout(r, wait));
          const u = (m.from ?? 0) + k;
          const i = (u % n) + 1;
          const v = 1 + Math.floor(u / n);
          server.modify('nodes', `node-${i}`, (o) => {
            (o.metadata.annotations as Record<string, string>)[FAKE_KEY_ANNOTATION] = keyFor(i, v);
          });
        }
        process.send!({ cmd: 'steadied' });
      } else if (m.cmd === 'now') {
        process.send!({ cmd: 'now', at: now() });
      } else if (m.cmd === 'sent') {
        process.send!({ cmd: 'sent', sent: [...sent] });
        sent.clear();
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

interface PhaseArgs {
  nodes: number;
  updates: number;
  steady: number;
  rate: number;
}

async function runPhase(kind: 'baseline' | 'agent', a: PhaseArgs): Promise<void> {
  const { nodes, updates } = a;
  const dbl = startChild('double', [], []);
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
  const snapDir = process.env.VEIL_BENCH_HEAP_SNAPSHOT;
  if (snapDir) writeHeapSnapshot(`${snapDir}/${kind}-after-sync.heapsnapshot`);
  const u0 = now();
  const c2 = process.cpuUsage();
  const updated = request(dbl.child, { cmd: 'update', nodes, updates }, 'updated');
  // Done when every updated node shows its last variant (all nodes once updates ≥ nodes).
  while (doneCount < Math.min(nodes, updates)) await new Promise((r) => setTimeout(r, 5));
  const updateWallMs = now() - u0;
  const c3 = process.cpuUsage(c2);
  await updated;
  // Each process's performance.timeOrigin is fixed from the wall clock at its start; if the clock
  // was stepped in between (it is, on this VM) the two differ. Estimate the offset over IPC.
  const offset = await clockOffset(dbl.child);
  const collect = async (): Promise<number[]> => {
    const { sent } = await request<{ sent: [string, number][] }>(dbl.child, { cmd: 'sent' }, 'sent');
    const out: number[] = [];
    for (const [id, at] of sent) {
      const got = seen.get(id);
      if (got !== undefined) out.push(got - (at - offset));
    }
    return out;
  };
  const latencies = await collect();
  // Steady phase: updates `updates` … `updates + steady - 1`, at `rate` per second.
  let steadyLatencies: number[] = [];
  let steadyCpuMs = 0;
  if (a.steady > 0) {
    const last = updates + a.steady - 1;
    const lastId = `node-${(last % nodes) + 1}@${keyFor((last % nodes) + 1, 1 + Math.floor(last / nodes))}`;
    const c4 = process.cpuUsage();
    await request(dbl.child, { cmd: 'steady', nodes, updates: a.steady, from: updates, rate: a.rate }, 'steadied');
    const deadline = Date.now() + 30_000;
    while (!seen.has(lastId) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
    const c5 = process.cpuUsage(c4);
    steadyCpuMs = (c5.user + c5.system) / 1000;
    steadyLatencies = await collect();
  }
  await stop();
  dbl.child.send({ cmd: 'exit' });
  const result: PhaseResult = {
    syncMs,
    syncCpuMs: (c1.user + c1.system) / 1000,
    updateCpuMs: (c3.user + c3.system) / 1000,
    rssMb: mem.rss / 2 ** 20,
    heapMb: mem.heapUsed / 2 ** 20,
    peakRssMb: process.resourceUsage().maxRSS / 1024,
    latencies,
    delivered: latencies.length,
    updateWallMs,
    steadyLatencies,
    steadyCpuMs,
  };
  process.send!({ cmd: 'result', result });
  // Let a --cpu-prof write its profile (it is written on a normal exit).
  setImmediate(() => process.exit(0));
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

// ---- the flags that ship ---------------------------------------------------------------------

const REPO = fileURLToPath(new URL('../../../../', import.meta.url));

/**
 * The V8 flags the agent runs with when installed as shipped: the chart's default `nodeOptions`
 * (the DaemonSet's NODE_OPTIONS) and the image's `ENV NODE_OPTIONS`. They must agree.
 */
export function shippedNodeOptions(repo = REPO): string[] {
  const values = readFileSync(`${repo}/charts/veil/values.yaml`, 'utf8');
  const m = /^nodeOptions:\s*['"]?([^'"\n]*)['"]?\s*$/m.exec(values);
  const chart = (m?.[1] ?? '').trim();
  const dockerfile = existsSync(`${repo}/Dockerfile`) ? readFileSync(`${repo}/Dockerfile`, 'utf8') : '';
  const d = /^ENV NODE_OPTIONS=["']?([^"'\n]*)["']?\s*$/m.exec(dockerfile);
  const image = (d?.[1] ?? '').trim();
  if (chart !== image)
    throw new Error(
      `the chart's nodeOptions (${JSON.stringify(chart)}) and the image's NODE_OPTIONS (${JSON.stringify(image)}) differ`,
    );
  return chart === '' ? [] : chart.split(/\s+/);
}

// ---- result rows (bench/rows.ts) -------------------------------------------------------------

function printRows(rows: readonly AgentRow[]): void {
  const f = (x: number | null, d = 2): string => (x === null || Number.isNaN(x) ? '-' : x.toFixed(d));
  console.log(`${'row'.padEnd(72)} ${'value'.padStart(9)} unit ${'informer'.padStart(9)}  target`);
  for (const r of rows)
    console.log(
      `${r.metric.padEnd(72)} ${f(r.value).padStart(9)} ${r.unit.padEnd(4)} ${f(r.baseline).padStart(9)}  ${formatTarget(r.target, r.unit)}`,
    );
}

async function main(): Promise<void> {
  const args: PhaseArgs = {
    nodes: arg('nodes', 10000),
    updates: arg('updates', 10000),
    steady: arg('steady', 1000),
    rate: arg('rate', 100),
  };
  const fmt = (n: number, d = 1): string => n.toFixed(d);
  console.log(
    `agent-core bench: ${args.nodes} nodes, ${args.updates}-update burst, then ${args.steady} updates at ${args.rate}/s (double in its own process, fake backend)`,
  );
  console.log(
    `load average at start: ${loadavg()
      .map((l) => l.toFixed(2))
      .join(' ')} (2 shared cores: latencies are noisy, compare ratios)`,
  );
  const which = process.env.VEIL_BENCH_V8 ?? 'both';
  const shipped = which === 'default' ? [] : shippedNodeOptions();
  // Issue 15's targets are for default V8 flags; the shipped flags are judged too (what runs).
  const v8Configs: [string, string[]][] = [];
  if (which !== 'shipped') v8Configs.push(['no V8 flags', []]);
  if (which !== 'default' && shipped.length > 0) v8Configs.push([`as shipped: ${shipped.join(' ')}`, shipped]);
  const prof = process.env.VEIL_BENCH_CPU_PROF;
  const rows: AgentRow[] = [];
  for (const [label, flags] of v8Configs) {
    const results: Record<string, PhaseResult> = {};
    for (const kind of ['baseline', 'agent'] as const) {
      const profFlags = prof && kind === 'agent' ? ['--cpu-prof', `--cpu-prof-dir=${prof}`] : [];
      const ph = startChild(
        kind,
        [
          '--nodes',
          String(args.nodes),
          '--updates',
          String(args.updates),
          '--steady',
          String(args.steady),
          '--rate',
          String(args.rate),
        ],
        ['--expose-gc', ...flags, ...profFlags],
      );
      const m = await new Promise<{ result: PhaseResult }>((resolve, reject) => {
        ph.child.on('message', (msg: { cmd: string; result: PhaseResult }) => msg.cmd === 'result' && resolve(msg));
        ph.child.once('exit', (code) => reject(new Error(`${kind} phase exited ${code} without a result`)));
      });
      results[kind] = m.result;
      await new Promise((r) => (ph.child.exitCode === null ? ph.child.once('exit', r) : r(undefined)));
    }
    console.log(`\n[${label}]`);
    console.log(
      'phase      sync_ms  sync_cpu_ms  rss_mb  peak_rss_mb  heap_mb  upd_wall_ms  upd_cpu_us/update  delivered  p50_ms  p99_ms  max_ms  steady_p99_ms',
    );
    for (const [k, r] of Object.entries(results)) {
      const s = [...r.latencies].sort((a, b) => a - b);
      const ss = [...r.steadyLatencies].sort((a, b) => a - b);
      console.log(
        `${k.padEnd(9)}  ${fmt(r.syncMs, 0).padStart(7)}  ${fmt(r.syncCpuMs, 0).padStart(11)}  ${fmt(r.rssMb).padStart(6)}  ${fmt(r.peakRssMb).padStart(11)}  ${fmt(r.heapMb).padStart(7)}  ${fmt(r.updateWallMs, 0).padStart(11)}  ${fmt((r.updateCpuMs * 1000) / args.updates).padStart(17)}  ${String(r.delivered).padStart(9)}  ${fmt(pct(s, 50), 2).padStart(6)}  ${fmt(pct(s, 99), 2).padStart(6)}  ${fmt(s[s.length - 1] ?? NaN, 2).padStart(6)}  ${fmt(pct(ss, 99), 2).padStart(13)}`,
      );
    }
    rows.push(...agentBenchRows(label, args.nodes, args.updates, args.rate, results.agent!, results.baseline!));
  }
  console.log('');
  printRows(rows);
  recordAgentRows(rows);
}

const mode = process.argv[2];
const phaseArgs = (): PhaseArgs => ({
  nodes: arg('nodes', 10000),
  updates: arg('updates', 10000),
  steady: arg('steady', 1000),
  rate: arg('rate', 100),
});
if (mode === 'double') void runDouble();
else if (mode === 'baseline' || mode === 'agent') void runPhase(mode, phaseArgs());
else void main();
