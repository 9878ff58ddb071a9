import {
  type IpFailure,
  describeIpProblem,
  formatIPv4,
  formatIPv6,
  hasHostBits,
  parseIPv4Into,
  parseIPv6Into,
  parsePrefix,
  parsePrefixLength,
} from '@veil/ip';
import { XfrmValidationError } from './errors.js';
import { AF_INET, AF_INET6 } from './nl/constants.js';

// Addresses are parsed and formatted by @veil/ip; this file adapts them to XFRM's 16-byte
// xfrm_address_t form and 'ipv4'/'ipv6' family names, and raises XfrmValidationError.

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

/**
 * Parses an IPv4 or IPv6 address into xfrm_address_t bytes. `field` names the input in errors.
 * Written straight into the 16 bytes (hot in bulk policy installs).
 */
export function parseIp(field: string, s: unknown): ParsedIp {
  if (typeof s !== 'string') throw new XfrmValidationError(field, `expected an IP address string, got ${typeof s}`);
  const bytes = new Uint8Array(16);
  if (parseIPv4Into(s, bytes)) return { family: 'ipv4', bytes };
  if (parseIPv6Into(s, bytes)) return { family: 'ipv6', bytes };
  throw new XfrmValidationError(field, `${JSON.stringify(s)} is not an IPv4 or IPv6 address`);
}

function cidrFailure(field: string): IpFailure {
  return (problem, input) => {
    if (problem.code === 'not-a-string') return new XfrmValidationError(field, `expected a CIDR string, got ${typeof input}`);
    // A bad address is shown alone, as parseIp shows it.
    const text = String(input);
    const shown = problem.code === 'bad-address' && text.includes('/') ? text.slice(0, text.indexOf('/')) : text;
    return new XfrmValidationError(field, describeIpProblem(problem, shown));
  };
}

/**
 * Parses `addr/len` (or a bare address, meaning /32 or /128). Host bits beyond the prefix are
 * rejected: the kernel keeps them verbatim, which makes later lookups by selector surprising.
 */
export function parseCidr(field: string, s: unknown): ParsedCidr {
  if (typeof s === 'string') {
    // Hot in bulk policy installs: @veil/ip's allocation-free pieces, straight into xfrm_address_t.
    const slash = s.indexOf('/');
    const addr = slash < 0 ? s : s.slice(0, slash);
    const bytes = new Uint8Array(16);
    const family = parseIPv4Into(addr, bytes) ? 'ipv4' : parseIPv6Into(addr, bytes) ? 'ipv6' : undefined;
    const max = family === 'ipv4' ? 32 : 128;
    const prefixLen = slash < 0 ? max : parsePrefixLength(s.slice(slash + 1));
    if (family !== undefined && prefixLen >= 0 && prefixLen <= max && !hasHostBits(bytes, prefixLen))
      return { family, bytes, prefixLen };
  }
  // Anything else: @veil/ip's parser names the problem (it throws for every input the path above refuses).
  const p = parsePrefix(s, { hostBits: 'reject' }, cidrFailure(field));
  const bytes = new Uint8Array(16);
  bytes.set(p.bytes);
  return { family: p.family === 4 ? 'ipv4' : 'ipv6', bytes, prefixLen: p.prefixLen };
}

/** Formats xfrm_address_t bytes: dotted quad, or RFC 5952 compressed IPv6. */
export function formatIp(family: IpFamily, bytes: Uint8Array): string {
  return family === 'ipv4' ? formatIPv4(bytes) : formatIPv6(bytes);
}

export function formatCidr(family: IpFamily, bytes: Uint8Array, prefixLen: number): string {
  return `${formatIp(family, bytes)}/${prefixLen}`;
}

/** True when all 16 bytes are zero (an unset xfrm_address_t). */
export function isZeroAddress(bytes: Uint8Array): boolean {
  return bytes.every((b) => b === 0);
}
