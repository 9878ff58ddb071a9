/**
 * `veil lab chaos`: disturbs a running lab while continuous pings run between pods on different
 * nodes, and watches the underlay: agents killed (SIGTERM and SIGKILL) and restarted, the API
 * server restarted, nodes added and deleted. A restart must not interrupt traffic (kernel state
 * stays), and nothing may ever cross the underlay in clear.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { LabError } from './errors.js';
import { pidAlive, pidMatches, sleep, spawnDetached, terminate } from './exec.js';
import { analyzeCapture, type CaptureAnalysis } from './pcap.js';
import { UNDERLAY_NETNS, readState, writeState, type LabNode } from './state.js';
import { agentStatus, startAgent, waitForLine, waitReady } from './up.js';
import { errorMessage } from '@veil/agent-core/errors';

export interface ChaosOptions {
  labDir: string;
  durationMs: number;
  /** Pause between two disturbances. */
  intervalMs: number;
  progress?: (line: string) => void;
}

export interface PingStats {
  from: string;
  to: string;
  sent: number;
  received: number;
  lost: number;
  /** Longest run of unanswered pings, in seconds (interval × count). */
  longestGapS: number;
}

export interface ChaosReport {
  ok: boolean;
  durationMs: number;
  actions: { atMs: number; action: string; target: string; error?: string }[];
  pings: PingStats[];
  capture: CaptureAnalysis;
  readyAtEnd: number;
  nodes: number;
  failures: string[];
}

const PING_INTERVAL_S = 0.1;
const ACTIONS = ['agent-sigterm', 'apiserver-restart', 'key-rotate', 'agent-sigkill', 'node-add', 'node-delete'] as const;

/** A WireGuard public key (base64) for a node that does not exist. */
function ghostPublicKey(): string {
  const { publicKey } = generateKeyPairSync('x25519');
  const jwk = publicKey.export({ format: 'jwk' }) as { x: string };
  return Buffer.from(jwk.x, 'base64url').toString('base64');
}

/** Statistics from `ping -n` output (icmp_seq lines + the summary). */
export function pingStats(from: string, to: string, output: string): PingStats {
  const seqs = new Set<number>();
  for (const m of output.matchAll(/icmp_seq=(\d+)/g)) seqs.add(Number(m[1]));
  const sum = /(\d+) packets transmitted, (\d+) received/.exec(output);
  const sent = sum ? Number(sum[1]) : Math.max(0, ...seqs);
  const received = sum ? Number(sum[2]) : seqs.size;
  let run = 0;
  let longest = 0;
  for (let s = 1; s <= sent; s++) {
    if (seqs.has(s)) run = 0;
    else longest = Math.max(longest, ++run);
  }
  return { from, to, sent, received, lost: sent - received, longestGapS: Math.round(longest * PING_INTERVAL_S * 10) / 10 };
}

