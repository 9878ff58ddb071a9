import 'reflect-metadata';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Container, type ContainerModule } from 'inversify';
import { Registry } from 'prom-client';
import type { AgentConfig } from './config/schema.js';
import { backendSection } from './config/backend.js';
import { loadBackend } from './di/load-backend.js';
import { TOKENS } from './di/tokens.js';
import { errorMessage, VeilAgentError } from './errors.js';
import { HealthMetricsServer, StatusSocketServer } from './observability/http.js';
import { createLogger, type Logger } from './observability/logger.js';
import {
  StatusRouteError,
  STATUS_API,
  deriveIpcache,
  ipcacheRows,
  localKeyInfo,
  materialFingerprint,
  publicAnnotations,
  type AgentInfo,
  type CounterListing,
  type IpcacheListing,
  type KeyRotationResponse,
  type LocalKeyInfo,
} from './observability/status-api.js';
import { AgentMetrics } from './observability/metrics.js';
import { Reconciler, type PeerView, type ReconcilerOptions } from './reconciler/reconciler.js';
import { Backoff } from './util/backoff.js';
import { NodeIdAllocator, NodeIdConflictError, NodeIdExhaustedError, NodeIdStoreUnavailableError } from './nodeid/allocator.js';
import {
  IpcacheFlags,
  NODE_ID_ANNOTATION,
  type AttachTarget,
  type BackendStatus,
  type LocalMaterial,
  type ObservedNode,
} from './types/index.js';

/** Options for {@link Agent.create}. */
export interface AgentOptions {
  config: AgentConfig;
  /**
   * Bind the platform services: `TOKENS.KeyDistributor`, `TOKENS.Datapath` and
   * `TOKENS.EventRecorder` (e.g. `kubernetesModule(kc)` + a datapath module; tests bind fakes).
   */
  platformModules: readonly ContainerModule[];
  /** The backend module; default: `loadBackendModule(config.encryption.type)`. */
  backendModule?: ContainerModule;
  logger?: Logger;
  registry?: Registry;
  reconciler?: ReconcilerOptions;
  /** Devices/veths to attach the BPF program set to at start. */
  attachTargets?: readonly AttachTarget[];
  /** Skip the HTTP listeners (metrics/health/status); default false. */
  noListeners?: boolean;
  /** Version shown by `GET /v1/agent`; default: @veil/agent-core's package version. */
  version?: string;
  /**
   * A peer pending this long with nothing programmed for it (its pods' traffic is not encrypted)
   * makes the agent not ready. Default 60 s (a joining node publishes its key well within it).
   */
  pendingGraceMs?: number;
  /** How often the held node-ID claim is checked (and re-created if it vanished); default 60 s. */
  nodeIdRecheckMs?: number;
}

function names(peers: readonly PeerView[]): string {
  const shown = peers
    .slice(0, 5)
    .map((p) => p.name)
    .join(', ');
  return peers.length > 5 ? `${shown} and ${peers.length - 5} more` : shown;
}

function packageVersion(): string {
  try {
    // src/agent.ts and dist/agent.js both sit one level below package.json.
    const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version?: unknown };
    return typeof pkg.version === 'string' ? pkg.version : 'unknown';
  } catch {
    return 'unknown';
  }
}

/** The JSON served on the status socket (what `cilium-dbg encrypt status` shows, and more). */
export interface AgentStatus {
  node: string;
  /** This node's ID (`veil.io/node-id`): configured or allocated; 0 = none. */
  nodeId: number;
  /** Where the node ID came from: `config`, `allocated` (a new claim) or `kept` (this node's claim, after a restart); absent when none. */
  nodeIdSource?: 'config' | 'allocated' | 'kept';
  encryption: { enabled: boolean; type: string };
  backend: string;
  driver: string;
  keyIndex: number | undefined;
  ready: boolean;
  notReadyReason: string | undefined;
  synced: boolean;
  datapathAttached: boolean;
  peers: (PeerView & { backend?: { detail?: string; keyIndex?: number; stats?: Readonly<Record<string, number | string>> } })[];
  /** Human-readable problems, one line each (`veil status` lists them). */
  errors: string[];
  /**
   * Peers the backend has programmed that no node claims (a removal that did not happen, or
   * adopted state not yet pruned), by name; only once the reconciler is synced. Also one line in
   * `errors` (prefixed {@link BACKEND_ORPHANS}). Tools check this field, not the text.
   */
  orphanPeers: string[];
  backendDetails: Readonly<Record<string, unknown>> | undefined;
  counters: Record<string, string>;
  /** This node's own published material as the API shows it (kept level-triggered). */
  localMaterial: LocalMaterialStatus;
}

