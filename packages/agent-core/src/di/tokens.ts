import type { ServiceIdentifier } from 'inversify';
import type { AgentConfig } from '../config/schema.js';
import type { Logger } from '../observability/logger.js';
import type { Registry } from 'prom-client';
import type { AgentMetrics } from '../observability/metrics.js';
import type { ReconcilerOptions } from '../reconciler/options.js';
import type { NodeIdStore } from '../nodeid/allocator.js';
import type { Datapath, EncryptionBackend, EventRecorder, KeyDistributor } from '../types/index.js';

/**
 * DI tokens. `Symbol.for` (global registry) on purpose: a third-party backend package that ends up
 * with its own copy of agent-core still binds the same tokens.
 */
export const TOKENS = {
  /** The {@link EncryptionBackend}; bound by the backend's ContainerModule. */
  EncryptionBackend: Symbol.for('veil.agent-core.EncryptionBackend') as ServiceIdentifier<EncryptionBackend>,
  /** The {@link KeyDistributor}. */
  KeyDistributor: Symbol.for('veil.agent-core.KeyDistributor') as ServiceIdentifier<KeyDistributor>,
  /** The {@link Datapath}. */
  Datapath: Symbol.for('veil.agent-core.Datapath') as ServiceIdentifier<Datapath>,
  /** The {@link EventRecorder}. */
  EventRecorder: Symbol.for('veil.agent-core.EventRecorder') as ServiceIdentifier<EventRecorder>,
  /** The validated {@link AgentConfig}; backends read their section from it. */
  Config: Symbol.for('veil.agent-core.Config') as ServiceIdentifier<AgentConfig>,
  /** The root pino logger (redacting); backends derive children from it. */
  Logger: Symbol.for('veil.agent-core.Logger') as ServiceIdentifier<Logger>,
  /** The prom-client Registry served on /metrics. */
  MetricsRegistry: Symbol.for('veil.agent-core.MetricsRegistry') as ServiceIdentifier<Registry>,
  /** The agent's {@link AgentMetrics} (bound by the Agent). */
  AgentMetrics: Symbol.for('veil.agent-core.AgentMetrics') as ServiceIdentifier<AgentMetrics>,
  /** Reconciler timings ({@link ReconcilerOptions}). */
  ReconcilerOptions: Symbol.for('veil.agent-core.ReconcilerOptions') as ServiceIdentifier<ReconcilerOptions>,
  /**
   * Optional: where node IDs are claimed ({@link NodeIdStore}; Leases via `kubernetesModule`).
   * Unbound: the configured `nodeId` is used as is (0 = none).
   */
  NodeIdStore: Symbol.for('veil.agent-core.NodeIdStore') as ServiceIdentifier<NodeIdStore>,
} as const;
