import { canonicalCidr, ipFamily } from '@veil/ip';
import { type IpcacheValue, type IpcacheValueInput, ipcacheValue } from '@veil/bpf';
import { IpcacheFlags, sameIpcacheEntry, type IpcacheEntry } from '@veil/agent-core';
import { DatapathArgumentError } from './errors.js';

// The interface's IpcacheEntry is per NODE; the BPF ipcache is per PREFIX. This module maps
// one onto the other (pure: no kernel), so the diffing is unit-tested without privileges.

/** Flags a peer entry may carry (LOCAL entries are discovered from routes, never upserted). */
const PEER_FLAGS = IpcacheFlags.REMOTE | IpcacheFlags.ENCRYPT_READY | IpcacheFlags.IS_NODE;

/** "10.1.0.0/24" / "fd00::/64" with host bits zeroed: the text of an ipcache key. */
export function canonicalPrefix(text: unknown, field: string): string {
  if (typeof text !== 'string' || text.length === 0)
    throw new DatapathArgumentError(field, `needs a CIDR or IP string, got ${String(text)}`);
  return canonicalCidr(text, () => new DatapathArgumentError(field, `'${text}' is not a valid IP address or CIDR`));
}

function hostPrefix(ip: unknown, field: string): string {
  if (ipFamily(ip) === undefined) throw new DatapathArgumentError(field, `'${String(ip)}' is not an IP address`);
  return canonicalPrefix(ip, field);
}

/** `ip/32` or `ip/128` for a normalized node IP. */
function hostCidr(ip: string): string {
  return `${ip}/${ipFamily(ip) === 4 ? 32 : 128}`;
}

function checkInt(field: string, v: unknown, max: number): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v > max) {
    throw new DatapathArgumentError(field, `needs an integer in [0, ${max}], got ${String(v)}`);
  }
  return v;
}

/**
 * Validates a peer entry and returns it with canonical IP/CIDR texts. Throws
 * {@link DatapathArgumentError} naming the bad field.
 */
export function normalizeEntry(e: IpcacheEntry, field = 'entry'): IpcacheEntry {
  if (e === null || typeof e !== 'object') throw new DatapathArgumentError(field, 'needs an object');
  if (typeof e.nodeName !== 'string' || e.nodeName.length === 0)
    throw new DatapathArgumentError(`${field}.nodeName`, 'needs a non-empty string');
  if (!Array.isArray(e.nodeIPs)) throw new DatapathArgumentError(`${field}.nodeIPs`, 'needs an array of IP addresses');
  if (!Array.isArray(e.podCIDRs)) throw new DatapathArgumentError(`${field}.podCIDRs`, 'needs an array of CIDRs');
  const flags = checkInt(`${field}.flags`, e.flags, 0xff);
  if ((flags & ~PEER_FLAGS) !== 0) {
    throw new DatapathArgumentError(
      `${field}.flags`,
      `0x${flags.toString(16)} has bits outside REMOTE|ENCRYPT_READY|IS_NODE (LOCAL entries are discovered, not upserted)`,
    );
  }
  const nodeIPs = e.nodeIPs.map((ip, i) => hostPrefix(ip, `${field}.nodeIPs[${i}]`).split('/')[0] as string);
  const podCIDRs = e.podCIDRs.map((c, i) => canonicalPrefix(c, `${field}.podCIDRs[${i}]`));
  return {
    nodeName: e.nodeName,
    nodeIPs,
    podCIDRs,
    flags,
    keyIndex: checkInt(`${field}.keyIndex`, e.keyIndex, 15),
    nodeId: checkInt(`${field}.nodeId`, e.nodeId, 0xffff),
  };
}

/**
 * The map entries one node owns: every pod CIDR (value flags = entry flags) and every node IP as
 * a host prefix with IS_NODE. `nodeIp` is the node IP of the prefix's family when there is one,
 * else the first. Input must be normalized.
 *
 * Node IPs are steered into encryption (entry flags + IS_NODE) only with `encryptNodeIPs` (node
 * encryption on): only then does the backend accept them (e.g. in a WireGuard peer's allowed IPs).
 * Otherwise they are recorded as IS_NODE alone, which the programs pass in clear like any
 * non-REMOTE destination (a pod talking to another node's kubelet must not be black-holed).
 */
export function entryPrefixes(e: IpcacheEntry, encryptNodeIPs = true): Map<string, IpcacheValueInput> {
  const out = new Map<string, IpcacheValueInput>();
  const v4 = e.nodeIPs.find((ip) => ipFamily(ip) === 4);
  const v6 = e.nodeIPs.find((ip) => ipFamily(ip) === 6);
  const base = (flags: number, nodeIp: string | undefined): IpcacheValueInput => ({
    remote: (flags & IpcacheFlags.REMOTE) !== 0,
    encryptReady: (flags & IpcacheFlags.ENCRYPT_READY) !== 0,
    isNode: (flags & IpcacheFlags.IS_NODE) !== 0,
    ...(nodeIp !== undefined ? { nodeIp } : {}),
    nodeId: e.nodeId,
    keyIndex: e.keyIndex,
  });
  for (const c of e.podCIDRs) out.set(c, base(e.flags, (c.includes(':') ? v6 : v4) ?? e.nodeIPs[0]));
  const nodeFlags = encryptNodeIPs ? e.flags | IpcacheFlags.IS_NODE : IpcacheFlags.IS_NODE;
  for (const ip of e.nodeIPs) out.set(hostCidr(ip), base(nodeFlags, ip));
  return out;
}

