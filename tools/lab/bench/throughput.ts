/**
 * Pod-to-pod TCP throughput through Veil's BPF steering vs plain routing into the SAME
 * WireGuard device, measured in one run of a 2-node `veil lab` (wireguard-go on this host),
 * once per userspace daemon: Debian's wireguard-go (no TUN offloads) and the one
 * tools/wireguard-go/build.sh builds from the module proxy (TUN offloads: GSO out, GRO in).
 * The agents find `wireguard-go` on PATH; each lab is started with a PATH whose first entry holds
 * only that daemon, and the bench checks (via each agent's status) which executable runs.
 *
 *   BPF    from-pod (tc ingress on the pod's host veth) does `bpf_redirect(wg_ifindex)`; the
 *          lab's direct pod-CIDR route via the other node is never consulted.
 *   plain  on both nodes the pinned `config` map gets backend none (from-pod then passes with
 *          `pass-plaintext-not-ready`) and the remote pod CIDR is routed `dev veil_wg0`, so the
 *          kernel's routing puts the packets into the same wireguard-go device.
 *
 * Rounds alternate B P P B B P … (drift in the machine's load hits both modes alike). Every
 * round is checked: on the sending node the steering counters must show the mode really used
 * (redirect-wireguard grows only in BPF rounds), the WireGuard device must carry the bytes, and
 * a capture on the node's underlay device must see no packet with a pod address in clear.
 * An underlay-only iperf3 (node to node, no WireGuard) is reported for context.
 *
 * Offloads: the average size of the packets the WireGuard device transmitted (wg tx bytes ÷
 * packets) shows whether GSO super-packets reach the daemon's TUN through `bpf_redirect`
 * (> MTU) or arrive segmented (≤ MTU).
 *
 * Env: VEIL_BENCH_ROUNDS (per mode, default 3, min 3), VEIL_BENCH_SECONDS (per round, default 5),
 * VEIL_BENCH_DAEMONS (comma list of debian,built; default both),
 * VEIL_WIREGUARD_GO (the built daemon; default: what tools/wireguard-go/build.sh prints).
 * The lab is always torn down (finally + SIGINT/SIGTERM), and the config/routes restored first.
 */
import { spawn, execFile, execFileSync, type ChildProcess } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  realpathSync,
  readlinkSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { createRequire } from 'node:module';
import { loadavg, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DEFAULT_DEVICE } from '@veil/backend-wireguard';
import { acceptLabUp, median, recordThroughputRows, type DaemonLabel } from './throughput-rows.js';

const PKG_DIR = fileURLToPath(new URL('../../', import.meta.url));
// The `veil` CLI (it loads this package for `veil lab`); resolved without importing it, so a
// missing build is reported below rather than as an import failure.
const VEIL = join(dirname(createRequire(import.meta.url).resolve('@veil/cli/package.json')), 'dist', 'main.js');
const LAB_DIR = '/run/veil-lab';
const WG_DEV = DEFAULT_DEVICE;
const UNDERLAY_DEV = 'eth0';
const IPERF_PORT = 5299;
const REPO_DIR = fileURLToPath(new URL('../../../../', import.meta.url));

class BenchError extends Error {
  override name = 'BenchError';
  constructor(
    readonly step: string,
    message: string,
  ) {
    super(`${step}: ${message}`);
  }
}

function intEnv(name: string, def: number, min: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return def;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < min)
    throw new BenchError('options', `${name} must be an integer ≥ ${min}, got ${JSON.stringify(raw)}`);
  return n;
}

interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

function run(cmd: string, args: readonly string[], timeoutMs = 30_000, env?: NodeJS.ProcessEnv): Promise<RunResult> {
  return new Promise((resolve) => {
    execFile(
      cmd,
      args as string[],
      { timeout: timeoutMs, maxBuffer: 32 << 20, env: env ?? process.env },
      (err, stdout, stderr) => {
        const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : 127) : 0;
        resolve({ code, stdout: String(stdout), stderr: String(stderr) || (err ? err.message : '') });
      },
    );
  });
}

