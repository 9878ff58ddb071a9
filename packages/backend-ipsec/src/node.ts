import { readFile } from 'node:fs/promises';
import { tryParseIp } from '@veil/ip';
import { NetlinkSocket, getLink, listAddresses, listRoutes, rtnl } from '@veil/netlink';
import { bootIdProblem } from './derive.js';
import { IpsecConfigError } from './errors.js';
import type { IpsecAlgorithm } from './keyfile.js';
import type { Family } from './model.js';

export const DEFAULT_BOOT_ID_PATH = '/proc/sys/kernel/random/boot_id';

/** This boot's ID; a reboot changes it, and with it every derived key of this node. */
export async function readBootId(path = DEFAULT_BOOT_ID_PATH): Promise<string> {
  const v = (await readFile(path, 'utf8')).trim();
  const p = bootIdProblem(v);
  if (p) throw new IpsecConfigError(`boot ID (${path})`, p);
  return v;
}

/** Tunnel addresses of a node, at most one per family. */
export interface TunnelIPs {
  readonly ipv4?: string | undefined;
  readonly ipv6?: string | undefined;
}

/** Parses `a,b` (one IPv4 and/or one IPv6); returns a reason on error. */
export function parseTunnelIPs(text: string): TunnelIPs | string {
  const out: { ipv4?: string; ipv6?: string } = {};
  for (const part of text.split(',').map((s) => s.trim())) {
    const ip = tryParseIp(part);
    if (!ip) return `${JSON.stringify(part)} is not an IP address`;
    const key = ip.family === 4 ? 'ipv4' : 'ipv6';
    if (out[key] !== undefined) return `two IPv${ip.family} addresses`;
    out[key] = part;
  }
  return out;
}

export function formatTunnelIPs(t: TunnelIPs): string {
  return [t.ipv4, t.ipv6].filter((x): x is string => x !== undefined).join(',');
}

function routeSocket(netns: string | undefined): NetlinkSocket {
  return NetlinkSocket.open('ROUTE', netns ? { netns } : {});
}

/**
 * This node's tunnel address per family when none was configured: the preferred source of the
 * default route, else the first global address of its output device.
 */
export async function discoverTunnelIPs(netns?: string): Promise<TunnelIPs> {
  const sock = routeSocket(netns);
  try {
    const out: { ipv4?: string; ipv6?: string } = {};
    for (const family of [4, 6] as const) {
      const def = (await listRoutes(sock, { family })).find((r) => r.dst === 'default' && r.type === 1);
      if (!def) continue;
      let ip = def.prefsrc;
      if (!ip && def.oif !== undefined) {
        ip = (await listAddresses(sock, { family, link: def.oif })).find((a) => a.scope === rtnl.RT_SCOPE_UNIVERSE)?.address;
      }
      if (ip) out[family === 4 ? 'ipv4' : 'ipv6'] = ip;
    }
    return out;
  } finally {
    sock.close();
  }
}

/** MTU of the device holding `ip`, undefined when no device has it. */
export async function deviceMtuOf(ip: string, netns?: string): Promise<number | undefined> {
  const sock = routeSocket(netns);
  try {
    const want = tryParseIp(ip);
    if (!want) return undefined;
    const addr = (await listAddresses(sock, { family: want.family })).find((a) =>
      tryParseIp(a.address)?.bytes.equals(want.bytes),
    );
    if (!addr) return undefined;
    return (await getLink(sock, addr.index))?.mtu;
  } finally {
    sock.close();
  }
}

/**
 * The largest inner packet an ESP tunnel-mode SA carries inside `underlayMtu` without
 * fragmenting: outer IP header, ESP header (SPI + sequence, 8), IV (8 for GCM/ChaCha20-Poly1305,
 * 16 for CBC), the payload plus pad-length and next-header bytes padded to the cipher's block
 * (4 or 16), and the ICV.
 */
export function espInnerMtu(underlayMtu: number, alg: IpsecAlgorithm, family: Family): number {
  const outer = family === 4 ? 20 : 40;
  const aead = alg.kind === 'aead';
  const iv = aead ? 8 : 16;
  const block = aead ? 4 : 16;
  const icv = aead ? alg.icvBits / 8 : alg.authKeyBytes / 2;
  const room = underlayMtu - outer - 8 - iv - icv;
  return Math.floor(room / block) * block - 2;
}
