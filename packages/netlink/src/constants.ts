/**
 * Netlink core constants, from <linux/netlink.h>. Names and values mirror the kernel UAPI so that
 * code reads like its C counterpart.
 */

/** Netlink protocol families (the `protocol` argument of socket(AF_NETLINK, SOCK_RAW, protocol)). */
export const NETLINK_ROUTE = 0;
export const NETLINK_XFRM = 6;
export const NETLINK_GENERIC = 16;

/** Friendly names accepted by `NetlinkSocket.open`. */
export const Protocol = {
  ROUTE: NETLINK_ROUTE,
  XFRM: NETLINK_XFRM,
  GENERIC: NETLINK_GENERIC,
} as const;
export type ProtocolName = keyof typeof Protocol;

// nlmsghdr.nlmsg_flags — standard flags
export const NLM_F_REQUEST = 0x01;
export const NLM_F_MULTI = 0x02;
export const NLM_F_ACK = 0x04;
export const NLM_F_ECHO = 0x08;
export const NLM_F_DUMP_INTR = 0x10;
export const NLM_F_DUMP_FILTERED = 0x20;
// modifiers to GET requests
export const NLM_F_ROOT = 0x100;
export const NLM_F_MATCH = 0x200;
export const NLM_F_ATOMIC = 0x400;
export const NLM_F_DUMP = NLM_F_ROOT | NLM_F_MATCH;
// modifiers to NEW requests
export const NLM_F_REPLACE = 0x100;
export const NLM_F_EXCL = 0x200;
export const NLM_F_CREATE = 0x400;
export const NLM_F_APPEND = 0x800;
// modifiers to DELETE requests
export const NLM_F_NONREC = 0x100;
export const NLM_F_BULK = 0x200;
// flags for ACK messages
export const NLM_F_CAPPED = 0x100;
export const NLM_F_ACK_TLVS = 0x200;

// Reserved control message types (< NLMSG_MIN_TYPE)
export const NLMSG_NOOP = 0x1;
export const NLMSG_ERROR = 0x2;
export const NLMSG_DONE = 0x3;
export const NLMSG_OVERRUN = 0x4;
export const NLMSG_MIN_TYPE = 0x10;

export const NLMSG_ALIGNTO = 4;
/** sizeof(struct nlmsghdr) */
export const NLMSG_HDRLEN = 16;
/** sizeof(struct nlattr) */
export const NLA_HDRLEN = 4;
export const NLA_ALIGNTO = 4;

// nlattr.nla_type high bits
export const NLA_F_NESTED = 1 << 15;
export const NLA_F_NET_BYTEORDER = 1 << 14;
export const NLA_TYPE_MASK = ~(NLA_F_NESTED | NLA_F_NET_BYTEORDER) & 0xffff;

// enum nlmsgerr_attrs: TLVs after struct nlmsgerr when NLM_F_ACK_TLVS is set
export const NLMSGERR_ATTR_UNUSED = 0;
export const NLMSGERR_ATTR_MSG = 1;
export const NLMSGERR_ATTR_OFFS = 2;
export const NLMSGERR_ATTR_COOKIE = 3;
export const NLMSGERR_ATTR_POLICY = 4;
export const NLMSGERR_ATTR_MISS_TYPE = 5;
export const NLMSGERR_ATTR_MISS_NEST = 6;

// setsockopt(SOL_NETLINK, ...) option names
export const SOL_NETLINK = 270;
export const NETLINK_ADD_MEMBERSHIP = 1;
export const NETLINK_DROP_MEMBERSHIP = 2;
export const NETLINK_PKTINFO = 3;
export const NETLINK_BROADCAST_ERROR = 4;
export const NETLINK_NO_ENOBUFS = 5;
export const NETLINK_LISTEN_ALL_NSID = 8;
export const NETLINK_LIST_MEMBERSHIPS = 9;
export const NETLINK_CAP_ACK = 10;
export const NETLINK_EXT_ACK = 11;
export const NETLINK_GET_STRICT_CHK = 12;

/** Rounds up to the 4-byte netlink alignment (NLMSG_ALIGN / NLA_ALIGN). */
export function align4(n: number): number {
  return (n + 3) & ~3;
}