/** `AgentStatus.localMaterial`. */
export interface LocalMaterialStatus {
  /** The material was published at least once by this agent. */
  published: boolean;
  /** The local Node as last observed carries every published annotation; undefined = not observed yet. */
  inApi: boolean | undefined;
  /** Annotation keys missing or different on the local Node (or every key when the Node is gone). */
  missing: string[];
  /** How many times differing annotations were published again. */
  restored: number;
  lastRestoredAt?: string;
  lastRestoredKeys?: string[];
}

/** Prefix of the status error naming backend peers no node claims (see `AgentStatus.orphanPeers`). */
const BACKEND_ORPHANS = 'backend peers no node claims';
/** How long a rotation waits for the API server to take a write before refusing (see checkPublishable). */
const ROTATION_PUBLISH_CHECK_MS = 5_000;

/**
 * The agent: composes backend, key distributor, datapath, reconciler and observability from an
 * inversify container. `start()` never tears anything down: it adopts backend and datapath state
 * and converges by diff, so a restart does not interrupt traffic.
 */
export class Agent {
  readonly logger: Logger;
  readonly registry: Registry;
  readonly metrics: AgentMetrics;
  private readonly healthServer: HealthMetricsServer;
  private metricsServer: HealthMetricsServer | undefined;
  private readonly statusServer: StatusSocketServer;
  private reconcilerInstance: Reconciler | undefined;
  private publishTimer: NodeJS.Timeout | undefined;
  /** The local material was published at least once (readiness and the own-material guard need it). */
  private published = false;
  /** Bumped by every key rotation: retries of older material stop. */
  private publishGeneration = 0;
  private rotating = false;
  private readonly startedAt = new Date();
  private started = false;
  private stopped = false;
  /** `encryption.enabled=false`: no backend, no reconciler, no steering, nothing published. */
  private disabled = false;
  /** Disabled mode: earlier material withdrawn from the Node and the datapath cleared. */
  private disabledSettled = false;
  private unsubscribeSteering: (() => void) | undefined;
  private unsubscribeMaterial: (() => void) | undefined;
  private unsubscribeReprogram: (() => void) | undefined;
  private unsubscribeLocal: (() => void) | undefined;
  /** The full material this agent publishes (annotation → value, null = absent). */
  private desiredMaterial: Record<string, string | null> | undefined;
  /** A publish (initial or after rotation) is still retrying: restores wait for it. */
  private publishPending = false;
  /** Latest observation of the local Node: undefined = not seen yet, null = deleted. */
  private localNode: ObservedNode | null | undefined;
  private restoreInFlight = false;
  /** A restore was written: judge again only on the next observation (the patch's own echo or later). */
  private awaitingEcho = false;
  /** Observations of the local Node so far (tells whether one arrived while a restore was in flight). */
  private localObservations = 0;
  private restoreTimer: NodeJS.Timeout | undefined;
  private readonly restoreBackoff = new Backoff(200, 30_000);
  private restoredCount = 0;
  private lastRestored: { at: Date; keys: string[] } | undefined;
  private nodeIds: NodeIdAllocator | undefined;
  private nodeIdSource: 'config' | 'allocated' | 'kept' | undefined;
  /** Why the node ID is not claimed yet (retrying); cleared once it is. */
  private nodeIdPending: string | undefined;
  private nodeIdTimer: NodeJS.Timeout | undefined;
  private wakeNodeIdWait: (() => void) | undefined;
  /** Bound ports after start (0 when not listening). */
  metricsPort = 0;
  healthPort = 0;

  private constructor(
    readonly container: Container,
    private readonly opts: AgentOptions,
    logger: Logger,
    registry: Registry,
  ) {
    this.logger = logger;
    this.registry = registry;
    this.metrics = container.get(TOKENS.AgentMetrics);
    const server = (): HealthMetricsServer =>
      new HealthMetricsServer({ registry, healthy: () => !this.stopped, notReadyReason: () => this.notReadyReason() });
    this.healthServer = server();
    if (opts.config.metrics.enabled && opts.config.metrics.port !== opts.config.health.port) this.metricsServer = server();
    this.statusServer = new StatusSocketServer(() => this.status(), {
      [`${STATUS_API.agent.method} ${STATUS_API.agent.path}`]: () => this.info(),
      [`${STATUS_API.ipcache.method} ${STATUS_API.ipcache.path}`]: () => this.ipcacheListing(),
      [`${STATUS_API.counters.method} ${STATUS_API.counters.path}`]: () => this.counterListing(),
      [`${STATUS_API.rotateKeys.method} ${STATUS_API.rotateKeys.path}`]: () => this.rotateKeys(),
    });
  }

