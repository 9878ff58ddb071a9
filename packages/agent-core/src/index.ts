/**
 * @veil/agent-core: the agent's interfaces (key distribution, datapath, encryption backend), DI
 * tokens and backend loading, the peer reconciler, configuration, and observability.
 * Test doubles live in `@veil/agent-core/fake`.
 */
import 'reflect-metadata';

export {
  NODE_ID_ANNOTATION,
  INTERNAL_IPS_ANNOTATION,
  IpcacheFlags,
  type ObservedNode,
  type PeerNode,
  type Cidr,
  type LocalMaterial,
  type DistributorEvent,
  type KeyDistributor,
  type Steering,
  type IpcacheEntry,
  type AttachTarget,
  type VerdictCounters,
  type DatapathSyncResult,
  type Datapath,
  type PeerAnnotationSpec,
  type PeerProgramResult,
  type BackendPeerStatus,
  type BackendStatus,
  type EncryptionBackend,
  type KeyRotationResult,
  type DatapathAttachmentInfo,
  type IpcachePrefixEntry,
  type DatapathCounterDetails,
  type NodeEvent,
  type EventRecorder,
} from './types/index.js';
export { VeilAgentError, ConfigError, BackendLoadError, PeerApplyError, StatusSocketError, type ConfigIssue, type BackendLoadErrorCode } from './errors.js';
export { TOKENS } from './di/tokens.js';
export { loadBackendModule, backendSpecifier, BUILTIN_BACKENDS } from './di/load-backend.js';
export { InMemoryCluster, InMemoryKeyDistributor } from './distributor/in-memory.js';
export { KubernetesKeyDistributor, type KubernetesKeyDistributorOptions } from './distributor/kubernetes.js';
export { KubernetesEventRecorder } from './distributor/k8s-events.js';
export { kubernetesModule } from './distributor/module.js';
export { observeNode, type NodeLike } from './distributor/node-object.js';
export { Reconciler, type ReconcilerOptions, type PeerView, type Refusal } from './reconciler/reconciler.js';
export { validateNode, samePeer, type ValidationResult } from './reconciler/validate.js';
export { AgentConfigSchema, DEFAULT_CONFIG, parseDuration, type AgentConfig } from './config/schema.js';
export { loadConfig, envName, type ConfigSources } from './config/load.js';
export { createLogger, REDACTED_FIELDS, type Logger } from './observability/logger.js';
export { AgentMetrics, PEER_STATES, type PeerState, type RefusalReason } from './observability/metrics.js';
export { HealthMetricsServer, StatusSocketServer, getJsonOverUnixSocket, type HttpLimits, type StatusRoutes } from './observability/http.js';
export {
  DEFAULT_STATUS_SOCKET,
  STATUS_API,
  StatusRouteError,
  deriveIpcache,
  ipcacheFlagNames,
  ipcacheRows,
  materialFingerprint,
  type AgentInfo,
  type CounterListing,
  type IpcacheListing,
  type IpcacheRow,
  type KeyRotationResponse,
  type LocalKeyInfo,
  type StatusErrorBody,
} from './observability/status-api.js';
export { Agent, type AgentOptions, type AgentStatus } from './agent.js';
export { Secret } from './util/secret.js';
export { parseCidr, parseIP } from './util/ip.js';
export {
  BpfDatapath,
  bpfDatapathModule,
  datapathOptionsFromConfig,
  steeringConfig,
  DEFAULT_PIN_DIR,
  DEFAULT_BPFFS_ROOT,
  DEFAULT_STATE_FILE,
  DEFAULT_POD_VETH_PATTERNS,
  PINNED_MAPS,
  BpffsError,
  DatapathError,
  DatapathArgumentError,
  DatapathAttachError,
  DatapathClosedError,
  DatapathLoadError,
  DatapathMapError,
  type Attachment,
  type AttachRole,
  type BpfAttachTarget,
  type BpfDatapathOptions,
  type CounterDetails,
  type DatapathLoadStage,
  type DatapathTuning,
} from './datapath/index.js';
