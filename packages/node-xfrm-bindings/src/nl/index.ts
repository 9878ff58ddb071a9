// Wire-level codecs, one per kernel struct, for callers that need raw XFRM messages.
export * from './constants.js';
export { type StructCodec, encodeStruct, decodeStruct } from './struct.js';
export { xfrmAddress, XFRM_ADDRESS_SIZE } from './address.js';
export { xfrmSelector, emptySelector, type XfrmSelectorWire, XFRM_SELECTOR_SIZE } from './selector.js';
export { xfrmId, type XfrmIdWire, XFRM_ID_SIZE } from './id.js';
export {
  xfrmLifetimeCfg,
  xfrmLifetimeCur,
  defaultLifetimeCfg,
  XFRM_INF,
  type XfrmLifetimeCfgWire,
  type XfrmLifetimeCurWire,
} from './lifetime.js';
export { xfrmStats, type XfrmStatsWire } from './stats.js';
export { xfrmUsersaInfo, type XfrmUsersaInfoWire, XFRM_USERSA_INFO_SIZE } from './usersa-info.js';
export { xfrmUsersaId, type XfrmUsersaIdWire, XFRM_USERSA_ID_SIZE } from './usersa-id.js';
export { xfrmUsersaFlush, type XfrmUsersaFlushWire } from './usersa-flush.js';
export { xfrmUserpolicyInfo, type XfrmUserpolicyInfoWire, XFRM_USERPOLICY_INFO_SIZE } from './userpolicy-info.js';
export { xfrmUserpolicyId, type XfrmUserpolicyIdWire, XFRM_USERPOLICY_ID_SIZE } from './userpolicy-id.js';
export { xfrmUserTmpl, type XfrmUserTmplWire, XFRM_USER_TMPL_SIZE } from './user-tmpl.js';
export {
  encodeXfrmAlgo,
  decodeXfrmAlgo,
  encodeXfrmAlgoAuth,
  decodeXfrmAlgoAuth,
  encodeXfrmAlgoAead,
  decodeXfrmAlgoAead,
  type XfrmAlgoWire,
  type XfrmAlgoAuthWire,
  type XfrmAlgoAeadWire,
} from './algo.js';
export { xfrmMark, type XfrmMarkWire } from './mark.js';
export {
  encodeReplayStateEsn,
  decodeReplayStateEsn,
  xfrmReplayState,
  type XfrmReplayStateEsnWire,
  type XfrmReplayStateWire,
  XFRMA_REPLAY_ESN_MAX,
} from './replay-esn.js';
export {
  xfrmuSpdinfo,
  xfrmuSpdhinfo,
  xfrmuSpdhthresh,
  type XfrmuSpdinfoWire,
  type XfrmuSpdhinfoWire,
  type XfrmuSpdhthreshWire,
} from './spdinfo.js';