async function mustRun(step: string, cmd: string, args: readonly string[], timeoutMs?: number): Promise<string> {
  const r = await run(cmd, args, timeoutMs);
  if (r.code !== 0)
    throw new BenchError(
      step,
      `\`${[cmd, ...args].join(' ')}\` exited ${r.code}: ${r.stderr.trim().split('\n').slice(-3).join(' | ')}`,
    );
  return r.stdout;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const log = (msg: string) => process.stderr.write(`[tput ${new Date().toISOString().slice(11, 19)}] ${msg}\n`);

// ---- lab state (the subset of tools/lab/src/state.ts this bench reads) ---------------

interface LabPod {
  name: string;
  netns: string;
  ip: string;
}
interface LabNode {
  name: string;
  netns: string;
  underlayIP: string;
  podCIDR: string;
  pods: LabPod[];
  statusSocket: string;
  pinDir: string;
}
interface LabState {
  nodes: LabNode[];
  wireguardPort: number;
}

function readLabState(): LabState {
  const s = JSON.parse(readFileSync(join(LAB_DIR, 'state.json'), 'utf8')) as LabState;
  if (!Array.isArray(s.nodes) || s.nodes.length < 2)
    throw new BenchError('lab state', `expected 2 nodes in ${LAB_DIR}/state.json`);
  return s;
}

// ---- datapath config map (bpf/lib/maps.h) -----------------------------------------------------
// struct veil_config { __u32 backend; __u32 wg_ifindex; __u32 flags; __u32 mtu;
//                      __u32 encrypt_mark; __u32 encrypt_mark_mask; __u16 wg_port; __u16 pad; };
// backend: 0 none, 1 wireguard, 2 ipsec. Byte 0 is the (little-endian) backend's low byte.

async function readConfigBytes(pinDir: string): Promise<number[]> {
  const out = await mustRun('read config map', 'bpftool', [
    '-j',
    'map',
    'lookup',
    'pinned',
    join(pinDir, 'config'),
    'key',
    'hex',
    '00',
    '00',
    '00',
    '00',
  ]);
  const j = JSON.parse(out) as { value?: string[] };
  if (!Array.isArray(j.value) || j.value.length !== 28)
    throw new BenchError('read config map', `unexpected value in ${pinDir}/config: ${out.slice(0, 200)}`);
  return j.value.map((b) => parseInt(b, 16));
}

async function writeConfigBytes(pinDir: string, bytes: readonly number[]): Promise<void> {
  const hex = bytes.map((b) => b.toString(16).padStart(2, '0'));
  await mustRun('write config map', 'bpftool', [
    'map',
    'update',
    'pinned',
    join(pinDir, 'config'),
    'key',
    'hex',
    '00',
    '00',
    '00',
    '00',
    'value',
    'hex',
    ...hex,
  ]);
}

const backendOf = (bytes: readonly number[]) =>
  (bytes[0] ?? 0) | ((bytes[1] ?? 0) << 8) | ((bytes[2] ?? 0) << 16) | ((bytes[3] ?? 0) << 24);

// ---- observation ------------------------------------------------------------------------------

async function counters(node: LabNode): Promise<Map<string, number>> {
  const out = await mustRun('veil bpf counters', process.execPath, [
    VEIL,
    'bpf',
    'counters',
    '--socket',
    node.statusSocket,
    '-o',
    'json',
    '-a',
  ]);
  const j = JSON.parse(out) as { items: { reason: string; packets: number }[] };
  return new Map(j.items.map((i) => [i.reason, i.packets]));
}

async function linkTx(netns: string, dev: string): Promise<{ bytes: number; packets: number }> {
  const out = await mustRun('link stats', 'ip', ['-n', netns, '-j', '-s', 'link', 'show', 'dev', dev]);
  const j = JSON.parse(out) as { stats64?: { tx?: { bytes?: number; packets?: number } } }[];
  const b = j[0]?.stats64?.tx?.bytes;
  const p = j[0]?.stats64?.tx?.packets;
  if (typeof b !== 'number' || typeof p !== 'number') throw new BenchError('link stats', `no tx stats for ${dev} in ${netns}`);
  return { bytes: b, packets: p };
}

/** Packets the WireGuard device's root qdisc dropped (wireguard-go not reading the TUN fast enough). */
async function qdiscDrops(netns: string, dev: string): Promise<number> {
  const out = await mustRun('qdisc stats', 'tc', ['-n', netns, '-s', '-j', 'qdisc', 'show', 'dev', dev]);
  const j = JSON.parse(out) as { kind?: string; root?: boolean; drops?: number }[];
  return j.filter((q) => q.root).reduce((a, q) => a + (q.drops ?? 0), 0);
}

/** Counts underlay frames whose IPv4 header carries a pod address (= pod traffic in clear). */
class ClearCapture {
  private stderr = '';
  private constructor(private readonly child: ChildProcess) {
    child.stderr?.on('data', (d: Buffer) => (this.stderr += d.toString()));
  }

  static async start(netns: string): Promise<ClearCapture> {
    const child = spawn(
      'ip',
      ['netns', 'exec', netns, 'tcpdump', '-i', UNDERLAY_DEV, '-n', '-p', '-w', '/dev/null', 'ip and net 10.244.0.0/16'],
      { stdio: ['ignore', 'ignore', 'pipe'] },
    );
    const cap = new ClearCapture(child);
    for (let i = 0; i < 50 && !cap.stderr.includes('listening on'); i++) await sleep(50);
    if (!cap.stderr.includes('listening on')) {
      child.kill('SIGTERM');
      throw new BenchError('capture', `tcpdump did not start: ${cap.stderr.trim()}`);
    }
    return cap;
  }

  async stop(): Promise<number> {
    const done = new Promise<void>((r) => this.child.once('exit', () => r()));
    this.child.kill('SIGTERM');
    await Promise.race([done, sleep(5_000)]);
    const m = /(\d+) packets? captured/.exec(this.stderr);
    if (!m) throw new BenchError('capture', `no packet count from tcpdump: ${this.stderr.trim()}`);
    return Number(m[1]);
  }
}

// ---- iperf3 -----------------------------------------------------------------------------------

interface Iperf {
  bps: number;
  retransmits: number;
  senderCpu: number;
}

async function iperf(
  server: { netns: string; ip: string },
  client: { netns: string; ip: string },
  seconds: number,
): Promise<Iperf> {
  const srv = spawn('ip', ['netns', 'exec', server.netns, 'iperf3', '-s', '-1', '-B', server.ip, '-p', String(IPERF_PORT)], {
    stdio: 'ignore',
  });
  liveChildren.add(srv);
  const srvExit = new Promise<void>((r) => srv.once('exit', () => r()));
  try {
    // Wait until the server listens (ss inside its netns) instead of a fixed sleep.
    let listening = false;
    for (let i = 0; i < 60 && !listening; i++) {
      const r = await run('ip', ['netns', 'exec', server.netns, 'ss', '-Hltn', `sport = :${IPERF_PORT}`]);
      listening = r.code === 0 && r.stdout.trim() !== '';
      if (!listening) await sleep(50);
    }
    if (!listening) throw new BenchError('iperf3', `server in ${server.netns} did not listen on ${server.ip}:${IPERF_PORT}`);
    const out = await run(
      'ip',
      [
        'netns',
        'exec',
        client.netns,
        'iperf3',
        '-c',
        server.ip,
        '-B',
        client.ip,
        '-p',
        String(IPERF_PORT),
        '-t',
        String(seconds),
        '-O',
        '1',
        '-J',
      ],
      (seconds + 30) * 1000,
    );
    let j: {
      error?: string;
      end?: {
        sum_received?: { bits_per_second?: number };
        sum_sent?: { retransmits?: number };
        cpu_utilization_percent?: { host_total?: number };
      };
    };
    try {
      j = JSON.parse(out.stdout) as typeof j;
    } catch {
      throw new BenchError('iperf3', `client exited ${out.code} without JSON: ${out.stderr.trim()}`);
    }
    const bps = j.end?.sum_received?.bits_per_second;
    if (j.error || typeof bps !== 'number') throw new BenchError('iperf3', `client failed: ${j.error ?? 'no sum_received'}`);
    return { bps, retransmits: j.end?.sum_sent?.retransmits ?? 0, senderCpu: j.end?.cpu_utilization_percent?.host_total ?? 0 };
  } finally {
    if (srv.exitCode === null && srv.signalCode === null) srv.kill('SIGTERM');
    await Promise.race([srvExit, sleep(3_000)]);
    liveChildren.delete(srv);
  }
}

// ---- modes ------------------------------------------------------------------------------------

type Mode = 'bpf' | 'plain';

interface Saved {
  node: LabNode;
  config: number[];
  route: { dst: string; gateway?: string; dev: string };
}

/** Plain routing on both nodes: backend none in the config map + remote pod CIDR `dev veil_wg0`. */
async function enterPlain(nodes: readonly LabNode[]): Promise<Saved[]> {
  const saved: Saved[] = [];
  try {
    for (const node of nodes) {
      const remote = nodes.find((n) => n !== node);
      if (!remote) throw new BenchError('plain', 'needs two nodes');
      const config = await readConfigBytes(node.pinDir);
      if (backendOf(config) !== 1)
        throw new BenchError('plain', `${node.name}: config backend is ${backendOf(config)}, expected 1 (wireguard)`);
      const routes = JSON.parse(await mustRun('read route', 'ip', ['-n', node.netns, '-j', 'route', 'show', remote.podCIDR])) as {
        dst: string;
        gateway?: string;
        dev: string;
      }[];
      const route = routes[0];
      if (!route) throw new BenchError('plain', `${node.name}: no route to ${remote.podCIDR}`);
      saved.push({
        node,
        config,
        route: { dst: remote.podCIDR, dev: route.dev, ...(route.gateway ? { gateway: route.gateway } : {}) },
      });
      await writeConfigBytes(node.pinDir, [0, 0, 0, 0, ...config.slice(4)]);
      await mustRun('route into wg', 'ip', ['-n', node.netns, 'route', 'replace', remote.podCIDR, 'dev', WG_DEV]);
    }
  } catch (e) {
    await restore(saved);
    throw e;
  }
  return saved;
}

async function restore(saved: readonly Saved[]): Promise<void> {
  for (const s of saved) {
    const via = s.route.gateway ? ['via', s.route.gateway] : [];
    await run('ip', ['-n', s.node.netns, 'route', 'replace', s.route.dst, ...via, 'dev', s.route.dev]);
    // Restore only if nobody (the agent) changed the config in the meantime from what we wrote.
    const now = await readConfigBytes(s.node.pinDir).catch(() => undefined);
    if (now && backendOf(now) === 0) await writeConfigBytes(s.node.pinDir, s.config);
  }
}

// ---- rounds -----------------------------------------------------------------------------------

interface Round {
  mode: Mode | 'underlay';
  gbps: number;
  retransmits: number;
  senderCpu: number;
  redirectWg: number; // Δ packets on the sending node
  passNotReady: number;
  wgTxMB: number;
  /** wg tx bytes ÷ packets: > MTU means GSO super-packets reached the daemon's TUN. */
  wgTxAvgBytes: number;
  qdiscDrops: number; // Δ on the sending node's WireGuard device
  clearPackets: number;
  valid: boolean;
  why: string;
}

async function podRound(mode: Mode, nodes: readonly [LabNode, LabNode], seconds: number): Promise<Round> {
  const [a, b] = nodes;
  const client = a.pods[0];
  const server = b.pods[0];
  if (!client || !server) throw new BenchError('lab', 'needs one pod per node');
  const saved = mode === 'plain' ? await enterPlain(nodes) : [];
  cleanupSaved = saved;
  try {
    const c0 = await counters(a);
    const tx0 = await linkTx(a.netns, WG_DEV);
    const q0 = await qdiscDrops(a.netns, WG_DEV);
    const cap = await ClearCapture.start(a.netns);
    let clear = -1;
    // Stop the capture even when iperf3 fails; its count is only read on success.
    const r = await iperf(server, client, seconds).finally(() => cap.stop().then((n) => (clear = n)));
    const c1 = await counters(a);
    const tx1 = await linkTx(a.netns, WG_DEV);
    const q1 = await qdiscDrops(a.netns, WG_DEV);
    const d = (k: string) => (c1.get(k) ?? 0) - (c0.get(k) ?? 0);
    const redirectWg = d('redirect-wireguard');
    const passNotReady = d('pass-plaintext-not-ready');
    const wgTx = tx1.bytes - tx0.bytes;
    const wgPk = tx1.packets - tx0.packets;
    const sentBytes = (r.bps / 8) * seconds;
    const why: string[] = [];
    if (clear !== 0) why.push(`${clear} clear pod packets on ${UNDERLAY_DEV}`);
    if (wgTx < 0.9 * sentBytes) why.push(`wg tx ${(wgTx / 1e6).toFixed(1)} MB < 90% of ${(sentBytes / 1e6).toFixed(1)} MB`);
    if (mode === 'bpf' && (redirectWg === 0 || passNotReady > 50))
      why.push(`steering not BPF (redirect Δ${redirectWg}, pass-not-ready Δ${passNotReady})`);
    if (mode === 'plain' && (redirectWg > 50 || passNotReady === 0))
      why.push(`steering not plain (redirect Δ${redirectWg}, pass-not-ready Δ${passNotReady}) — agent reverted?`);
    return {
      mode,
      gbps: r.bps / 1e9,
      retransmits: r.retransmits,
      senderCpu: r.senderCpu,
      redirectWg,
      passNotReady,
      wgTxMB: wgTx / 1e6,
      wgTxAvgBytes: wgPk > 0 ? wgTx / wgPk : 0,
      qdiscDrops: q1 - q0,
      clearPackets: clear,
      valid: why.length === 0,
      why: why.join('; '),
    };
  } finally {
    if (mode === 'plain') await restore(saved);
    cleanupSaved = [];
  }
}

async function underlayRound(nodes: readonly [LabNode, LabNode], seconds: number): Promise<Round> {
  const [a, b] = nodes;
  const r = await iperf({ netns: b.netns, ip: b.underlayIP }, { netns: a.netns, ip: a.underlayIP }, seconds);
  return {
    mode: 'underlay',
    gbps: r.bps / 1e9,
    retransmits: r.retransmits,
    senderCpu: r.senderCpu,
    redirectWg: 0,
    passNotReady: 0,
    wgTxMB: 0,
    wgTxAvgBytes: 0,
    qdiscDrops: 0,
    clearPackets: 0,
    valid: true,
    why: '',
  };
}

// Two-sided 95% Student t critical values for df = 1…20 (beyond: ≈ 2.0).
const T975 = [
  12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.16, 2.145, 2.131, 2.12, 2.11, 2.101,
  2.093, 2.086,
];

/** Geometric mean of ratios with a 95% confidence interval (t on the log ratios). */
function ratioCI(ratios: readonly number[]): { gmean: number; lo: number; hi: number } | undefined {
  if (ratios.length < 2) return undefined;
  const logs = ratios.map(Math.log);
  const mean = logs.reduce((a, b) => a + b, 0) / logs.length;
  const sd = Math.sqrt(logs.reduce((a, b) => a + (b - mean) ** 2, 0) / (logs.length - 1));
  const half = (T975[logs.length - 2] ?? 2.0) * (sd / Math.sqrt(logs.length));
  return { gmean: Math.exp(mean), lo: Math.exp(mean - half), hi: Math.exp(mean + half) };
}

// ---- cleanup ----------------------------------------------------------------------------------

const liveChildren = new Set<ChildProcess>();
let cleanupSaved: Saved[] = [];
let labUp = false;
let cleaning: Promise<void> | undefined;

function cleanup(): Promise<void> {
  cleaning ??= (async () => {
    for (const c of liveChildren) if (c.exitCode === null) c.kill('SIGTERM');
    if (cleanupSaved.length) await restore(cleanupSaved).catch(() => undefined);
    if (labUp) {
      log('lab down');
      const r = await run(process.execPath, [VEIL, 'lab', 'down'], 120_000);
      if (r.code !== 0) log(`lab down exited ${r.code}: ${r.stderr.trim()}`);
      labUp = false;
    }
  })();
  return cleaning;
}

for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
  process.once(sig, () => {
    log(`${sig}: cleaning up`);
    void cleanup().finally(() => process.exit(130));
  });
}

