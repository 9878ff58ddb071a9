import { type AttrPart, AttrSet, attr } from '../attr.js';
import { NLM_F_CREATE, NLM_F_EXCL, NLM_F_REPLACE } from '../constants.js';
import { NetlinkDecodeError, NetlinkValidationError } from '../errors.js';
import type { NlMsg } from '../message.js';
import type { NetlinkSocket } from '../socket.js';
import { type Scope, scopeValue } from './address.js';
import {
  RTAX_MTU,
  RTA_DST,
  RTA_GATEWAY,
  RTA_METRICS,
  RTA_OIF,
  RTA_PREFSRC,
  RTA_PRIORITY,
  RTA_TABLE,
  RTM_DELROUTE,
  RTM_GETROUTE,
  RTM_NEWROUTE,
  RTN_BLACKHOLE,
  RTN_LOCAL,
  RTN_PROHIBIT,
  RTN_THROW,
  RTN_UNICAST,
  RTN_UNREACHABLE,
  RTPROT_BOOT,
  RTPROT_KERNEL,
  RTPROT_STATIC,
  RTPROT_UNSPEC,
  RT_SCOPE_LINK,
  RT_SCOPE_NOWHERE,
  RT_SCOPE_UNIVERSE,
  RT_TABLE_MAIN,
  RT_TABLE_UNSPEC,
} from './constants.js';
import { type IpFamily, afOf, familyOfAf, formatIp, parseIp, parsePrefix } from './ip.js';
import { linkIndex } from './link.js';
import { type LinkRef, checkLinkRef, checkMtu, checkRouteSocket, checkUint } from './validate.js';

/*
 * struct rtmsg {             // <linux/rtnetlink.h>, 12 bytes
 *   unsigned char rtm_family;
 *   unsigned char rtm_dst_len;
 *   unsigned char rtm_src_len;
 *   unsigned char rtm_tos;
 *   unsigned char rtm_table;     // RT_TABLE_UNSPEC when the id needs RTA_TABLE (>= 256)
 *   unsigned char rtm_protocol;  // RTPROT_*
 *   unsigned char rtm_scope;     // RT_SCOPE_*
 *   unsigned char rtm_type;      // RTN_*
 *   unsigned      rtm_flags;
 * };
 */
export const RTMSG_LEN = 12;

export interface RtMsg {
  family: number;
  dstLen: number;
  srcLen: number;
  tos: number;
  table: number;
  protocol: number;
  scope: number;
  type: number;
  flags: number;
}

export function encodeRtmsg(m: Partial<RtMsg>): Buffer {
  const b = Buffer.alloc(RTMSG_LEN);
  b.writeUInt8(m.family ?? 0, 0);
  b.writeUInt8(m.dstLen ?? 0, 1);
  b.writeUInt8(m.srcLen ?? 0, 2);
  b.writeUInt8(m.tos ?? 0, 3);
  b.writeUInt8(m.table ?? 0, 4);
  b.writeUInt8(m.protocol ?? 0, 5);
  b.writeUInt8(m.scope ?? 0, 6);
  b.writeUInt8(m.type ?? 0, 7);
  b.writeUInt32LE(m.flags ?? 0, 8);
  return b;
}

export function decodeRtmsg(p: Buffer): RtMsg {
  if (p.length < RTMSG_LEN) throw new NetlinkDecodeError(`rtmsg needs ${RTMSG_LEN} bytes, got ${p.length}`, 16);
  return {
    family: p.readUInt8(0),
    dstLen: p.readUInt8(1),
    srcLen: p.readUInt8(2),
    tos: p.readUInt8(3),
    table: p.readUInt8(4),
    protocol: p.readUInt8(5),
    scope: p.readUInt8(6),
    type: p.readUInt8(7),
    flags: p.readUInt32LE(8),
  };
}

/** Route type: a name or a raw RTN_* number. */
export type RouteType = 'unicast' | 'local' | 'blackhole' | 'unreachable' | 'prohibit' | 'throw' | number;
/** Route protocol: a name or a raw RTPROT_* number (e.g. a private id for Veil's routes). */
export type RouteProtocol = 'unspec' | 'kernel' | 'boot' | 'static' | number;

const TYPES: Record<string, number> = {
  unicast: RTN_UNICAST,
  local: RTN_LOCAL,
  blackhole: RTN_BLACKHOLE,
  unreachable: RTN_UNREACHABLE,
  prohibit: RTN_PROHIBIT,
  throw: RTN_THROW,
};
const PROTOS: Record<string, number> = { unspec: RTPROT_UNSPEC, kernel: RTPROT_KERNEL, boot: RTPROT_BOOT, static: RTPROT_STATIC };

