export { BpfDatapath, steeringConfig, type Attachment, type BpfAttachTarget, type CounterDetails } from './bpf-datapath.js';
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
export { bpfDatapathModule } from './module.js';
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