// ---- main -------------------------------------------------------------------------------------

// ---- daemons ----------------------------------------------------------------------------------

interface Daemon {
  label: DaemonLabel;
  /** The executable the agents must run. */
  bin: string;
}

function daemons(): Daemon[] {
  const want = (process.env.VEIL_BENCH_DAEMONS ?? 'debian,built').split(',').map((x) => x.trim());
  const out: Daemon[] = [];
  for (const w of want) {
    if (w === 'debian') {
      if (!existsSync('/usr/bin/wireguard-go'))
        throw new BenchError('setup', "Debian's wireguard-go is missing: apt-get install wireguard-go");
      out.push({ label: 'debian', bin: '/usr/bin/wireguard-go' });
    } else if (w === 'built') {
      let bin = process.env.VEIL_WIREGUARD_GO;
      if (!bin) {
        const r = spawnSyncText('bash', [join(REPO_DIR, 'tools/wireguard-go/build.sh')]);
        if (r === undefined)
          throw new BenchError('setup', 'tools/wireguard-go/build.sh failed (see above); VEIL_BENCH_DAEMONS=debian skips it');
        bin = r;
      }
      out.push({ label: 'built', bin });
    } else throw new BenchError('options', `VEIL_BENCH_DAEMONS: unknown daemon ${JSON.stringify(w)} (debian, built)`);
  }
  return out;
}

