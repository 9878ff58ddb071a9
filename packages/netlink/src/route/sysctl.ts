import { closeSync, constants, readSync, writeSync } from 'node:fs';
import { NetlinkValidationError } from '../errors.js';
import { callNative, loadBinding } from '../native.js';
import { type NetnsRef, checkIfname, checkNetnsRef, netnsPath } from './validate.js';

/**
 * Sysctl helpers writing /proc/sys.
 *
 * Network sysctls (net.*) are per network namespace, and /proc/sys/net resolves to the netns of
 * the thread that OPENS the file. Without `netns` these helpers therefore act on the caller's
 * netns (the process's, for Node's main thread). With `netns` the file is opened from inside
 * that namespace (setns on the calling thread for the open() only, then restored).
 */
export interface SysctlOptions {
  netns?: NetnsRef;
}

/**
 * Turns a key into a /proc/sys path. Dotted keys ("net.ipv4.ip_forward") have their dots turned
 * into slashes; keys containing '/' are taken as paths relative to /proc/sys (use that form when
 * an interface name contains a dot: "net/ipv4/conf/eth0.100/rp_filter").
 */
export function sysctlPath(key: string): string {
  if (typeof key !== 'string' || key.length === 0) throw new NetlinkValidationError('key', 'must be a sysctl name', key);
  const rel = key.includes('/') ? key : key.replace(/\./g, '/');
  const segs = rel.split('/');
  if (segs.some((s) => s === '' || s === '.' || s === '..' || /[\0\s]/.test(s))) {
    throw new NetlinkValidationError('key', 'has an empty, "." or ".." segment or whitespace', key);
  }
  return `/proc/sys/${rel}`;
}

function openFor(key: string, flags: number, opts: SysctlOptions): number {
  const path = sysctlPath(key);
  const ns = opts.netns === undefined ? undefined : checkNetnsRef(opts.netns, 'netns');
  const b = loadBinding();
  return callNative(() =>
    b.openInNetns(typeof ns === 'string' ? netnsPath(ns) : null, typeof ns === 'number' ? ns : -1, path, flags),
  );
}

/** Writes a sysctl. Equivalent: `sysctl -w key=value` (or `ip netns exec NS sysctl -w ...`). */
export function writeSysctl(key: string, value: string | number, opts: SysctlOptions = {}): void {
  const text = String(value);
  if (/[\0\n]/.test(text)) throw new NetlinkValidationError('value', 'must be a single line', value);
  const fd = openFor(key, constants.O_WRONLY, opts);
  try {
    writeSync(fd, `${text}\n`);
  } finally {
    closeSync(fd);
  }
}

/** Reads a sysctl (trimmed). Equivalent: `sysctl -n key`. */
export function readSysctl(key: string, opts: SysctlOptions = {}): string {
  const fd = openFor(key, constants.O_RDONLY, opts);
  try {
    const chunks: Buffer[] = [];
    const buf = Buffer.alloc(4096);
    for (let n = readSync(fd, buf); n > 0; n = readSync(fd, buf)) chunks.push(Buffer.from(buf.subarray(0, n)));
    return Buffer.concat(chunks).toString('utf8').trim();
  } finally {
    closeSync(fd);
  }
}

/** net.ipv4.ip_forward / net.ipv6.conf.all.forwarding. */
export function setIpForwarding(family: 4 | 6, enabled: boolean, opts: SysctlOptions = {}): void {
  if (family !== 4 && family !== 6) throw new NetlinkValidationError('family', 'must be 4 or 6', family);
  writeSysctl(family === 4 ? 'net/ipv4/ip_forward' : 'net/ipv6/conf/all/forwarding', enabled ? 1 : 0, opts);
}

/**
 * net.ipv4.conf.<dev>.rp_filter (0 off, 1 strict, 2 loose). `dev` may be 'all' or 'default'.
 * The effective value is max(all, dev).
 */
export function setRpFilter(dev: string, mode: 0 | 1 | 2, opts: SysctlOptions = {}): void {
  if (dev !== 'all' && dev !== 'default') checkIfname(dev, 'dev');
  if (mode !== 0 && mode !== 1 && mode !== 2) throw new NetlinkValidationError('mode', 'must be 0, 1 or 2', mode);
  writeSysctl(`net/ipv4/conf/${dev}/rp_filter`, mode, opts);
}
