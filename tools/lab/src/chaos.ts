/**
 * `veil lab chaos`: disturbs a running lab while continuous pings run between pods on different
 * nodes, and watches the underlay: agents killed (SIGTERM and SIGKILL) and restarted, the API
 * server restarted (with and without its state), keys rotated, nodes added and deleted, a node's
 * own annotations tampered with, a hostile node publishing another's key. A restart must not
 * interrupt traffic (kernel state stays): the run fails on any lost ping beyond `maxLostPings`
 * (default 0), on any failed disturbance, and on anything in clear on the underlay.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { generateKeyPairSync, randomUUID } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { LabError } from './errors.js';
import { pidAlive, pidMatches, sleep, terminate } from './exec.js';
import { newMarker, startCapture, stopCapture } from './capture.js';
import { apiControl } from './apiserver.js';
import type { CaptureAnalysis, CaptureHealth } from './pcap.js';
import { podIPs as podAddresses, readState, writeState, type LabNode, type LabState } from './state.js';
import { agentStatus, apiDenials, captureFailures, describeDenial, startAgent, waitReady } from './up.js';
import {
  flushStates,
  ghostIpsecAnnotations,
  indexesIn,
  nodeXfrm,
  ipsecSettings,
  keyFileIndex,
  rotateIpsecKey,
  waitGhostGone,
  waitGhostProgrammed,
  type RotationTiming,
} from './chaos-ipsec.js';
import { errorMessage } from '@veil/agent-core/errors';

export interface ChaosOptions {
  labDir: string;
  durationMs: number;
  /** Pause between two disturbances. */
  intervalMs: number;
  /**
   * The disturbances to cycle through, in this order (default: every one of {@link CHAOS_ACTIONS},
   * or of {@link IPSEC_CHAOS_ACTIONS} for an IPsec lab).
   */
  actions?: readonly ChaosAction[];
  /** Stop after this many passes through the actions (instead of at `durationMs`, which then only bounds it). */
  rounds?: number;
  /** Continuous pings: a ring n1 → n2 → … → n1 (default), or every ordered pair of nodes. */
  pairs?: 'ring' | 'all';
  /** Pings the whole run may lose (the docs' budget: 0); the ones in flight when the pingers stop do not count. */
  maxLostPings?: number;
  progress?: (line: string) => void;
}

export interface PingStats {
  from: string;
  to: string;
  sent: number;
  received: number;
  /** Unanswered pings, the one in flight when the pinger stopped excepted. */
  lost: number;
  /** 1 when the last ping sent was still unanswered when the pinger stopped (not counted as lost). */
  inFlightAtStop: number;
  /** Longest run of unanswered pings, in seconds (interval × count). */
  longestGapS: number;
  /** Every run of unanswered pings (in flight at the stop excepted): when it began (s after the pinger started) and how long it lasted. */
  gaps: { atS: number; lengthS: number }[];
}

export interface ChaosActionRecord {
  /** When the disturbance started and when it was done (its checks included), ms after the run started. */
  startMs: number;
  atMs: number;
  action: string;
  target: string;
  error?: string;
  /**
   * Pings lost (all pingers) that were sent between this disturbance's start and the next one's
   * (or the end of the run): the send time of a lost ping is estimated from its answered neighbours.
   */
  lostPings: number;
  /** What the disturbance measured (IPsec: rotation timing, flush repair, ghost checks). */
  detail?: Record<string, unknown>;
}

export interface ChaosReport {
  ok: boolean;
  durationMs: number;
  actions: ChaosActionRecord[];
  /** Pings lost before the first disturbance started. */
  lostBeforeActions: number;
  pings: PingStats[];
  capture: CaptureAnalysis & { health: CaptureHealth };
  /** This run's probe marker (hex): in every ping's payload, searched for in the capture. */
  marker: string;
  maxLostPings: number;
  readyAtEnd: number;
  nodes: number;
  /** IPsec labs: the key indexes of the backend's states and per-peer policies in each node's kernel at the end (`ip xfrm`). */
  ipsecIndexesAtEnd?: Record<string, number[]>;
  failures: string[];
}

