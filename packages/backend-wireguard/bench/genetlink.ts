// Kernel-lane benchmark: configure N peers on a fresh kernel WireGuard device in one call through
// WireGuardClient (generic netlink) vs `wg setconf` of the same configuration and vs wgctrl-go
// (tools/go-bench, the library Cilium uses; it finds the device before its clock starts), in the
// same guest. Sizes: WG_BENCH_PEERS (default 1000,5000). Ratios go to the bench report.
// Run with `npm run bench:kernel -w @veil/backend-wireguard` (boots one VM). Reports ratios, not absolute times:
// the guest is emulated (TCG) and the host is shared.
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
// The kernel driver's own files, not the package entry: the guest needs no DI or agent-core.
import { encodeSetDevice } from '../src/wgclient/kernel/codec.js';
import { WireGuardClient } from '../src/wgclient/kernel/genl.js';
import { Key } from '../src/wgtypes/key.js';
import type { DeviceConfig, PeerConfig } from '../src/wgtypes/types.js';
import { recordRatio, recordSkipped } from '@veil/test-utils/bench-report';
import { GO_BENCH_MISSING, goBenchBinary, runGoBench } from '@veil/test-utils/go-bench';

const gc = (globalThis as { gc?: () => void }).gc;
const SIZES = (process.env.WG_BENCH_PEERS ?? '1000,5000').split(',').map(Number);
const ROUNDS = Number(process.env.WG_BENCH_ROUNDS ?? 3);
/** Device names stay unique across sizes: devices are left to the namespace's teardown. */
let dev = 0;
const NS = `veilbench-wg-${process.pid}`;

function ip(args: string[]): void {
  execFileSync('ip', args, { stdio: 'inherit' });
}

function peerSet(n: number): PeerConfig[] {
  return Array.from({ length: n }, (_, i) => ({
    // The kernel does not check that a peer key is a curve point; random bytes keep the setup fast.
    publicKey: Key.fromBytes(randomBytes(32)),
    endpoint: { address: `198.18.${i >> 8}.${i & 0xff}`, port: 51820 },
    persistentKeepalive: 25,
    allowedIPs: [`10.${(i >> 8) & 0xff}.${i & 0xff}.0/24`],
  }));
}

/** The same configuration as a wg(8) config file. */
function toWgConf(config: DeviceConfig): string {
  const lines = ['[Interface]'];
  if (config.privateKey) lines.push(`PrivateKey = ${config.privateKey.toBase64()}`);
  if (config.listenPort !== undefined) lines.push(`ListenPort = ${config.listenPort}`);
  for (const p of config.peers ?? []) {
    lines.push('', '[Peer]', `PublicKey = ${p.publicKey.toBase64()}`);
    if (p.endpoint) lines.push(`Endpoint = ${p.endpoint.address}:${p.endpoint.port}`);
    if (p.persistentKeepalive !== undefined) lines.push(`PersistentKeepalive = ${p.persistentKeepalive}`);
    if (p.allowedIPs?.length) lines.push(`AllowedIPs = ${p.allowedIPs.join(', ')}`);
  }
  return `${lines.join('\n')}\n`;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? (s[m] as number) : ((s[m - 1] as number) + (s[m] as number)) / 2;
}

/** The same configuration as veil-gobench's wg-configure JSON. */
function toGoConf(config: DeviceConfig): string {
  return JSON.stringify({
    ...(config.privateKey ? { privateKey: config.privateKey.toBase64() } : {}),
    ...(config.listenPort !== undefined ? { listenPort: config.listenPort } : {}),
    replacePeers: config.replacePeers ?? false,
    peers: (config.peers ?? []).map((p) => ({
      publicKey: p.publicKey.toBase64(),
      ...(p.endpoint ? { endpoint: `${p.endpoint.address}:${p.endpoint.port}` } : {}),
      ...(p.persistentKeepalive !== undefined ? { persistentKeepalive: p.persistentKeepalive } : {}),
      allowedIPs: p.allowedIPs ?? [],
    })),
  });
}

/** Runs inside the benchmark namespace, so `wg` needs no `ip netns exec` wrapper. */
async function measure(): Promise<void> {
  for (const n of SIZES) await measureSize(n);
}

