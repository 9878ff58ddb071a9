// Wire format of the WireGuard generic netlink family (include/uapi/linux/wireguard.h), built
// on @veil/netlink's generic pieces only (attributes, genlmsghdr) and @veil/ip's addresses;
// @veil/netlink itself knows nothing about WireGuard (wgctrl-go's internal/wglinux over
// mdlayher/genetlink). Encoders validate everything first and throw NetlinkValidationError naming the field.
import {
  type IpFailure,
  canonicalCidr as canonicalPrefix,
  formatIp,
  maskBytes,
  parsePrefix,
  tryParseIp,
  tryParsePrefix,
} from '@veil/ip';
import {
  AF_INET,
  AF_INET6,
  AttrSet,
  GENL_HDRLEN,
  IFNAME_MAX,
  NLA_F_NESTED,
  NLA_HDRLEN,
  NLMSG_HDRLEN,
  NetlinkDecodeError,
  NetlinkValidationError,
  attr,
  encodeGenlmsghdr,
} from '@veil/netlink';
import { Key, WG_KEY_LEN } from '../../wgtypes/key.js';
import type { DeviceConfig, DeviceRef, Endpoint, PeerConfig, WireGuardDevice, WireGuardPeer } from '../../wgtypes/types.js';

export const WG_GENL_NAME = 'wireguard';
export const WG_GENL_VERSION = 1;

// enum wg_cmd
export const WG_CMD_GET_DEVICE = 0;
export const WG_CMD_SET_DEVICE = 1;

// enum wgdevice_flag
export const WGDEVICE_F_REPLACE_PEERS = 1 << 0;

// enum wgdevice_attribute
export const WGDEVICE_A_IFINDEX = 1; // NLA_U32
export const WGDEVICE_A_IFNAME = 2; // NLA_NUL_STRING
export const WGDEVICE_A_PRIVATE_KEY = 3; // NLA_EXACT_LEN, WG_KEY_LEN
export const WGDEVICE_A_PUBLIC_KEY = 4; // NLA_EXACT_LEN, WG_KEY_LEN
export const WGDEVICE_A_FLAGS = 5; // NLA_U32
export const WGDEVICE_A_LISTEN_PORT = 6; // NLA_U16
export const WGDEVICE_A_FWMARK = 7; // NLA_U32
export const WGDEVICE_A_PEERS = 8; // NLA_NESTED of NLA_NESTED (peer)

// enum wgpeer_flag
export const WGPEER_F_REMOVE_ME = 1 << 0;
export const WGPEER_F_REPLACE_ALLOWEDIPS = 1 << 1;
export const WGPEER_F_UPDATE_ONLY = 1 << 2;

// enum wgpeer_attribute
export const WGPEER_A_PUBLIC_KEY = 1; // NLA_EXACT_LEN, WG_KEY_LEN
export const WGPEER_A_PRESHARED_KEY = 2; // NLA_EXACT_LEN, WG_KEY_LEN
export const WGPEER_A_FLAGS = 3; // NLA_U32
export const WGPEER_A_ENDPOINT = 4; // struct sockaddr_in or sockaddr_in6
export const WGPEER_A_PERSISTENT_KEEPALIVE_INTERVAL = 5; // NLA_U16
export const WGPEER_A_LAST_HANDSHAKE_TIME = 6; // struct __kernel_timespec
export const WGPEER_A_RX_BYTES = 7; // NLA_U64
export const WGPEER_A_TX_BYTES = 8; // NLA_U64
export const WGPEER_A_ALLOWEDIPS = 9; // NLA_NESTED of NLA_NESTED (allowed ip)
export const WGPEER_A_PROTOCOL_VERSION = 10; // NLA_U32

// enum wgallowedip_attribute
export const WGALLOWEDIP_A_FAMILY = 1; // NLA_U16
export const WGALLOWEDIP_A_IPADDR = 2; // struct in_addr or in6_addr
export const WGALLOWEDIP_A_CIDR_MASK = 3; // NLA_U8