const PING_INTERVAL_S = 0.1;
/** How long key-rotate keeps asking an agent that cannot publish (a real kube-apiserver restarts in ~20 s here). */
const ROTATE_RETRY_MS = 120_000;
export const CHAOS_ACTIONS = [
  'agent-sigterm',
  'apiserver-restart',
  'key-rotate',
  'annotation-tamper',
  'agent-sigkill',
  'node-add',
  'node-delete',
  'apiserver-state-loss',
  'duplicate-key-restart',
] as const;
/** The default cycle of an IPsec lab: no WireGuard-key tampering, and a flush of the XFRM states behind an agent. */
export const IPSEC_CHAOS_ACTIONS = [
  'agent-sigterm',
  'apiserver-restart',
  'key-rotate',
  'agent-sigkill',
  'node-add',
  'node-delete',
  'apiserver-state-loss',
  'xfrm-flush',
] as const;
export const ALL_CHAOS_ACTIONS = [...CHAOS_ACTIONS, 'xfrm-flush'] as const;
export type ChaosAction = (typeof ALL_CHAOS_ACTIONS)[number];
/** Disturbances that only mean something for one backend. */
const BACKEND_ONLY: Partial<Record<ChaosAction, string>> = {
  'xfrm-flush': 'ipsec',
  'annotation-tamper': 'wireguard',
  'duplicate-key-restart': 'wireguard',
};

export function isChaosAction(a: string): a is ChaosAction {
  return (ALL_CHAOS_ACTIONS as readonly string[]).includes(a);
}

/** Under the qemu lane (software emulation) agents start 5–20× slower. */
const SLOW = process.env.VEIL_KERNEL_LANE === '1' ? 4 : 1;
/** Pause between two nodes' key file changes in an IPsec rotation (a Secret reaches kubelets at different times). */
const IPSEC_ROLLOUT_STAGGER_MS = 3_000;

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
  const secs = (n: number): number => Math.round(n * PING_INTERVAL_S * 10) / 10;
  const gaps: PingStats['gaps'] = [];
  // SIGINT can land between the last request and its reply: that one was never given the chance.
  const inFlightAtStop = sent > 0 && sent > received && !seqs.has(sent) ? 1 : 0;
  for (let s = 1; s <= sent + 1; s++) {
    if (s > sent || seqs.has(s)) {
      const len = s > sent ? run - inFlightAtStop : run;
      if (len > 0) gaps.push({ atS: secs(s - run - 1), lengthS: secs(len) });
      run = 0;
    } else longest = Math.max(longest, ++run);
  }
  return { from, to, sent, received, lost: sent - received - inFlightAtStop, inFlightAtStop, longestGapS: secs(longest), gaps };
}

/**
 * Send times (epoch ms) of the pings `ping -D -n` lost, the one in flight at the stop excepted:
 * an answered ping was sent at its timestamp minus its round trip; a lost one is placed between
 * its nearest answered neighbours (or one interval past the last).
 */