export async function labChaos(opts: ChaosOptions): Promise<ChaosReport> {
  const log = opts.progress ?? ((l: string) => process.stderr.write(l + '\n'));
  const state = readState(opts.labDir);
  if (!state) throw new LabError('chaos', `no running lab in ${opts.labDir}: start one with veil lab up --keep`);
  const started = Date.now();
  const t = (): string => `[${((Date.now() - started) / 1000).toFixed(1).padStart(5)}s]`;
  const nodes = state.nodes;
  const nodesFile = join(state.labDir, 'nodes.json');
  const baseNodes = JSON.parse(readFileSync(nodesFile, 'utf8')) as object[];

  // Capture first, then the pingers: a ring n1 → n2 → … → n1 between each node's first pod.
  const pcap = join(state.labDir, 'chaos.pcap');
  const capLog = join(state.labDir, 'chaos-tcpdump.log');
  const cap = spawnDetached('ip', ['netns', 'exec', UNDERLAY_NETNS, 'tcpdump', '-i', 'br0', '-n', '-U', '-s', '0', '-w', pcap], capLog);
  if (cap.pid !== undefined) state.helperPids.push(cap.pid);
  writeState(state);
  await waitForLine(capLog, /listening on/, 10_000, cap.pid, 'tcpdump');
  const pingers: { from: string; to: string; child: ChildProcess; out: string }[] = [];
  for (const [i, n] of nodes.entries()) {
    const peer = nodes[(i + 1) % nodes.length] as LabNode;
    const src = n.pods[0];
    const dst = peer.pods[0];
    if (!src || !dst) continue;
    const child = spawn('ip', ['netns', 'exec', src.netns, 'ping', '-n', '-i', String(PING_INTERVAL_S), '-W', '1', dst.ip], { stdio: ['ignore', 'pipe', 'pipe'] });
    const p = { from: src.name, to: dst.name, child, out: '' };
    child.stdout?.on('data', (c: Buffer) => (p.out += c.toString()));
    pingers.push(p);
  }
  log(`${t()} chaos for ${(opts.durationMs / 1000).toFixed(0)} s: ${pingers.length} continuous pings, capture on the underlay`);

  const actions: ChaosReport['actions'] = [];
  const ghosts: string[] = [];
  let k = 0;
  try {
    while (Date.now() - started < opts.durationMs) {
      await sleep(opts.intervalMs);
      if (Date.now() - started >= opts.durationMs) break;
      const action = ACTIONS[k++ % ACTIONS.length] as (typeof ACTIONS)[number];
      const node = nodes[Math.floor(Math.random() * nodes.length)] as LabNode;
      let target = node.name;
      let error: string | undefined;
      switch (action) {
        case 'key-rotate': {
          // Through the agent's status socket, like `veil keys rotate`: new key, new public key published.
          const { StatusClient } = await import('@veil/cli');
          try {
            await new StatusClient({ socketPath: node.statusSocket, timeoutMs: 30_000 }).rotateKeys();
          } catch (err) {
            error = errorMessage(err);
          }
          break;
        }
        case 'agent-sigterm':
        case 'agent-sigkill':
          if (node.agentPid !== undefined && pidMatches(node.agentPid, 'agent')) {
            if (action === 'agent-sigterm') await terminate(node.agentPid, 10_000);
            else process.kill(node.agentPid, 'SIGKILL');
          }
          startAgent(node, state.bpffsRoot);
          writeState(state);
          break;
        case 'apiserver-restart':
          target = 'apiserver';
          if (state.apiserver.pid !== undefined && pidMatches(state.apiserver.pid, 'apiserver')) process.kill(state.apiserver.pid, 'SIGUSR1');
          break;
        case 'node-add': {
          const id = 200 + ghosts.length + actions.length;
          target = `ghost-${id}`;
          ghosts.push(target);
          writeNodes(nodesFile, baseNodes, ghosts);
          if (state.apiserver.pid !== undefined) process.kill(state.apiserver.pid, 'SIGUSR2');
          break;
        }
        case 'node-delete': {
          const g = ghosts.shift();
          if (!g) continue;
          target = g;
          writeNodes(nodesFile, baseNodes, ghosts);
          if (state.apiserver.pid !== undefined) process.kill(state.apiserver.pid, 'SIGUSR2');
          break;
        }
      }
      actions.push({ atMs: Date.now() - started, action, target, ...(error ? { error } : {}) });
      log(`${t()} ${action} ${target}${error ? ` (failed: ${error})` : ''}`);
    }
  } finally {
    if (ghosts.length > 0) {
      writeNodes(nodesFile, baseNodes, []);
      if (state.apiserver.pid !== undefined && pidAlive(state.apiserver.pid)) process.kill(state.apiserver.pid, 'SIGUSR2');
    }
  }

  // The lab must converge again, then the pings stop and the capture is read.
  let readyAtEnd = 0;
  const failures: string[] = [];
  try {
    await waitReady(nodes, 60_000, (l) => log(`${t()} ${l}`));
    readyAtEnd = nodes.length;
  } catch (err) {
    failures.push(errorMessage(err));
  }
  // Deleted (ghost) nodes must be gone from every agent's peers, not merely outnumbered.
  const stale = await waitNoStrangers(nodes, 30_000);
  if (stale.length > 0) failures.push(`peers of deleted nodes still present: ${stale.join(', ')}`);
  else if (actions.some((a) => a.action === 'node-delete')) log(`${t()} deleted nodes removed from every agent's peers`);
  await sleep(1_000);
  for (const p of pingers) p.child.kill('SIGINT');
  await Promise.all(pingers.map((p) => new Promise<void>((r) => (p.child.exitCode !== null ? r() : p.child.once('exit', () => r())))));
  if (cap.pid !== undefined) {
    process.kill(cap.pid, 'SIGINT');
    const deadline = Date.now() + 5_000;
    while (pidAlive(cap.pid) && Date.now() < deadline) await sleep(50);
    await terminate(cap.pid);
    state.helperPids = state.helperPids.filter((p) => p !== cap.pid);
    writeState(state);
  }
  const pings = pingers.map((p) => pingStats(p.from, p.to, p.out));
  const podIPs = nodes.flatMap((n) => n.pods.map((p) => p.ip));
  const capture = analyzeCapture(readFileSync(pcap), state.backendType === 'wireguard' ? state.wireguardPort : 0, podIPs);
  const expectsEncryption = state.backend !== 'plaintext';
  if (expectsEncryption && capture.plaintextPackets > 0) failures.push(`${capture.plaintextPackets} cleartext pod packets (${capture.plaintextBytes} bytes) on the underlay`);
  for (const p of pings) if (p.received === 0) failures.push(`ping ${p.from} → ${p.to}: no reply at all`);
  return { ok: failures.length === 0, durationMs: Date.now() - started, actions, pings, capture, readyAtEnd, nodes: nodes.length, failures };
}