  /** Builds the container: config, logger, metrics, platform module, backend module, reconciler. */
  static async create(opts: AgentOptions): Promise<Agent> {
    // The agent's own copy: an allocated node ID is written into it, never into the caller's object.
    opts = { ...opts, config: { ...opts.config } };
    const logger = opts.logger ?? createLogger({ level: opts.config.logLevel });
    const registry = opts.registry ?? new Registry();
    const container = new Container();
    container.bind(TOKENS.Config).toConstantValue(opts.config);
    container.bind(TOKENS.Logger).toConstantValue(logger);
    container.bind(TOKENS.MetricsRegistry).toConstantValue(registry);
    // The last good peers survive restarts in the state dir (issue 12: a refused update must not
    // cost a restarted agent what ran before).
    container
      .bind(TOKENS.ReconcilerOptions)
      .toConstantValue({ stateFile: join(opts.config.stateDir, 'peers-last-good.json'), ...opts.reconciler });
    container
      .bind(TOKENS.AgentMetrics)
      .toDynamicValue((ctx) => {
        const dp = ctx.get(TOKENS.Datapath);
        return new AgentMetrics(registry, () => dp.counters());
      })
      .inSingletonScope();
    await container.loadAsync(...opts.platformModules);
    let backendModule = opts.backendModule;
    if (!backendModule) {
      const loaded = await loadBackend(opts.config.encryption.type);
      // A bad backend section fails here, naming its keys, before anything touches the kernel.
      if (loaded.config) backendSection(opts.config, loaded.config);
      backendModule = loaded.module;
    }
    await container.loadAsync(backendModule);
    for (const token of [TOKENS.EncryptionBackend, TOKENS.KeyDistributor, TOKENS.Datapath, TOKENS.EventRecorder]) {
      if (!container.isBound(token))
        throw new VeilAgentError(`nothing is bound to ${String(token)}: the platform or backend module is incomplete`);
    }
    container.bind(Reconciler).toSelf().inSingletonScope();
    return new Agent(container, opts, logger, registry);
  }

  get reconciler(): Reconciler {
    if (!this.reconcilerInstance) this.reconcilerInstance = this.container.get(Reconciler);
    return this.reconcilerInstance;
  }

  /**
   * undefined when ready: initial sync done, datapath attached, own material published and present
   * in the API, no peer stuck pending with nothing programmed, no refused peer whose traffic is
   * affected (issue 12: "ready" must mean no pod traffic of ours is silently lost or in clear).
   */
  notReadyReason(): string | undefined {
    if (!this.started) return this.nodeIdPending ? `node ID not claimed yet: ${this.nodeIdPending}` : 'not started';
    if (this.stopped) return 'stopping';
    if (this.disabled) return this.disabledSettled ? undefined : 'encryption disabled: withdrawing published material';
    const reasons: string[] = [];
    if (!this.reconciler.synced) reasons.push('initial peer sync not complete');
    if (!this.container.get(TOKENS.Datapath).attached) reasons.push('datapath not attached');
    if (!this.published) reasons.push('own material not published yet');
    else {
      const missing = this.missingMaterial();
      if (missing.length > 0) reasons.push(`own material missing from the API: ${missing.join(', ')}`);
    }
    const { stuck, affected } = this.troubledPeers(this.reconciler.peers());
    if (stuck.length > 0)
      reasons.push(`peers pending with no encryption for over ${Math.round(this.pendingGraceMs / 1000)}s: ${names(stuck)}`);
    if (affected.length > 0) reasons.push(`refused peers with affected traffic: ${names(affected)}`);
    return reasons.length === 0 ? undefined : reasons.join('; ');
  }

  private get pendingGraceMs(): number {
    return this.opts.pendingGraceMs ?? 60_000;
  }

  /** Peers whose traffic is affected: stuck pending with nothing programmed, or displaced. */
  private troubledPeers(peers: readonly PeerView[]): { stuck: PeerView[]; affected: PeerView[] } {
    const now = Date.now();
    const stuck = peers.filter(
      (p) =>
        p.state === 'pending' &&
        !p.programmed &&
        p.pendingSince !== undefined &&
        now - Date.parse(p.pendingSince) > this.pendingGraceMs,
    );
    const affected = peers.filter((p) => p.trafficAffected === true);
    return { stuck, affected };
  }

  get ready(): boolean {
    return this.notReadyReason() === undefined;
  }

