// Kernel-lane benchmark: configure N peers on a fresh kernel WireGuard device in one call through
// WireGuardClient (generic netlink) vs `wg setconf` of the same configuration, in the same guest.
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

const gc = (globalThis as { gc?: () => void }).gc;
const PEERS = Number(process.env.WG_BENCH_PEERS ?? 5000);
const ROUNDS = Number(process.env.WG_BENCH_ROUNDS ?? 5);
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

/** Runs inside the benchmark namespace, so `wg` needs no `ip netns exec` wrapper. */
async function measure(): Promise<void> {
  const dir = mkdtempSync(join(process.env.VEIL_RESULTS_DIR ?? '/tmp', 'wgbench-'));
  let dev = 0;
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
      const genl: number[] = [];
      const wg: number[] = [];
      // Warm-up (JIT of the encoder and the socket path, as in a long-running agent; wg's binary
      // in the page cache) is not measured.
      for (let i = 0; i < 10; i++) encodeSetDevice('warmup', config);
      await client.configureDevice(newDevice(), { ...config, peers: peers.slice(0, 100) });
      execFileSync('wg', ['show', 'wgb0']);
      for (let r = 0; r < ROUNDS; r++) {
        // Alternate the order so drift on the shared machine hits both sides alike.
        for (const side of r % 2 ? ['wg', 'genl'] : ['genl', 'wg']) {
          const name = newDevice();
          // Start each measurement with a collected heap, as the wg process starts with a fresh one.
          gc?.();
          const t0 = performance.now();
          if (side === 'genl') await client.configureDevice(name, config);
          else execFileSync('wg', ['setconf', name, conf]);
          const ms = performance.now() - t0;
          (side === 'genl' ? genl : wg).push(ms);
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
