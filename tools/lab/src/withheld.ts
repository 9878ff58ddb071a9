/**
 * `veil lab up --strict --withhold-key <node>`: one node whose agent publishes no key, to show what
 * strict mode is for. That node's agent runs with `encryption.enabled=false` (an opted-out node, or
 * one a rollout has not reached): it is up and ready but publishes nothing and steers nothing, so
 * every other agent keeps it `pending` with no ipcache entry. Pods on the strict nodes then probe
 * its pods: no probe may be answered, the capture must hold no cleartext, and each strict node's
 * strict-mode drop counters must grow by at least the probes its pods sent.
 */
import { UsageError } from '@veil/cli';
import { getJsonOverUnixSocket } from '@veil/agent-core';
import { STATUS_API, type CounterListing } from '@veil/agent-core/status-api';
import { errorMessage } from '@veil/agent-core/errors';
import { mapLimit } from './exec.js';
import { ECHO_PORT, type LabNode } from './state.js';
import { probeFromNetns } from './helpers.js';

/** The verdicts strict mode drops with (docs/strict-mode.md): from-pod's check and to-wire's backstop. */
export const STRICT_DROP_REASONS = ['drop-not-ready-strict', 'to-wire-drop-clear'] as const;

/** How the lab makes a node withhold its key (recorded in the report). */
export const WITHHOLD_HOW = 'agent runs with encryption.enabled=false: publishes no key, steers nothing';

/** TCP probe timeout: a dropped SYN is never answered, so this only bounds the wait. */
const TCP_PROBE_TIMEOUT_MS = 3_000;

/**
 * Refuses a `--withhold-key` the lab cannot prove anything with, before anything is created.
 * Without `--strict` traffic to a keyless node goes out in clear by design (`pass-unknown`), so the
 * lab would only be showing a leak; with two nodes no pair of key holders is left to carry
 * encrypted traffic.
 */
export function checkWithholdKey(o: { withholdKey?: string | undefined; strict?: boolean; nodes: number }): void {
  if (o.withholdKey === undefined) return;
  const names = Array.from({ length: o.nodes }, (_, i) => `n${i + 1}`);
  if (!names.includes(o.withholdKey))
    throw new UsageError(
      '--withhold-key',
      `no node "${o.withholdKey}" in this lab (--nodes ${o.nodes}: ${names[0]}..${names[names.length - 1]})`,
    );
  if (!o.strict)
    throw new UsageError(
      '--withhold-key',
      'needs --strict: without strict mode, pod traffic to a node that publishes no key is sent in clear (pass-unknown), by design',
    );
  if (o.nodes < 3)
    throw new UsageError('--withhold-key', 'needs --nodes 3 or more: two nodes that hold keys, whose pairs must still pass');
}

/** One probe pair: a pod on a strict node towards a pod of the withheld node. */
export interface WithheldPair {
  from: string;
  to: string;
  toIP: string;
  ping: { sent: number; received: number; error?: string };
  /** `dropped`: no answer at all (the connect timed out); a refusal or reset is an answer. */
  tcp: { dropped: boolean; error?: string };
}

/** A strict node's drop counters around the probes. */
export interface WithheldDrops {
  node: string;
  /** Per strict drop reason: packets counted during the probes. */
  delta: Record<string, number>;
  total: number;
  /** Probes its pods sent (ping requests + TCP connects): the least the counters must grow by. */
  required: number;
  ok: boolean;
}

export interface WithheldReport {
  node: string;
  how: string;
  /** Nodes whose pods probed the withheld node's pods. */
  sources: string[];
  /** Not used as sources: the withheld node's pods have no Veil datapath (nothing steers or drops there). */
  excludedSources: string[];
  /** How each strict node's agent saw the withheld node (must be `pending`: no key published). */
  peerStates: Record<string, string>;
  probes: { sent: number; answered: number };
  pairs: WithheldPair[];
  drops: WithheldDrops[];
  /** The whole run's capture (filled in by `lab up` once tcpdump has stopped). */
  capture?: { plaintextPackets: number; markerPackets: number };
  failures: string[];
}