/**
 * Default upper bound of one WG_CMD_SET_DEVICE message (nlmsghdr included). `wg` uses one page;
 * larger messages mean fewer round trips, and 64 KiB stays far below the default socket send
 * buffer (net.core.wmem_default, 208 KiB) that bounds a netlink request.
 */
export const WG_DEFAULT_MAX_MESSAGE = 64 * 1024;
/** Smallest accepted limit: room for all device fields plus one peer with every field and one IPv6 allowed IP. */
export const WG_MIN_MAX_MESSAGE = 512;

// ---- addresses -------------------------------------------------------------------------

/** Parsed allowed IP: address bytes (4 or 16) and prefix length. */
export interface Cidr {
  addr: Buffer;
  cidr: number;
}

/** Parses "addr/len" (a bare address means a host route: /32 or /128). */
export function parseCidr(text: string, field: string): Cidr {
  const p = parsePrefix(text, {}, cidrFailure(field));
  return { addr: p.bytes, cidr: p.prefixLen };
}

function cidrFailure(field: string): IpFailure {
  return (problem, input) =>
    problem.code === 'not-a-string'
      ? new NetlinkValidationError(field, 'must be a CIDR string like "10.0.0.0/24"', input)
      : problem.code === 'bad-prefix-length'
        ? new NetlinkValidationError(field, `prefix length must be 0–${problem.max}`, input)
        : new NetlinkValidationError(field, 'address is not IPv4 or IPv6', input);
}

/** "10.1.2.3/24" → "10.1.2.0/24": the form the kernel reports allowed IPs in. */
export function canonicalCidr(text: string): string {
  return canonicalPrefix(text, cidrFailure('allowedIP'));
}

// struct sockaddr_in  { u16 sin_family; be16 sin_port; struct in_addr sin_addr; u8 sin_zero[8]; }      16 bytes
// struct sockaddr_in6 { u16 sin6_family; be16 sin6_port; be32 sin6_flowinfo; struct in6_addr sin6_addr;
//                       u32 sin6_scope_id; }                                                          28 bytes
function encodeSockaddr(ep: Endpoint, field: string): Buffer {
  if (typeof ep !== 'object' || ep === null) throw new NetlinkValidationError(field, 'must be { address, port }', ep);
  const text = ep.address;
  const addr = typeof text === 'string' ? tryParseIp(text)?.bytes : undefined;
  if (!addr) throw new NetlinkValidationError(`${field}.address`, 'must be an IPv4 or IPv6 address', ep.address);
  if (!Number.isInteger(ep.port) || ep.port < 1 || ep.port > 0xffff) {
    throw new NetlinkValidationError(`${field}.port`, 'must be an integer 1–65535', ep.port);
  }
  if (addr.length === 4) {
    if (ep.scopeId !== undefined) throw new NetlinkValidationError(`${field}.scopeId`, 'only valid for IPv6', ep.scopeId);
    const b = Buffer.alloc(16);
    b.writeUInt16LE(AF_INET, 0);
    b.writeUInt16BE(ep.port, 2);
    addr.copy(b, 4);
    return b;
  }
  const scope = ep.scopeId ?? 0;
  if (!Number.isInteger(scope) || scope < 0 || scope > 0xffffffff) {
    throw new NetlinkValidationError(`${field}.scopeId`, 'must be a u32', ep.scopeId);
  }
  const b = Buffer.alloc(28);
  b.writeUInt16LE(AF_INET6, 0);
  b.writeUInt16BE(ep.port, 2);
  addr.copy(b, 8);
  b.writeUInt32LE(scope, 24);
  return b;
}

function decodeSockaddr(d: Buffer, offset: number): Endpoint | undefined {
  if (d.length < 2) throw new NetlinkDecodeError('endpoint shorter than sa_family', offset);
  const family = d.readUInt16LE(0);
  if (family === AF_INET && d.length >= 16) {
    return { address: formatIp(d.subarray(4, 8)), port: d.readUInt16BE(2) };
  }
  if (family === AF_INET6 && d.length >= 28) {
    const scopeId = d.readUInt32LE(24);
    return { address: formatIp(d.subarray(8, 24)), port: d.readUInt16BE(2), ...(scopeId ? { scopeId } : {}) };
  }
  if (family === 0) return undefined;
  throw new NetlinkDecodeError(`endpoint has unknown family ${family} or ${d.length} bytes`, offset);
}