  /** Starts everything; resolves once listeners are up (not when synced: see readiness). */
  async start(): Promise<void> {
    if (this.started) throw new VeilAgentError('agent already started');
    const c = this.container;
    const config = this.opts.config;
    const backend = c.get(TOKENS.EncryptionBackend);
    const datapath = c.get(TOKENS.Datapath);
    const log = this.logger.child({ component: 'agent' });
    if (!this.opts.noListeners) {
      this.healthPort = await this.healthServer.listen(config.health.port, config.health.host);
      if (this.metricsServer) this.metricsPort = await this.metricsServer.listen(config.metrics.port, config.metrics.host);
      else this.metricsPort = this.healthPort;
      await this.statusServer.listen(config.status.socketPath);
    }
    if (!config.encryption.enabled) {
      await this.startDisabled();
      return;
    }
    await this.claimNodeId(backend.needsNodeId === true);
    backend.registerMetrics?.(this.registry);
    const adoptedPeers = await backend.init();
    const adoptedEntries = await datapath.entries();
    log.info(
      { backend: backend.name, adoptedPeers: adoptedPeers.length, adoptedEntries: adoptedEntries.size },
      'adopted existing state',
    );
    await datapath.setSteering(backend.steering());
    this.unsubscribeSteering = backend.onSteeringChange?.((steering) => {
      datapath.setSteering(steering).then(
        () => log.info({ steering }, 'datapath steering updated'),
        (err: unknown) => log.error({ err: errorMessage(err) }, 'updating datapath steering failed'),
      );
    });
    this.unsubscribeMaterial = backend.onMaterialChange?.((material) => {
      // A newer material supersedes any publish still retrying.
      const generation = ++this.publishGeneration;
      if (this.publishTimer) clearTimeout(this.publishTimer);
      this.publish(material, new Backoff(200, 30_000), generation);
    });
    this.unsubscribeReprogram = backend.onReprogramPeers?.((names) => this.reconciler.reprogram(names));
    this.started = true;
    this.unsubscribeLocal = this.reconciler.onLocalNode((n) => {
      this.localNode = n ?? null;
      this.localObservations++;
      this.awaitingEcho = false;
      this.checkOwnMaterial();
    });
    this.reconciler.start({ backendPeers: adoptedPeers, datapathEntries: adoptedEntries });
    void datapath.attach(this.opts.attachTargets ?? []).catch((err: unknown) => {
      log.error({ err: errorMessage(err) }, 'datapath attach failed');
    });
    this.publish(backend.localMaterial(), new Backoff(200, 30_000));
  }

  /**
   * Claims this node's ID before the backend starts, when the backend needs one and a node-ID store
   * is bound: 0 allocates (or keeps this node's claim across
   * restarts), an explicit ID is claimed and refused with {@link NodeIdConflictError} when another
   * node holds it. API errors are retried with backoff (the agent stays not ready meanwhile);
   * conflicts and exhaustion are thrown: the agent does not start.
   */
  private async claimNodeId(needed: boolean): Promise<void> {
    const config = this.opts.config;
    const c = this.container;
    // Backends without node IDs (WireGuard) only publish a configured one.
    if (!needed || !c.isBound(TOKENS.NodeIdStore)) {
      if (config.nodeId !== 0) this.nodeIdSource = 'config';
      return;
    }
    const log = this.logger.child({ component: 'node-id' });
    const allocator = new NodeIdAllocator(c.get(TOKENS.NodeIdStore), config.nodeName, log);
    const backoff = new Backoff(200, 30_000);
    const explicit = config.nodeId !== 0;
    for (;;) {
      if (this.stopped) throw new VeilAgentError('the agent stopped before a node ID was claimed');
      try {
        const r = await allocator.claim(config.nodeId);
        this.nodeIdPending = undefined;
        this.nodeIdSource = explicit ? 'config' : r.how === 'kept' ? 'kept' : 'allocated';
        config.nodeId = r.id;
        log.info(
          { nodeId: r.id, source: this.nodeIdSource, reclaimed: r.reclaimed, released: r.released },
          `node ID ${r.id} ${r.how === 'kept' ? 'kept (this node already held it)' : 'claimed'}`,
        );
        break;
      } catch (err) {
        if (err instanceof NodeIdConflictError || err instanceof NodeIdExhaustedError) throw err;
        if (err instanceof NodeIdStoreUnavailableError && explicit) {
          // Nowhere to claim it: the configured ID is used as is (peers still refuse duplicates).
          log.warn(
            { nodeId: config.nodeId, err: err.message },
            'node IDs cannot be claimed here; using the configured nodeId unclaimed',
          );
          this.nodeIdPending = undefined;
          this.nodeIdSource = 'config';
          return;
        }
        this.nodeIdPending = errorMessage(err);
        const delay = backoff.next();
        log.warn({ err: this.nodeIdPending, retryInMs: delay }, 'claiming a node ID failed; retrying');
        await new Promise<void>((resolve) => {
          this.wakeNodeIdWait = resolve;
          this.nodeIdTimer = setTimeout(resolve, delay);
        });
        this.wakeNodeIdWait = undefined;
      }
    }
    this.nodeIds = allocator;
    const recheck = (): void => {
      this.nodeIdTimer = setTimeout(() => {
        void allocator.verify().finally(() => {
          if (!this.stopped) recheck();
        });
      }, this.opts.nodeIdRecheckMs ?? 60_000);
      this.nodeIdTimer.unref();
    };
    recheck();
  }

