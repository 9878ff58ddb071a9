import { AttrSet, attr } from '../attr.js';
import { NLM_F_CREATE, NLM_F_EXCL, NLM_F_REPLACE } from '../constants.js';
import { NetlinkDecodeError, NetlinkValidationError } from '../errors.js';
import type { NlMsg } from '../message.js';
import type { NetlinkSocket } from '../socket.js';
import {
  AF_UNSPEC,
  IFA_ADDRESS,
  IFA_BROADCAST,
  IFA_FLAGS,
  IFA_F_NODAD,
  IFA_LABEL,
  IFA_LOCAL,
  RTM_DELADDR,
  RTM_GETADDR,
  RTM_NEWADDR,
  RT_SCOPE_HOST,
  RT_SCOPE_LINK,
  RT_SCOPE_UNIVERSE,
} from './constants.js';
import { type IpFamily, afOf, familyOfAf, formatIp, parseIp, parsePrefix } from './ip.js';
import { linkIndex } from './link.js';
import { type LinkRef, checkLinkRef, checkRouteSocket, checkUint } from './validate.js';

/*
 * struct ifaddrmsg {         // <linux/if_addr.h>, 8 bytes
 *   __u8  ifa_family;
 *   __u8  ifa_prefixlen;
 *   __u8  ifa_flags;         // low 8 bits of IFA_F_*; the full set travels in IFA_FLAGS
 *   __u8  ifa_scope;
 *   __u32 ifa_index;
 * };
 */
export const IFADDRMSG_LEN = 8;

export function encodeIfaddrmsg(m: { family: number; prefixLen: number; flags: number; scope: number; index: number }): Buffer {
  const b = Buffer.alloc(IFADDRMSG_LEN);
  b.writeUInt8(m.family, 0);
  b.writeUInt8(m.prefixLen, 1);
  b.writeUInt8(m.flags & 0xff, 2);
  b.writeUInt8(m.scope, 3);
  b.writeUInt32LE(m.index, 4);
  return b;
}

/** Address scope: a name or a raw RT_SCOPE_* number. */
export type Scope = 'universe' | 'global' | 'link' | 'host' | number;

export function scopeValue(s: Scope, field = 'scope'): number {
  if (s === 'universe' || s === 'global') return RT_SCOPE_UNIVERSE;
  if (s === 'link') return RT_SCOPE_LINK;
  if (s === 'host') return RT_SCOPE_HOST;
  return checkUint(s, field, 0, 255);
}

/** An interface address (RTM_NEWADDR). */
export interface Address {
  family: IpFamily;
  index: number;
  /** "10.0.0.1/24" (IFA_LOCAL when present, else IFA_ADDRESS). */
  cidr: string;
  address: string;
  prefixLen: number;
  /** IFA_ADDRESS when it differs from the local address (point-to-point peer). */
  peer: string | undefined;
  scope: number;
  /** IFA_F_* (from IFA_FLAGS when present). */
  flags: number;
  label: string | undefined;
  attrs: AttrSet;
}

export function decodeAddress(msg: NlMsg): Address {
  const p = msg.payload;
  if (p.length < IFADDRMSG_LEN) throw new NetlinkDecodeError(`ifaddrmsg needs ${IFADDRMSG_LEN} bytes`, 16);
  const family = familyOfAf(p.readUInt8(0));
  if (family === undefined) throw new NetlinkDecodeError(`address family ${p.readUInt8(0)} is not inet/inet6`, 16);
  const attrs = AttrSet.decode(p, IFADDRMSG_LEN);
  const local = attrs.binary(IFA_LOCAL);
  const addr = attrs.binary(IFA_ADDRESS);
  const main = local ?? addr;
  if (!main) throw new NetlinkDecodeError('RTM_NEWADDR without IFA_LOCAL/IFA_ADDRESS', 16);
  const prefixLen = p.readUInt8(1);
  const address = formatIp(main);
  const peerText = local && addr && !local.equals(addr) ? formatIp(addr) : undefined;
  return {
    family,
    index: p.readUInt32LE(4),
    cidr: `${address}/${prefixLen}`,
    address,
    prefixLen,
    peer: peerText,
    scope: p.readUInt8(3),
    flags: attrs.u32(IFA_FLAGS) ?? p.readUInt8(2),
    label: attrs.string(IFA_LABEL),
    attrs,
  };
}

/** Options of addAddress / deleteAddress. */
export interface AddressSpec {
  /** Interface name or index. */
  link: LinkRef;
  /** "10.0.0.1/24", "fd00::1/64" (a bare address means /32 or /128). */
  address: string;
  /** Point-to-point peer address (IFA_ADDRESS). */
  peer?: string;
  /** IPv4 broadcast address. */
  broadcast?: string;
  scope?: Scope;
  /** IPv6: skip duplicate address detection (IFA_F_NODAD), so the address is usable at once. */
  nodad?: boolean;
  /** IPv4 label (must start with the interface name). */
  label?: string;
  /** Replace an existing address instead of failing with EEXIST. */
  replace?: boolean;
}

