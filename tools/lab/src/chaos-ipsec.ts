/**
 * The IPsec side of `veil lab chaos` (`--backend ipsec`, kernel lane): the disturbances that mean
 * something for XFRM, each checked against the kernel itself (`ip xfrm state` / `ip xfrm policy`
 * inside every node's namespace), not against what the agents say.
 *
 * - `key-rotate`: the key file (the lab's Secret) changes to the next key index on every node,
 *   one node after another like a Secret rollout; done once every node has reclaimed the old
 *   index (only the new index's states and per-peer policies left in every kernel).
 * - `node-add` / `node-delete`: a ghost Node with IPsec annotations; every node must program it
 *   (states to/from its address), and after the delete no state or policy of it may remain.
 * - `xfrm-flush`: `ip xfrm state deleteall` on one node; its agent must put every state back
 *   (counted in its `driftRepairs`).
 */
import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import { run, sleep } from './exec.js';
import type { LabNode } from './state.js';

/** reqid of every state and template the IPsec backend writes ('veil'). */
export const VEIL_REQID = 0x7665696c;
/** Priority of the backend's per-peer OUT policies (mark = 0x0E00 | index << 12 | nodeId << 16). */
export const PRIORITY_PEER = 0x7650;
const PRIORITY_IN_FWD = 0x7651;
const PRIORITY_BLOCK = 0x76ff;

export interface KernelState {
  src: string;
  dst: string;
  spi: number;
  reqid: number;
  mark?: { value: number; mask: number };
}

export interface KernelPolicy {
  dir: string;
  priority: number;
  mark?: { value: number; mask: number };
  /** Template endpoints (`tmpl src … dst …`). */
  tmpl: { src: string; dst: string; reqid: number }[];
}

function markOf(line: string): { value: number; mask: number } | undefined {
  const m = /^\s*mark (0x[0-9a-f]+)\/(0x[0-9a-f]+)/.exec(line);
  return m ? { value: Number(m[1]), mask: Number(m[2]) } : undefined;
}

/** `ip xfrm state` (iproute2 text) → states. */
export function parseXfrmStates(text: string): KernelState[] {
  const out: KernelState[] = [];
  let cur: KernelState | undefined;
  for (const line of text.split('\n')) {
    const head = /^src (\S+) dst (\S+)/.exec(line);
    if (head) {
      cur = { src: head[1] as string, dst: head[2] as string, spi: 0, reqid: 0 };
      out.push(cur);
      continue;
    }
    if (!cur) continue;
    const p = /^\s+proto \S+ spi (0x[0-9a-f]+) reqid (\d+)/.exec(line);
    if (p) {
      cur.spi = Number(p[1]);
      cur.reqid = Number(p[2]);
    }
    const mark = markOf(line);
    if (mark) cur.mark = mark;
  }
  return out;
}

/** `ip xfrm policy` (iproute2 text) → policies. */
export function parseXfrmPolicies(text: string): KernelPolicy[] {
  const out: KernelPolicy[] = [];
  let cur: KernelPolicy | undefined;
  for (const line of text.split('\n')) {
    if (/^src \S+ dst \S+/.test(line)) {
      cur = { dir: '', priority: 0, tmpl: [] };
      out.push(cur);
      continue;
    }
    if (!cur) continue;
    // `dir out priority 30288 ptype main`, `dir out action block priority 30463 ptype main`
    const d = /^\s+dir (\S+)/.exec(line);
    if (d) {
      cur.dir = d[1] as string;
      const prio = / priority (\d+)/.exec(line);
      if (prio) cur.priority = Number(prio[1]);
    }
    const mark = markOf(line);
    if (mark) cur.mark = mark;
    const t = /^\s+tmpl src (\S+) dst (\S+)/.exec(line);
    if (t) cur.tmpl.push({ src: t[1] as string, dst: t[2] as string, reqid: 0 });
    const r = /^\s+proto \S+ (?:spi 0x[0-9a-f]+ )?reqid (\d+)/.exec(line);
    const last = cur.tmpl[cur.tmpl.length - 1];
    if (r && last) last.reqid = Number(r[1]);
  }
  return out;
}

/** The IPsec backend's objects in one node's kernel, as `ip xfrm` shows them. */
export interface NodeXfrm {
  /** States with the backend's reqid (SPI 0 larval states excluded). */
  states: KernelState[];
  /** The backend's policies (its priorities). */
  policies: KernelPolicy[];
}

