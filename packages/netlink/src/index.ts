// Curated public API of @veil/netlink. See API.md.
// Protocol constants are grouped by kernel header in namespaces (nl.NLM_F_DUMP, rtnl.RTM_NEWROUTE,
// genl.CTRL_CMD_GETFAMILY); netlink's own tests and benches import module files directly.

// Protocol constants, by header: <linux/netlink.h>, <linux/rtnetlink.h> (+ if/fib_rules), <linux/genetlink.h>.
export * as nl from './constants.js';
export * as rtnl from './route/constants.js';
export * as genl from './genl/constants.js';
// The sizes and flags every attribute codec needs, also by name.
export { NLMSG_HDRLEN, NLA_HDRLEN, NLA_F_NESTED, type ProtocolName } from './constants.js';
export { GENL_HDRLEN } from './genl/constants.js';
export { AF_INET, AF_INET6 } from './route/constants.js';

// Socket
export { NetlinkSocket, type NetlinkSocketOptions, type NetlinkSocketEvents, type RequestOptions } from './socket.js';

// Framing: messages and attributes
export {
  type NlMsg,
  type NlMsgHeaderInit,
  type NlMsgErr,
  type NetlinkRequest,
  encodeNlmsg,
  decodeNlmsgs,
  decodeNlmsgerr,
  decodeDone,
} from './message.js';
export {
  type NlAttr,
  type AttrPart,
  type AttrTree,
  type AttrLeaf,
  type AttrNest,
  attr,
  encodeAttr,
  encodeAttrs,
  decodeAttrs,
  AttrSet,
  encodeAttrTree,
  decodeAttrTree,
} from './attr.js';

// Errors
export {
  type ExtAck,
  NetlinkBaseError,
  NetlinkDecodeError,
  NetlinkValidationError,
  NetlinkError,
  DumpInterruptedError,
  NetlinkSyscallError,
  SocketClosedError,
  NetlinkTimeoutError,
} from './errors.js';
export { errnoCode } from './errno.js';

// Generic netlink: family resolution, requests and dumps
export {
  type GenlFamily,
  type GenlMessage,
  type GenlRequestOptions,
  type GenlCall,
  FamilyNotFoundError,
  encodeGenlmsghdr,
  decodeGenlmsg,
  resolveFamily,
  listFamilies,
  genlRequest,
  genlDump,
} from './genl/ctrl.js';

// rtnetlink: links, addresses, routes, rules, sysctls
export { type LinkRef, type NetnsRef, IFNAME_MAX } from './route/validate.js';
export { type IpFamily, type IpAddr, type IpPrefix, parseIp, parsePrefix, formatIp, networkOf } from './route/ip.js';
export {
  type Link,
  type CreateLinkOptions,
  type CreateVethOptions,
  type LinkEvent,
  type LinkWatcherEvents,
  LinkWatcher,
  decodeLink,
  listLinks,
  getLink,
  linkIndex,
  createVeth,
  createDummy,
  createWireguard,
  setLinkUp,
  setLinkDown,
  setLinkMtu,
  moveLinkToNetns,
  deleteLink,
  watchLinks,
} from './route/link.js';
export {
  type Address,
  type AddressSpec,
  type Scope,
  decodeAddress,
  addAddress,
  deleteAddress,
  listAddresses,
} from './route/address.js';
export {
  type Route,
  type RouteSpec,
  type RouteType,
  type RouteProtocol,
  decodeRoute,
  addRoute,
  deleteRoute,
  listRoutes,
} from './route/route.js';
export { type Rule, type RuleSpec, type RuleAction, decodeRule, addRule, deleteRule, listRules } from './route/rule.js';
export { type SysctlOptions, sysctlPath, readSysctl, writeSysctl, setIpForwarding, setRpFilter } from './route/sysctl.js';