// ---- requests --------------------------------------------------------------------------

/** WGDEVICE_A_IFINDEX or WGDEVICE_A_IFNAME for a device reference. */
export function encodeDeviceRef(device: DeviceRef, field = 'device'): Buffer {
  if (typeof device === 'number') {
    if (!Number.isInteger(device) || device < 1 || device > 0x7fffffff) {
      throw new NetlinkValidationError(field, 'ifindex must be a positive integer', device);
    }
    return attr.u32(WGDEVICE_A_IFINDEX, device);
  }
  if (typeof device !== 'string' || device.length === 0 || Buffer.byteLength(device) > IFNAME_MAX || /[\s/\0]/.test(device)) {
    throw new NetlinkValidationError(
      field,
      `must be an interface name (1–${IFNAME_MAX} bytes, no spaces or '/') or an ifindex`,
      device,
    );
  }
  return attr.string(WGDEVICE_A_IFNAME, device);
}

/** Payload (genlmsghdr + attributes) of the WG_CMD_GET_DEVICE dump request. */
export function encodeGetDevice(device: DeviceRef): Buffer {
  return Buffer.concat([encodeGenlmsghdr(WG_CMD_GET_DEVICE, WG_GENL_VERSION), encodeDeviceRef(device)]);
}

function keyBytes(k: unknown, field: string): Buffer {
  return checkKey(k, field).bytes();
}

function checkKey(k: unknown, field: string): Key {
  if (!(k instanceof Key)) throw new NetlinkValidationError(field, 'must be a Key (Key.parse / Key.fromBytes)', k);
  return k;
}

function u16Field(v: unknown, field: string): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v > 0xffff) {
    throw new NetlinkValidationError(field, 'must be an integer 0–65535', v);
  }
  return v;
}

/** Throws unless `n` is a usable SET_DEVICE message size limit. */
export function checkMaxMessageSize(n: unknown): number {
  if (typeof n !== 'number' || !Number.isInteger(n) || n < WG_MIN_MAX_MESSAGE || n > 0xffff_ffff) {
    throw new NetlinkValidationError('maxMessageSize', `must be an integer >= ${WG_MIN_MAX_MESSAGE}`, n);
  }
  return n;
}

/** One peer after validation, with its attribute sizes precomputed for the splitter. */
interface PreparedPeer {
  key: Key;
  flags: number;
  /** Flags of a continuation part: UPDATE_ONLY survives, REPLACE_ALLOWEDIPS must not. */
  contFlags: number;
  psk: Key | undefined;
  endpoint: Buffer | undefined;
  keepalive: number | undefined;
  ips: Cidr[];
  /** Bytes of the peer's attributes (without nest header and allowed IPs) in its first part. */
  headSize: number;
  contHeadSize: number;
}

// Attribute sizes (header + payload, padded): key 4+32, u32 4+4, u16 4+2(+2), sockaddr_in 4+16,
// sockaddr_in6 4+28; an allowed IP nest: 4 + family 8 + address (8 | 20) + cidr 8.
const KEY_ATTR = NLA_HDRLEN + WG_KEY_LEN;
const U32_ATTR = 8;
const U16_ATTR = 8;
const ipNestSize = (c: Cidr): number => (c.addr.length === 4 ? 28 : 40);