function writeNodes(file: string, base: readonly object[], ghosts: readonly string[]): void {
  const extra = ghosts.map((name) => {
    const id = Number(name.split('-')[1]);
    return {
      apiVersion: 'v1',
      kind: 'Node',
      metadata: { name, labels: { 'veil.io/lab': 'ghost' }, annotations: { 'veil.io/wireguard-public-key': ghostPublicKey() } },
      spec: { podCIDR: `10.250.${id}.0/24`, podCIDRs: [`10.250.${id}.0/24`] },
      status: { addresses: [{ type: 'InternalIP', address: `198.18.1.${id}` }] },
    };
  });
  writeFileSync(file, JSON.stringify([...base, ...extra], null, 2));
}

export function formatChaos(r: ChaosReport): string {
  const counts = new Map<string, number>();
  for (const a of r.actions) counts.set(a.action, (counts.get(a.action) ?? 0) + 1);
  const lines = [
    `veil lab chaos: ${(r.durationMs / 1000).toFixed(1)} s, ${r.actions.length} disturbances (${[...counts].map(([a, c]) => `${a} ×${c}`).join(', ')})`,
    ...r.pings.map((p) => `  ping ${p.from} → ${p.to}: ${p.sent} sent, ${p.received} received, ${p.lost} lost, longest gap ${p.longestGapS.toFixed(1)} s`),
    `  underlay capture: ${r.capture.packets} packets, ${r.capture.encryptedPackets} encrypted, plaintext pod-address packets ${r.capture.plaintextPackets} (${r.capture.plaintextBytes} bytes)`,
    `  agents ready with all peers at the end: ${r.readyAtEnd}/${r.nodes}`,
    ...r.failures.map((f) => `  FAIL ${f}`),
    `  result: ${r.ok ? 'PASS' : 'FAIL'}`,
  ];
  return lines.join('\n');
}

/** Waits until every agent's peers are exactly lab nodes; returns `node:peer` pairs still stale. */
async function waitNoStrangers(nodes: readonly LabNode[], timeoutMs: number): Promise<string[]> {
  const names = new Set(nodes.map((n) => n.name));
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const views = await Promise.all(nodes.map((n) => agentStatus(n.statusSocket)));
    const stale = views.flatMap((v, i) => [
      ...(v?.peers ?? []).filter((p) => !names.has(p.name)).map((p) => `${nodes[i]?.name}:${p.name}`),
      // agent-core's orphanPeers: a peer the backend still has programmed (e.g. on the WireGuard
      // device) that no node claims.
      ...(v?.orphanPeers ?? []).map((p) => `${nodes[i]?.name}:${p} (backend only)`),
    ]);
    if (stale.length === 0 || Date.now() > deadline) return stale;
    await sleep(500);
  }
}