function spawnSyncText(cmd: string, args: string[]): string | undefined {
  const r = execFileSync(cmd, args, { stdio: ['ignore', 'pipe', 'inherit'] });
  const line = r.toString().trim().split('\n').pop();
  return line && existsSync(line) ? line : undefined;
}

/** A directory holding only `wireguard-go` → the daemon, to put first on the agents' PATH. */
function pathDirFor(d: Daemon): string {
  const dir = mkdtempSync(join(tmpdir(), 'veil-bench-wg-'));
  symlinkSync(d.bin, join(dir, 'wireguard-go'));
  return dir;
}

/**
 * Checks that each node runs `d.bin`: every process in the node's network namespace whose
 * executable is named wireguard-go (or is one of the two daemons) must be `d.bin`, and there must
 * be one.
 */
async function checkDaemon(nodes: readonly LabNode[], d: Daemon): Promise<void> {
  const want = realpathSync(d.bin);
  const known = new Set([want, realpathSync('/usr/bin/wireguard-go')]);
  for (const node of nodes) {
    const ns = `net:[${statSync(`/run/netns/${node.netns}`).ino}]`;
    const exes: string[] = [];
    for (const pid of readdirSync('/proc')) {
      if (!/^\d+$/.test(pid)) continue;
      try {
        if (readlinkSync(`/proc/${pid}/ns/net`) !== ns) continue;
        const exe = readlinkSync(`/proc/${pid}/exe`);
        if (known.has(exe) || exe.endsWith('/wireguard-go')) exes.push(exe);
      } catch {
        // gone, or not ours to read
      }
    }
    if (exes.length === 0) throw new BenchError('daemon', `${node.name}: no wireguard-go runs in ${node.netns}`);
    const other = exes.find((e) => e !== want);
    if (other) throw new BenchError('daemon', `${node.name}: runs ${other}, expected ${want} (${d.label})`);
  }
}