function preparePeer(p: PeerConfig, i: number): PreparedPeer {
  const f = `peers[${i}]`;
  if (typeof p !== 'object' || p === null) throw new NetlinkValidationError(f, 'must be a PeerConfig object', p);
  const key = checkKey(p.publicKey, `${f}.publicKey`);
  let flags = 0;
  if (p.remove) flags |= WGPEER_F_REMOVE_ME;
  if (p.updateOnly) flags |= WGPEER_F_UPDATE_ONLY;
  if (p.replaceAllowedIPs) flags |= WGPEER_F_REPLACE_ALLOWEDIPS;
  const psk = p.presharedKey === undefined ? undefined : checkKey(p.presharedKey, `${f}.presharedKey`);
  const endpoint = p.endpoint === undefined ? undefined : encodeSockaddr(p.endpoint, `${f}.endpoint`);
  const keepalive = p.persistentKeepalive === undefined ? undefined : u16Field(p.persistentKeepalive, `${f}.persistentKeepalive`);
  if (p.allowedIPs !== undefined && !Array.isArray(p.allowedIPs)) {
    throw new NetlinkValidationError(`${f}.allowedIPs`, 'must be an array of CIDR strings', p.allowedIPs);
  }
  // The hot part of a 5,000-peer write: @veil/ip's dotted-quad path, no field path built unless
  // the text is bad (then parseCidr says why).
  const ips = (p.allowedIPs ?? []).map((text, j) => {
    const c = typeof text === 'string' ? tryParsePrefix(text) : undefined;
    return c ? { addr: c.bytes, cidr: c.prefixLen } : parseCidr(text, `${f}.allowedIPs[${j}]`);
  });
  if (p.remove && ips.length > 0) {
    throw new NetlinkValidationError(`${f}.allowedIPs`, 'a peer being removed cannot carry allowed IPs', p.allowedIPs);
  }
  const contFlags = flags & WGPEER_F_UPDATE_ONLY;
  const headSize =
    KEY_ATTR +
    (flags ? U32_ATTR : 0) +
    (psk ? KEY_ATTR : 0) +
    (endpoint ? NLA_HDRLEN + endpoint.length : 0) +
    (keepalive !== undefined ? U16_ATTR : 0);
  return { key, flags, contFlags, psk, endpoint, keepalive, ips, headSize, contHeadSize: KEY_ATTR + (contFlags ? U32_ATTR : 0) };
}

/** A slice of one peer placed in one message. */
interface PeerPart {
  peer: PreparedPeer;
  first: boolean;
  ipStart: number;
  ipEnd: number;
}

// Plain byte stores: the checked Buffer#writeUInt16LE is measurably slower in a 10,000-peer encode.
function putHeader(buf: Buffer, off: number, len: number, type: number): void {
  buf[off] = len & 0xff;
  buf[off + 1] = len >>> 8;
  buf[off + 2] = type & 0xff;
  buf[off + 3] = type >>> 8;
}

function putKey(buf: Buffer, off: number, type: number, k: Key): number {
  putHeader(buf, off, KEY_ATTR, type);
  k.copyTo(buf, off + NLA_HDRLEN);
  return off + KEY_ATTR;
}

function putU32(buf: Buffer, off: number, type: number, v: number): number {
  putHeader(buf, off, 8, type);
  buf[off + 4] = v & 0xff;
  buf[off + 5] = (v >>> 8) & 0xff;
  buf[off + 6] = (v >>> 16) & 0xff;
  buf[off + 7] = v >>> 24;
  return off + 8;
}