  /**
   * `encryption.enabled=false` means what the docs say: publishes nothing and steers nothing. The
   * backend is not initialised (no device, no key), no peer is programmed, the datapath steers
   * nothing and keeps no encrypt-ready peer, and annotations an earlier enabled run published are
   * withdrawn so that peers stop encrypting towards this node.
   */
  private async startDisabled(): Promise<void> {
    const log = this.logger.child({ component: 'agent' });
    const datapath = this.container.get(TOKENS.Datapath);
    const backend = this.container.get(TOKENS.EncryptionBackend);
    this.disabled = true;
    this.started = true;
    await datapath.setSteering({ kind: 'none' });
    const res = await datapath.syncPeers([]);
    if (res.removed.length > 0)
      log.info({ removed: res.removed }, 'encryption disabled: removed peer entries left by an earlier run');
    const withdraw: Record<string, null> = { [NODE_ID_ANNOTATION]: null };
    for (const spec of backend.peerAnnotations) withdraw[spec.key] = null;
    const backoff = new Backoff(200, 30_000);
    const attempt = (): void => {
      this.container
        .get(TOKENS.KeyDistributor)
        .publishLocal(withdraw)
        .then(
          () => {
            this.disabledSettled = true;
            log.info(
              { node: this.opts.config.nodeName, annotations: Object.keys(withdraw) },
              'encryption disabled: publishing nothing, steering nothing',
            );
          },
          (err: unknown) => {
            if (this.stopped) return;
            const delay = backoff.next();
            log.warn(
              { err: err instanceof Error ? err.message : String(err), retryInMs: delay },
              'withdrawing published material failed; retrying',
            );
            this.publishTimer = setTimeout(attempt, delay);
            this.publishTimer.unref();
          },
        );
    };
    attempt();
  }

  private fullMaterial(material: LocalMaterial): Record<string, string | null> {
    const full: Record<string, string | null> = { ...material };
    if (this.opts.config.nodeId !== 0) full[NODE_ID_ANNOTATION] = String(this.opts.config.nodeId);
    return full;
  }

  private publish(material: LocalMaterial, backoff: Backoff, generation = this.publishGeneration): void {
    const full = this.fullMaterial(material);
    this.desiredMaterial = full;
    this.publishPending = true;
    const distributor = this.container.get(TOKENS.KeyDistributor);
    distributor.publishLocal(full).then(
      () => {
        if (generation !== this.publishGeneration) return;
        this.published = true;
        this.publishPending = false;
        this.logger.info({ node: this.opts.config.nodeName, keys: Object.keys(full) }, 'published local key material');
        this.checkOwnMaterial();
      },
      (err: unknown) => {
        if (this.stopped || generation !== this.publishGeneration) return;
        const delay = backoff.next();
        this.logger.warn({ err: errorMessage(err), retryInMs: delay }, 'publishing local material failed; retrying');
        this.publishTimer = setTimeout(() => this.publish(material, backoff, generation), delay);
        this.publishTimer.unref();
      },
    );
  }

  /** Keys of the published material that the local Node (as last observed) lacks or has changed. */
  private missingMaterial(): string[] {
    const want = this.desiredMaterial;
    if (!want || this.localNode === undefined) return [];
    if (this.localNode === null) return Object.keys(want).filter((k) => want[k] !== null);
    const have = this.localNode.annotations;
    return Object.keys(want).filter((k) => (want[k] === null ? k in have : have[k] !== want[k]));
  }