type PingProbe = (
  netns: string,
  ip: string,
  marker: Buffer,
) => Promise<{ ok: boolean; sent: number; received: number; error?: string }>;

/** A node's strict drop counters from its agent's status socket (`GET /v1/bpf/counters`). */
export async function strictDropCounters(n: LabNode): Promise<Record<string, number>> {
  let listing: CounterListing;
  try {
    listing = (await getJsonOverUnixSocket(n.statusSocket, STATUS_API.counters.path)) as CounterListing;
  } catch (err) {
    throw new WithheldCounterError(n.name, errorMessage(err));
  }
  // Per-reason counters only come from the BPF datapath ('details'); verdict totals cannot tell the two drops apart.
  if (listing.source !== 'details')
    throw new WithheldCounterError(n.name, `counters by reason unavailable (source ${listing.source})`);
  const out: Record<string, number> = {};
  for (const r of STRICT_DROP_REASONS) out[r] = Number(listing.counters.find((c) => c.reason === r)?.packets ?? 0);
  return out;
}

export class WithheldCounterError extends Error {
  override name = 'WithheldCounterError';
  constructor(
    readonly node: string,
    message: string,
  ) {
    super(`${node}: reading strict drop counters: ${message}`);
  }
}

/** The agents' view of the withheld node (peer state per strict node) from their status. */
export function peerStatesOf(
  views: readonly ({ peers: { name: string; state: string }[] } | undefined)[],
  nodes: readonly LabNode[],
  withheld: string,
): Record<string, string> {
  const out: Record<string, string> = {};
  nodes.forEach((n, i) => {
    if (n.name === withheld) return;
    out[n.name] = views[i]?.peers.find((p) => p.name === withheld)?.state ?? 'absent';
  });
  return out;
}

/**
 * Probes from every pod of the strict nodes to every pod of the withheld node: pings (payload the
 * run's marker) and one TCP connect each. Counters are read before and after on each strict node.
 */
export async function runWithheldProbes(o: {
  nodes: readonly LabNode[];
  withheld: string;
  marker: Buffer;
  peerStates: Record<string, string>;
  ping: PingProbe;
  log: (l: string) => void;
}): Promise<WithheldReport> {
  const target = o.nodes.find((n) => n.name === o.withheld);
  if (!target) throw new UsageError('--withhold-key', `no node "${o.withheld}" in this lab`);
  const strict = o.nodes.filter((n) => n.name !== o.withheld);
  const before = await Promise.all(strict.map((n) => strictDropCounters(n)));
  const work = strict.flatMap((n) => n.pods.flatMap((a) => target.pods.map((b) => ({ node: n.name, a, b }))));
  o.log(
    `withheld key: ${work.length} pod pairs from ${strict.map((n) => n.name).join(',')} to ${o.withheld} (its own pods are not sources: no Veil datapath there)`,
  );
  const pairs = await mapLimit(work, 4, async ({ node, a, b }): Promise<WithheldPair & { node: string }> => {
    const [ping, tcp] = await Promise.all([o.ping(a.netns, b.ip, o.marker), tcpConnect(a.netns, b.ip, o.marker)]);
    return {
      node,
      from: a.name,
      to: b.name,
      toIP: b.ip,
      ping: { sent: ping.sent, received: ping.received, ...(ping.sent === 0 && ping.error ? { error: ping.error } : {}) },
      tcp,
    };
  });
  const after = await Promise.all(strict.map((n) => strictDropCounters(n)));
  const report = judgeWithheld({
    withheld: o.withheld,
    sources: strict.map((n) => n.name),
    excludedSources: target.pods.map((p) => p.name),
    peerStates: o.peerStates,
    pairs,
    before,
    after,
  });
  o.log(
    `withheld key: ${report.probes.sent - report.probes.answered}/${report.probes.sent} probes unanswered; drops ${report.drops.map(formatDrop).join(', ')}`,
  );
  return report;
}

/**
 * The verdict on the probes: each strict node (`sources`, with `before`/`after` counters in that
 * order) must see the withheld node `pending`; no ping may be answered and every TCP connect must
 * time out with nothing back; each node's strict drops must grow by at least the probes its pods
 * sent (each ping request, and one per TCP connect, whose SYN retransmissions only add to it).
 */
