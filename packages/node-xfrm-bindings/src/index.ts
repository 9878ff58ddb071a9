// Curated public API of node-xfrm-bindings.

export { XfrmClient, type XfrmClientOptions, type XfrmDeleteBatchOptions } from './client.js';
export {
  type XfrmState,
  type XfrmStateId,
  type XfrmProto,
  type XfrmMode,
  type XfrmReplayCounters,
  type XfrmStateStats,
  encodeStatePayload,
  encodeStateIdPayload,
  decodeStatePayload,
} from './state.js';
export {
  type XfrmPolicy,
  type XfrmPolicyId,
  type XfrmTemplate,
  type XfrmDir,
  type XfrmAction,
  encodePolicyPayload,
  encodePolicyIdPayload,
  decodePolicyPayload,
} from './policy.js';
export { type XfrmSelector } from './selector.js';
export { type XfrmMark } from './mark.js';
export { type XfrmLifetimeLimits, type XfrmLifetimeCurrent } from './lifetime.js';
export {
  type XfrmAead,
  type XfrmAuth,
  type XfrmCrypt,
  type AeadAlgorithmName,
  type AuthAlgorithmName,
  type CryptAlgorithmName,
  AEAD_ALGORITHMS,
  AUTH_ALGORITHMS,
  CRYPT_ALGORITHMS,
} from './algorithms.js';
export {
  type XfrmSpdInfo,
  type XfrmSpdHashThreshold,
  type XfrmSpdHashThresholds,
  decodeSpdInfoPayload,
  encodeSetSpdPayload,
} from './spd.js';
export { type XfrmProcStats, parseXfrmStat, readXfrmStat } from './proc-stats.js';
export { XfrmError, XfrmValidationError, XfrmDecodeError, XfrmKernelError } from './errors.js';
export * as nl from './nl/index.js';
