// Benchmark: programming peers into a wireguard-go device through Veil's userspace driver vs
// `wg setconf` / `wg syncconf` and wgctrl-go (tools/go-bench, the library Cilium uses; it connects
// and finds the device before its clock starts) on the same device, in the same run (ratios, not
// absolute times: the machine is shared and noisy). Full-mesh ratios go to the bench report.
// Needs root, wireguard-go and wg.
//
//   npm run bench -w @veil/backend-wireguard
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import {
  Key,
  PeerReconciler,
  UserspaceDriver,
  WgClient,
  WireGuardGoSupervisor,
  type DesiredPeer,
  type PeerConfig,
  parseGet,
} from '../src/index.js';
import { createConnection } from 'node:net';
import { readFileSync } from 'node:fs';
import { recordRatio, recordSkipped } from '@veil/test-utils/bench-report';
import { GO_BENCH_MISSING, goBenchBinary, parseGoBenchOutput } from '@veil/test-utils/go-bench';

const DEV = 'wgbbench0';
const NS = `veilbench-wgb-${process.pid}`;
const SIZES = (process.env.WGB_BENCH_SIZES ?? '1000,5000').split(',').map(Number);
const REPS = Number(process.env.WGB_BENCH_REPS ?? 3);

const tmp = mkdtempSync(join(tmpdir(), 'wgb-bench-'));
const sockDir = join(tmp, 'sock');

/**
 * A shell living in the daemon's netns with the same private bind mount over /run/wireguard, so
 * `wg` finds the socket. Commands go through stdin; each `wg` run still pays its own fork+exec
 * (that is how wg is used), but not the ip-netns-exec/unshare/mount set-up.
 */
class WgShell {
  private readonly proc: ChildProcess;
  private buf = '';
  private waiter: ((status: number) => void) | undefined;

  constructor() {
    this.proc = spawn(
      'ip',
      [
        'netns',
        'exec',
        NS,
        'unshare',
        '--mount',
        '--propagation',
        'private',
        '--',
        'sh',
        '-c',
        'mount --bind "$1" /run/wireguard && exec sh',
        'sh',
        sockDir,
      ],
      {
        stdio: ['pipe', 'pipe', 'inherit'],
      },
    );
    this.proc.stdout!.setEncoding('utf8');
    this.proc.stdout!.on('data', (d: string) => {
      this.buf += d;
      const m = /__done (\d+)\n/.exec(this.buf);
      if (m && this.waiter) {
        this.buf = '';
        const w = this.waiter;
        this.waiter = undefined;
        w(Number(m[1]));
      }
    });
  }

  run(cmd: string, out = '/dev/null'): Promise<void> {
    return new Promise((resolve, reject) => {
      this.waiter = (status) => (status === 0 ? resolve() : reject(new Error(`${cmd}: exit ${status}`)));
      this.proc.stdin!.write(`${cmd} >${out}; echo __done $?\n`);
    });
  }

  close(): void {
    this.proc.stdin!.end();
  }
}

/** The raw get=1 reply text (to time the parser alone). */
function rawGet(): Promise<string> {
  return new Promise((resolve, reject) => {
    let buf = '';
    const s = createConnection({ path: join(sockDir, `${DEV}.sock`) });
    s.setEncoding('utf8');
    s.on('connect', () => s.write('get=1\n\n'));
    s.on('data', (d: string) => {
      buf += d;
      if (buf.endsWith('\n\n')) {
        s.destroy();
        resolve(buf);
      }
    });
    s.on('error', reject);
  });
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] as number;
}

async function timeIt(fn: () => Promise<void> | void): Promise<number> {
  const t0 = performance.now();
  await fn();
  return performance.now() - t0;
}

function makePeers(n: number): DesiredPeer[] {
  return Array.from({ length: n }, (_, i) => ({
    publicKey: Key.generatePrivate().publicKey(),
    endpoint: { address: `10.${(i >> 16) & 0xff}.${(i >> 8) & 0xff}.${i & 0xff}`, port: 51871 },
    allowedIPs: [`100.${(i >> 8) & 0xff}.${i & 0xff}.0/24`],
  }));
}

