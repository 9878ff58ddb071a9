import { type AttrPart, AttrSet, attr } from '../attr.js';
import { NLM_F_CREATE, NLM_F_EXCL } from '../constants.js';
import { NetlinkDecodeError, NetlinkValidationError } from '../errors.js';
import type { NlMsg } from '../message.js';
import type { NetlinkSocket } from '../socket.js';
import {
  FIB_RULE_INVERT,
  FRA_DST,
  FRA_FWMARK,
  FRA_FWMASK,
  FRA_IIFNAME,
  FRA_OIFNAME,
  FRA_PRIORITY,
  FRA_PROTOCOL,
  FRA_SRC,
  FRA_SUPPRESS_PREFIXLEN,
  FRA_TABLE,
  FR_ACT_BLACKHOLE,
  FR_ACT_NOP,
  FR_ACT_PROHIBIT,
  FR_ACT_TO_TBL,
  FR_ACT_UNREACHABLE,
  RTM_DELRULE,
  RTM_GETRULE,
  RTM_NEWRULE,
  RT_TABLE_MAIN,
  RT_TABLE_UNSPEC,
} from './constants.js';
import { type IpFamily, afOf, familyOfAf, formatIp, parsePrefix } from './ip.js';
import { checkIfname, checkRouteSocket, checkUint } from './validate.js';

/*
 * struct fib_rule_hdr {      // <linux/fib_rules.h>, 12 bytes
 *   __u8  family;
 *   __u8  dst_len;
 *   __u8  src_len;
 *   __u8  tos;
 *   __u8  table;             // RT_TABLE_UNSPEC when the id needs FRA_TABLE (>= 256)
 *   __u8  res1, res2;
 *   __u8  action;            // FR_ACT_*
 *   __u32 flags;             // FIB_RULE_INVERT...
 * };
 */
export const FIB_RULE_HDR_LEN = 12;

export function encodeFibRuleHdr(m: {
  family: number;
  dstLen?: number;
  srcLen?: number;
  tos?: number;
  table?: number;
  action?: number;
  flags?: number;
}): Buffer {
  const b = Buffer.alloc(FIB_RULE_HDR_LEN);
  b.writeUInt8(m.family, 0);
  b.writeUInt8(m.dstLen ?? 0, 1);
  b.writeUInt8(m.srcLen ?? 0, 2);
  b.writeUInt8(m.tos ?? 0, 3);
  b.writeUInt8(m.table ?? 0, 4);
  b.writeUInt8(m.action ?? 0, 7);
  b.writeUInt32LE(m.flags ?? 0, 8);
  return b;
}

/** Rule action: a name or a raw FR_ACT_* number. */
export type RuleAction = 'to-table' | 'nop' | 'blackhole' | 'unreachable' | 'prohibit' | number;
const ACTIONS: Record<string, number> = {
  'to-table': FR_ACT_TO_TBL,
  nop: FR_ACT_NOP,
  blackhole: FR_ACT_BLACKHOLE,
  unreachable: FR_ACT_UNREACHABLE,
  prohibit: FR_ACT_PROHIBIT,
};

/** A policy routing rule (RTM_NEWRULE). */
export interface Rule {
  family: IpFamily;
  priority: number | undefined;
  fwmark: number | undefined;
  fwmask: number | undefined;
  table: number;
  action: number;
  src: string | undefined;
  dst: string | undefined;
  iif: string | undefined;
  oif: string | undefined;
  invert: boolean;
  suppressPrefixLen: number | undefined;
  protocol: number | undefined;
  flags: number;
  attrs: AttrSet;
}

export function decodeRule(msg: NlMsg): Rule {
  const p = msg.payload;
  if (p.length < FIB_RULE_HDR_LEN) throw new NetlinkDecodeError(`fib_rule_hdr needs ${FIB_RULE_HDR_LEN} bytes`, 16);
  const family = familyOfAf(p.readUInt8(0));
  if (family === undefined) throw new NetlinkDecodeError(`rule family ${p.readUInt8(0)} is not inet/inet6`, 16);
  const attrs = AttrSet.decode(p, FIB_RULE_HDR_LEN);
  const src = attrs.binary(FRA_SRC);
  const dst = attrs.binary(FRA_DST);
  const flags = p.readUInt32LE(8);
  const spl = attrs.u32(FRA_SUPPRESS_PREFIXLEN);
  return {
    family,
    priority: attrs.u32(FRA_PRIORITY),
    fwmark: attrs.u32(FRA_FWMARK),
    fwmask: attrs.u32(FRA_FWMASK),
    table: attrs.u32(FRA_TABLE) ?? p.readUInt8(4),
    action: p.readUInt8(7),
    src: src ? `${formatIp(src)}/${p.readUInt8(2)}` : undefined,
    dst: dst ? `${formatIp(dst)}/${p.readUInt8(1)}` : undefined,
    iif: attrs.string(FRA_IIFNAME),
    oif: attrs.string(FRA_OIFNAME),
    invert: (flags & FIB_RULE_INVERT) !== 0,
    // The kernel reports "unset" as 0xffffffff (-1).
    suppressPrefixLen: spl === undefined || spl === 0xffffffff ? undefined : spl,
    protocol: attrs.u8(FRA_PROTOCOL),
    flags,
    attrs,
  };
}

