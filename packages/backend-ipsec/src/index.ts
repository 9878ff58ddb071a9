// Curated public API of @veil/backend-ipsec.

export {
  IpsecError,
  IpsecKeyFileError,
  IpsecConfigError,
  IpsecPeerError,
  IpsecNotSupportedError,
  IpsecXfrmError,
} from './errors.js';
export {
  parseKeyFile,
  parseKeyLine,
  keygen,
  nextKeyIndex,
  MIN_KEY_INDEX,
  MAX_KEY_INDEX,
  type IpsecKey,
  type IpsecAlgorithm,
  type KeygenAlgorithm,
} from './keyfile.js';
export { deriveDirectionalKey, xfrmTransform, bootIdProblem, DERIVATION_SALT, type PairEndpoint } from './derive.js';
export {
  MARK_ENCRYPT,
  MARK_MASK_PEER,
  MARK_MASK_ENCRYPT,
  KEY_INDEX_SHIFT,
  NODE_ID_SHIFT,
  VEIL_REQID,
  PRIORITY_PEER,
  PRIORITY_IN_FWD,
  PRIORITY_BLOCK,
  REPLAY_WINDOW,
  encryptMark,
  spiFor,
  decodeSpi,
  basePolicies,
  peerObjects,
  type LocalNode,
  type RemoteNode,
  type XfrmObjects,
} from './model.js';
export { planDiff, applyPlan, applyPlanToView, dumpXfrm, planSize, type XfrmPlan, type XfrmChange } from './xfrm-sync.js';
export { espInnerMtu, readBootId, parseTunnelIPs, formatTunnelIPs, type TunnelIPs } from './node.js';
export {
  IpsecBackend,
  BOOT_ID_ANNOTATION,
  TUNNEL_IPS_ANNOTATION,
  KEY_INDEX_ANNOTATION,
  EPOCH_ANNOTATION,
  SEQ_WARN_THRESHOLD,
  type IpsecBackendOptions,
  type IpsecStatusDetails,
} from './backend.js';
export { watchXfrm, XFRMNLGRP_SA, XFRMNLGRP_POLICY, type XfrmWatch } from './watch.js';
export { type XfrmOps } from './xfrm-sync.js';
export { ipsecModule } from './module.js';
export { ipsecConfig, IpsecConfigSchema, type IpsecConfig } from './config.js';
/** This backend's `encryption.ipsec` section, loaded by agent-core beside the default export. */
export { ipsecConfig as config } from './config.js';

import { ipsecModule } from './module.js';
/** What `encryption.type: ipsec` loads (agent-core's loadBackendModule). */
export default ipsecModule();