async function measureSize(PEERS: number): Promise<void> {
  const dir = mkdtempSync(join(process.env.VEIL_RESULTS_DIR ?? '/tmp', 'wgbench-'));
  // A fresh device per measurement: removing thousands of peers is slow on 6.1 (one RCU grace
  // period per peer); the devices go away with the namespace at the end.
  const newDevice = (): string => {
    const name = `wgb${dev++}`;
    ip(['link', 'add', name, 'type', 'wireguard']);
    return name;
  };
  const client = await WireGuardClient.open();
  try {
    const peers = peerSet(PEERS);
    const variants: { label: string; config: DeviceConfig }[] = [
      { label: 'peers only', config: { listenPort: 51820, replacePeers: true, peers } },
      // With a private key the kernel precomputes one X25519 per peer; both sides pay it.
      { label: 'with private key', config: { privateKey: Key.generatePrivate(), listenPort: 51821, replacePeers: true, peers } },
    ];
    console.log(
      `WireGuard configure benchmark: ${PEERS} peers, ${ROUNDS} rounds, kernel ${execFileSync('uname', ['-r'], { encoding: 'utf8' }).trim()}`,
    );
    for (const { label, config } of variants) {
      const conf = join(dir, `${label.replace(/\W+/g, '-')}.conf`);
      writeFileSync(conf, toWgConf(config), { mode: 0o600 });
      const goConf = join(dir, `${label.replace(/\W+/g, '-')}.json`);
      writeFileSync(goConf, toGoConf(config), { mode: 0o600 });
      const haveGo = goBenchBinary() !== undefined;
      const genl: number[] = [];
      const wg: number[] = [];
      const wgctrl: number[] = [];
      // Warm-up (JIT of the encoder and the socket path, as in a long-running agent; wg's binary
      // in the page cache) is not measured.
      for (let i = 0; i < 10; i++) encodeSetDevice('warmup', config);
      await client.configureDevice(newDevice(), { ...config, peers: peers.slice(0, 100) });
      execFileSync('wg', ['show', 'wgb0']);
      for (let r = 0; r < ROUNDS; r++) {
        // Alternate the order so drift on the shared machine hits both sides alike.
        const sides = haveGo ? ['genl', 'wg', 'wgctrl'] : ['genl', 'wg'];
        for (const side of r % 2 ? sides.reverse() : sides) {
          const name = newDevice();
          // Start each measurement with a collected heap, as the wg process starts with a fresh one.
          gc?.();
          if (side === 'wgctrl') {
            wgctrl.push(runGoBench(['wg-configure', '--device', name, '--config', goConf]).ms);
          } else {
            const t0 = performance.now();
            if (side === 'genl') await client.configureDevice(name, config);
            else execFileSync('wg', ['setconf', name, conf]);
            const ms = performance.now() - t0;
            (side === 'genl' ? genl : wg).push(ms);
          }
          const got = await client.getDevice(name);
          if (got.peers.length !== PEERS)
            throw new Error(`${side}: device ${name} has ${got.peers.length} peers, expected ${PEERS}`);
        }
      }
      const e0 = performance.now();
      const messages = encodeSetDevice('wgb', config).length;
      const encodeMs = performance.now() - e0;
      const g = median(genl);
      const w = median(wg);
      const fmt = (xs: number[]): string => xs.map((x) => x.toFixed(0)).join('/');
      console.log(
        `  ${label}: genetlink ${fmt(genl)} ms (${messages} messages, encoding alone ${encodeMs.toFixed(0)} ms); wg setconf ${fmt(wg)} ms`,
      );
      console.log(
        `  ${label.padEnd(17)} genetlink median ${g.toFixed(0)} ms, wg setconf median ${w.toFixed(0)} ms: ` +
          `ratio wg/genetlink = ${(w / g).toFixed(2)} (>= 1.00 means at least as fast as wg)`,
      );
      const nn = PEERS.toLocaleString('en-US');
      const detail = `median of ${ROUNDS}, kernel ${execFileSync('uname', ['-r'], { encoding: 'utf8' }).trim()}`;
      recordRatio({
        bench: 'wg-peers',
        metric: `${nn} peers, ${label} (kernel genetlink): WgClient vs wg setconf`,
        oursMs: g,
        baselineMs: w,
        detail,
      });
      const goMetric = `${nn} peers, ${label} (kernel genetlink): WgClient vs wgctrl-go`;
      if (haveGo) {
        const c = median(wgctrl);
        console.log(
          `  ${label.padEnd(17)} wgctrl-go ${fmt(wgctrl)} ms, median ${c.toFixed(0)} ms: ratio wgctrl/genetlink = ${(c / g).toFixed(2)}`,
        );
        recordRatio({ bench: 'wg-peers', metric: goMetric, oursMs: g, baselineMs: c, detail });
      } else {
        recordSkipped({
          bench: 'wg-peers',
          metric: goMetric,
          target: { op: '>=', value: 1, unit: '×' },
          reason: GO_BENCH_MISSING,
        });
      }
    }
  } finally {
    client.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

if (process.env.WG_BENCH_NS) {
  measure().catch((e: unknown) => {
    console.error(e);
    process.exit(1);
  });
} else {
  // Re-run this script inside a namespace of its own and remove the namespace afterwards.
  ip(['netns', 'add', NS]);
  try {
    execFileSync('ip', ['netns', 'exec', NS, process.execPath, '--expose-gc', fileURLToPath(import.meta.url)], {
      stdio: 'inherit',
      env: { ...process.env, WG_BENCH_NS: NS },
    });
  } catch {
    process.exitCode = 1;
  } finally {
    ip(['netns', 'del', NS]);
  }
}