  /**
   * Level-triggered guard of the agent's own annotations: whenever the local Node is observed
   * without them (edited, or the API server lost its state and the Node was re-registered), they
   * are published again, and the restore is logged, counted and shown in status.
   */
  private checkOwnMaterial(): void {
    if (
      !this.published ||
      this.publishPending ||
      this.stopped ||
      this.rotating ||
      this.restoreInFlight ||
      this.restoreTimer ||
      this.awaitingEcho
    )
      return;
    // A deleted Node cannot be patched; it is restored when it is registered again.
    if (this.localNode === null || this.localNode === undefined) return;
    const keys = this.missingMaterial();
    if (keys.length === 0) return;
    const full = this.desiredMaterial!;
    const generation = this.publishGeneration;
    const seenBefore = this.localObservations;
    this.restoreInFlight = true;
    this.container
      .get(TOKENS.KeyDistributor)
      .publishLocal(full)
      .then(
        () => {
          this.restoreInFlight = false;
          this.restoreBackoff.reset();
          // The watch may deliver the patch's echo (or a newer edit) before this response: judge
          // that observation now; otherwise wait for the next one.
          const observedMeanwhile = this.localObservations !== seenBefore;
          this.awaitingEcho = !observedMeanwhile;
          if (observedMeanwhile) queueMicrotask(() => this.checkOwnMaterial());
          if (generation !== this.publishGeneration) return;
          this.restoredCount++;
          this.lastRestored = { at: new Date(), keys };
          for (const key of keys) this.metrics.localMaterialRestored.inc({ key });
          this.logger.warn(
            { node: this.opts.config.nodeName, annotations: keys },
            `restored own annotations that were missing or changed on the Node: ${keys.join(', ')}`,
          );
        },
        (err: unknown) => {
          this.restoreInFlight = false;
          if (this.stopped) return;
          const delay = this.restoreBackoff.next();
          this.logger.warn(
            { annotations: keys, err: err instanceof Error ? err.message : String(err), retryInMs: delay },
            'restoring own annotations failed; retrying',
          );
          this.restoreTimer = setTimeout(() => {
            this.restoreTimer = undefined;
            this.checkOwnMaterial();
          }, delay);
          this.restoreTimer.unref();
        },
      );
  }

  private localMaterialStatus(): LocalMaterialStatus {
    const missing = this.missingMaterial();
    return {
      published: this.published,
      inApi: this.localNode === undefined || !this.desiredMaterial ? undefined : missing.length === 0,
      missing,
      restored: this.restoredCount,
      ...(this.lastRestored
        ? { lastRestoredAt: this.lastRestored.at.toISOString(), lastRestoredKeys: this.lastRestored.keys }
        : {}),
    };
  }

  /** True once the local material was published. */
  get materialPublished(): boolean {
    return this.published;
  }

  /** The status document (also served on the status socket). Never contains private keys. */
  async status(): Promise<AgentStatus> {
    const backend = this.container.get(TOKENS.EncryptionBackend);
    const datapath = this.container.get(TOKENS.Datapath);
    let bs: BackendStatus | undefined;
    const errors: string[] = [];
    try {
      bs = await backend.status();
      errors.push(...bs.errors);
    } catch (err) {
      errors.push(`backend status: ${errorMessage(err)}`);
    }
    if (this.nodeIds?.problem) errors.push(`node ID: ${this.nodeIds.problem}`);
    if (this.nodeIdPending) errors.push(`node ID not claimed yet: ${this.nodeIdPending}`);
    const byName = new Map((bs?.peers ?? []).map((p) => [p.name, p]));
    const live = this.started && !this.disabled;
    const peers = live ? this.reconciler.peers() : [];
    for (const p of peers) {
      if (p.refusal) errors.push(`${p.name}: refused (${p.refusal.reason}) ${p.refusal.field}: ${p.refusal.message}`);
      if (p.lastError) errors.push(`${p.name}: ${p.lastError}`);
    }
    if (live) {
      const { stuck, affected } = this.troubledPeers(peers);
      for (const p of stuck) {
        const secs = Math.round((Date.now() - Date.parse(p.pendingSince!)) / 1000);
        errors.push(
          `${p.name}: pending for ${secs}s (${p.pendingOn ?? 'not ready'}) with nothing programmed: traffic to its pods is not encrypted`,
        );
      }
      for (const p of affected)
        errors.push(
          `${p.name}: traffic affected: its entry is kept encrypt-ready but the backend has no peer for it (packets to its pods are dropped)`,
        );
      const missing = this.published ? this.missingMaterial() : [];
      if (missing.length > 0)
        errors.push(`own material missing from the API: ${missing.join(', ')} (peers cannot reach this node's pods encrypted)`);
    }
    // Programmed in the kernel but claimed by no node (a removal that did not happen, or adopted
    // state not yet pruned): worth seeing, since such a peer still accepts traffic.
    let orphanPeers: string[] = [];
    if (live && this.reconciler.synced) {
      const known = new Set(peers.map((p) => p.name));
      orphanPeers = (bs?.peers ?? []).map((p) => p.name).filter((n) => !known.has(n));
      if (orphanPeers.length > 0) errors.push(`${BACKEND_ORPHANS}: ${orphanPeers.join(', ')}`);
    }
    const counters: Record<string, string> = {};
    try {
      for (const [k, v] of Object.entries(await datapath.counters())) counters[k] = v.toString();
    } catch (err) {
      errors.push(`datapath counters: ${errorMessage(err)}`);
    }
    const notReady = this.notReadyReason();
    return {
      node: this.opts.config.nodeName,
      nodeId: this.opts.config.nodeId,
      ...(this.nodeIdSource ? { nodeIdSource: this.nodeIdSource } : {}),
      encryption: { enabled: this.opts.config.encryption.enabled, type: this.opts.config.encryption.type },
      backend: bs?.backend ?? backend.name,
      driver: bs?.driver ?? 'unknown',
      keyIndex: bs?.keyIndex,
      ready: notReady === undefined,
      notReadyReason: notReady,
      synced: live && this.reconciler.synced,
      datapathAttached: datapath.attached,
      peers: peers.map((p) => {
        const b = byName.get(p.name);
        return b
          ? {
              ...p,
              backend: {
                ...(b.detail ? { detail: b.detail } : {}),
                ...(b.keyIndex !== undefined ? { keyIndex: b.keyIndex } : {}),
                ...(b.stats ? { stats: b.stats } : {}),
              },
            }
          : p;
      }),
      errors,
      orphanPeers,
      backendDetails: bs?.details,
      counters,
      localMaterial: this.localMaterialStatus(),
    };
  }