/** Writes one peer part (nest included) at `off`; returns the new offset. */
function putPeerPart(buf: Buffer, off: number, part: PeerPart): number {
  const { peer, first } = part;
  const start = off;
  off += NLA_HDRLEN;
  off = putKey(buf, off, WGPEER_A_PUBLIC_KEY, peer.key);
  const flags = first ? peer.flags : peer.contFlags;
  if (flags) off = putU32(buf, off, WGPEER_A_FLAGS, flags);
  if (first) {
    if (peer.psk) off = putKey(buf, off, WGPEER_A_PRESHARED_KEY, peer.psk);
    if (peer.endpoint) {
      putHeader(buf, off, NLA_HDRLEN + peer.endpoint.length, WGPEER_A_ENDPOINT);
      buf.set(peer.endpoint, off + NLA_HDRLEN);
      off += NLA_HDRLEN + peer.endpoint.length;
    }
    if (peer.keepalive !== undefined) {
      putHeader(buf, off, 6, WGPEER_A_PERSISTENT_KEEPALIVE_INTERVAL);
      buf[off + 4] = peer.keepalive & 0xff;
      buf[off + 5] = peer.keepalive >>> 8;
      off += U16_ATTR;
    }
  }
  if (part.ipEnd > part.ipStart) {
    const ipsStart = off;
    off += NLA_HDRLEN;
    for (let j = part.ipStart; j < part.ipEnd; j++) {
      const c = peer.ips[j] as Cidr;
      const len = ipNestSize(c);
      // The buffer is zero-filled, so padding bytes need no stores.
      putHeader(buf, off, len, NLA_F_NESTED);
      putHeader(buf, off + 4, 6, WGALLOWEDIP_A_FAMILY);
      buf[off + 8] = c.addr.length === 4 ? AF_INET : AF_INET6;
      putHeader(buf, off + 12, NLA_HDRLEN + c.addr.length, WGALLOWEDIP_A_IPADDR);
      buf.set(c.addr, off + 16);
      const at = off + 16 + c.addr.length;
      putHeader(buf, at, 5, WGALLOWEDIP_A_CIDR_MASK);
      buf[at + 4] = c.cidr;
      off += len;
    }
    putHeader(buf, ipsStart, off - ipsStart, WGPEER_A_ALLOWEDIPS | NLA_F_NESTED);
  }
  putHeader(buf, start, off - start, NLA_F_NESTED);
  return off;
}

/**
 * Encodes a WG_CMD_SET_DEVICE as one or more message payloads (genlmsghdr + attributes), each
 * at most `maxMessageSize` bytes including the 16-byte nlmsghdr, split the way `wg` does:
 *
 * - the first message carries the device fields and WGDEVICE_F_REPLACE_PEERS, later ones only
 *   the device reference and peers (repeating REPLACE_PEERS would drop the peers already sent);
 * - a peer whose allowed IPs do not fit is continued in the next message with only its public
 *   key (and UPDATE_ONLY), without REPLACE_ALLOWEDIPS, so the kernel appends the rest.
 *
 * Everything is validated before anything is encoded. Send the payloads in order on one socket
 * and stop at the first error.
 */
