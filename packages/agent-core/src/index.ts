/**
 * @veil/agent-core: the agent's interfaces (key distribution, datapath, encryption backend), DI
 * tokens and backend loading, the peer reconciler, configuration, and observability.
 * Test doubles live in `@veil/agent-core/fake`, the status socket's wire types in
 * `@veil/agent-core/status-api`, the error classes alone in `@veil/agent-core/errors`.
 */
import 'reflect-metadata';

// Interfaces and the peer model (what backends and datapaths implement)
export {
  IpcacheFlags,
  sameIpcacheEntry,
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

// Errors
export {
  errorMessage,
  VeilAgentError,
  ConfigError,
  BackendLoadError,
  PeerApplyError,
  StatusSocketError,
  type ConfigIssue,
  type BackendLoadErrorCode,
} from './errors.js';

// Advisory state files (versioned JSON, atomic writes), shared with the datapath
export { readVersionedJson, writeJsonAtomic } from './util/state-file.js';

// Dependency injection and backend loading
export { TOKENS } from './di/tokens.js';
export { loadBackendModule, type LoadedBackend } from './di/load-backend.js';

// Configuration: core's schema, loading, backend-owned sections
export {
  AgentConfigSchema,
  DEFAULT_CONFIG,
  parseDuration,
  durationRe,
  type AgentConfig,
  type BackendSections,
} from './config/schema.js';
export {
  loadConfig,
  loadAgentConfig,
  type ConfigSources,
  type LoadConfigOptions,
  type AgentConfigAndBackend,
} from './config/load.js';
export { defineBackendConfig, backendSection, type BackendConfigSpec, type SectionSchema } from './config/backend.js';

// Key distribution
export { InMemoryCluster, InMemoryKeyDistributor } from './distributor/in-memory.js';
export { KubernetesKeyDistributor, type KubernetesKeyDistributorOptions } from './distributor/kubernetes.js';
export { KubernetesEventRecorder } from './distributor/k8s-events.js';
export { kubernetesModule } from './distributor/module.js';

// Node IDs: durable, collision-free allocation (Leases on Kubernetes)
export {
  NodeIdAllocator,
  NodeIdConflictError,
  NodeIdExhaustedError,
  NodeIdAllocationError,
  NodeIdStoreUnavailableError,
  MAX_NODE_ID,
  type NodeIdStore,
  type NodeIdClaim,
  type NodeIdNodeInfo,
  type NodeIdResult,
} from './nodeid/allocator.js';
export { LeaseNodeIdStore, NodeIdApiError, NODE_ID_LEASE_PREFIX, NODE_ID_LEASE_LABEL } from './nodeid/kubernetes.js';

// Reconciler and the agent that composes everything
export { Reconciler, type ReconcilerOptions, type PeerView, type Refusal } from './reconciler/reconciler.js';
export { Agent, type AgentOptions, type AgentStatus } from './agent.js';

// Observability
export { createLogger, type Logger } from './observability/logger.js';
export { type AgentMetrics, type PeerState, type RefusalReason } from './observability/metrics.js';
export { getJsonOverUnixSocket } from './observability/http.js';
export { Secret } from './util/secret.js';
export { parseCidr, parseIP } from './util/ip.js';