interface DaemonResult {
  daemon: Daemon;
  version: string;
  rounds: Round[];
  bpf: number[];
  plain: number[];
  underlay: number[];
  ratio: number;
  pairRatios: number[];
  invalid: number;
}

async function measureDaemon(d: Daemon, rounds: number, seconds: number): Promise<DaemonResult> {
  const version = (await run(d.bin, ['--version'])).stdout.split('\n')[0]?.trim() ?? '?';
  log(`[${d.label}] ${d.bin} (${version}): lab up (2 nodes × 1 pod, wireguard), ${rounds} rounds per mode × ${seconds} s`);
  const pathDir = pathDirFor(d);
  try {
    labUp = true;
    const env = { ...process.env, PATH: `${pathDir}:${process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin'}` };
    // `lab up` proves encryption with a capture; on a loaded machine the kernel may drop capture
    // packets and the lab refuses itself. Up to two more tries.
    let up: RunResult = { code: -1, stdout: '', stderr: '' };
    // The built daemon's UDP GSO batches fail the lab's capture check on the veth underlay;
    // acceptLabUp says when that is the only failure (each round checks for clear text anyway).
    let accepted = false;
    for (let attempt = 1; attempt <= 3 && up.code !== 0 && !accepted; attempt++) {
      if (attempt > 1) log(`[${d.label}] lab up failed (${up.stderr.trim().split('\n').slice(-2).join(' | ')}); once more`);
      up = await run(
        process.execPath,
        [VEIL, 'lab', 'up', '--nodes', '2', '--pods-per-node', '1', '--backend', 'wireguard', '--keep', '--json'],
        180_000,
        env,
      );
      if (up.code !== 0) {
        const accept = acceptLabUp(d.label, up.stdout);
        accepted = accept.ok;
        if (accepted) log(`[${d.label}] lab up: accepted despite "${accept.why}" (UDP GSO batches on the veth underlay)`);
      }
    }
    if (up.code !== 0 && !accepted)
      throw new BenchError('lab up', `exited ${up.code}: ${up.stderr.trim().split('\n').slice(-4).join(' | ')}`);
    const state = readLabState();
    const nodes = [state.nodes[0], state.nodes[1]] as [LabNode, LabNode];
    await checkDaemon(nodes, d);

    log(`[${d.label}] warm-up (BPF, 2 s)`);
    await iperf(nodes[1].pods[0] as LabPod, nodes[0].pods[0] as LabPod, 2);

    // ABBA order: B P P B B P P B …
    const order: Mode[] = [];
    for (let i = 0; i < rounds; i++) order.push(...((i % 2 === 0 ? ['bpf', 'plain'] : ['plain', 'bpf']) as Mode[]));
    const results: Round[] = [];
    for (const [i, mode] of order.entries()) {
      const r = await podRound(mode, nodes, seconds);
      results.push(r);
      log(
        `[${d.label}] round ${i + 1}/${order.length} ${mode.padEnd(5)} ${r.gbps.toFixed(3)} Gbit/s  retr ${r.retransmits}  wg tx avg ${r.wgTxAvgBytes.toFixed(0)} B  ${r.valid ? 'ok' : `INVALID: ${r.why}`}`,
      );
    }
    log(`[${d.label}] underlay baseline (node to node, no WireGuard)`);
    results.push(await underlayRound(nodes, seconds));
    const valid = (m: Round['mode']) => results.filter((r) => r.mode === m && r.valid).map((r) => r.gbps);
    const pairRatios: number[] = [];
    for (let i = 0; i + 1 < order.length; i += 2) {
      const x = results[i];
      const y = results[i + 1];
      if (!x || !y || !x.valid || !y.valid) continue;
      const [rb, rp] = x.mode === 'bpf' ? [x, y] : [y, x];
      pairRatios.push(rb.gbps / rp.gbps);
    }
    const bpf = valid('bpf');
    const plain = valid('plain');
    return {
      daemon: d,
      version,
      rounds: results,
      bpf,
      plain,
      underlay: valid('underlay'),
      ratio: median(bpf) / median(plain),
      pairRatios,
      invalid: results.filter((r) => !r.valid).length,
    };
  } finally {
    await cleanup();
    cleaning = undefined;
    rmSync(pathDir, { recursive: true, force: true });
  }
}

