import { type IpFailure, formatPrefix, ipToBigInt, parsePrefix, tryParseIp } from '@veil/ip';
import type { Cidr } from '../types/index.js';

// Addresses are parsed and formatted by @veil/ip; this file keeps agent-core's integer view
// (`Cidr.network` as a bigint) for overlap checks, and its reason strings.

/** Parses an IP address to (family, integer); undefined if malformed. */
export function parseIP(text: string): { family: 4 | 6; value: bigint } | undefined {
  const ip = tryParseIp(text);
  return ip && { family: ip.family, value: ipToBigInt(ip.bytes) };
}

// Node updates mostly repeat the same addresses and prefixes: memoize parses (results are
// immutable). Bounded: cleared when full.
const CACHE_MAX = 65_536;
const cidrCache = new Map<string, Cidr | string>();
const ipCache = new Map<string, { family: 4 | 6; value: bigint } | undefined>();

/** Memoized {@link parseCidr}. */
export function parseCidrCached(text: string): Cidr | string {
  let c = cidrCache.get(text);
  if (c === undefined) {
    if (cidrCache.size >= CACHE_MAX) cidrCache.clear();
    c = parseCidr(text);
    cidrCache.set(text, c);
  }
  return c;
}

/** Memoized {@link parseIP}. */
export function parseIPCached(text: string): { family: 4 | 6; value: bigint } | undefined {
  if (ipCache.has(text)) return ipCache.get(text);
  if (ipCache.size >= CACHE_MAX) ipCache.clear();
  const ip = parseIP(text);
  ipCache.set(text, ip);
  return ip;
}

/** Carries a reason string out of @veil/ip's parser (parseCidr returns it rather than throwing). */
class CidrReason extends Error {}

const cidrReason: IpFailure = (problem, input) => {
  const text = String(input);
  switch (problem.code) {
    case 'missing-prefix-length':
      return new CidrReason(`"${text}" is not a CIDR (missing /prefix)`);
    case 'bad-prefix-length': {
      const lenText = text.slice(text.indexOf('/') + 1);
      return new CidrReason(
        /^\d{1,3}$/.test(lenText) && Number(lenText) > problem.max
          ? `"${text}" prefix length exceeds ${problem.max}`
          : `"${text}" has a malformed prefix length`,
      );
    }
    case 'host-bits':
      return new CidrReason(`"${text}" has host bits set`);
    default:
      return new CidrReason(`"${text}" has a malformed address`);
  }
};

/** Parses a canonical CIDR (no host bits set); returns a reason string if malformed. */
export function parseCidr(text: string): Cidr | string {
  try {
    const p = parsePrefix(text, { allowBare: false, hostBits: 'reject' }, cidrReason);
    return { family: p.family, prefixLength: p.prefixLen, network: ipToBigInt(p.bytes), text: formatPrefix(p) };
  } catch (err) {
    if (err instanceof CidrReason) return err.message;
    throw err;
  }
}

/**
 * The networks of one prefix length: a map for exact lookups and a sorted array for range
 * queries ("is any of these inside that shorter prefix?"), both O(log n).
 */
class LenTable {
  readonly owners = new Map<bigint, string>();
  /** The keys of `owners`, ascending. */
  private readonly sorted: bigint[] = [];

  get size(): number {
    return this.owners.size;
  }

  /** First index whose network is ≥ `x`. */
  private lowerBound(x: bigint): number {
    let lo = 0;
    let hi = this.sorted.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if ((this.sorted[mid] as bigint) < x) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  set(net: bigint, owner: string): void {
    if (!this.owners.has(net)) this.sorted.splice(this.lowerBound(net), 0, net);
    this.owners.set(net, owner);
  }

  delete(net: bigint): void {
    if (!this.owners.delete(net)) return;
    this.sorted.splice(this.lowerBound(net), 1);
  }

  /** An owner other than `self` of a network in [lo, hi). */
  ownerInRange(lo: bigint, hi: bigint, self: string): string | undefined {
    for (let i = this.lowerBound(lo); i < this.sorted.length; i++) {
      const net = this.sorted[i] as bigint;
      if (net >= hi) break;
      const owner = this.owners.get(net);
      if (owner !== undefined && owner !== self) return owner;
    }
    return undefined;
  }
}

/**
 * Index of CIDRs owned by nodes, answering "which other node's CIDR overlaps this one".
 * Lookups probe each prefix length present: an exact lookup for the shorter ones (which may
 * contain the CIDR) and a binary search for the longer ones (which may lie inside it). The cost is
 * the number of distinct prefix lengths (a handful in real clusters) × log(nodes).
 */
export class CidrIndex {
  /** family → prefix length → networks and owners */
  private readonly byLen = new Map<number, Map<number, LenTable>>([
    [4, new Map()],
    [6, new Map()],
  ]);

  add(c: Cidr, owner: string): void {
    const lens = this.byLen.get(c.family)!;
    let m = lens.get(c.prefixLength);
    if (!m) lens.set(c.prefixLength, (m = new LenTable()));
    m.set(c.network, owner);
  }

  remove(c: Cidr, owner: string): void {
    const m = this.byLen.get(c.family)!.get(c.prefixLength);
    if (m?.owners.get(c.network) === owner) m.delete(c.network);
  }

  /** Owner of a CIDR overlapping `c`, other than `self`. */
  overlapping(c: Cidr, self: string): string | undefined {
    const bits = c.family === 4 ? 32 : 128;
    for (const [len, m] of this.byLen.get(c.family)!) {
      if (m.size === 0) continue;
      if (len <= c.prefixLength) {
        // An existing prefix that contains (or equals) c.
        const shift = BigInt(bits - len);
        const owner = m.owners.get((c.network >> shift) << shift);
        if (owner !== undefined && owner !== self) return owner;
      } else {
        // Existing longer prefixes inside c: networks in [c.network, c.network + 2^(bits − len(c))).
        const owner = m.ownerInRange(c.network, c.network + (1n << BigInt(bits - c.prefixLength)), self);
        if (owner !== undefined) return owner;
      }
    }
    return undefined;
  }
}