export async function nodeXfrm(netns: string): Promise<NodeXfrm> {
  const [s, p] = await Promise.all([
    run('ip', ['netns', 'exec', netns, 'ip', 'xfrm', 'state'], { timeoutMs: 60_000 }),
    run('ip', ['netns', 'exec', netns, 'ip', 'xfrm', 'policy'], { timeoutMs: 60_000 }),
  ]);
  if (s.code !== 0) throw new Error(`ip xfrm state in ${netns}: ${s.stderr.trim()}`);
  if (p.code !== 0) throw new Error(`ip xfrm policy in ${netns}: ${p.stderr.trim()}`);
  return {
    states: parseXfrmStates(s.stdout).filter((x) => x.reqid === VEIL_REQID && x.spi !== 0),
    policies: parseXfrmPolicies(p.stdout).filter((x) => [PRIORITY_PEER, PRIORITY_IN_FWD, PRIORITY_BLOCK].includes(x.priority)),
  };
}

/** Key index of a state: in its mark (OUT) or in its SPI's low nibble (IN). */
export function stateIndex(s: KernelState): number {
  return s.mark ? (s.mark.value >>> 12) & 0xf : s.spi & 0xf;
}

/** Per-peer OUT policies: priority PRIORITY_PEER, key index and node ID in the mark. */
function peerPolicies(x: NodeXfrm): KernelPolicy[] {
  return x.policies.filter((p) => p.priority === PRIORITY_PEER && p.mark);
}

/** Key indexes of a node's states and per-peer policies (sorted, unique). */
export function indexesIn(x: NodeXfrm): number[] {
  const s = new Set([...x.states.map(stateIndex), ...peerPolicies(x).map((p) => ((p.mark?.value ?? 0) >>> 12) & 0xf)]);
  return [...s].sort((a, b) => a - b);
}

/** The backend's objects that belong to the node with this address and node ID. */
export function objectsOf(x: NodeXfrm, ip: string, nodeId: number): string[] {
  return [
    ...x.states.filter((s) => s.src === ip || s.dst === ip).map((s) => `state ${s.src}→${s.dst} spi 0x${s.spi.toString(16)}`),
    ...x.policies
      .filter((p) => p.tmpl.some((t) => t.src === ip || t.dst === ip) || (p.mark && p.mark.value >>> 16 === nodeId))
      .map((p) => `policy ${p.dir} mark 0x${(p.mark?.value ?? 0).toString(16)}`),
  ];
}

/** Polls `check` (why not yet, or undefined when done) every `everyMs` until done or `timeoutMs`; returns the last reason. */
export async function pollUntil(
  timeoutMs: number,
  check: () => Promise<string | undefined>,
  everyMs = 500,
): Promise<string | undefined> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    let why: string | undefined;
    try {
      why = await check();
    } catch (err) {
      why = err instanceof Error ? err.message : String(err);
    }
    if (why === undefined || Date.now() > deadline) return why;
    await sleep(everyMs);
  }
}

// ---- key rotation -----------------------------------------------------------------------------

interface AgentConfigFile {
  encryption?: { ipsec?: { keyFile?: string; keyRotationDuration?: string } };
}

/** The node's key file and rotation window, from the config the lab gave its agent. */
export function ipsecSettings(n: LabNode): { keyFile: string; rotationDuration: string } {
  const c = JSON.parse(readFileSync(n.configFile, 'utf8')) as AgentConfigFile;
  const keyFile = c.encryption?.ipsec?.keyFile;
  if (!keyFile) throw new Error(`${n.name}: its agent config names no encryption.ipsec.keyFile (not an IPsec lab?)`);
  return { keyFile, rotationDuration: c.encryption?.ipsec?.keyRotationDuration ?? '5m' };
}

/** The key index of a key file's line (`<spi>[+] …`). */
export function keyFileIndex(text: string): number {
  const m = /^\s*(\d+)\+?\s/m.exec(text);
  if (!m) throw new Error('key file has no `<index>[+] algo key bits` line');
  return Number(m[1]);
}

/** Next key index after `i` (1..15, wrapping). */
export function nextKeyIndex(i: number): number {
  return i >= 15 ? 1 : i + 1;
}