export function encodeSetDevice(device: DeviceRef, config: DeviceConfig, maxMessageSize = WG_DEFAULT_MAX_MESSAGE): Buffer[] {
  checkMaxMessageSize(maxMessageSize);
  if (typeof config !== 'object' || config === null)
    throw new NetlinkValidationError('config', 'must be a DeviceConfig object', config);
  const ref = encodeDeviceRef(device);
  const deviceAttrs: Buffer[] = [ref];
  if (config.privateKey !== undefined)
    deviceAttrs.push(attr.binary(WGDEVICE_A_PRIVATE_KEY, keyBytes(config.privateKey, 'privateKey')));
  if (config.listenPort !== undefined)
    deviceAttrs.push(attr.u16(WGDEVICE_A_LISTEN_PORT, u16Field(config.listenPort, 'listenPort')));
  if (config.fwmark !== undefined) {
    const m = config.fwmark;
    if (typeof m !== 'number' || !Number.isInteger(m) || m < 0 || m > 0xffffffff) {
      throw new NetlinkValidationError('fwmark', 'must be an integer 0–4294967295', m);
    }
    deviceAttrs.push(attr.u32(WGDEVICE_A_FWMARK, m));
  }
  if (config.replacePeers) deviceAttrs.push(attr.u32(WGDEVICE_A_FLAGS, WGDEVICE_F_REPLACE_PEERS));
  if (config.peers !== undefined && !Array.isArray(config.peers)) {
    throw new NetlinkValidationError('peers', 'must be an array of PeerConfig', config.peers);
  }
  const peers = (config.peers ?? []).map(preparePeer);

  // Pass 1: plan which peer parts go into which message, by size only.
  const budget = maxMessageSize - NLMSG_HDRLEN - GENL_HDRLEN;
  const plans: { head: Buffer[]; parts: PeerPart[]; size: number }[] = [];
  let head = deviceAttrs;
  let parts: PeerPart[] = [];
  let used = sum(head);
  const flush = (): void => {
    plans.push({ head, parts, size: used });
    head = [ref];
    parts = [];
    used = ref.length;
  };
  for (const peer of peers) {
    let next = 0; // index of the first allowed IP not yet placed
    let first = true;
    for (;;) {
      const remaining = peer.ips.length - next;
      const fixed =
        (parts.length ? 0 : NLA_HDRLEN) + NLA_HDRLEN + (first ? peer.headSize : peer.contHeadSize) + (remaining ? NLA_HDRLEN : 0);
      let room = budget - used - fixed;
      let take = 0;
      while (take < remaining) {
        const sz = ipNestSize(peer.ips[next + take] as Cidr);
        if (sz > room) break;
        room -= sz;
        take++;
      }
      // The peer's head must fit, with at least one allowed IP if it has any left; otherwise
      // start a new message. WG_MIN_MAX_MESSAGE guarantees that an empty message always fits.
      if (room < 0 || (remaining > 0 && take === 0)) {
        if (parts.length === 0 && plans.length > 0) {
          throw new NetlinkValidationError('maxMessageSize', 'too small for one peer', maxMessageSize);
        }
        flush();
        continue;
      }
      used = budget - room;
      parts.push({ peer, first, ipStart: next, ipEnd: next + take });
      next += take;
      first = false;
      if (next >= peer.ips.length) break;
      flush();
    }
  }
  if (parts.length > 0 || plans.length === 0) flush();

  // Pass 2: write each message into one buffer of exactly its planned size.
  return plans.map((plan) => {
    const buf = Buffer.alloc(GENL_HDRLEN + plan.size);
    buf[0] = WG_CMD_SET_DEVICE;
    buf[1] = WG_GENL_VERSION;
    let off = GENL_HDRLEN;
    for (const a of plan.head) {
      buf.set(a, off);
      off += a.length;
    }
    if (plan.parts.length) {
      const peersStart = off;
      off += NLA_HDRLEN;
      for (const part of plan.parts) off = putPeerPart(buf, off, part);
      putHeader(buf, peersStart, off - peersStart, WGDEVICE_A_PEERS | NLA_F_NESTED);
    }
    if (off !== buf.length) throw new Error(`wireguard encoder: wrote ${off} bytes, planned ${buf.length}`);
    return buf;
  });
}

const sum = (bs: readonly Buffer[]): number => bs.reduce((n, b) => n + b.length, 0);

// ---- replies ---------------------------------------------------------------------------

/** A peer as it appears in WireGuard messages (GET replies or SET requests), with its flags. */
export interface RawPeer {
  publicKey: Key;
  flags: number;
  presharedKey: Key | undefined;
  endpoint: Endpoint | undefined;
  persistentKeepalive: number | undefined;
  lastHandshake: Date | undefined;
  rxBytes: number | undefined;
  txBytes: number | undefined;
  allowedIPs: string[];
  protocolVersion: number | undefined;
}

/** Device attributes merged over every message of a dump (or of a split SET). */
export interface RawDevice {
  ifindex: number | undefined;
  name: string | undefined;
  privateKey: Key | undefined;
  publicKey: Key | undefined;
  flags: number;
  listenPort: number | undefined;
  fwmark: number | undefined;
  peers: RawPeer[];
}

function keyAttr(set: AttrSet, type: number, what: string): Key | undefined {
  const a = set.get(type);
  if (!a) return undefined;
  if (a.data.length !== WG_KEY_LEN)
    throw new NetlinkDecodeError(`${what} has ${a.data.length} bytes, need ${WG_KEY_LEN}`, a.offset);
  return Key.fromBytes(a.data);
}

/** Calls `fn` for each attribute in buf[start, end): type (flags masked), payload offset and length. */
function eachAttr(buf: Buffer, start: number, end: number, fn: (type: number, at: number, len: number) => void): void {
  let off = start;
  while (end - off >= NLA_HDRLEN) {
    const len = buf.readUInt16LE(off);
    if (len < NLA_HDRLEN || off + len > end) throw new NetlinkDecodeError(`bad attribute length ${len}`, off);
    fn(buf.readUInt16LE(off + 2) & 0x3fff, off + NLA_HDRLEN, len - NLA_HDRLEN);
    off += (len + 3) & ~3;
  }
}