function report(results: readonly DaemonResult[], seconds: number, load: [number, number]): string[] {
  const lines: string[] = [];
  lines.push('');
  lines.push(`Veil throughput: pod → pod across nodes, 2-node lab, wireguard-go; iperf3 TCP ${seconds} s/round (1 s omitted)`);
  for (const res of results) {
    lines.push('');
    lines.push(`[${res.daemon.label}] ${res.daemon.bin} (${res.version})`);
    lines.push(
      'round  mode      Gbit/s  retrans  snd CPU%  redirect-wg Δpk  pass-not-ready Δpk  wg tx MB  wg tx avg B  wg qdisc drops  clear pkts  check',
    );
    res.rounds.forEach((r, i) => {
      const u = r.mode === 'underlay';
      const c = (x: string, w: number) => (u ? '-' : x).padStart(w);
      lines.push(
        `${String(i + 1).padStart(5)}  ${r.mode.padEnd(8)} ${r.gbps.toFixed(3).padStart(7)}  ${String(r.retransmits).padStart(7)}  ${r.senderCpu.toFixed(0).padStart(8)}  ` +
          `${c(String(r.redirectWg), 15)}  ${c(String(r.passNotReady), 18)}  ${c(r.wgTxMB.toFixed(1), 8)}  ${c(r.wgTxAvgBytes.toFixed(0), 11)}  ${c(String(r.qdiscDrops), 14)}  ${c(String(r.clearPackets), 10)}  ${r.valid ? 'ok' : r.why}`,
      );
    });
    const fmt = (xs: number[]) =>
      `median ${median(xs).toFixed(3)}  min ${Math.min(...xs).toFixed(3)}  max ${Math.max(...xs).toFixed(3)}  (n=${xs.length})`;
    lines.push(`BPF steering (bpf_redirect → veil_wg0)      Gbit/s ${fmt(res.bpf)}`);
    lines.push(`plain routing (route dev veil_wg0)          Gbit/s ${fmt(res.plain)}`);
    lines.push(`underlay only (node → node, no WireGuard)   Gbit/s ${fmt(res.underlay)}`);
    lines.push(
      `ratio BPF/plain (median of ${res.pairRatios.length} pairs) ${median(res.pairRatios).toFixed(3)}   pairs: ${res.pairRatios.map((x) => x.toFixed(3)).join(' ')}`,
    );
    const ci = ratioCI(res.pairRatios);
    if (ci)
      lines.push(
        `ratio BPF/plain (geometric mean of pairs) ${ci.gmean.toFixed(3)}, 95% CI [${ci.lo.toFixed(3)}, ${ci.hi.toFixed(3)}]` +
          (ci.lo <= 1 && ci.hi >= 1 ? ' — includes 1.0: no difference measurable at this noise level' : ''),
      );
    if (res.invalid) lines.push(`${res.invalid} round(s) INVALID (excluded): see the check column`);
  }
  lines.push(
    `machine: load average (1 min) ${load[0].toFixed(2)} at start, ${load[1].toFixed(2)} at end; 2 cores shared with other work → expect noise`,
  );
  return lines;
}