/** Writes a key file the way the kubelet updates a Secret volume: a new file renamed over the old, never a partial one. */
export function writeKeyFileAtomically(file: string, text: string): void {
  writeFileSync(`${file}.rollout`, text, { mode: 0o600 });
  renameSync(`${file}.rollout`, file);
}

export interface RotationTiming {
  from: number;
  to: number;
  nodes: number;
  /** Pause between two nodes' key file changes (the rollout). */
  staggerMs: number;
  /** The agents' `encryption.ipsec.keyRotationDuration`, ms. */
  keyRotationDurationMs: number;
  /** From the first key file change until the last node's agent reports the new index (status `currentIndex`). */
  lastPickedUpMs: number;
  /** From the first key file change until the last old-index state or policy left the last node's kernel. */
  reclaimedMs: number;
  /**
   * The earliest the last old state can go: the last node's change plus keyRotationDuration (a node
   * keeps the old index that long after its own change).
   */
  floorMs: number;
}

/**
 * Rotates the lab's IPsec key: a fresh key (the backend's `keygen`) for the next index is rolled
 * out to every node's key file, `staggerMs` apart, then waits until every agent reports the new
 * index and every node's kernel holds nothing but the new index's states and per-peer policies.
 * Returns the timing, or throws why it did not converge within `timeoutMs` after the rollout.
 */
export async function rotateIpsecKey(
  nodes: readonly LabNode[],
  opts: {
    staggerMs: number;
    timeoutMs: number;
    currentIndex: (n: LabNode) => Promise<number | undefined>;
    onRolledOut?: (to: number) => void;
  },
): Promise<RotationTiming> {
  const { keygen } = await import('@veil/backend-ipsec');
  const { parseDuration } = await import('@veil/agent-core');
  const settings = nodes.map(ipsecSettings);
  const first = settings[0];
  if (!first) throw new Error('no nodes');
  const from = keyFileIndex(readFileSync(first.keyFile, 'utf8'));
  const to = nextKeyIndex(from);
  const keyRotationDurationMs = parseDuration(first.rotationDuration);
  const line = keygen({ spi: to }) + '\n';
  const t0 = Date.now();
  const pickedUp = new Map<string, number>();
  const watchPickup = async (): Promise<void> => {
    for (const n of nodes)
      if (!pickedUp.has(n.name) && (await opts.currentIndex(n)) === to) pickedUp.set(n.name, Date.now() - t0);
  };
  const written = new Set<string>();
  let lastWriteMs = 0;
  for (const [i, s] of settings.entries()) {
    if (i > 0) {
      const until = t0 + i * opts.staggerMs;
      while (Date.now() < until) {
        await watchPickup();
        await sleep(Math.min(250, Math.max(0, until - Date.now())));
      }
    }
    // Nodes sharing one key file (an older lab) change together.
    if (written.has(s.keyFile)) continue;
    writeKeyFileAtomically(s.keyFile, line);
    written.add(s.keyFile);
    lastWriteMs = Date.now() - t0;
  }
  opts.onRolledOut?.(to);
  const reclaimed = new Map<string, number>();
  const why = await pollUntil(
    opts.timeoutMs + keyRotationDurationMs,
    async () => {
      await watchPickup();
      const views = await Promise.all(nodes.map((n) => (reclaimed.has(n.name) ? Promise.resolve(undefined) : nodeXfrm(n.netns))));
      for (const [i, v] of views.entries()) {
        const n = nodes[i] as LabNode;
        if (v && indexesIn(v).every((k) => k === to) && v.states.length > 0) reclaimed.set(n.name, Date.now() - t0);
      }
      const notPicked = nodes.filter((n) => !pickedUp.has(n.name)).map((n) => n.name);
      if (notPicked.length > 0) return `agents not on key index ${to}: ${notPicked.join(', ')}`;
      const left = nodes
        .map((n, i) => (reclaimed.has(n.name) ? undefined : `${n.name} has indexes ${indexesIn(views[i] as NodeXfrm).join(',')}`))
        .filter(Boolean);
      return left.length > 0 ? `old key index not reclaimed: ${left.join('; ')}` : undefined;
    },
    250,
  );
  if (why) throw new Error(`rotation ${from} → ${to}: ${why}`);
  return {
    from,
    to,
    nodes: nodes.length,
    staggerMs: opts.staggerMs,
    keyRotationDurationMs,
    lastPickedUpMs: Math.max(...pickedUp.values()),
    reclaimedMs: Math.max(...reclaimed.values()),
    floorMs: lastWriteMs + keyRotationDurationMs,
  };
}