function wgConf(priv: Key, port: number, peers: DesiredPeer[]): string {
  const out = ['[Interface]', `PrivateKey = ${priv.toBase64()}`, `ListenPort = ${port}`, ''];
  for (const p of peers) {
    out.push('[Peer]', `PublicKey = ${p.publicKey.toBase64()}`, `AllowedIPs = ${p.allowedIPs.join(', ')}`);
    if (p.endpoint) out.push(`Endpoint = ${p.endpoint.address}:${p.endpoint.port}`);
    out.push('');
  }
  return out.join('\n');
}

function toConfigs(peers: DesiredPeer[]): PeerConfig[] {
  return peers.map((p) => ({ publicKey: p.publicKey, endpoint: p.endpoint!, allowedIPs: [...p.allowedIPs] }));
}

async function main(): Promise<void> {
  execFileSync('ip', ['netns', 'add', NS]);
  const sup = new WireGuardGoSupervisor({ device: DEV, socketDir: sockDir, netns: NS });
  try {
    await sup.start();
    const client = WgClient.fromDrivers([new UserspaceDriver({ socketDir: sockDir, timeoutMs: 120_000 })]);
    const priv = Key.generatePrivate();
    const port = 51871;
    await client.configureDevice(DEV, { privateKey: priv, listenPort: port });

    const sh = new WgShell();
    await sh.run('true');
    const wg = (args: string[]) => sh.run(['wg', ...args].join(' '));
    const goBin = goBenchBinary();
    const goOut = join(tmp, 'go-out.json');
    /** wgctrl-go in the same netns and mount namespace as `wg` (its own clock: ConfigureDevice alone). */
    const wgctrl = async (config: string): Promise<number> => {
      await sh.run(`${goBin} wg-configure --device ${DEV} --config ${config}`, goOut);
      return parseGoBenchOutput(readFileSync(goOut, 'utf8')).ms;
    };

    for (const n of SIZES) {
      const peers = makePeers(n);
      const confPath = join(tmp, `full-${n}.conf`);
      writeFileSync(confPath, wgConf(priv, port, peers), { mode: 0o600 });
      const goConf = join(tmp, `wgctrl-${n}.json`);
      writeFileSync(
        goConf,
        JSON.stringify({
          replacePeers: true,
          peers: peers.map((p) => ({
            publicKey: p.publicKey.toBase64(),
            endpoint: `${p.endpoint!.address}:${p.endpoint!.port}`,
            allowedIPs: p.allowedIPs,
          })),
        }),
        { mode: 0o600 },
      );
      const veil: number[] = [];
      const wgs: number[] = [];
      const gos: number[] = [];
      for (let r = 0; r < REPS; r++) {
        // Start each measurement from an empty device so every side programs the full mesh, and
        // rotate the order: wireguard-go keeps tearing the removed peers down in the background
        // for a while, and that should not always land on the same side.
        const sides = goBin ? ['veil', 'wg', 'go'] : ['veil', 'wg'];
        for (let k = 0; k < r % sides.length; k++) sides.push(sides.shift()!);
        for (const side of sides) {
          await client.configureDevice(DEV, { replacePeers: true });
          if (side === 'veil')
            veil.push(await timeIt(() => client.configureDevice(DEV, { replacePeers: true, peers: toConfigs(peers) })));
          else if (side === 'wg') wgs.push(await timeIt(() => wg(['setconf', DEV, confPath])));
          else gos.push(await wgctrl(goConf));
          const got = (await client.device(DEV)).peers.length;
          if (got !== n) throw new Error(`${side} left ${got} peers, expected ${n}`);
        }
      }
      const dev = await client.device(DEV);
      if (dev.peers.length !== n) throw new Error(`device has ${dev.peers.length} peers, expected ${n}`);
      const v = median(veil);
      const w = median(wgs);
      console.log(
        `full mesh ${n} peers: veil userspace driver ${v.toFixed(1)} ms | wg setconf ${w.toFixed(1)} ms | ratio wg/veil ${(w / v).toFixed(2)}x`,
      );
      const nn = n.toLocaleString('en-US');
      const detail = `median of ${REPS}`;
      recordRatio({
        bench: 'wg-peers',
        metric: `${nn} peers (wireguard-go UAPI): WgClient vs wg setconf`,
        oursMs: v,
        baselineMs: w,
        detail,
      });
      const goMetric = `${nn} peers (wireguard-go UAPI): WgClient vs wgctrl-go`;
      if (goBin) {
        const g = median(gos);
        console.log(`full mesh ${n} peers: wgctrl-go ${g.toFixed(1)} ms | ratio wgctrl/veil ${(g / v).toFixed(2)}x`);
        recordRatio({ bench: 'wg-peers', metric: goMetric, oursMs: v, baselineMs: g, detail });
      } else {
        recordSkipped({
          bench: 'wg-peers',
          metric: goMetric,
          target: { op: '>=', value: 1, unit: '×' },
          reason: GO_BENCH_MISSING,
        });
      }

      // One-peer change on a device holding n peers.
      await client.configureDevice(DEV, { replacePeers: true, peers: toConfigs(peers) });
      const rec = new PeerReconciler(client, DEV);
      await rec.sync(peers);
      const upserts: number[] = [];
      const syncs: number[] = [];
      const syncconfs: number[] = [];
      const rounds = Math.max(REPS, 7);
      // (a) one event through the reconciler: diff against its cache + a one-peer UAPI set.
      for (let r = 0; r < rounds; r++) {
        const i = (r * 7919) % n;
        const changed = { ...peers[i]!, allowedIPs: [`198.18.${r}.0/24`] };
        peers[i] = changed;
        upserts.push(await timeIt(async () => void (await rec.upsert(changed))));
      }
      // (b) the same through a full resync: read all n peers, diff, write one.
      for (let r = 0; r < rounds; r++) {
        const j = (r * 104729 + 1) % n;
        peers[j] = { ...peers[j]!, allowedIPs: [`198.19.${r}.0/24`] };
        syncs.push(await timeIt(async () => void (await rec.sync(peers))));
      }
      // (c) wg syncconf with a config file differing in one peer (wg reads, diffs and writes).
      for (let r = 0; r < rounds; r++) {
        const k = (r * 1299709 + 2) % n;
        peers[k] = { ...peers[k]!, allowedIPs: [`198.20.${r}.0/24`] };
        const p = join(tmp, `sync-${n}-${r}.conf`);
        writeFileSync(p, wgConf(priv, port, peers), { mode: 0o600 });
        syncconfs.push(await timeIt(() => wg(['syncconf', DEV, p])));
      }
      const check = await client.device(DEV);
      const want = new Map(peers.map((p) => [p.publicKey.toBase64(), p.allowedIPs.join(',')]));
      const bad = check.peers.filter((p) => want.get(p.publicKey.toBase64()) !== p.allowedIPs.join(','));
      if (check.peers.length !== n || bad.length > 0) throw new Error(`device drifted: ${bad.length} peers differ`);
      // Parser cost alone on the n-peer reply (part of every full read).
      const replyText = await rawGet();
      const parse = median(await Promise.all([0, 1, 2].map(() => timeIt(() => void parseGet(replyText, { name: DEV })))));
      console.log(`parseGet of a ${n}-peer reply (${(replyText.length / 1024).toFixed(0)} KiB): ${parse.toFixed(1)} ms`);
      const u = median(upserts);
      const s = median(syncs);
      const sc = median(syncconfs);
      console.log(
        `one-peer change at ${n}: veil diff+driver (cached) ${u.toFixed(2)} ms [target < 5 ms: ${u < 5 ? 'met' : 'MISSED'}] | ` +
          `veil full sync (read ${n} + diff + write 1) ${s.toFixed(1)} ms | wg syncconf ${sc.toFixed(1)} ms | ` +
          `ratio syncconf/cached ${(sc / u).toFixed(1)}x, syncconf/full-sync ${(sc / s).toFixed(2)}x`,
      );
    }
    client.close();
    sh.close();
  } finally {
    await sup.stop();
    execFileSync('ip', ['netns', 'del', NS]);
    rmSync(tmp, { recursive: true, force: true });
  }
}

await main();