  /** `GET /v1/agent`: version, uptime, configuration that matters for status, local key fingerprint, attachments. */
  async info(): Promise<AgentInfo> {
    const config = this.opts.config;
    const backend = this.container.get(TOKENS.EncryptionBackend);
    const datapath = this.container.get(TOKENS.Datapath);
    let localKey: LocalKeyInfo | null = null;
    if (this.started) {
      try {
        localKey = localKeyInfo(backend.localMaterial());
      } catch {
        localKey = null;
      }
    }
    const attachments = datapath.attachments?.();
    const interfaces = attachments
      ? attachments.map((a) => ({
          ifname: a.ifname,
          ...(a.ifindex !== undefined ? { ifindex: a.ifindex } : {}),
          ...(a.role !== undefined ? { role: a.role } : {}),
          ...(a.direction !== undefined ? { direction: a.direction } : {}),
        }))
      : (this.opts.attachTargets ?? []).map((t) => ({ ifname: t.ifname, role: t.kind }));
    return {
      version: this.opts.version ?? packageVersion(),
      node: config.nodeName,
      pid: process.pid,
      startedAt: this.startedAt.toISOString(),
      uptimeSeconds: Math.floor((Date.now() - this.startedAt.getTime()) / 1000),
      encryption: {
        enabled: config.encryption.enabled,
        type: config.encryption.type,
        nodeEncryption: config.encryption.nodeEncryption,
        strictMode: { enabled: config.encryption.strictMode.enabled, cidrs: [...config.encryption.strictMode.cidrs] },
      },
      localKey,
      datapath: { attached: datapath.attached, interfacesSource: attachments ? 'attachments' : 'requested', interfaces },
    };
  }

  /** `GET /v1/bpf/ipcache`: the kernel map when the datapath can dump it, else derived from its per-node entries. */
  async ipcacheListing(): Promise<IpcacheListing> {
    const datapath = this.container.get(TOKENS.Datapath);
    if (datapath.ipcacheDump) {
      // LOCAL prefixes belong to this node; the datapath does not know its own node's name.
      const me = this.opts.config.nodeName;
      const rows = (await datapath.ipcacheDump()).map((r) =>
        r.nodeName === undefined && r.flags & IpcacheFlags.LOCAL ? { ...r, nodeName: me } : r,
      );
      return { source: 'map', entries: ipcacheRows(rows) };
    }
    const entries = await datapath.entries();
    return {
      source: 'derived',
      entries: ipcacheRows(
        deriveIpcache(entries.values(), { nodeName: this.opts.config.nodeName, endpoints: datapath.localEndpoints?.() }),
      ),
    };
  }

  /** `GET /v1/bpf/counters`: packets and bytes per reason when the datapath has them, else packets per verdict. */
  async counterListing(): Promise<CounterListing> {
    const datapath = this.container.get(TOKENS.Datapath);
    if (datapath.counterDetails) {
      const d = await datapath.counterDetails();
      return {
        source: 'details',
        counters: Object.entries(d).map(([reason, c]) => ({ reason, packets: c.packets.toString(), bytes: c.bytes.toString() })),
      };
    }
    const v = await datapath.counters();
    return {
      source: 'verdicts',
      counters: Object.entries(v).map(([reason, packets]) => ({ reason, packets: packets.toString(), bytes: null })),
    };
  }

