/**
 * @veil/datapath: the BPF datapath behind agent-core's `Datapath` interface. `BpfDatapath` loads
 * @veil/bpf's programs with their maps pinned, keeps the ipcache in step with the reconciler,
 * attaches the tc programs and discovers local pod endpoints; `bpfDatapathModule` binds it to
 * `TOKENS.Datapath`.
 */
export { BpfDatapath } from './bpf-datapath.js';
export { bpfDatapathModule } from './module.js';
export { steeringConfig } from './tuning.js';
export type { Attachment } from './tc-attach.js';
export {
  datapathOptionsFromConfig,
  DEFAULT_POD_VETH_PATTERNS,
  DEFAULT_STATE_FILE,
  DEFAULT_TC_HANDLE,
  DEFAULT_TC_PRIORITY,
  type AttachRole,
  type BpfDatapathOptions,
  type DatapathTuning,
} from './options.js';
export { DEFAULT_BPFFS_ROOT, DEFAULT_PIN_DIR, PINNED_MAPS } from './pins.js';
export {
  BpffsError,
  DatapathArgumentError,
  DatapathAttachError,
  DatapathClosedError,
  DatapathError,
  DatapathLoadError,
  DatapathMapError,
  type DatapathLoadStage,
} from './errors.js';