export function lostPingTimes(output: string, intervalS = PING_INTERVAL_S): number[] {
  const sent = new Map<number, number>();
  for (const m of output.matchAll(/^\[(\d+\.\d+)\][^\n]*icmp_seq=(\d+)[^\n]*time=([\d.]+) ms/gm))
    sent.set(Number(m[2]), Number(m[1]) * 1000 - Number(m[3]));
  const stats = pingStats('', '', output);
  const lost: number[] = [];
  const known = [...sent.keys()].sort((a, b) => a - b);
  const lastLost = stats.sent - stats.inFlightAtStop;
  for (let q = 1; q <= lastLost; q++) {
    if (sent.has(q)) continue;
    const before = known.filter((k) => k < q).pop();
    const after = known.find((k) => k > q);
    const bt = before !== undefined ? (sent.get(before) as number) : undefined;
    const at = after !== undefined ? (sent.get(after) as number) : undefined;
    if (bt !== undefined && at !== undefined && before !== undefined && after !== undefined)
      lost.push(bt + ((at - bt) * (q - before)) / (after - before));
    else if (bt !== undefined && before !== undefined) lost.push(bt + (q - before) * intervalS * 1000);
    else if (at !== undefined && after !== undefined) lost.push(at - (after - q) * intervalS * 1000);
  }
  return lost;
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
  const ipsec = state.backendType === 'ipsec';
  const backendName = ipsec ? 'ipsec' : state.backendType === 'wireguard' ? 'wireguard' : state.backend;
  const cycle: readonly ChaosAction[] =
    opts.actions && opts.actions.length > 0 ? opts.actions : ipsec ? IPSEC_CHAOS_ACTIONS : CHAOS_ACTIONS;
  for (const a of cycle) {
    const only = BACKEND_ONLY[a];
    if (only !== undefined && only !== backendName)
      throw new LabError('chaos', `disturbance ${a} needs a ${only} lab; this lab runs ${state.backend}`);
  }
  /** IPsec: the key index ghosts publish as ready (they follow rotations like a real node would). */
  let ipsecIndex = 0;
  if (ipsec) {
    ipsecIndex = keyFileIndex(readFileSync(ipsecSettings(nodes[0] as LabNode).keyFile, 'utf8'));
  }

  // Capture first, then the pingers: a ring n1 → n2 → … → n1 (or every ordered pair of nodes)
  // between each node's first pod, every ping's payload carrying this run's marker.
  const marker = newMarker();
  const cap = await startCapture(state, join(state.labDir, 'chaos.pcap'), join(state.labDir, 'chaos-tcpdump.log'));
  const pingers: { from: string; to: string; child: ChildProcess; out: string }[] = [];
  const routes =
    opts.pairs === 'all'
      ? nodes.flatMap((a) => nodes.filter((b) => b !== a).map((b) => [a, b] as const))
      : nodes.map((n, i) => [n, nodes[(i + 1) % nodes.length] as LabNode] as const);
  // Dual-stack labs: the first pair pings over IPv6 too (its report names the destination `<pod>/IPv6`).
  const lines: { n: LabNode; peer: LabNode; v6: boolean }[] = routes.map(([n, peer]) => ({ n, peer, v6: false }));
  if (routes[0]?.[1].pods[0]?.ip6) lines.push({ n: routes[0][0], peer: routes[0][1], v6: true });
  for (const { n, peer, v6 } of lines) {
    const src = n.pods[0];
    const dst = peer.pods[0];
    if (!src || !dst) continue;
    const ip = v6 && dst.ip6 ? dst.ip6 : dst.ip;
    const child = spawn(
      'ip',
      [
        'netns',
        'exec',
        src.netns,
        'ping',
        '-n',
        '-D',
        '-i',
        String(PING_INTERVAL_S),
        '-W',
        String(SLOW),
        '-p',
        marker.toString('hex'),
        ip,
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    const p = { from: src.name, to: v6 ? `${dst.name}/IPv6` : dst.name, child, out: '' };
    child.stdout?.on('data', (c: Buffer) => (p.out += c.toString()));
    pingers.push(p);
  }
  log(`${t()} chaos for ${(opts.durationMs / 1000).toFixed(0)} s: ${pingers.length} continuous pings, capture on the underlay`);

  const actions: Omit<ChaosActionRecord, 'lostPings'>[] = [];
  const ghosts: Ghost[] = [];
  const ghostIPs = new Set<string>();
  let k = 0;
  const more = (): boolean =>
    opts.rounds !== undefined ? k < opts.rounds * cycle.length : Date.now() - started < opts.durationMs;
  const sync = (): void => {
    writeNodes(nodesFile, baseNodes, ghosts, ipsecIndex);
    if (state.apiserver.pid !== undefined && pidAlive(state.apiserver.pid)) process.kill(state.apiserver.pid, 'SIGUSR2');
  };
  try {
    while (more()) {
      await sleep(opts.intervalMs);
      if (opts.rounds === undefined && Date.now() - started >= opts.durationMs) break;
      if (opts.rounds !== undefined && Date.now() - started >= opts.durationMs) {
        log(`${t()} --duration ${(opts.durationMs / 1000).toFixed(0)} s reached before ${opts.rounds} rounds`);
        break;
      }
      const action = cycle[k++ % cycle.length] as ChaosAction;
      const node = nodes[Math.floor(Math.random() * nodes.length)] as LabNode;
      let target = node.name;
      let error: string | undefined;
      let detail: Record<string, unknown> | undefined;
      const startMs = Date.now() - started;
      switch (action) {
        case 'key-rotate': {
          if (ipsec) {
            // The lab's Secret changes: every node's key file, one after another.
            target = 'every node (key file rollout)';
            const r = await ipsecRotate(nodes, (to) => {
              ipsecIndex = to;
              if (ghosts.length > 0) sync();
            });
            if (typeof r === 'string') error = r;
            else detail = { rotation: r };
            break;
          }
          // Through the agent's status socket, like `veil keys rotate`: new key, new public key published.
          const { StatusClient } = await import('@veil/cli');
          // A rotation must succeed: give an agent a previous disturbance just restarted the time to come up.
          await until(30_000, async () => ((await agentStatus(node.statusSocket)) ? undefined : 'no status'));
          try {
            // The agent refuses a rotation it could not publish (CONTROL_PLANE_UNREACHABLE: the API server is
            // restarting); like an operator, the lab retries until it can, within the action's time.
            const client = new StatusClient({ socketPath: node.statusSocket, timeoutMs: 30_000 });
            const deadline = Date.now() + ROTATE_RETRY_MS;
            const rotate = async (): Promise<Awaited<ReturnType<typeof client.rotateKeys>>> => {
              for (;;) {
                try {
                  return await client.rotateKeys();
                } catch (err) {
                  if ((err as { code?: unknown }).code !== 'CONTROL_PLANE_UNREACHABLE' || Date.now() > deadline) throw err;
                  await sleep(500);
                }
              }
            };
            const r = await rotate();
            // The agent retries a publish that failed (say, the API server was down): the rotation
            // counts only once the new public material is on the Node.
            if (!r.published)
              error = await waitAnnotations(state, node.name, veilAnnotations(r.annotations), 30_000, { subset: true });
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
          if (ipsec) {
            // The kill window lasts until the new agent is ready with every peer (it adopts the kernel's states).
            const t0 = Date.now();
            try {
              await waitReady(nodes, 180_000 * SLOW, () => undefined);
              detail = { restartedReadyMs: Date.now() - t0 };
            } catch (err) {
              error = errorMessage(err);
            }
          }
          break;
        case 'apiserver-restart':
          target = 'apiserver';
          if (state.apiserver.pid !== undefined && pidMatches(state.apiserver.pid, 'apiserver'))
            process.kill(state.apiserver.pid, 'SIGUSR1');
          break;
        case 'node-add': {
          const ghost = newGhost(ghosts.length + actions.length);
          target = ghost.name;
          ghosts.push(ghost);
          ghostIPs.add(ghost.underlayIP);
          sync();
          if (ipsec) {
            // Every node must program it, or its deletion proves nothing.
            const t0 = Date.now();
            error = await waitGhostProgrammed(nodes, ghost, 60_000 * SLOW);
            detail = { programmedMs: Date.now() - t0 };
          }
          break;
        }
        case 'node-delete': {
          const g = ghosts.shift();
          if (!g) continue;
          target = g.name;
          sync();
          if (ipsec) {
            // `ip xfrm state` / `ip xfrm policy` in every node: nothing of the deleted node may stay.
            const t0 = Date.now();
            error = await waitGhostGone(nodes, g, 60_000 * SLOW);
            detail = { removedMs: Date.now() - t0 };
          }
          break;
        }
        case 'xfrm-flush': {
          try {
            const r = await flushStates(
              node,
              async () => {
                const v = await agentStatus(node.statusSocket);
                const n = v?.backendDetails?.driftRepairs;
                return typeof n === 'number' ? n : undefined;
              },
              120_000 * SLOW,
            );
            detail = { ...r };
          } catch (err) {
            error = errorMessage(err);
          }
          break;
        }
        case 'annotation-tamper':
          error = await tamperAnnotations(state, node);
          break;
        case 'apiserver-state-loss':
          target = 'apiserver';
          error = await loseApiState(state);
          break;
        case 'duplicate-key-restart': {
          const ghost = newGhost(ghosts.length + actions.length);
          ghostIPs.add(ghost.underlayIP);
          const restarted = nodes[Math.floor(Math.random() * nodes.length)] as LabNode;
          target = `${ghost.name} claims ${node.name}'s key, ${restarted.name} restarts`;
          error = await duplicateKeyRestart(state, nodesFile, baseNodes, ghosts, ghost, node, restarted);
          break;
        }
      }
      actions.push({
        startMs,
        atMs: Date.now() - started,
        action,
        target,
        ...(error ? { error } : {}),
        ...(detail ? { detail } : {}),
      });
      log(`${t()} ${action} ${target}${error ? ` (FAILED: ${error})` : ''}${detail ? ` ${JSON.stringify(detail)}` : ''}`);
    }
  } finally {
    if (ghosts.length > 0) {
      ghosts.length = 0;
      sync();
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
  let ipsecIndexesAtEnd: Record<string, number[]> | undefined;
  if (ipsec) {
    ipsecIndexesAtEnd = {};
    for (const n of nodes) {
      try {
        ipsecIndexesAtEnd[n.name] = indexesIn(await nodeXfrm(n.netns));
      } catch (err) {
        failures.push(`ip xfrm in ${n.name}: ${errorMessage(err)}`);
      }
    }
  }
  await sleep(1_000);
  for (const p of pingers) p.child.kill('SIGINT');
  await Promise.all(
    pingers.map((p) => new Promise<void>((r) => (p.child.exitCode !== null ? r() : p.child.once('exit', () => r())))),
  );
  const pings = pingers.map((p) => pingStats(p.from, p.to, p.out));
  // Each lost ping goes to the disturbance that was under way (or last started) when it was sent.
  const lostAt = pingers.flatMap((p) => lostPingTimes(p.out)).map((ms) => ms - started);
  const attributed: ChaosActionRecord[] = actions.map((a, i) => {
    const end = actions[i + 1]?.startMs ?? Infinity;
    return { ...a, lostPings: lostAt.filter((ms) => ms >= a.startMs && ms < end).length };
  });
  const lostBeforeActions = lostAt.filter((ms) => ms < (actions[0]?.startMs ?? Infinity)).length;
  const podIPs = nodes.flatMap((n) => n.pods.flatMap(podAddresses));
  const { analysis, health } = await stopCapture(state, cap, {
    wgPort: state.backendType === 'wireguard' ? state.wireguardPort : 0,
    podIPs,
    nodeIPs: [...nodes.map((n) => n.underlayIP), ...ghostIPs],
    marker,
  });
  failures.push(...captureFailures(analysis, health, state.backend !== 'plaintext'));
  for (const a of actions) if (a.error !== undefined) failures.push(`${a.action} ${a.target} failed: ${a.error}`);
  try {
    const refused = await apiDenials(state);
    // A restarting apiserver serves requests before its RBAC caches sync and refuses them meanwhile; the agents
    // retry. Only refusals outside those windows are calls outside the chart's RBAC or policy.
    const starting = refused.filter((d) => d.duringStartup).length;
    if (starting > 0)
      log(`${t()} the apiserver refused ${starting} agent calls while it was starting (RBAC caches not synced yet)`);
    for (const d of refused.filter((x) => !x.duringStartup))
      failures.push(`the API server refused an agent call (outside the chart's RBAC/policy): ${describeDenial(d)}`);
  } catch (err) {
    failures.push(errorMessage(err));
  }
  const maxLost = opts.maxLostPings ?? 0;
  const lost = pings.reduce((sum, p) => sum + p.lost, 0);
  if (lost > maxLost)
    failures.push(
      `${lost} pings lost (budget ${maxLost}): ${pings
        .filter((p) => p.lost > 0)
        .map((p) => `${p.from} → ${p.to} ${p.lost}`)
        .join(', ')}`,
    );
  for (const p of pings) if (p.received === 0) failures.push(`ping ${p.from} → ${p.to}: no reply at all`);
  return {
    ok: failures.length === 0,
    durationMs: Date.now() - started,
    actions: attributed,
    lostBeforeActions,
    pings,
    capture: { ...analysis, health },
    marker: marker.toString('hex'),
    maxLostPings: maxLost,
    readyAtEnd,
    nodes: nodes.length,
    ...(ipsecIndexesAtEnd ? { ipsecIndexesAtEnd } : {}),
    failures,
  };
}

/** A node that exists only as a Node object (no namespace, no agent). */
interface Ghost {
  name: string;
  id: number;
  underlayIP: string;
  /** Its WireGuard public key annotation: a random key, or another node's (the hostile case). */
  key: string;
  /** Its boot ID (IPsec labs: published with the IPsec annotations). */
  bootId: string;
}

/**
 * IPsec: rolls a new key out to every node's key file and waits until every kernel holds only the
 * new index; the timing, or why it failed.
 */
async function ipsecRotate(nodes: readonly LabNode[], onRolledOut: (to: number) => void): Promise<RotationTiming | string> {
  // Every agent must be up to take part (a previous disturbance may have restarted one).
  for (const n of nodes) {
    const why = await until(120_000, async () => ((await agentStatus(n.statusSocket)) ? undefined : `${n.name}: no status`));
    if (why) return why;
  }
  try {
    return await rotateIpsecKey(nodes, {
      staggerMs: IPSEC_ROLLOUT_STAGGER_MS,
      timeoutMs: 120_000 * SLOW,
      currentIndex: async (n) => {
        const v = await agentStatus(n.statusSocket);
        const i = v?.backendDetails?.currentIndex;
        return typeof i === 'number' ? i : undefined;
      },
      onRolledOut,
    });
  } catch (err) {
    return errorMessage(err);
  }
}

function newGhost(seq: number): Ghost {
  const id = 200 + (seq % 50);
  return { name: `ghost-${id}-${seq}`, id, underlayIP: `198.18.1.${id}`, key: ghostPublicKey(), bootId: randomUUID() };
}

const WG_KEY_ANNOTATION = 'veil.io/wireguard-public-key';

function veilAnnotations(a: Record<string, string> | undefined): Record<string, string> {
  return Object.fromEntries(Object.entries(a ?? {}).filter(([k]) => k.startsWith('veil.io/')));
}

/** Polls `check` (a failure reason, or undefined when satisfied) until it passes or `timeoutMs` ends. */
async function until(timeoutMs: number, check: () => Promise<string | undefined>): Promise<string | undefined> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const why = await check();
    if (why === undefined || Date.now() > deadline) return why;
    await sleep(250);
  }
}

async function annotationsOf(state: LabState, node: string): Promise<Record<string, string> | string> {
  const sock = state.apiserver.controlSocket;
  if (!sock) return 'the lab API server has no control socket (lab started by an older veil)';
  // The control plane answers one request at a time: behind a real kube-apiserver's restart this waits tens of seconds.
  const r = await apiControl(sock, { op: 'annotations', node }, 120_000);
  return r.ok ? (r.annotations ?? {}) : r.error;
}

/** Waits until `node`'s veil.io annotations equal `want` again (with `subset`, contain it); returns why not on timeout. */
async function waitAnnotations(
  state: LabState,
  node: string,
  want: Record<string, string>,
  timeoutMs: number,
  opts: { subset?: boolean } = {},
): Promise<string | undefined> {
  return until(timeoutMs, async () => {
    const got = await annotationsOf(state, node);
    if (typeof got === 'string') return got;
    const mine = veilAnnotations(got);
    const diff = Object.keys(opts.subset ? want : { ...want, ...mine }).filter((k) => want[k] !== mine[k]);
    return diff.length === 0 ? undefined : `${node}'s annotations not restored after ${timeoutMs} ms: ${diff.join(', ')} differ`;
  });
}

/**
 * Defect: an agent must restore its own annotations when someone edits or removes them. Its
 * WireGuard key is replaced by a stranger's and every other veil.io annotation removed through
 * the API; the agent must put back exactly what it had published.
 */
async function tamperAnnotations(state: LabState, node: LabNode): Promise<string | undefined> {
  const before = await annotationsOf(state, node.name);
  if (typeof before === 'string') return before;
  const published = veilAnnotations(before);
  if (!published[WG_KEY_ANNOTATION]) return `${node.name} has no ${WG_KEY_ANNOTATION} to tamper with`;
  const tampered = Object.fromEntries(Object.entries(before).filter(([k]) => !k.startsWith('veil.io/')));
  tampered[WG_KEY_ANNOTATION] = ghostPublicKey();
  const r = await apiControl(state.apiserver.controlSocket ?? '', {
    op: 'set-annotations',
    node: node.name,
    annotations: tampered,
  });
  if (!r.ok) return r.error;
  return waitAnnotations(state, node.name, published, 15_000);
}

/**
 * Defect: after the API server loses its state (Node objects back as first registered, without
 * annotations), every agent must publish its material again.
 */
async function loseApiState(state: LabState): Promise<string | undefined> {
  const published = new Map<string, Record<string, string>>();
  for (const n of state.nodes) {
    const a = await annotationsOf(state, n.name);
    if (typeof a === 'string') return a;
    published.set(n.name, veilAnnotations(a));
  }
  // The real kube-apiserver takes a while to stop and start again on a loaded machine.
  const r = await apiControl(state.apiserver.controlSocket ?? '', { op: 'lose-state' }, 300_000);
  if (!r.ok) return r.error;
  for (const n of state.nodes) {
    const why = await waitAnnotations(state, n.name, published.get(n.name) ?? {}, 30_000);
    if (why) return why;
  }
  return undefined;
}

/**
 * Defect: a (younger) node publishing another node's WireGuard key must not take it, also across
 * an agent restart: every agent keeps the rightful holder as an active peer and never makes the
 * hostile node one. The ghost is deleted again afterwards; plaintext is the capture's business.
 */
async function duplicateKeyRestart(
  state: LabState,
  nodesFile: string,
  baseNodes: readonly object[],
  ghosts: readonly Ghost[],
  hostile: Ghost,
  victim: LabNode,
  restarted: LabNode,
): Promise<string | undefined> {
  const a = await annotationsOf(state, victim.name);
  if (typeof a === 'string') return a;
  const key = a[WG_KEY_ANNOTATION];
  if (!key) return `${victim.name} has no ${WG_KEY_ANNOTATION}`;
  const sync = (): void => {
    if (state.apiserver.pid !== undefined && pidAlive(state.apiserver.pid)) process.kill(state.apiserver.pid, 'SIGUSR2');
  };
  writeNodes(nodesFile, baseNodes, [...ghosts, { ...hostile, key }]);
  sync();
  try {
    await sleep(1_000); // every agent has seen the hostile node before the restart
    if (restarted.agentPid !== undefined && pidMatches(restarted.agentPid, 'agent')) await terminate(restarted.agentPid, 10_000);
    startAgent(restarted, state.bpffsRoot);
    writeState(state);
    return await until(30_000, async () => {
      const views = await Promise.all(state.nodes.map((n) => agentStatus(n.statusSocket)));
      for (const [i, v] of views.entries()) {
        const name = state.nodes[i]?.name ?? '?';
        if (!v) return `${name}: no status`;
        if (v.peers.some((p) => p.name === hostile.name && p.state === 'active'))
          return `${name} made ${hostile.name} (${victim.name}'s key) an active peer`;
        if (name !== victim.name && !v.peers.some((p) => p.name === victim.name && p.state === 'active'))
          return `${name} does not have ${victim.name} as an active peer`;
      }
      return undefined;
    });
  } finally {
    writeNodes(nodesFile, baseNodes, ghosts);
    sync();
  }
}

/**
 * The lab's Node objects plus the ghosts. In an IPsec lab (`ipsecIndex` > 0) a ghost publishes what
 * an IPsec node does (node ID, boot ID, tunnel address, ready key index, epoch) besides its key.
 */
function writeNodes(file: string, base: readonly object[], ghosts: readonly Ghost[], ipsecIndex = 0): void {
  const extra = ghosts.map((g) => ({
    apiVersion: 'v1',
    kind: 'Node',
    metadata: {
      name: g.name,
      labels: { 'veil.io/lab': 'ghost' },
      annotations: {
        [WG_KEY_ANNOTATION]: g.key,
        ...(ipsecIndex > 0
          ? ghostIpsecAnnotations({ nodeId: g.id, underlayIP: g.underlayIP, keyIndex: ipsecIndex, bootId: g.bootId })
          : {}),
      },
    },
    spec: { podCIDR: `10.250.${g.id}.0/24`, podCIDRs: [`10.250.${g.id}.0/24`] },
    status: { addresses: [{ type: 'InternalIP', address: g.underlayIP }] },
  }));
  writeFileSync(file, JSON.stringify([...base, ...extra], null, 2));
}

export function formatChaos(r: ChaosReport): string {
  const counts = new Map<string, number>();
  for (const a of r.actions) counts.set(a.action, (counts.get(a.action) ?? 0) + 1);
  const lines = [
    `veil lab chaos: ${(r.durationMs / 1000).toFixed(1)} s, ${r.actions.length} disturbances (${[...counts].map(([a, c]) => `${a} ×${c}`).join(', ')})`,
    ...r.actions
      .filter((a) => a.lostPings > 0 || a.detail !== undefined)
      .map(
        (a) =>
          `  ${a.action} ${a.target} at ${(a.startMs / 1000).toFixed(1)} s: ${a.lostPings} pings lost while it ran${a.detail ? `; ${JSON.stringify(a.detail)}` : ''}`,
      ),
    ...r.pings.map(
      (p) =>
        `  ping ${p.from} → ${p.to}: ${p.sent} sent, ${p.received} received, ${p.lost} lost${p.inFlightAtStop ? ' (+1 in flight at the stop)' : ''}, longest gap ${p.longestGapS.toFixed(1)} s` +
        (p.gaps.length > 0
          ? ` (gaps at ${p.gaps.map((g) => `${g.atS.toFixed(1)} s for ${g.lengthS.toFixed(1)} s`).join(', ')})`
          : ''),
    ),
    `  lost pings: ${r.pings.reduce((s, p) => s + p.lost, 0)} (budget ${r.maxLostPings})`,
    `  underlay capture: ${r.capture.packets} packets, ${r.capture.encryptedPackets} encrypted, plaintext pod-address packets ${r.capture.plaintextPackets} (${r.capture.plaintextBytes} bytes), probe marker ${r.marker} in ${r.capture.markerPackets} packets, non-WireGuard on the tunnel port ${r.capture.malformedTunnelPackets}`,
    `  capture health: tcpdump ${r.capture.health.exitCode === 0 ? 'exit 0' : `exit ${r.capture.health.exitCode ?? r.capture.health.signal}`}, ${r.capture.health.captured ?? '?'} captured, ${r.capture.health.droppedByKernel ?? '?'} dropped by kernel, ${r.capture.truncatedRecords} truncated`,
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
