import { canonicalCidr as canonicalPrefix, canonicalIp, ipFamily } from '@veil/ip';
import { WgValidationError } from './errors.js';
import type { Endpoint } from './wgtypes/types.js';

// Addresses are parsed and formatted by @veil/ip; endpoints (`host:port`, brackets, zones) are
// WireGuard's own text forms and stay here.

/**
 * Canonical form of a CIDR: host bits cleared, IPv6 in RFC 5952 form, a bare address becomes a
 * host prefix. Both sides of every comparison (desired vs. device) go through this; IPv4 takes
 * @veil/ip's allocation-free dotted-quad path (hot: 5,000-peer reads and writes).
 */
export function canonicalCidr(text: unknown, field: string): string {
  return canonicalPrefix(
    text,
    () => new WgValidationError(field, `must be a CIDR like 10.0.0.0/24 or fd00::/64 (got ${JSON.stringify(text)})`),
  );
}

/** Validates an endpoint; returns it unchanged. */
export function checkEndpoint(e: unknown, field: string): Endpoint {
  if (typeof e !== 'object' || e === null) throw new WgValidationError(field, 'must be { address, port }');
  const { address, port, scopeId } = e as Endpoint;
  const family = ipFamily(address);
  if (family === undefined) {
    throw new WgValidationError(
      `${field}.address`,
      `must be an IPv4 or IPv6 address without brackets (got ${JSON.stringify(address)})`,
    );
  }
  if (!Number.isInteger(port) || port < 1 || port > 65535) {
    throw new WgValidationError(`${field}.port`, `must be an integer 1..65535 (got ${String(port)})`);
  }
  if (scopeId !== undefined && (!Number.isInteger(scopeId) || scopeId < 0 || scopeId > 0xffffffff || family === 4)) {
    throw new WgValidationError(`${field}.scopeId`, 'must be a u32 and only with an IPv6 address');
  }
  return e as Endpoint;
}

/** `1.2.3.4:51820`, `[fd00::1]:51820`, `[fe80::1%2]:51820` — the form `endpoint=` takes. */
export function formatEndpoint(e: Endpoint): string {
  if (ipFamily(e.address) === 4) return `${e.address}:${e.port}`;
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
    if (ipFamily(host) !== 4) return undefined;
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
  const family = ipFamily(host);
  if (family === undefined) return undefined;
  const e: Endpoint = { address: family === 6 ? canonicalIp(host) : host, port: Number(portText) };
  if (scopeId !== undefined && scopeId !== 0) e.scopeId = scopeId;
  return e;
}

/** Equality of endpoints after canonicalisation (IPv6 spelled differently still compares equal). */
export function sameEndpoint(a: Endpoint | undefined, b: Endpoint | undefined): boolean {
  if (a === undefined || b === undefined) return a === b;
  if (a.port !== b.port || (a.scopeId ?? 0) !== (b.scopeId ?? 0)) return false;
  if (a.address === b.address) return true;
  if (ipFamily(a.address) === 6 && ipFamily(b.address) === 6) return canonicalIp(a.address) === canonicalIp(b.address);
  return false;
}