async function main(): Promise<number> {
  const rounds = intEnv('VEIL_BENCH_ROUNDS', 3, 3);
  const seconds = intEnv('VEIL_BENCH_SECONDS', 5, 2);
  if (!existsSync(VEIL)) throw new BenchError('setup', `${VEIL} is missing: npm run build -w @veil/cli`);
  // `lab up` replaces any running lab; never clobber one somebody else is using.
  if (existsSync(join(LAB_DIR, 'state.json')) && process.env.VEIL_BENCH_REPLACE_LAB !== '1') {
    throw new BenchError(
      'setup',
      `a lab is already running (${LAB_DIR}/state.json); \`veil lab down\` it or set VEIL_BENCH_REPLACE_LAB=1`,
    );
  }
  const ds = daemons();
  const load0 = loadavg()[0] ?? 0;
  const results: DaemonResult[] = [];
  const failed = new Map<DaemonLabel, string>();
  for (const d of ds) {
    try {
      results.push(await measureDaemon(d, rounds, seconds));
    } catch (e) {
      // One daemon's failed lab must not hide the other's rows; its own rows say SKIPPED, why.
      const why = e instanceof Error ? `${e.name}: ${e.message}` : String(e);
      log(`[${d.label}] failed: ${why}`);
      failed.set(d.label, why);
    }
  }
  const load1 = loadavg()[0] ?? 0;
  process.stdout.write(report(results, seconds, [load0, load1]).join('\n') + '\n');

  const outFile = join(PKG_DIR, 'dist-bench', 'throughput-result.json');
  mkdirSync(dirname(outFile), { recursive: true });
  writeFileSync(
    outFile,
    JSON.stringify(
      {
        at: new Date().toISOString(),
        seconds,
        daemons: results.map((r) => ({
          ...r,
          medians: { bpf: median(r.bpf), plain: median(r.plain), underlay: median(r.underlay) },
          pairRatioCI: ratioCI(r.pairRatios) ?? null,
        })),
        load: [load0, load1],
      },
      null,
      2,
    ) + '\n',
  );
  log(`results: ${outFile}`);
  recordThroughputRows(
    results.map((r) => ({ label: r.daemon.label, bpf: r.bpf, plain: r.plain, underlay: r.underlay })),
    failed,
  );
  const ok = failed.size === 0 && results.every((r) => r.invalid === 0 && r.bpf.length >= 3 && r.plain.length >= 3);
  return ok ? 0 : 1;
}

main()
  .then(async (code) => {
    await cleanup();
    process.exitCode = code;
  })
  .catch(async (e: unknown) => {
    const why = e instanceof Error ? `${e.name}: ${e.message}` : String(e);
    log(`failed: ${why}`);
    // Nothing measured: every row still shows, SKIPPED with the reason.
    recordThroughputRows(
      [],
      new Map<DaemonLabel, string>([
        ['debian', why],
        ['built', why],
      ]),
    );
    await cleanup();
    process.exitCode = 1;
  });
