import { type AttrPart, AttrSet, attr, encodeAttrs } from '../attr.js';
import { NETLINK_GENERIC } from '../constants.js';
import { NetlinkBaseError, NetlinkDecodeError, NetlinkError, NetlinkValidationError } from '../errors.js';
import type { NlMsg } from '../message.js';
import type { NetlinkSocket, RequestOptions } from '../socket.js';
import {
  CTRL_ATTR_FAMILY_ID,
  CTRL_ATTR_FAMILY_NAME,
  CTRL_ATTR_HDRSIZE,
  CTRL_ATTR_MAXATTR,
  CTRL_ATTR_MCAST_GROUPS,
  CTRL_ATTR_MCAST_GRP_ID,
  CTRL_ATTR_MCAST_GRP_NAME,
  CTRL_ATTR_OPS,
  CTRL_ATTR_OP_FLAGS,
  CTRL_ATTR_OP_ID,
  CTRL_ATTR_VERSION,
  CTRL_CMD_GETFAMILY,
  GENL_HDRLEN,
  GENL_ID_CTRL,
  GENL_NAMSIZ,
} from './constants.js';

/*
 * struct genlmsghdr {        // <linux/genetlink.h>
 *   __u8  cmd;
 *   __u8  version;
 *   __u16 reserved;
 * };                         // family-specific header (hdrsize) and attributes follow
 */

/** Encodes a genlmsghdr. */
export function encodeGenlmsghdr(cmd: number, version: number): Buffer {
  if (!Number.isInteger(cmd) || cmd < 0 || cmd > 0xff) throw new NetlinkValidationError('cmd', 'must be 0..255', cmd);
  if (!Number.isInteger(version) || version < 0 || version > 0xff) {
    throw new NetlinkValidationError('version', 'must be 0..255', version);
  }
  return Buffer.of(cmd, version, 0, 0);
}

/** A decoded generic netlink message. */
export interface GenlMessage {
  cmd: number;
  version: number;
  /** Attributes after the genlmsghdr and `hdrsize` bytes of family header. */
  attrs: AttrSet;
  /** The family-specific fixed header (empty for most families). */
  familyHeader: Buffer;
  /** The underlying netlink message. */
  msg: NlMsg;
}

/** Decodes a generic netlink message (genlmsghdr, optional family header, attributes). */
export function decodeGenlmsg(msg: NlMsg, hdrsize = 0): GenlMessage {
  const p = msg.payload;
  if (p.length < GENL_HDRLEN + hdrsize) {
    throw new NetlinkDecodeError(`generic netlink payload of ${p.length} bytes, need ${GENL_HDRLEN + hdrsize}`, 16);
  }
  return {
    cmd: p.readUInt8(0),
    version: p.readUInt8(1),
    familyHeader: p.subarray(GENL_HDRLEN, GENL_HDRLEN + hdrsize),
    attrs: AttrSet.decode(p, GENL_HDRLEN + hdrsize),
    msg,
  };
}

/** A generic netlink family as reported by the controller (CTRL_CMD_GETFAMILY). */
export interface GenlFamily {
  /** nlmsg_type to use for this family's messages. */
  id: number;
  name: string;
  version: number;
  hdrsize: number;
  maxattr: number;
  /** Supported commands: id -> GENL_* capability flags. */
  ops: Map<number, number>;
  /** Multicast group name -> group id (for NetlinkSocket.joinGroup). */
  mcastGroups: Map<string, number>;
}

/** The generic netlink family does not exist (module not loaded / not built in). */
export class FamilyNotFoundError extends NetlinkBaseError {
  override name = 'FamilyNotFoundError';
  constructor(
    readonly family: string,
    override readonly cause?: NetlinkError,
  ) {
    super(`generic netlink family "${family}" not found`);
  }
}

/** Decodes a CTRL_CMD_NEWFAMILY message (reply to GETFAMILY). */
export function decodeFamily(msg: NlMsg): GenlFamily {
  const { attrs } = decodeGenlmsg(msg);
  const id = attrs.u16(CTRL_ATTR_FAMILY_ID);
  const name = attrs.string(CTRL_ATTR_FAMILY_NAME);
  if (id === undefined || name === undefined) {
    throw new NetlinkDecodeError('CTRL_CMD_NEWFAMILY without CTRL_ATTR_FAMILY_ID/NAME', 16);
  }
  const ops = new Map<number, number>();
  for (const op of attrs.nested(CTRL_ATTR_OPS)?.all ?? []) {
    const o = AttrSet.decode(op.data);
    const opId = o.u32(CTRL_ATTR_OP_ID);
    if (opId !== undefined) ops.set(opId, o.u32(CTRL_ATTR_OP_FLAGS) ?? 0);
  }
  const mcastGroups = new Map<string, number>();
  for (const g of attrs.nested(CTRL_ATTR_MCAST_GROUPS)?.all ?? []) {
    const gs = AttrSet.decode(g.data);
    const gname = gs.string(CTRL_ATTR_MCAST_GRP_NAME);
    const gid = gs.u32(CTRL_ATTR_MCAST_GRP_ID);
    if (gname !== undefined && gid !== undefined) mcastGroups.set(gname, gid);
  }
  return {
    id,
    name,
    version: attrs.u32(CTRL_ATTR_VERSION) ?? 0,
    hdrsize: attrs.u32(CTRL_ATTR_HDRSIZE) ?? 0,
    maxattr: attrs.u32(CTRL_ATTR_MAXATTR) ?? 0,
    ops,
    mcastGroups,
  };
}