export function judgeWithheld(o: {
  withheld: string;
  sources: readonly string[];
  excludedSources: readonly string[];
  peerStates: Record<string, string>;
  pairs: readonly (WithheldPair & { node: string })[];
  before: readonly Record<string, number>[];
  after: readonly Record<string, number>[];
}): WithheldReport {
  const failures: string[] = [];
  for (const [node, state] of Object.entries(o.peerStates))
    if (state !== 'pending') failures.push(`${node} sees ${o.withheld} as ${state}, not pending (it should have no key)`);
  for (const p of o.pairs) {
    if (p.ping.sent === 0) failures.push(`ping ${p.from} → ${p.to} (${p.toIP}) did not run: ${p.ping.error ?? 'no output'}`);
    if (p.ping.received > 0)
      failures.push(`ping ${p.from} → ${p.to} (${p.toIP}): ${p.ping.received}/${p.ping.sent} answered by a node without a key`);
    if (!p.tcp.dropped) failures.push(`tcp ${p.from} → ${p.to} (${p.toIP}) was answered: ${p.tcp.error ?? 'connected'}`);
  }
  const drops = o.sources.map((node, i): WithheldDrops => {
    const delta: Record<string, number> = {};
    for (const r of STRICT_DROP_REASONS) delta[r] = (o.after[i]?.[r] ?? 0) - (o.before[i]?.[r] ?? 0);
    const total = Object.values(delta).reduce((s, v) => s + v, 0);
    const required = o.pairs.filter((p) => p.node === node).reduce((s, p) => s + p.ping.sent + 1, 0);
    return { node, delta, total, required, ok: total >= required };
  });
  for (const d of drops)
    if (!d.ok) failures.push(`${d.node} counted ${d.total} strict drops for ${d.required} probes to ${o.withheld}`);
  return {
    node: o.withheld,
    how: WITHHOLD_HOW,
    sources: [...o.sources],
    excludedSources: [...o.excludedSources],
    peerStates: o.peerStates,
    probes: {
      sent: o.pairs.reduce((s, p) => s + p.ping.sent + 1, 0),
      answered: o.pairs.reduce((s, p) => s + p.ping.received + (p.tcp.dropped ? 0 : 1), 0),
    },
    pairs: o.pairs.map(({ node: _node, ...p }) => p),
    drops,
    failures,
  };
}

/** One TCP connect with the marker as payload; `dropped` only when nothing at all came back. */
async function tcpConnect(netns: string, ip: string, marker: Buffer): Promise<WithheldPair['tcp']> {
  const [x] = await probeFromNetns(netns, [`${ip}:${ECHO_PORT}`], {
    size: 1024,
    marker,
    timeoutMs: TCP_PROBE_TIMEOUT_MS,
    runTimeoutMs: TCP_PROBE_TIMEOUT_MS + 20_000,
  });
  if (!x) return { dropped: false, error: 'no probe result' };
  // A timeout with nothing back is the drop; ECONNREFUSED, a reset or any byte back is an answer.
  const dropped = !x.ok && x.bytes === 0 && (x.error ?? '').startsWith('timeout');
  return { dropped, ...(x.error ? { error: x.error } : {}) };
}

function formatDrop(d: WithheldDrops): string {
  const by = Object.entries(d.delta)
    .filter(([, v]) => v > 0)
    .map(([k]) => k);
  return `${d.node} +${d.total}${by.length ? ` (${by.join(', ')})` : ''}`;
}

/** The summary line(s) `lab up` prints for the withheld node. */
export function formatWithheld(w: WithheldReport): string {
  const dropped = w.probes.sent - w.probes.answered;
  const cap = w.capture ? `; plaintext ${w.capture.plaintextPackets}, marker ${w.capture.markerPackets}` : '';
  return (
    `  strict mode, ${w.node} withholds its key (${WITHHOLD_HOW}): ${dropped}/${w.probes.sent} probes from ${w.sources.join(',')} dropped, ` +
    `drops counted ${w.drops.map(formatDrop).join(', ')}${cap}; not probed from ${w.excludedSources.join(',')} (no Veil datapath)`
  );
}
