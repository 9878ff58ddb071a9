import { isIPv4, isIPv6 } from 'node:net';
import type { Cidr } from '../types/index.js';

/** Parses an IP address to (family, integer); undefined if malformed. */
export function parseIP(text: string): { family: 4 | 6; value: bigint } | undefined {
  if (isIPv4(text)) {
    let v = 0n;
    for (const part of text.split('.')) v = (v << 8n) | BigInt(Number(part));
    return { family: 4, value: v };
  }
  if (isIPv6(text)) {
    let t = text;
    // Embedded IPv4 tail (::ffff:1.2.3.4).
    const v4 = /(\d+\.\d+\.\d+\.\d+)$/.exec(t);
    if (v4) {
      const n = parseIP(v4[1] as string)!.value;
      t = t.slice(0, -(v4[1] as string).length) + `${(n >> 16n).toString(16)}:${(n & 0xffffn).toString(16)}`;
    }
    const [head, tail] = t.includes('::') ? (t.split('::') as [string, string]) : [t, undefined];
    const h = head ? head.split(':') : [];
    const tl = tail === undefined ? [] : tail ? tail.split(':') : [];
    const groups = tail === undefined ? h : [...h, ...Array<string>(8 - h.length - tl.length).fill('0'), ...tl];
    let v = 0n;
    for (const g of groups) v = (v << 16n) | BigInt(parseInt(g, 16));
    return { family: 6, value: v };
  }
  return undefined;
}

function formatIP(family: 4 | 6, v: bigint): string {
  if (family === 4) return [24n, 16n, 8n, 0n].map((s) => String((v >> s) & 0xffn)).join('.');
  const groups: string[] = [];
  for (let i = 7; i >= 0; i--) groups.push(((v >> BigInt(i * 16)) & 0xffffn).toString(16));
  // Compress the longest run of zero groups (RFC 5952).
  let best = -1, bestLen = 0;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== '0') { i++; continue; }
    let j = i;
    while (j < 8 && groups[j] === '0') j++;
    if (j - i > bestLen && j - i > 1) { best = i; bestLen = j - i; }
    i = j;
  }
  if (best < 0) return groups.join(':');
  return `${groups.slice(0, best).join(':')}::${groups.slice(best + bestLen).join(':')}`;
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

/** Parses a canonical CIDR (no host bits set); returns a reason string if malformed. */
export function parseCidr(text: string): Cidr | string {
  const slash = text.indexOf('/');
  if (slash < 0) return `"${text}" is not a CIDR (missing /prefix)`;
  const ip = parseIP(text.slice(0, slash));
  const lenText = text.slice(slash + 1);
  if (!ip) return `"${text}" has a malformed address`;
  if (!/^\d{1,3}$/.test(lenText)) return `"${text}" has a malformed prefix length`;
  const len = Number(lenText);
  const bits = ip.family === 4 ? 32 : 128;
  if (len > bits) return `"${text}" prefix length exceeds ${bits}`;
  const hostMask = (1n << BigInt(bits - len)) - 1n;
  if ((ip.value & hostMask) !== 0n) return `"${text}" has host bits set`;
  return { family: ip.family, prefixLength: len, network: ip.value, text: `${formatIP(ip.family, ip.value)}/${len}` };
}

/**
 * Index of CIDRs owned by nodes, answering "which other node's CIDR overlaps this one".
 * Lookups probe each prefix length present, so cost is bounded by the number of distinct prefix
 * lengths (a handful in real clusters), not by the number of nodes.
 */
export class CidrIndex {
  /** family → prefix length → network → owner */
  private readonly byLen = new Map<number, Map<number, Map<bigint, string>>>([
    [4, new Map()],
    [6, new Map()],
  ]);

  add(c: Cidr, owner: string): void {
    const lens = this.byLen.get(c.family)!;
    let m = lens.get(c.prefixLength);
    if (!m) lens.set(c.prefixLength, (m = new Map()));
    m.set(c.network, owner);
  }

  remove(c: Cidr, owner: string): void {
    const m = this.byLen.get(c.family)!.get(c.prefixLength);
    if (m?.get(c.network) === owner) m.delete(c.network);
  }

  /** Owner of a CIDR overlapping `c`, other than `self`. */
  overlapping(c: Cidr, self: string): string | undefined {
    const bits = c.family === 4 ? 32 : 128;
    for (const [len, m] of this.byLen.get(c.family)!) {
      if (m.size === 0) continue;
      if (len <= c.prefixLength) {
        // An existing prefix that contains (or equals) c.
        const net = (c.network >> BigInt(bits - len)) << BigInt(bits - len);
        const owner = m.get(net);
        if (owner !== undefined && owner !== self) return owner;
      } else {
        // Existing longer prefixes inside c: enumerate when few, else scan.
        const count = 1n << BigInt(len - c.prefixLength);
        if (count <= BigInt(m.size)) {
          const step = 1n << BigInt(bits - len);
          for (let i = 0n; i < count; i++) {
            const owner = m.get(c.network + i * step);
            if (owner !== undefined && owner !== self) return owner;
          }
        } else {
          const shift = BigInt(bits - c.prefixLength);
          for (const [net, owner] of m) if (owner !== self && net >> shift === c.network >> shift) return owner;
        }
      }
    }
    return undefined;
  }
}