function checkGenericSocket(sock: NetlinkSocket): void {
  if (sock.protocol !== NETLINK_GENERIC) {
    throw new NetlinkValidationError('socket', 'must be a NETLINK_GENERIC socket', sock.protocol);
  }
}

function checkFamilyName(name: unknown): string {
  if (typeof name !== 'string' || name.length === 0 || Buffer.byteLength(name) >= GENL_NAMSIZ || name.includes('\0')) {
    throw new NetlinkValidationError('family', `must be a name of 1..${GENL_NAMSIZ - 1} bytes`, name);
  }
  return name;
}

/**
 * Resolves a family by name (CTRL_CMD_GETFAMILY): id, version, ops and multicast groups.
 * Equivalent: `genl ctrl get name <name>`.
 * @throws FamilyNotFoundError when the kernel does not know the family (ENOENT).
 */
export async function resolveFamily(sock: NetlinkSocket, name: string): Promise<GenlFamily> {
  checkGenericSocket(sock);
  checkFamilyName(name);
  try {
    const replies = await sock.request({
      type: GENL_ID_CTRL,
      payload: [encodeGenlmsghdr(CTRL_CMD_GETFAMILY, 1), attr.string(CTRL_ATTR_FAMILY_NAME, name)],
      operation: 'CTRL_CMD_GETFAMILY',
    });
    const reply = replies[0];
    if (!reply) throw new NetlinkDecodeError('CTRL_CMD_GETFAMILY was acknowledged without a reply', 0);
    return decodeFamily(reply);
  } catch (e) {
    if (e instanceof NetlinkError && e.code === 'ENOENT') throw new FamilyNotFoundError(name, e);
    throw e;
  }
}

/** Lists every registered family. Equivalent: `genl ctrl list`. */
export async function listFamilies(sock: NetlinkSocket): Promise<GenlFamily[]> {
  checkGenericSocket(sock);
  const parts = await sock.dump({
    type: GENL_ID_CTRL,
    payload: encodeGenlmsghdr(CTRL_CMD_GETFAMILY, 1),
    operation: 'CTRL_CMD_GETFAMILY',
  });
  return parts.map(decodeFamily);
}

/** Options of genlRequest / genlDump. */
export interface GenlRequestOptions extends RequestOptions {
  /** Extra nlmsg flags (NLM_F_CREATE...). */
  flags?: number;
  /** genlmsghdr.version; defaults to the family's version (or 1 for a bare id). */
  version?: number;
  /** Family-specific fixed header placed before the attributes. */
  familyHeader?: Buffer;
  /** Name for errors; default "<family> cmd <n>". */
  operation?: string;
}

function target(family: GenlFamily | number): { id: number; name: string; version: number; hdrsize: number } {
  if (typeof family === 'number') {
    if (!Number.isInteger(family) || family < GENL_ID_CTRL || family > 0xffff) {
      throw new NetlinkValidationError('family', 'must be a GenlFamily or a family id >= 0x10', family);
    }
    return { id: family, name: `genl family ${family}`, version: 1, hdrsize: 0 };
  }
  return family;
}

/** The netlink request for one generic-netlink command (shared by request and dump). */
function genlMessage(
  f: Pick<GenlFamily, 'id' | 'name' | 'version'>,
  cmd: number,
  attrs: readonly AttrPart[],
  opts: GenlRequestOptions,
) {
  return {
    type: f.id,
    flags: opts.flags ?? 0,
    payload: [encodeGenlmsghdr(cmd, opts.version ?? f.version), opts.familyHeader ?? Buffer.alloc(0), encodeAttrs(attrs)],
    operation: opts.operation ?? `${f.name} cmd ${cmd}`,
  };
}

/** genlRequest and genlDump differ only in the socket call (request waits for the ACK, dump for NLMSG_DONE). */
async function genlExchange(
  sock: NetlinkSocket,
  how: 'request' | 'dump',
  family: GenlFamily | number,
  cmd: number,
  attrs: readonly AttrPart[],
  opts: GenlRequestOptions,
): Promise<GenlMessage[]> {
  checkGenericSocket(sock);
  const f = target(family);
  const msgs = await sock[how](genlMessage(f, cmd, attrs, opts), opts);
  return msgs.map((m) => decodeGenlmsg(m, f.hdrsize));
}

/** genlRequest's and genlDump's signature. */
export type GenlCall = (
  sock: NetlinkSocket,
  family: GenlFamily | number,
  cmd: number,
  attrs: readonly AttrPart[],
  opts?: GenlRequestOptions,
) => Promise<GenlMessage[]>;

/** Sends one command to a family and returns the decoded replies (after the ACK). */
export const genlRequest: GenlCall = (sock, family, cmd, attrs, opts = {}) =>
  genlExchange(sock, 'request', family, cmd, attrs, opts);

/** Dumps a family command (NLM_F_DUMP) and returns every decoded part. */
export const genlDump: GenlCall = (sock, family, cmd, attrs, opts = {}) => genlExchange(sock, 'dump', family, cmd, attrs, opts);