function buildAddr(spec: AddressSpec, forDelete: boolean) {
  checkLinkRef(spec.link, 'link');
  const pfx = parsePrefix(spec.address, 'address');
  const peer = spec.peer === undefined ? undefined : parseIp(spec.peer, 'peer');
  if (peer && peer.family !== pfx.family) throw new NetlinkValidationError('peer', 'family differs from address', spec.peer);
  const brd = spec.broadcast === undefined ? undefined : parseIp(spec.broadcast, 'broadcast');
  if (brd && brd.family !== 4) throw new NetlinkValidationError('broadcast', 'only IPv4 has broadcast addresses', spec.broadcast);
  if (brd && pfx.family !== 4) throw new NetlinkValidationError('broadcast', 'address is not IPv4', spec.broadcast);
  const scope = spec.scope === undefined ? RT_SCOPE_UNIVERSE : scopeValue(spec.scope);
  if (spec.nodad && pfx.family !== 6) throw new NetlinkValidationError('nodad', 'applies to IPv6 addresses only', spec.nodad);
  if (spec.label !== undefined && (typeof spec.label !== 'string' || Buffer.byteLength(spec.label) > 15)) {
    throw new NetlinkValidationError('label', 'must be a string of at most 15 bytes', spec.label);
  }
  const flags = spec.nodad && !forDelete ? IFA_F_NODAD : 0;
  return { pfx, peer, brd, scope, flags };
}

/**
 * Adds an address. Equivalent: `ip addr add <address> [peer P] [broadcast B] [scope S] dev <link> [nodad]`.
 */
export async function addAddress(sock: NetlinkSocket, spec: AddressSpec): Promise<void> {
  checkRouteSocket(sock);
  const { pfx, peer, brd, scope, flags } = buildAddr(spec, false);
  const index = await linkIndex(sock, spec.link);
  // Like iproute2: IFA_LOCAL is our address, IFA_ADDRESS the peer (or our address again).
  await sock.request({
    type: RTM_NEWADDR,
    flags: NLM_F_CREATE | (spec.replace ? NLM_F_REPLACE : NLM_F_EXCL),
    payload: [
      encodeIfaddrmsg({ family: afOf(pfx.family), prefixLen: pfx.prefixLen, flags, scope, index }),
      attr.binary(IFA_LOCAL, pfx.bytes),
      attr.binary(IFA_ADDRESS, (peer ?? pfx).bytes),
      brd ? attr.binary(IFA_BROADCAST, brd.bytes) : Buffer.alloc(0),
      spec.label !== undefined ? attr.string(IFA_LABEL, spec.label) : Buffer.alloc(0),
      // Flags beyond the 8 bits of ifa_flags travel in IFA_FLAGS (iproute2 does the same).
      flags > 0xff ? attr.u32(IFA_FLAGS, flags) : Buffer.alloc(0),
    ],
  });
}

/** Deletes an address. Equivalent: `ip addr del <address> dev <link>`. */
export async function deleteAddress(sock: NetlinkSocket, spec: AddressSpec): Promise<void> {
  checkRouteSocket(sock);
  const { pfx, peer } = buildAddr(spec, true);
  const index = await linkIndex(sock, spec.link);
  await sock.request({
    type: RTM_DELADDR,
    payload: [
      encodeIfaddrmsg({ family: afOf(pfx.family), prefixLen: pfx.prefixLen, flags: 0, scope: 0, index }),
      attr.binary(IFA_LOCAL, pfx.bytes),
      attr.binary(IFA_ADDRESS, (peer ?? pfx).bytes),
    ],
  });
}

/**
 * Lists addresses, optionally of one family and/or one link.
 * Equivalent: `ip [-4|-6] addr show [dev <link>]`.
 */
export async function listAddresses(sock: NetlinkSocket, filter: { family?: IpFamily; link?: LinkRef } = {}): Promise<Address[]> {
  checkRouteSocket(sock);
  if (filter.family !== undefined && filter.family !== 4 && filter.family !== 6) {
    throw new NetlinkValidationError('family', 'must be 4 or 6', filter.family);
  }
  if (filter.link !== undefined) checkLinkRef(filter.link, 'link');
  const index = filter.link === undefined ? 0 : await linkIndex(sock, filter.link);
  const parts = await sock.dump({
    type: RTM_GETADDR,
    // With NETLINK_GET_STRICT_CHK the kernel filters on ifa_index itself.
    payload: encodeIfaddrmsg({
      family: filter.family === undefined ? AF_UNSPEC : afOf(filter.family),
      prefixLen: 0,
      flags: 0,
      scope: 0,
      index,
    }),
  });
  return parts
    .filter((m) => m.type === RTM_NEWADDR)
    .map(decodeAddress)
    .filter((a) => (filter.family === undefined || a.family === filter.family) && (index === 0 || a.index === index));
}