/** A route (RTM_NEWROUTE). */
export interface Route {
  family: IpFamily;
  /** "10.1.0.0/16", or "default" for a zero-length prefix. */
  dst: string;
  dstLen: number;
  gateway: string | undefined;
  /** Output interface index. */
  oif: number | undefined;
  /** Table id (from RTA_TABLE when present). */
  table: number;
  protocol: number;
  scope: number;
  type: number;
  /** Metric (RTA_PRIORITY). */
  priority: number | undefined;
  prefsrc: string | undefined;
  /** RTAX_MTU from RTA_METRICS. */
  mtu: number | undefined;
  flags: number;
  attrs: AttrSet;
}

export function decodeRoute(msg: NlMsg): Route {
  const h = decodeRtmsg(msg.payload);
  const family = familyOfAf(h.family);
  if (family === undefined) throw new NetlinkDecodeError(`route family ${h.family} is not inet/inet6`, 16);
  const attrs = AttrSet.decode(msg.payload, RTMSG_LEN);
  const dst = attrs.binary(RTA_DST);
  const gw = attrs.binary(RTA_GATEWAY);
  const prefsrc = attrs.binary(RTA_PREFSRC);
  return {
    family,
    dst: h.dstLen === 0 || !dst ? 'default' : `${formatIp(dst)}/${h.dstLen}`,
    dstLen: h.dstLen,
    gateway: gw ? formatIp(gw) : undefined,
    oif: attrs.u32(RTA_OIF),
    table: attrs.u32(RTA_TABLE) ?? h.table,
    protocol: h.protocol,
    scope: h.scope,
    type: h.type,
    priority: attrs.u32(RTA_PRIORITY),
    prefsrc: prefsrc ? formatIp(prefsrc) : undefined,
    mtu: attrs.nested(RTA_METRICS)?.u32(RTAX_MTU),
    flags: h.flags,
    attrs,
  };
}

/** Options of addRoute / deleteRoute. */
export interface RouteSpec {
  /** Destination prefix ("10.1.0.0/16", "fd00::/64") or "default" (then `family` picks v4/v6). */
  dst: string;
  family?: IpFamily;
  /** Next hop ("via"). */
  gateway?: string;
  /** Output interface ("dev"), by name or index. */
  dev?: LinkRef;
  /** Table id; default main (254). */
  table?: number;
  /** Path MTU metric (RTA_METRICS / RTAX_MTU). */
  mtu?: number;
  /** Metric (RTA_PRIORITY). */
  priority?: number;
  /** Preferred source address. */
  src?: string;
  /** Default: 'link' when there is a dev and no gateway, else 'universe' (as iproute2 does). */
  scope?: Scope;
  /** Default 'boot' (as iproute2). */
  protocol?: RouteProtocol;
  /** Default 'unicast'. */
  type?: RouteType;
  /** Replace an existing route instead of failing with EEXIST. */
  replace?: boolean;
}

function checkTable(v: unknown, field = 'table'): number {
  return checkUint(v, field, 1, 0xffffffff);
}