  /**
   * `POST /v1/keys/rotate`: asks the backend for a new node key and publishes the new public
   * material. {@link StatusRouteError} 501 when the backend cannot rotate, 409 when not started
   * or a rotation is already running.
   */
  async rotateKeys(): Promise<KeyRotationResponse> {
    const backend = this.container.get(TOKENS.EncryptionBackend);
    if (!backend.rotateKeys)
      throw new StatusRouteError(501, 'NOT_IMPLEMENTED', `the ${backend.name} backend does not support key rotation`);
    if (!this.started || this.stopped)
      throw new StatusRouteError(409, 'NOT_STARTED', 'the agent is not running (not started or stopping)');
    if (this.disabled)
      throw new StatusRouteError(
        409,
        'ENCRYPTION_DISABLED',
        'encryption is disabled (encryption.enabled=false): there is no node key to rotate',
      );
    if (this.rotating) throw new StatusRouteError(409, 'ROTATION_IN_PROGRESS', 'a key rotation is already in progress');
    this.rotating = true;
    try {
      await this.checkPublishable();
      let previous: string | null = null;
      try {
        previous = materialFingerprint(backend.localMaterial());
      } catch {
        previous = null;
      }
      const result = await backend.rotateKeys();
      const generation = ++this.publishGeneration;
      if (this.publishTimer) clearTimeout(this.publishTimer);
      const log = this.logger.child({ component: 'agent' });
      let publishError: string | null = null;
      try {
        this.desiredMaterial = this.fullMaterial(result.material);
        await this.container.get(TOKENS.KeyDistributor).publishLocal(this.desiredMaterial);
        this.published = true;
        this.publishPending = false;
      } catch (err) {
        publishError = errorMessage(err);
        this.publish(result.material, new Backoff(200, 30_000), generation);
      }
      const fingerprint = materialFingerprint(result.material);
      log.info(
        { backend: backend.name, previousFingerprint: previous, fingerprint, published: publishError === null },
        'rotated node key',
      );
      return {
        backend: backend.name,
        previousFingerprint: previous,
        fingerprint,
        annotations: publicAnnotations(result.material),
        keyIndex: result.keyIndex ?? null,
        published: publishError === null,
        publishError,
      };
    } finally {
      this.rotating = false;
    }
  }

  /**
   * A rotation takes effect on this node at once but reaches the peers only once it is published:
   * rotating while the API server cannot be written would cut the node off from its peers for as
   * long as it stays unreachable (measured in the lab: 6-8 s of lost pings across a kube-apiserver
   * restart). So the agent first writes what it has published already (an idempotent merge patch)
   * and refuses the rotation, changing nothing, when that fails.
   */
  private async checkPublishable(): Promise<void> {
    const backend = this.container.get(TOKENS.EncryptionBackend);
    const material = this.desiredMaterial ?? this.fullMaterial(backend.localMaterial());
    let timer: NodeJS.Timeout | undefined;
    try {
      await Promise.race([
        this.container.get(TOKENS.KeyDistributor).publishLocal(material),
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new Error(`no answer in ${ROTATION_PUBLISH_CHECK_MS} ms`)), ROTATION_PUBLISH_CHECK_MS);
        }),
      ]);
    } catch (err) {
      throw new StatusRouteError(
        503,
        'CONTROL_PLANE_UNREACHABLE',
        `the API server cannot be written (${errorMessage(err)}): a key rotated now would cut this node off from its peers until it is published; nothing was changed, retry when the API server answers`,
      );
    } finally {
      if (timer) clearTimeout(timer);
    }
  }

  /**
   * Stops the agent WITHOUT tearing down backend or datapath state (traffic keeps flowing while
   * the next agent starts and adopts it).
   */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    if (this.publishTimer) clearTimeout(this.publishTimer);
    if (this.restoreTimer) clearTimeout(this.restoreTimer);
    if (this.nodeIdTimer) clearTimeout(this.nodeIdTimer);
    this.wakeNodeIdWait?.();
    this.unsubscribeLocal?.();
    const c = this.container;
    await c.get(TOKENS.KeyDistributor).close();
    if (this.started && !this.disabled) await this.reconciler.stop();
    await c.get(TOKENS.EventRecorder).flush();
    this.unsubscribeSteering?.();
    this.unsubscribeMaterial?.();
    this.unsubscribeReprogram?.();
    await c.get(TOKENS.EncryptionBackend).close();
    await c.get(TOKENS.Datapath).close();
    await this.statusServer.close();
    await this.healthServer.close();
    await this.metricsServer?.close();
  }
}