/** Options of addRule / deleteRule. */
export interface RuleSpec {
  /** Default 4. */
  family?: IpFamily;
  priority?: number;
  /** Match packets whose mark & fwmask == fwmark. */
  fwmark?: number;
  /** Requires fwmark. Default (kernel): 0xffffffff. */
  fwmask?: number;
  /** Lookup table; default main for add. */
  table?: number;
  /** Default 'to-table'. */
  action?: RuleAction;
  src?: string;
  dst?: string;
  iif?: string;
  oif?: string;
  /** `not`: invert the selector. */
  invert?: boolean;
  /** Reject lookup results with prefix length <= N (`suppress_prefixlength N`). */
  suppressPrefixLen?: number;
}

function build(spec: RuleSpec, forDelete: boolean): Buffer[] {
  if (typeof spec !== 'object' || spec === null) throw new NetlinkValidationError('rule', 'must be an object', spec);
  const family = spec.family ?? 4;
  if (family !== 4 && family !== 6) throw new NetlinkValidationError('family', 'must be 4 or 6', spec.family);
  const priority = spec.priority === undefined ? undefined : checkUint(spec.priority, 'priority', 0, 0xffffffff);
  const fwmark = spec.fwmark === undefined ? undefined : checkUint(spec.fwmark, 'fwmark', 0, 0xffffffff);
  const fwmask = spec.fwmask === undefined ? undefined : checkUint(spec.fwmask, 'fwmask', 0, 0xffffffff);
  if (fwmask !== undefined && fwmark === undefined) {
    throw new NetlinkValidationError('fwmask', 'needs fwmark', spec.fwmask);
  }
  const table =
    spec.table === undefined ? (forDelete ? undefined : RT_TABLE_MAIN) : checkUint(spec.table, 'table', 1, 0xffffffff);
  const action =
    spec.action === undefined
      ? forDelete
        ? 0
        : FR_ACT_TO_TBL
      : typeof spec.action === 'string'
        ? (ACTIONS[spec.action] ??
          (() => {
            throw new NetlinkValidationError('action', 'unknown action', spec.action);
          })())
        : checkUint(spec.action, 'action', 0, 255);
  const src = spec.src === undefined ? undefined : parsePrefix(spec.src, 'src');
  const dst = spec.dst === undefined ? undefined : parsePrefix(spec.dst, 'dst');
  if (src && src.family !== family) throw new NetlinkValidationError('src', `is not IPv${family}`, spec.src);
  if (dst && dst.family !== family) throw new NetlinkValidationError('dst', `is not IPv${family}`, spec.dst);
  const iif = spec.iif === undefined ? undefined : checkIfname(spec.iif, 'iif');
  const oif = spec.oif === undefined ? undefined : checkIfname(spec.oif, 'oif');
  const spl =
    spec.suppressPrefixLen === undefined
      ? undefined
      : checkUint(spec.suppressPrefixLen, 'suppressPrefixLen', 0, family === 4 ? 32 : 128);
  const parts: AttrPart[] = [
    fwmark !== undefined && attr.u32(FRA_FWMARK, fwmark),
    fwmask !== undefined && attr.u32(FRA_FWMASK, fwmask),
    priority !== undefined && attr.u32(FRA_PRIORITY, priority),
    // Table ids that do not fit the u8 header field go in FRA_TABLE (as iproute2 does).
    table !== undefined && table >= 256 && attr.u32(FRA_TABLE, table),
    src && attr.binary(FRA_SRC, src.bytes),
    dst && attr.binary(FRA_DST, dst.bytes),
    iif !== undefined && attr.string(FRA_IIFNAME, iif),
    oif !== undefined && attr.string(FRA_OIFNAME, oif),
    spl !== undefined && attr.u32(FRA_SUPPRESS_PREFIXLEN, spl),
  ];
  return [
    encodeFibRuleHdr({
      family: afOf(family),
      srcLen: src?.prefixLen ?? 0,
      dstLen: dst?.prefixLen ?? 0,
      table: table !== undefined && table < 256 ? table : RT_TABLE_UNSPEC,
      action,
      flags: spec.invert ? FIB_RULE_INVERT : 0,
    }),
    ...parts.filter((p): p is Buffer => Buffer.isBuffer(p)),
  ];
}

/**
 * Adds a rule (fails with EEXIST on an identical rule).
 * Equivalent: `ip [-6] rule add [not] [from S] [to D] [fwmark M/MASK] [iif I] [oif O] [priority P] table T`.
 */
export async function addRule(sock: NetlinkSocket, spec: RuleSpec): Promise<void> {
  checkRouteSocket(sock);
  await sock.request({ type: RTM_NEWRULE, flags: NLM_F_CREATE | NLM_F_EXCL, payload: build(spec, false) });
}

/** Deletes the first rule matching every given selector. Equivalent: `ip [-6] rule del ...`. */
export async function deleteRule(sock: NetlinkSocket, spec: RuleSpec): Promise<void> {
  checkRouteSocket(sock);
  await sock.request({ type: RTM_DELRULE, payload: build(spec, true) });
}

/** Lists the rules of one family (default 4). Equivalent: `ip [-6] rule show`. */
export async function listRules(sock: NetlinkSocket, filter: { family?: IpFamily } = {}): Promise<Rule[]> {
  checkRouteSocket(sock);
  const family = filter.family ?? 4;
  if (family !== 4 && family !== 6) throw new NetlinkValidationError('family', 'must be 4 or 6', filter.family);
  const parts = await sock.dump({ type: RTM_GETRULE, payload: encodeFibRuleHdr({ family: afOf(family) }) });
  return parts.filter((m) => m.type === RTM_NEWRULE).map(decodeRule);
}