function decodeAllowedIp(buf: Buffer, start: number, end: number): string {
  let family = -1;
  let ipAt = -1;
  let ipLen = 0;
  let cidr = -1;
  eachAttr(buf, start, end, (type, at, len) => {
    if (type === WGALLOWEDIP_A_FAMILY && len >= 2) family = buf.readUInt16LE(at);
    else if (type === WGALLOWEDIP_A_IPADDR) {
      ipAt = at;
      ipLen = len;
    } else if (type === WGALLOWEDIP_A_CIDR_MASK && len >= 1) cidr = buf[at] as number;
  });
  const len = family === AF_INET ? 4 : family === AF_INET6 ? 16 : 0;
  if (!len || ipAt < 0 || ipLen < len || cidr < 0 || cidr > len * 8) {
    throw new NetlinkDecodeError(`malformed allowed IP (family ${family}, ${ipLen} address bytes, cidr ${cidr})`, start);
  }
  return `${formatIp(maskBytes(buf.subarray(ipAt, ipAt + len), cidr))}/${cidr}`;
}

function keyAt(buf: Buffer, at: number, len: number, what: string): Key {
  if (len !== WG_KEY_LEN) throw new NetlinkDecodeError(`${what} has ${len} bytes, need ${WG_KEY_LEN}`, at);
  return Key.fromBytes(buf.subarray(at, at + WG_KEY_LEN));
}

function decodePeer(buf: Buffer, start: number, end: number): RawPeer {
  const p: RawPeer = {
    publicKey: undefined as unknown as Key,
    flags: 0,
    presharedKey: undefined,
    endpoint: undefined,
    persistentKeepalive: undefined,
    lastHandshake: undefined,
    rxBytes: undefined,
    txBytes: undefined,
    allowedIPs: [],
    protocolVersion: undefined,
  };
  const need = (at: number, len: number, n: number, what: string): void => {
    if (len < n) throw new NetlinkDecodeError(`${what} has ${len} bytes, need ${n}`, at);
  };
  eachAttr(buf, start, end, (type, at, len) => {
    switch (type) {
      case WGPEER_A_PUBLIC_KEY:
        p.publicKey = keyAt(buf, at, len, 'peer public key');
        break;
      case WGPEER_A_PRESHARED_KEY:
        p.presharedKey = keyAt(buf, at, len, 'preshared key');
        break;
      case WGPEER_A_FLAGS:
        need(at, len, 4, 'peer flags');
        p.flags = buf.readUInt32LE(at);
        break;
      case WGPEER_A_ENDPOINT:
        p.endpoint = decodeSockaddr(buf.subarray(at, at + len), at);
        break;
      case WGPEER_A_PERSISTENT_KEEPALIVE_INTERVAL:
        need(at, len, 2, 'keepalive');
        p.persistentKeepalive = buf.readUInt16LE(at);
        break;
      case WGPEER_A_LAST_HANDSHAKE_TIME: {
        // struct __kernel_timespec { s64 tv_sec; s64 tv_nsec; }
        need(at, len, 16, 'handshake timespec');
        const sec = Number(buf.readBigInt64LE(at));
        const nsec = Number(buf.readBigInt64LE(at + 8));
        if (sec !== 0 || nsec !== 0) p.lastHandshake = new Date(sec * 1000 + Math.floor(nsec / 1e6));
        break;
      }
      case WGPEER_A_RX_BYTES:
        need(at, len, 8, 'rx bytes');
        p.rxBytes = Number(buf.readBigUInt64LE(at));
        break;
      case WGPEER_A_TX_BYTES:
        need(at, len, 8, 'tx bytes');
        p.txBytes = Number(buf.readBigUInt64LE(at));
        break;
      case WGPEER_A_ALLOWEDIPS:
        eachAttr(buf, at, at + len, (_t, ipAt, ipLen) => {
          p.allowedIPs.push(decodeAllowedIp(buf, ipAt, ipAt + ipLen));
        });
        break;
      case WGPEER_A_PROTOCOL_VERSION:
        need(at, len, 4, 'protocol version');
        p.protocolVersion = buf.readUInt32LE(at);
        break;
      default:
        break; // newer kernels may add attributes
    }
  });
  if (!p.publicKey) throw new NetlinkDecodeError('peer without WGPEER_A_PUBLIC_KEY', start);
  return p;
}

