import { isIPv6 } from 'node:net';
import { formatIp as formatNetlinkIp, parseIp as parseNetlinkIp } from '@veil/netlink';
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
  // IPv6 text goes through @veil/netlink's parser, the one the other netlink families use.
  if (s.includes(':') && !s.includes('%') && isIPv6(s)) return { family: 'ipv6', bytes: new Uint8Array(parseNetlinkIp(s, field).bytes) };
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
  return formatNetlinkIp(Buffer.from(bytes.buffer, bytes.byteOffset, 16));
}

export function formatCidr(family: IpFamily, bytes: Uint8Array, prefixLen: number): string {
  return `${formatIp(family, bytes)}/${prefixLen}`;
}

/** True when all 16 bytes are zero (an unset xfrm_address_t). */
export function isZeroAddress(bytes: Uint8Array): boolean {
  return bytes.every((b) => b === 0);
}
