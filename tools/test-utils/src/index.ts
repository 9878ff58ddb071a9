export { type Capability, inCI, missingReason, sh } from './capabilities.js';
export { describePrivileged } from './privileged.js';
export { NETNS_PREFIX, TestNetns, deleteLinkIfExists, linkName } from './netns.js';
export { type CodecLike, roundTrip } from './codec.js';
export { type K8sProgram, k8sBinary, k8sVersions, requireK8sBinary } from './k8s-bins.js';
export { runNode } from './run-node.js';