/**
 * Decodes the messages of one device (payloads starting at the genlmsghdr), merging a peer
 * that continues from one message into the next (same public key at the boundary), as both
 * the kernel's dump and a split SET do.
 */
export function decodeDeviceMessages(payloads: readonly Buffer[]): RawDevice {
  const dev: RawDevice = {
    ifindex: undefined,
    name: undefined,
    privateKey: undefined,
    publicKey: undefined,
    flags: 0,
    listenPort: undefined,
    fwmark: undefined,
    peers: [],
  };
  for (const payload of payloads) {
    if (payload.length < GENL_HDRLEN) throw new NetlinkDecodeError('message shorter than genlmsghdr', 0);
    const s = AttrSet.decode(payload, GENL_HDRLEN);
    dev.ifindex ??= s.u32(WGDEVICE_A_IFINDEX);
    dev.name ??= s.string(WGDEVICE_A_IFNAME);
    dev.privateKey ??= keyAttr(s, WGDEVICE_A_PRIVATE_KEY, 'private key');
    dev.publicKey ??= keyAttr(s, WGDEVICE_A_PUBLIC_KEY, 'public key');
    dev.flags |= s.u32(WGDEVICE_A_FLAGS) ?? 0;
    dev.listenPort ??= s.u16(WGDEVICE_A_LISTEN_PORT);
    dev.fwmark ??= s.u32(WGDEVICE_A_FWMARK);
    const peers = s.get(WGDEVICE_A_PEERS);
    if (!peers) continue;
    const base = peers.data.byteOffset - payload.byteOffset;
    let i = 0;
    eachAttr(payload, base, base + peers.data.length, (_t, at, len) => {
      const p = decodePeer(payload, at, at + len);
      const last = dev.peers[dev.peers.length - 1];
      if (i++ === 0 && last?.publicKey.equals(p.publicKey)) {
        for (const ip of p.allowedIPs) last.allowedIPs.push(ip);
        return;
      }
      dev.peers.push(p);
    });
  }
  return dev;
}

/** Turns a decoded GET_DEVICE dump into a WireGuardDevice; secrets only when asked for. */
export function toWireGuardDevice(raw: RawDevice, secrets: boolean): WireGuardDevice {
  if (raw.ifindex === undefined || raw.name === undefined) {
    throw new NetlinkDecodeError('device reply without WGDEVICE_A_IFINDEX/IFNAME', 0);
  }
  const nonZero = (k: Key | undefined): Key | undefined => (k && !k.isZero() ? k : undefined);
  const priv = nonZero(raw.privateKey);
  return {
    ifindex: raw.ifindex,
    name: raw.name,
    publicKey: nonZero(raw.publicKey),
    ...(secrets && priv ? { privateKey: priv } : {}),
    listenPort: raw.listenPort ?? 0,
    fwmark: raw.fwmark ?? 0,
    peers: raw.peers.map((p): WireGuardPeer => {
      const psk = nonZero(p.presharedKey);
      return {
        publicKey: p.publicKey,
        ...(secrets && psk ? { presharedKey: psk } : {}),
        endpoint: p.endpoint,
        persistentKeepalive: p.persistentKeepalive ?? 0,
        lastHandshake: p.lastHandshake,
        rxBytes: p.rxBytes ?? 0,
        txBytes: p.txBytes ?? 0,
        allowedIPs: p.allowedIPs,
        protocolVersion: p.protocolVersion ?? 0,
      };
    }),
  };
}
