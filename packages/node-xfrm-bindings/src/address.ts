import { isIPv6 } from 'node:net';
import { XfrmValidationError } from './errors.js';
import { AF_INET, AF_INET6 } from './nl/constants.js';

/** Address family of an IP address or prefix. */
export type IpFamily = 'ipv4' | 'ipv6';

/** A parsed address: family plus the 16-byte xfrm_address_t form (IPv4 in the first 4 bytes). */
export interface ParsedIp {
  family: IpFamily;
  bytes: Uint8Array;
}

/** A parsed prefix: address bytes, family and prefix length. */
export interface ParsedCidr extends ParsedIp {
  prefixLen: number;
}

export function afOf(family: IpFamily): number {
  return family === 'ipv4' ? AF_INET : AF_INET6;
}

export function familyOfAf(af: number): IpFamily | undefined {
  return af === AF_INET ? 'ipv4' : af === AF_INET6 ? 'ipv6' : undefined;
}

function parseV6(s: string): Uint8Array {
  let str = s;
  // An embedded dotted quad (::ffff:1.2.3.4) is rewritten as its two hex groups first.
  const lastColon = str.lastIndexOf(':');
  const last = str.slice(lastColon + 1);
  if (last.includes('.')) {
    const q = last.split('.').map(Number);
    const hi = (((q[0] ?? 0) << 8) | (q[1] ?? 0)).toString(16);
    const lo = (((q[2] ?? 0) << 8) | (q[3] ?? 0)).toString(16);
    str = `${str.slice(0, lastColon + 1)}${hi}:${lo}`;
  }
  const groupsOf = (p: string): number[] => (p === '' ? [] : p.split(':').map((g) => parseInt(g, 16)));
  const dbl = str.indexOf('::');
  let groups: number[];
  if (dbl < 0) {
    groups = groupsOf(str);
  } else {
    const head = groupsOf(str.slice(0, dbl));
    const tail = groupsOf(str.slice(dbl + 2));
    groups = [...head, ...new Array<number>(8 - head.length - tail.length).fill(0), ...tail];
  }
  const out = new Uint8Array(16);
  groups.forEach((g, i) => {
    out[i * 2] = g >> 8;
    out[i * 2 + 1] = g & 0xff;
  });
  return out;
}

/** Dotted-quad fast path (hot in bulk policy installs); undefined if `s` is not strict IPv4. */
function parseV4(s: string, out: Uint8Array): boolean {
  let octet = 0;
  let digits = 0;
  let part = 0;
  for (let i = 0; i <= s.length; i++) {
    const c = i < s.length ? s.charCodeAt(i) : 46; // a virtual trailing '.'
    if (c >= 48 && c <= 57) {
      // No leading zeros ("010" is octal to some parsers), at most 3 digits.
      if ((digits === 1 && octet === 0) || digits === 3) return false;
      octet = octet * 10 + (c - 48);
      digits++;
    } else if (c === 46) {
      if (digits === 0 || octet > 255 || part > 3) return false;
      out[part++] = octet;
      octet = 0;
      digits = 0;
    } else {
      return false;
    }
  }
  return part === 4;
}

/**
 * Parses an IPv4 or IPv6 address into xfrm_address_t bytes. `field` names the input in errors.
 */
export function parseIp(field: string, s: unknown): ParsedIp {
  if (typeof s !== 'string') throw new XfrmValidationError(field, `expected an IP address string, got ${typeof s}`);
  const bytes = new Uint8Array(16);
  if (parseV4(s, bytes)) return { family: 'ipv4', bytes };
  if (s.includes(':') && !s.includes('%') && isIPv6(s)) return { family: 'ipv6', bytes: parseV6(s) };
  throw new XfrmValidationError(field, `${JSON.stringify(s)} is not an IPv4 or IPv6 address`);
}

/**
 * Parses `addr/len` (or a bare address, meaning /32 or /128). Host bits beyond the prefix are
 * rejected: the kernel keeps them verbatim, which makes later lookups by selector surprising.
 */
export function parseCidr(field: string, s: unknown): ParsedCidr {
  if (typeof s !== 'string') throw new XfrmValidationError(field, `expected a CIDR string, got ${typeof s}`);
  const slash = s.indexOf('/');
  const ip = parseIp(field, slash < 0 ? s : s.slice(0, slash));
  const max = ip.family === 'ipv4' ? 32 : 128;
  let prefixLen = max;
  if (slash >= 0) {
    const lenStr = s.slice(slash + 1);
    let n = 0;
    let ok = lenStr.length >= 1 && lenStr.length <= 3;
    for (let i = 0; ok && i < lenStr.length; i++) {
      const c = lenStr.charCodeAt(i);
      if (c < 48 || c > 57) ok = false;
      else n = n * 10 + (c - 48);
    }
    if (!ok || n > max) throw new XfrmValidationError(field, `${JSON.stringify(s)}: prefix length must be 0..${max}`);
    prefixLen = n;
  }
  if (hasHostBits(ip.bytes, prefixLen)) {
    const masked = maskBytes(ip.bytes, prefixLen);
    throw new XfrmValidationError(field, `${JSON.stringify(s)} has host bits set (did you mean ${formatCidr(ip.family, masked, prefixLen)}?)`);
  }
  return { family: ip.family, bytes: ip.bytes, prefixLen };
}

function hasHostBits(bytes: Uint8Array, prefixLen: number): boolean {
  for (let i = 0; i < 16; i++) {
    const bits = prefixLen - i * 8;
    const b = bytes[i] as number;
    if (bits >= 8) continue;
    if (bits <= 0 ? b !== 0 : (b & (0xff >> bits)) !== 0) return true;
  }
  return false;
}

function maskBytes(bytes: Uint8Array, prefixLen: number): Uint8Array {
  const out = new Uint8Array(16);
  for (let i = 0; i < 16; i++) {
    const bits = Math.max(0, Math.min(8, prefixLen - i * 8));
    out[i] = (bytes[i] ?? 0) & ((0xff << (8 - bits)) & 0xff);
  }
  return out;
}

/** Formats xfrm_address_t bytes: dotted quad, or RFC 5952 compressed IPv6. */
export function formatIp(family: IpFamily, bytes: Uint8Array): string {
  if (family === 'ipv4') return `${bytes[0]}.${bytes[1]}.${bytes[2]}.${bytes[3]}`;
  const groups: number[] = [];
  for (let i = 0; i < 8; i++) groups.push(((bytes[i * 2] ?? 0) << 8) | (bytes[i * 2 + 1] ?? 0));
  // Longest run of two or more zero groups becomes '::' (first one wins on ties).
  let bestStart = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen) {
      bestStart = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = (g: number[]): string => g.map((x) => x.toString(16)).join(':');
  if (bestStart < 0) return hex(groups);
  return `${hex(groups.slice(0, bestStart))}::${hex(groups.slice(bestStart + bestLen))}`;
}

export function formatCidr(family: IpFamily, bytes: Uint8Array, prefixLen: number): string {
  return `${formatIp(family, bytes)}/${prefixLen}`;
}

/** True when all 16 bytes are zero (an unset xfrm_address_t). */
export function isZeroAddress(bytes: Uint8Array): boolean {
  return bytes.every((b) => b === 0);
}
