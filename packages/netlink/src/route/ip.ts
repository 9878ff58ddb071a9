import { isIPv4, isIPv6 } from 'node:net';
import { NetlinkDecodeError, NetlinkValidationError } from '../errors.js';
import { AF_INET, AF_INET6 } from './constants.js';

/** IP version. */
export type IpFamily = 4 | 6;

/** A parsed address: family and network-order bytes (4 or 16). */
export interface IpAddr {
  family: IpFamily;
  bytes: Buffer;
}

/** A parsed prefix such as 10.0.0.1/24 (host bits are kept; the kernel masks where it should). */
export interface IpPrefix extends IpAddr {
  prefixLen: number;
}

export function afOf(family: IpFamily): number {
  return family === 4 ? AF_INET : AF_INET6;
}

export function familyOfAf(af: number): IpFamily | undefined {
  return af === AF_INET ? 4 : af === AF_INET6 ? 6 : undefined;
}

function v6Bytes(s: string): Buffer {
  // Embedded IPv4 tail (::ffff:1.2.3.4) becomes two hextets.
  let text = s;
  const lastColon = text.lastIndexOf(':');
  const tail = text.slice(lastColon + 1);
  if (tail.includes('.')) {
    const b = tail.split('.').map(Number);
    text = `${text.slice(0, lastColon + 1)}${(((b[0] ?? 0) << 8) | (b[1] ?? 0)).toString(16)}:${(((b[2] ?? 0) << 8) | (b[3] ?? 0)).toString(16)}`;
  }
  const [head, rest] = text.split('::') as [string, string | undefined];
  const h = head ? head.split(':') : [];
  const t = rest === undefined ? [] : rest ? rest.split(':') : [];
  const fill = rest === undefined ? 0 : 8 - h.length - t.length;
  const groups = [...h, ...Array<string>(fill).fill('0'), ...t];
  const out = Buffer.alloc(16);
  groups.forEach((g, i) => out.writeUInt16BE(parseInt(g, 16), i * 2));
  return out;
}

/** Parses an IPv4/IPv6 address literal. `field` names the argument in errors. */
export function parseIp(text: unknown, field: string): IpAddr {
  if (typeof text !== 'string') throw new NetlinkValidationError(field, 'must be an IP address string', text);
  if (isIPv4(text)) return { family: 4, bytes: Buffer.from(text.split('.').map(Number)) };
  if (isIPv6(text) && !text.includes('%')) return { family: 6, bytes: v6Bytes(text) };
  throw new NetlinkValidationError(field, 'is not an IPv4 or IPv6 address', text);
}

/**
 * Parses "addr/len" (or a bare address, meaning a host prefix). `field` names the argument.
 */
export function parsePrefix(text: unknown, field: string): IpPrefix {
  if (typeof text !== 'string') throw new NetlinkValidationError(field, 'must be a CIDR string like 10.0.0.1/24', text);
  const slash = text.indexOf('/');
  const addr = parseIp(slash === -1 ? text : text.slice(0, slash), field);
  const max = addr.family === 4 ? 32 : 128;
  if (slash === -1) return { ...addr, prefixLen: max };
  const lenText = text.slice(slash + 1);
  if (!/^\d{1,3}$/.test(lenText) || Number(lenText) > max) {
    throw new NetlinkValidationError(field, `prefix length must be 0..${max}`, text);
  }
  return { ...addr, prefixLen: Number(lenText) };
}

/** Formats network-order bytes (4 or 16) as text; IPv6 in RFC 5952 form. */
export function formatIp(bytes: Buffer): string {
  if (bytes.length === 4) return Array.from(bytes).join('.');
  if (bytes.length !== 16) throw new NetlinkDecodeError(`address of ${bytes.length} bytes`, 0);
  const h: number[] = [];
  for (let i = 0; i < 16; i += 2) h.push(bytes.readUInt16BE(i));
  // Longest run (>= 2) of zero hextets becomes "::".
  let best = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; ) {
    if (h[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && h[j] === 0) j++;
    if (j - i > bestLen) {
      best = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = (a: number[]) => a.map((x) => x.toString(16)).join(':');
  if (best === -1) return hex(h);
  return `${hex(h.slice(0, best))}::${hex(h.slice(best + bestLen))}`;
}

/** Zeroes the host bits of a prefix (for comparisons and route keys). */
export function networkOf(p: IpPrefix): Buffer {
  const out = Buffer.from(p.bytes);
  for (let i = 0; i < out.length; i++) {
    const bits = Math.max(0, Math.min(8, p.prefixLen - i * 8));
    out[i] = (out[i] ?? 0) & ((0xff << (8 - bits)) & 0xff);
  }
  return out;
}
