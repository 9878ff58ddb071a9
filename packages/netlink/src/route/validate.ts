import { NetlinkValidationError } from '../errors.js';
import { NETLINK_ROUTE } from '../constants.js';
import type { NetlinkSocket } from '../socket.js';

/** IFNAMSIZ - 1: interface names are at most 15 bytes. */
export const IFNAME_MAX = 15;

/** Validates an interface name the way the kernel's dev_valid_name() does. */
export function checkIfname(name: unknown, field: string): string {
  if (typeof name !== 'string' || name.length === 0) {
    throw new NetlinkValidationError(field, 'must be a non-empty interface name', name);
  }
  if (Buffer.byteLength(name) > IFNAME_MAX) {
    throw new NetlinkValidationError(field, `interface names are at most ${IFNAME_MAX} bytes`, name);
  }
  if (name === '.' || name === '..' || /[/:\s\0]/.test(name)) {
    throw new NetlinkValidationError(field, "must not be '.', '..' or contain '/', ':', NUL or whitespace", name);
  }
  return name;
}

export function checkIndex(v: unknown, field: string): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 1 || v > 0x7fffffff) {
    throw new NetlinkValidationError(field, 'must be an interface index >= 1', v);
  }
  return v;
}

/** A link reference: name (string) or ifindex (number). */
export type LinkRef = string | number;

export function checkLinkRef(v: unknown, field: string): LinkRef {
  return typeof v === 'number' ? checkIndex(v, field) : checkIfname(v, field);
}

export function checkUint(v: unknown, field: string, min: number, max: number): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
    throw new NetlinkValidationError(field, `must be an integer ${min}..${max}`, v);
  }
  return v;
}

/** MTU bounds accepted by the API (the kernel applies device-specific limits on top). */
export function checkMtu(v: unknown, field = 'mtu'): number {
  return checkUint(v, field, 68, 65535);
}

export function checkRouteSocket(sock: NetlinkSocket): void {
  if (sock.protocol !== NETLINK_ROUTE) {
    throw new NetlinkValidationError('socket', 'must be a NETLINK_ROUTE socket', sock.protocol);
  }
}

/** A network namespace reference: path (/run/netns/x), name under /run/netns, or an open fd. */
export type NetnsRef = string | number;

export function checkNetnsRef(v: unknown, field: string): NetnsRef {
  if (typeof v === 'number') {
    if (!Number.isInteger(v) || v < 0) throw new NetlinkValidationError(field, 'fd must be a non-negative integer', v);
    return v;
  }
  if (typeof v !== 'string' || v.length === 0 || v.includes('\0')) {
    throw new NetlinkValidationError(field, 'must be a netns path, a name under /run/netns, or an fd', v);
  }
  if (!v.includes('/') && (v === '.' || v === '..')) throw new NetlinkValidationError(field, 'invalid netns name', v);
  return v;
}

export function netnsPath(ref: string): string {
  return ref.includes('/') ? ref : `/run/netns/${ref}`;
}