async function buildRoute(sock: NetlinkSocket, spec: RouteSpec, forDelete: boolean) {
  if (typeof spec !== 'object' || spec === null) throw new NetlinkValidationError('route', 'must be an object', spec);
  if (spec.family !== undefined && spec.family !== 4 && spec.family !== 6) {
    throw new NetlinkValidationError('family', 'must be 4 or 6', spec.family);
  }
  const dst =
    spec.dst === 'default'
      ? { family: spec.family ?? 4, bytes: Buffer.alloc((spec.family ?? 4) === 4 ? 4 : 16), prefixLen: 0 }
      : parsePrefix(spec.dst, 'dst');
  if (spec.family !== undefined && spec.family !== dst.family) {
    throw new NetlinkValidationError('family', `does not match dst ${spec.dst}`, spec.family);
  }
  const gw = spec.gateway === undefined ? undefined : parseIp(spec.gateway, 'gateway');
  if (gw && gw.family !== dst.family) throw new NetlinkValidationError('gateway', 'family differs from dst', spec.gateway);
  const src = spec.src === undefined ? undefined : parseIp(spec.src, 'src');
  if (src && src.family !== dst.family) throw new NetlinkValidationError('src', 'family differs from dst', spec.src);
  if (spec.dev !== undefined) checkLinkRef(spec.dev, 'dev');
  const table = spec.table === undefined ? RT_TABLE_MAIN : checkTable(spec.table);
  const mtu = spec.mtu === undefined ? undefined : checkMtu(spec.mtu);
  const priority = spec.priority === undefined ? undefined : checkUint(spec.priority, 'priority', 0, 0xffffffff);
  const type =
    spec.type === undefined
      ? RTN_UNICAST
      : typeof spec.type === 'string'
        ? (TYPES[spec.type] ?? fail('type', spec.type))
        : checkUint(spec.type, 'type', 0, 255);
  const protocol =
    spec.protocol === undefined
      ? forDelete
        ? RTPROT_UNSPEC
        : RTPROT_BOOT
      : typeof spec.protocol === 'string'
        ? (PROTOS[spec.protocol] ?? fail('protocol', spec.protocol))
        : checkUint(spec.protocol, 'protocol', 0, 255);
  let scope: number;
  if (spec.scope !== undefined) scope = scopeValue(spec.scope);
  else if (forDelete) scope = RT_SCOPE_NOWHERE;
  else scope = !gw && spec.dev !== undefined && type === RTN_UNICAST ? RT_SCOPE_LINK : RT_SCOPE_UNIVERSE;
  if (!forDelete && type === RTN_UNICAST && !gw && spec.dev === undefined) {
    throw new NetlinkValidationError('dev', 'a unicast route needs a gateway or a dev', spec);
  }
  const oif = spec.dev === undefined ? undefined : await linkIndex(sock, spec.dev, 'dev');
  // Attribute order and encoding follow iproute2 (`ip route add`), so requests match its bytes.
  const parts: AttrPart[] = [
    dst.prefixLen > 0 && attr.binary(RTA_DST, dst.bytes),
    gw && attr.binary(RTA_GATEWAY, gw.bytes),
    priority !== undefined && attr.u32(RTA_PRIORITY, priority),
    src && attr.binary(RTA_PREFSRC, src.bytes),
    // Table ids that do not fit rtm_table (u8) go in RTA_TABLE.
    table >= 256 && attr.u32(RTA_TABLE, table),
    oif !== undefined && attr.u32(RTA_OIF, oif),
    // RTA_METRICS without NLA_F_NESTED, like iproute2; the kernel accepts both.
    mtu !== undefined && attr.nested(RTA_METRICS, [attr.u32(RTAX_MTU, mtu)], { nestedFlag: false }),
  ];
  const header = encodeRtmsg({
    family: afOf(dst.family),
    dstLen: dst.prefixLen,
    table: table < 256 ? table : RT_TABLE_UNSPEC,
    protocol,
    scope,
    type: forDelete && spec.type === undefined ? 0 : type,
  });
  return [header, ...parts.filter((p): p is Buffer => Buffer.isBuffer(p))];
}

function fail(field: string, v: unknown): never {
  throw new NetlinkValidationError(field, 'unknown name', v);
}

/**
 * Adds a route.
 * Equivalent: `ip route add <dst> [via <gateway>] [dev <dev>] [table <t>] [mtu <m>] [metric <p>] [src <s>] [scope ..] [proto ..]`.
 */
export async function addRoute(sock: NetlinkSocket, spec: RouteSpec): Promise<void> {
  checkRouteSocket(sock);
  const payload = await buildRoute(sock, spec, false);
  await sock.request({ type: RTM_NEWROUTE, flags: NLM_F_CREATE | (spec.replace ? NLM_F_REPLACE : NLM_F_EXCL), payload });
}

/** Deletes a route. Equivalent: `ip route del <dst> [via ..] [dev ..] [table <t>]`. */
export async function deleteRoute(sock: NetlinkSocket, spec: RouteSpec): Promise<void> {
  checkRouteSocket(sock);
  const payload = await buildRoute(sock, spec, true);
  await sock.request({ type: RTM_DELROUTE, payload });
}

/**
 * Lists routes of one family, optionally of one table (default: every table).
 * Equivalent: `ip [-6] route show table <t|all>`. Cached/cloned routes are left out.
 */
export async function listRoutes(sock: NetlinkSocket, filter: { family?: IpFamily; table?: number } = {}): Promise<Route[]> {
  checkRouteSocket(sock);
  const family = filter.family ?? 4;
  if (family !== 4 && family !== 6) throw new NetlinkValidationError('family', 'must be 4 or 6', filter.family);
  const table = filter.table === undefined ? undefined : checkTable(filter.table);
  // Strict-check dumps honour rtm_table / RTA_TABLE as a kernel-side filter.
  const parts = await sock.dump({
    type: RTM_GETROUTE,
    payload: [
      encodeRtmsg({ family: afOf(family), table: table !== undefined && table < 256 ? table : 0 }),
      table !== undefined ? attr.u32(RTA_TABLE, table) : Buffer.alloc(0),
    ],
  });
  return parts
    .filter((m) => m.type === RTM_NEWROUTE)
    .map(decodeRoute)
    .filter((r) => (table === undefined || r.table === table) && (r.flags & 0x200) === 0 /* RTM_F_CLONED */);
}
