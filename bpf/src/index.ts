/**
 * @veil/bpf: Veil's shared tc programs (bpf/*.c, compiled into obj/veil.bpf.o) and the typed
 * TypeScript mirror of their maps. Packet builders for tests live in `@veil/bpf/testing`.
 */
export { BpfObjectMissingError, benchObjectPath, objectPath, PROGRAMS, traceObjectPath } from './paths.js';
export { REASONS, REASON_COUNT, type ReasonName, reasonIndex, reasonName, TcAction } from './reasons.js';
export {
  type Backend,
  ConfigFlag,
  type Counter,
  counterLayout,
  counterValue,
  DEFAULT_CONFIG,
  type DatapathConfig,
  datapathConfig,
  datapathConfigLayout,
  FAMILY_IPV4,
  FAMILY_IPV6,
  formatCidr,
  indexKey,
  IpcacheFlag,
  type IpcacheKey,
  type IpcacheKeyInput,
  ipcacheKey,
  ipcacheKeyLayout,
  type IpcacheValue,
  type IpcacheValueInput,
  ipcacheValue,
  ipcacheValueLayout,
  PREFIX_BASE,
  STRUCT_LAYOUTS,
  strictCidrValue,
} from './layouts.js';
export { type IpPrefix, ipv4, ipv6, lpmIPv4, lpmIPv6, parsePrefix } from './ip-codecs.js';
export { decodeIpsecMark, IPSEC_MARK_ENCRYPT, IPSEC_MARK_MASK, type IpsecMarkFields, ipsecMark } from './mark.js';
export { type TraceKind, type TraceRecord, traceLayout, traceValue } from './trace.js';
export { type FieldLayout, fieldAt, type StructLayout, StructLayoutError, structLayout } from './struct-layout.js';
export {
  type CounterRecord,
  Datapath,
  DEFAULT_IPCACHE_MAX_ENTRIES,
  DEFAULT_STRICT_CIDRS_MAX_ENTRIES,
  type IpcacheMap,
  loadDatapath,
  type LoadDatapathOptions,
  type StrictCidrsMap,
} from './datapath.js';