const scratchA = Buffer.alloc(ipcacheValue.size);
const scratchB = Buffer.alloc(ipcacheValue.size);

/** True when the map already holds exactly `want` (byte-wise, as the programs see it). */
export function sameValue(have: IpcacheValue | IpcacheValueInput | undefined, want: IpcacheValueInput): boolean {
  if (!have) return false;
  ipcacheValue.encode(have, scratchA, 0);
  ipcacheValue.encode(want, scratchB, 0);
  return scratchA.equals(scratchB);
}

/** What one full sync must write and delete, plus the node-level result. */
export interface SyncPlan {
  readonly updates: [string, IpcacheValueInput][];
  readonly deletes: string[];
  readonly added: string[];
  readonly updated: string[];
  readonly removed: string[];
  /** The node index after the plan is applied. */
  readonly index: Map<string, IpcacheEntry>;
}

/**
 * Diffs `desired` (normalized, unique names) against what the map holds (`current`: prefix →
 * value, LOCAL entries already excluded) and the node index (`known`: adopted + programmed).
 * Unchanged prefixes are not rewritten; prefixes no desired node owns are deleted (including
 * orphans whose owner was never recorded). A desired prefix is owned by the last node naming it.
 */
export function planSync(
  current: ReadonlyMap<string, IpcacheValue>,
  known: ReadonlyMap<string, IpcacheEntry>,
  desired: readonly IpcacheEntry[],
  localPrefixes: ReadonlySet<string> = new Set(),
  encryptNodeIPs = true,
): SyncPlan {
  const want = new Map<string, IpcacheValueInput>();
  const dirtyNodes = new Set<string>();
  const owner = new Map<string, string>();
  for (const e of desired) {
    for (const [p, v] of entryPrefixes(e, encryptNodeIPs)) {
      if (localPrefixes.has(p)) continue; // a local pod / CIDR wins over a remote claim
      want.set(p, v);
      owner.set(p, e.nodeName);
    }
  }
  const updates: [string, IpcacheValueInput][] = [];
  for (const [p, v] of want) {
    if (!sameValue(current.get(p), v)) {
      updates.push([p, v]);
      dirtyNodes.add(owner.get(p) as string);
    }
  }
  const deletes: string[] = [];
  for (const p of current.keys()) if (!want.has(p)) deletes.push(p);

  const added: string[] = [],
    updated: string[] = [],
    removed: string[] = [];
  const index = new Map<string, IpcacheEntry>();
  for (const e of desired) {
    const prev = known.get(e.nodeName);
    if (!prev) added.push(e.nodeName);
    else if (!sameIpcacheEntry(prev, e) || dirtyNodes.has(e.nodeName)) updated.push(e.nodeName);
    index.set(e.nodeName, e);
  }
  for (const name of known.keys()) if (!index.has(name)) removed.push(name);
  return { updates, deletes, added, updated, removed, index };
}

/**
 * Which recorded entries the map still backs exactly: an entry is adopted only when every prefix
 * it owns is in the map with the value it would write now. Anything else is left for the
 * reconciler to reprogram (upsert) or for syncPeers to delete.
 */
export function verifyAdopted(
  recorded: readonly IpcacheEntry[],
  lookup: (prefix: string) => IpcacheValue | undefined,
  encryptNodeIPs = true,
): { adopted: IpcacheEntry[]; rejected: string[] } {
  const adopted: IpcacheEntry[] = [];
  const rejected: string[] = [];
  const claimed = new Set<string>();
  for (const raw of recorded) {
    let e: IpcacheEntry;
    try {
      e = normalizeEntry(raw, 'state');
    } catch {
      rejected.push(String(raw?.nodeName));
      continue;
    }
    const prefixes = entryPrefixes(e, encryptNodeIPs);
    let ok = true;
    for (const [p, v] of prefixes) {
      if (claimed.has(p) || !sameValue(lookup(p), v)) {
        ok = false;
        break;
      }
    }
    if (ok) {
      for (const p of prefixes.keys()) claimed.add(p);
      adopted.push(e);
    } else rejected.push(e.nodeName);
  }
  return { adopted, rejected };
}

/** Compiles glob-like interface name patterns (`*` any run, `?` one character) into one matcher. */
export function namePatternMatcher(patterns: readonly string[], field = 'options.podVethPatterns'): (name: string) => boolean {
  if (!Array.isArray(patterns)) throw new DatapathArgumentError(field, 'needs an array of patterns');
  const res = patterns.map((p, i) => {
    if (typeof p !== 'string' || p.length === 0 || p.length > 64)
      throw new DatapathArgumentError(`${field}[${i}]`, `needs a non-empty pattern, got ${String(p)}`);
    const body = p
      .replace(/[.+^${}()|[\]\\]/g, '\\$&')
      .replace(/\*/g, '.*')
      .replace(/\?/g, '.');
    return new RegExp(`^${body}$`);
  });
  return (name) => res.some((r) => r.test(name));
}