// ---- ghost nodes ------------------------------------------------------------------------------

/** The annotations an IPsec node publishes, for a ghost (a Node object without an agent). */
export function ghostIpsecAnnotations(o: {
  nodeId: number;
  underlayIP: string;
  keyIndex: number;
  bootId: string;
}): Record<string, string> {
  return {
    'veil.io/node-id': String(o.nodeId),
    'veil.io/ipsec-boot-id': o.bootId,
    'veil.io/ipsec-tunnel-ips': o.underlayIP,
    'veil.io/ipsec-key-index': String(o.keyIndex),
    'veil.io/ipsec-epoch': '0',
  };
}

/** Waits until every node's kernel has states to and from the ghost (so its deletion has something to remove). */
export async function waitGhostProgrammed(
  nodes: readonly LabNode[],
  ghost: { name: string; underlayIP: string; id: number },
  timeoutMs: number,
): Promise<string | undefined> {
  return pollUntil(timeoutMs, async () => {
    const missing: string[] = [];
    for (const n of nodes) {
      const x = await nodeXfrm(n.netns);
      const out = x.states.some((s) => s.dst === ghost.underlayIP);
      const inb = x.states.some((s) => s.src === ghost.underlayIP);
      const pol = x.policies.some((p) => p.tmpl.some((t) => t.dst === ghost.underlayIP));
      if (!out || !inb || !pol) missing.push(`${n.name} (out state ${out}, in state ${inb}, out policy ${pol})`);
    }
    return missing.length > 0 ? `${ghost.name} not programmed on ${missing.join(', ')}` : undefined;
  });
}

/** Waits until no node's kernel holds a state or policy of the (deleted) ghost; returns what is left on timeout. */
export async function waitGhostGone(
  nodes: readonly LabNode[],
  ghost: { name: string; underlayIP: string; id: number },
  timeoutMs: number,
): Promise<string | undefined> {
  return pollUntil(timeoutMs, async () => {
    const left: string[] = [];
    for (const n of nodes) {
      const objs = objectsOf(await nodeXfrm(n.netns), ghost.underlayIP, ghost.id);
      if (objs.length > 0) left.push(`${n.name}: ${objs.join(', ')}`);
    }
    return left.length > 0 ? `deleted node ${ghost.name} still in the kernel: ${left.join('; ')}` : undefined;
  });
}

// ---- drift: a flush behind the agent's back ----------------------------------------------------

export interface FlushResult {
  /** The backend's states in the node's kernel before the flush. */
  statesBefore: number;
  /** The agent's `driftRepairs` before and after. */
  repairsBefore: number;
  repairsAfter: number;
  /** From the flush until the node's kernel held as many of the backend's states again. */
  restoredMs: number;
}

/**
 * `ip xfrm state deleteall` in a node's namespace, then waits until the kernel holds as many of the
 * backend's states as before and the agent counted the repair (its status `driftRepairs`).
 */
export async function flushStates(
  node: LabNode,
  repairs: () => Promise<number | undefined>,
  timeoutMs: number,
): Promise<FlushResult> {
  const before = await nodeXfrm(node.netns);
  const repairsBefore = (await repairs()) ?? 0;
  if (before.states.length === 0) throw new Error(`${node.name} has no IPsec states to flush`);
  const t0 = Date.now();
  const r = await run('ip', ['netns', 'exec', node.netns, 'ip', 'xfrm', 'state', 'deleteall'], { timeoutMs: 60_000 });
  if (r.code !== 0) throw new Error(`ip xfrm state deleteall: ${r.stderr.trim()}`);
  let restoredMs = -1;
  let repairsAfter = repairsBefore;
  const why = await pollUntil(timeoutMs, async () => {
    if (restoredMs < 0) {
      const now = await nodeXfrm(node.netns);
      if (now.states.length < before.states.length)
        return `${node.name} holds ${now.states.length}/${before.states.length} states after the flush`;
      restoredMs = Date.now() - t0;
    }
    repairsAfter = (await repairs()) ?? repairsAfter;
    return repairsAfter > repairsBefore ? undefined : `${node.name}'s agent counted no repair (driftRepairs ${repairsAfter})`;
  });
  if (why) throw new Error(why);
  return { statesBefore: before.states.length, repairsBefore, repairsAfter, restoredMs };
}
