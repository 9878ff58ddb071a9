import { isIPv4, isIPv6 } from 'node:net';
import { formatIp, parsePrefix } from '@veil/netlink';
import { WgValidationError } from './errors.js';
import type { Endpoint } from './wgtypes/types.js';

const V4_CIDR = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})(?:\/(\d{1,2}))?$/;

/**
 * Canonical form of a CIDR: host bits cleared, IPv6 in RFC 5952 form, a bare address becomes a
 * host prefix. Both sides of every comparison (desired vs. device) go through this.
 */
export function canonicalCidr(text: unknown, field: string): string {
  // Fast path for IPv4 (the common case, and hot: 5,000-peer reads and writes go through here).
  const m = typeof text === 'string' ? V4_CIDR.exec(text) : null;
  if (m) {
    const o = [m[1], m[2], m[3], m[4]] as string[];
    const len = m[5] === undefined ? 32 : Number(m[5]);
    if (len <= 32 && o.every((x) => (x.length === 1 || x[0] !== '0') && Number(x) <= 255)) {
      const addr = ((Number(o[0]) << 24) | (Number(o[1]) << 16) | (Number(o[2]) << 8) | Number(o[3])) >>> 0;
      const net = len === 0 ? 0 : (addr & ((0xffffffff << (32 - len)) >>> 0)) >>> 0;
      return `${net >>> 24}.${(net >>> 16) & 0xff}.${(net >>> 8) & 0xff}.${net & 0xff}/${len}`;
    }
  }
  let p;
  try {
    p = parsePrefix(text, field);
  } catch {
    throw new WgValidationError(field, `must be a CIDR like 10.0.0.0/24 or fd00::/64 (got ${JSON.stringify(text)})`);
  }
  const out = Buffer.from(p.bytes);
  for (let i = 0; i < out.length; i++) {
    const bits = Math.max(0, Math.min(8, p.prefixLen - i * 8));
    out[i] = (out[i] as number) & ((0xff << (8 - bits)) & 0xff);
  }
  return `${formatIp(out)}/${p.prefixLen}`;
}

/** Validates an endpoint; returns it unchanged. */
export function checkEndpoint(e: unknown, field: string): Endpoint {
  if (typeof e !== 'object' || e === null) throw new WgValidationError(field, 'must be { address, port }');
  const { address, port, scopeId } = e as Endpoint;
  if (typeof address !== 'string' || !(isIPv4(address) || (isIPv6(address) && !address.includes('%')))) {
    throw new WgValidationError(`${field}.address`, `must be an IPv4 or IPv6 address without brackets (got ${JSON.stringify(address)})`);
  }
  if (!Number.isInteger(port) || port < 1 || port > 65535) {
    throw new WgValidationError(`${field}.port`, `must be an integer 1..65535 (got ${String(port)})`);
  }
  if (scopeId !== undefined && (!Number.isInteger(scopeId) || scopeId < 0 || scopeId > 0xffffffff || isIPv4(address))) {
    throw new WgValidationError(`${field}.scopeId`, 'must be a u32 and only with an IPv6 address');
  }
  return e as Endpoint;
}

/** `1.2.3.4:51820`, `[fd00::1]:51820`, `[fe80::1%2]:51820` — the form `endpoint=` takes. */
export function formatEndpoint(e: Endpoint): string {
  if (isIPv4(e.address)) return `${e.address}:${e.port}`;
  return `[${e.address}${e.scopeId ? `%${e.scopeId}` : ''}]:${e.port}`;
}

/** Inverse of formatEndpoint; undefined when the text is not an endpoint. */
export function parseEndpoint(text: string): Endpoint | undefined {
  let host: string;
  let portText: string;
  if (text.startsWith('[')) {
    const close = text.indexOf(']:');
    if (close === -1) return undefined;
    host = text.slice(1, close);
    portText = text.slice(close + 2);
  } else {
    const colon = text.lastIndexOf(':');
    if (colon === -1) return undefined;
    host = text.slice(0, colon);
    portText = text.slice(colon + 1);
    if (!isIPv4(host)) return undefined;
  }
  if (!/^\d{1,5}$/.test(portText) || Number(portText) > 65535) return undefined;
  let scopeId: number | undefined;
  const pct = host.indexOf('%');
  if (pct !== -1) {
    const zone = host.slice(pct + 1);
    host = host.slice(0, pct);
    // Zones by interface name cannot be mapped to an index here; the numeric form is kept.
    if (/^\d+$/.test(zone)) scopeId = Number(zone);
  }
  if (!isIPv4(host) && !isIPv6(host)) return undefined;
  const e: Endpoint = { address: isIPv6(host) ? canonicalCidr(host, 'endpoint').replace(/\/128$/, '') : host, port: Number(portText) };
  if (scopeId !== undefined && scopeId !== 0) e.scopeId = scopeId;
  return e;
}

/** Equality of endpoints after canonicalisation (IPv6 spelled differently still compares equal). */
export function sameEndpoint(a: Endpoint | undefined, b: Endpoint | undefined): boolean {
  if (a === undefined || b === undefined) return a === b;
  if (a.port !== b.port || (a.scopeId ?? 0) !== (b.scopeId ?? 0)) return false;
  if (a.address === b.address) return true;
  if (isIPv6(a.address) && isIPv6(b.address)) return canonicalCidr(a.address, 'endpoint') === canonicalCidr(b.address, 'endpoint');
  return false;
}
