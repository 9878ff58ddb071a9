import 'reflect-metadata';
import { inject, injectable } from 'inversify';
import { errorMessage, PeerApplyError } from '../errors.js';
import { TOKENS } from '../di/tokens.js';
import type { Logger } from '../observability/logger.js';
import { type AgentMetrics, type PeerState, type RefusalReason } from '../observability/metrics.js';
import { CidrIndex, parseCidrCached as parseCidr, parseIPCached as parseIP } from '../util/ip.js';
import type { AgentConfig } from '../config/schema.js';
import {
  IpcacheFlags,
  sameIpcacheEntry,
  NODE_ID_ANNOTATION,
  type Datapath,
  type Cidr,
  type DistributorEvent,
  type EncryptionBackend,
  type EventRecorder,
  type IpcacheEntry,
  type KeyDistributor,
  type ObservedNode,
  type PeerNode,
} from '../types/index.js';
import { readLastGood, writeLastGood, type LastGood } from './last-good.js';
import { samePeer, sameTopology, validateAnnotations, validateNode } from './validate.js';
import type { ReconcilerOptions } from './options.js';
import { WorkQueue } from './workqueue.js';

export type { ReconcilerOptions } from './options.js';

/** A refusal, as reported in status and events. */
export interface Refusal {
  readonly reason: RefusalReason;
  readonly field: string;
  readonly message: string;
  /** The other node involved (duplicate key / overlap), if any. */
  readonly conflictsWith?: string;
}

/** One peer's view for status. */
export interface PeerView {
  readonly name: string;
  readonly state: PeerState;
  /** The peer is programmed in backend + datapath (possibly with its last good state). */
  readonly programmed: boolean;
  readonly nodeId: number;
  readonly keyIndex: number;
  readonly internalIPs: readonly string[];
  readonly podCIDRs: readonly string[];
  readonly refusal?: Refusal;
  readonly pendingOn?: string;
  readonly lastError?: string;
  /**
   * Refused, and its traffic is affected: its last good ipcache entry is kept (encrypt-ready, so
   * nothing leaves in clear) but the backend no longer carries it (another node won its key), so
   * packets to its pods are dropped until the conflict clears.
   */
  readonly trafficAffected?: boolean;
  /** When the peer became pending (ISO time); only while `state` is `pending`. */
  readonly pendingSince?: string;
}

interface NodeRecord {
  /** Latest observation; undefined once deleted. */
  observed: ObservedNode | undefined;
  /** Last good (validated, conflict-free) state; its values are in the indexes. */
  accepted: PeerNode | undefined;
  /** What backend + datapath were last successfully programmed with. */
  applied: { peer: PeerNode; entry: IpcacheEntry } | undefined;
  /**
   * The ipcache entry of a node displaced by an older node's conflicting claim: kept in the
   * datapath so its traffic is never downgraded to plaintext, while `applied` is cleared so that
   * the next acceptance reprograms backend and datapath in full.
   */
  stranded: IpcacheEntry | undefined;
  state: PeerState | 'local';
  /** Date.now() when the state became `pending`. */
  pendingSince: number | undefined;
  /** `applied` comes from the saved state and was not programmed by this process yet. */
  seeded: boolean;
  /** creationTimestamp (from the latest observation, or the saved state): conflict seniority. */
  createdAt: string | undefined;
  /** creationTimestamp of the incarnation `accepted` belongs to (a recreated Node is a new node). */
  acceptedCreatedAt: string | undefined;
  refusal: Refusal | undefined;
  pendingOn: string | undefined;
  lastError: string | undefined;
  /** The backend asked for this peer to be programmed again although it did not change. */
  reprogram?: boolean;
  /**
   * The observation `accepted` was made from, with the cluster families it was judged under.
   * Valid only while `accepted` is still `peer` (any other assignment of `accepted` voids it): a
   * later observation with the same topology then skips the address/CIDR parsing and checks,
   * which cannot come out differently (its values are indexed as its own, conflict-free).
   */
  acceptedFrom?: { observed: ObservedNode; peer: PeerNode; familiesGen: number };
}

/** One conflict found: `peerLoses` undefined = decided by seniority; true/false: fixed. */
interface Conflict {
  owner: string;
  mine: Refusal;
  theirs: Refusal;
  peerLoses?: boolean;
}

/** Work-queue key of the initial-sync prune (node names cannot contain NUL). */
const PRUNE_KEY = '\u0000prune';
/** Work-queue key of the periodic datapath check (after every node of a resync). */
const RESYNC_KEY = '\u0000resync';
/** Work-queue key restoring the saved last good state; queued first at start. */
const SEED_KEY = '\u0000seed';

const CONFLICT_REASONS: ReadonlySet<RefusalReason> = new Set([
  'duplicate-key',
  'duplicate-node-id',
  'cidr-overlap',
  'duplicate-node-ip',
  'cidr-covers-node-ip',
]);

/**
 * Level-triggered peer reconciler. Desired state comes from the {@link KeyDistributor}'s events;
 * actual state from the backend and datapath. Each node name is a work-queue key; a reconcile
 * validates the latest observation, checks it against every other node (unique keys, unique
 * node IDs, non-overlapping pod CIDRs), then programs backend and datapath if anything changed.
 *
 * Bad input is refused (Event + log + `veil_refused_peers_total{reason}`) and the node keeps its
 * last good state. Stale peers (programmed but absent from the cluster) are pruned only after the
 * distributor's initial sync and after every node from it was reconciled once.
 */
@injectable()
export class Reconciler {
  private readonly records = new Map<string, NodeRecord>();
  private readonly queue: WorkQueue;
  private readonly log: Logger;
  /** unique annotation key → value → owner */
  private readonly uniqueIndex = new Map<string, Map<string, string>>();
  private readonly nodeIdIndex = new Map<number, string>();
  private readonly cidrIndex = new CidrIndex();
  /** Node InternalIPs as host prefixes (/32, /128) → owner. */
  private readonly nodeIpIndex = new CidrIndex();
  /** IP families of the local node's pod CIDRs ("cluster families"); empty = not known yet. */
  private clusterFamilies: ReadonlySet<4 | 6> = new Set();
  /** Bumped when `clusterFamilies` changes (voids every `acceptedFrom`). */
  private familiesGen = 0;
  private readonly stateCounts = new Map<string, number>();
  /** holder → nodes refused because of a conflict with it (re-queued when it releases). */
  private readonly conflictWaiters = new Map<string, Set<string>>();
  private adoptedEntries = new Map<string, IpcacheEntry>();
  private adoptedPeers = new Set<string>();
  private running = false;
  private isSynced = false;
  private syncWaiters: (() => void)[] = [];
  private resyncTimer: NodeJS.Timeout | undefined;
  private workerDone: Promise<void> | undefined;
  private eventsDone: Promise<void> | undefined;
  private readonly opts: Required<Omit<ReconcilerOptions, 'stateFile'>> & { stateFile: string | undefined };
  private saveTimer: NodeJS.Timeout | undefined;

  constructor(
    @inject(TOKENS.KeyDistributor) private readonly distributor: KeyDistributor,
    @inject(TOKENS.EncryptionBackend) private readonly backend: EncryptionBackend,
    @inject(TOKENS.Datapath) private readonly datapath: Datapath,
    @inject(TOKENS.EventRecorder) private readonly events: EventRecorder,
    @inject(TOKENS.Logger) logger: Logger,
    @inject(TOKENS.AgentMetrics) private readonly metrics: AgentMetrics,
    @inject(TOKENS.Config) private readonly config: AgentConfig,
    @inject(TOKENS.ReconcilerOptions) options: ReconcilerOptions,
  ) {
    this.opts = {
      initialRetryMs: options.initialRetryMs ?? 100,
      maxRetryMs: options.maxRetryMs ?? 30_000,
      resyncIntervalMs: options.resyncIntervalMs ?? 300_000,
      stateFile: options.stateFile,
      saveDelayMs: options.saveDelayMs ?? 100,
    };
    this.log = logger.child({ component: 'reconciler' });
    this.queue = new WorkQueue({ initialRetryMs: this.opts.initialRetryMs, maxRetryMs: this.opts.maxRetryMs });
    this.okDuration = metrics.reconcileDuration.labels({ result: 'success' });
    this.errDuration = metrics.reconcileDuration.labels({ result: 'error' });
    metrics.setPeerStateSource(() => this.stateCounts);
  }

  private readonly okDuration: { observe(v: number): void };
  private readonly errDuration: { observe(v: number): void };

  /** True after the initial sync finished and stale peers were pruned. */
  get synced(): boolean {
    return this.isSynced;
  }

  /**
   * Programs these peers again on the next pass even if unchanged (the backend's
   * {@link EncryptionBackend.onReprogramPeers}); unknown names are ignored.
   */
  reprogram(names: readonly string[]): void {
    for (const name of names) {
      const r = this.records.get(name);
      if (!r || name === this.config.nodeName) continue;
      r.reprogram = true;
      this.queue.add(name);
    }
  }

  /** Resolves once {@link synced}. */
  whenSynced(): Promise<void> {
    if (this.isSynced) return Promise.resolve();
    return new Promise((r) => this.syncWaiters.push(r));
  }

  private readonly localListeners = new Set<(node: ObservedNode | undefined) => void>();

  /**
   * Calls `listener` with every observation of the local Node (undefined when it is deleted), so
   * the agent can keep its own published material level-triggered. Returns an unsubscribe function.
   */
  onLocalNode(listener: (node: ObservedNode | undefined) => void): () => void {
    this.localListeners.add(listener);
    return () => this.localListeners.delete(listener);
  }

  /** Resolves when the work queue is empty and nothing is in progress. */
  idle(): Promise<void> {
    return this.queue.idle();
  }

  /**
   * Starts consuming distributor events. `adopted` is what the backend (`init()` result) and
   * datapath (`entries()`) already had: it is kept until the initial sync says otherwise.
   */
  start(adopted: { backendPeers: readonly string[]; datapathEntries: ReadonlyMap<string, IpcacheEntry> }): void {
    if (this.running) throw new Error('reconciler already started');
    this.running = true;
    this.adoptedPeers = new Set(adopted.backendPeers);
    this.adoptedEntries = new Map(adopted.datapathEntries);
    // Before any node event: the saved last good state is what ran before this restart.
    if (this.opts.stateFile !== undefined) this.queue.add(SEED_KEY);
    this.workerDone = this.worker();
    this.eventsDone = this.consume();
    if (this.opts.resyncIntervalMs > 0) {
      this.resyncTimer = setInterval(() => {
        for (const name of this.records.keys()) this.queue.add(name);
        this.queue.add(RESYNC_KEY);
      }, this.opts.resyncIntervalMs);
      this.resyncTimer.unref();
    }
  }

  async stop(): Promise<void> {
    this.running = false;
    if (this.resyncTimer) clearInterval(this.resyncTimer);
    this.queue.shutdown();
    await this.workerDone;
    if (this.saveTimer) {
      clearTimeout(this.saveTimer);
      this.saveTimer = undefined;
      this.save();
    }
    // The events loop ends when the distributor is closed (by the Agent).
    void this.eventsDone;
  }

  /** Every known remote node's view, sorted by name (the local node is not a peer). */
  peers(): PeerView[] {
    const out: PeerView[] = [];
    for (const [name, r] of this.records) {
      if (name === this.config.nodeName) continue;
      const p = r.applied?.peer ?? r.accepted;
      out.push({
        name,
        state: r.state === 'local' ? 'active' : r.state,
        programmed: r.applied !== undefined,
        nodeId: p?.nodeId ?? 0,
        keyIndex: r.applied?.entry.keyIndex ?? 0,
        internalIPs: p ? [p.internalIPv4, p.internalIPv6].filter((x): x is string => x !== undefined) : [],
        podCIDRs: p ? p.podCIDRs.map((c) => c.text) : [],
        ...(r.refusal ? { refusal: r.refusal } : {}),
        ...(r.pendingOn ? { pendingOn: r.pendingOn } : {}),
        ...(r.lastError ? { lastError: r.lastError } : {}),
        ...(r.stranded && !r.applied ? { trafficAffected: true } : {}),
        ...(r.state === 'pending' && r.pendingSince !== undefined
          ? { pendingSince: new Date(r.pendingSince).toISOString() }
          : {}),
      });
    }
    return out.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }

  // ---- event intake -----------------------------------------------------------------------

  private async consume(): Promise<void> {
    for await (const ev of this.distributor.events()) {
      if (!this.running) break;
      this.onEvent(ev);
    }
  }

  private onEvent(ev: DistributorEvent): void {
    if (ev.type === 'upsert' && ev.node.name === this.config.nodeName) for (const l of this.localListeners) l(ev.node);
    if (ev.type === 'delete' && ev.name === this.config.nodeName) for (const l of this.localListeners) l(undefined);
    switch (ev.type) {
      case 'upsert': {
        const r = this.record(ev.node.name);
        r.observed = ev.node;
        if (ev.node.createdAt !== undefined) r.createdAt = ev.node.createdAt;
        this.queue.add(ev.node.name);
        break;
      }
      case 'delete': {
        const r = this.records.get(ev.name);
        if (r) {
          r.observed = undefined;
          this.queue.add(ev.name);
        } else if (this.adoptedPeers.has(ev.name) || this.adoptedEntries.has(ev.name)) {
          this.record(ev.name).observed = undefined;
          this.queue.add(ev.name);
        }
        break;
      }
      case 'synced':
        // Queued behind every node listed before it, and run by the worker like any key, so no
        // apply can interleave with the prune.
        if (!this.isSynced) this.queue.add(PRUNE_KEY);
        break;
    }
  }

  private record(name: string): NodeRecord {
    let r = this.records.get(name);
    if (!r) {
      r = {
        observed: undefined,
        accepted: undefined,
        applied: undefined,
        stranded: undefined,
        pendingSince: Date.now(),
        seeded: false,
        state: 'pending',
        createdAt: undefined,
        acceptedCreatedAt: undefined,
        refusal: undefined,
        pendingOn: undefined,
        lastError: undefined,
      };
      this.records.set(name, r);
      this.count(r.state, +1);
    }
    return r;
  }

  private setState(r: NodeRecord, state: NodeRecord['state']): void {
    if (r.state === state) return;
    r.pendingSince = state === 'pending' ? Date.now() : undefined;
    this.count(r.state, -1);
    r.state = state;
    this.count(state, +1);
  }

  private count(state: NodeRecord['state'], delta: number): void {
    this.stateCounts.set(state, (this.stateCounts.get(state) ?? 0) + delta);
  }

  // ---- initial sync -----------------------------------------------------------------------

  /** The initial-sync prune: everything observed is reconciled; remove what no node claims. */
  private async finishInitialSync(): Promise<void> {
    if (this.isSynced) return;
    const keep = new Set<string>();
    for (const [name, r] of this.records) if (r.observed !== undefined && name !== this.config.nodeName) keep.add(name);
    for (const name of keep) {
      const r = this.records.get(name)!;
      if (!r.seeded || !r.applied) continue;
      if (!this.adoptedPeers.has(name)) {
        try {
          await this.backend.upsertPeer(r.applied.peer);
        } catch (err) {
          throw new PeerApplyError(
            name,
            'backend',
            `backend ${this.backend.name}: restore last good ${name}: ${errorMessage(err)}`,
            { cause: err },
          );
        }
      }
      r.seeded = false;
    }
    let removed: readonly string[];
    try {
      removed = await this.backend.prune(keep);
    } catch (err) {
      throw new PeerApplyError('(prune)', 'backend', `backend ${this.backend.name}: prune: ${errorMessage(err)}`, { cause: err });
    }
    if (removed.length > 0) this.log.info({ removed }, 'pruned stale backend peers after initial sync');
    const desired: IpcacheEntry[] = [];
    for (const name of keep) {
      const r = this.records.get(name)!;
      const e = r.applied?.entry ?? r.stranded ?? this.adoptedEntries.get(name);
      if (e) desired.push(e);
    }
    let res;
    try {
      res = await this.datapath.syncPeers(desired);
    } catch (err) {
      throw new PeerApplyError('(prune)', 'datapath', `datapath: sync after initial list: ${errorMessage(err)}`, { cause: err });
    }
    if (res.removed.length > 0) this.log.info({ removed: res.removed }, 'pruned stale ipcache entries after initial sync');
    for (const name of this.adoptedPeers) if (!keep.has(name)) this.dropRecordIfGone(name);
    // Saved last good state of nodes deleted while the agent was down: pruned above.
    for (const [name, r] of [...this.records]) {
      if (r.observed !== undefined || name === this.config.nodeName) continue;
      if (r.accepted) this.index(r.accepted, 'remove');
      r.accepted = undefined;
      r.applied = undefined;
      r.stranded = undefined;
      this.dropRecordIfGone(name);
    }
    this.scheduleSave();
    this.adoptedPeers.clear();
    this.adoptedEntries.clear();
    this.isSynced = true;
    this.log.info({ peers: keep.size }, 'initial sync complete');
    const ws = this.syncWaiters;
    this.syncWaiters = [];
    for (const w of ws) w();
  }

  private dropRecordIfGone(name: string): void {
    const r = this.records.get(name);
    if (r && r.observed === undefined) {
      this.count(r.state, -1);
      this.records.delete(name);
    }
  }

  // ---- worker -----------------------------------------------------------------------------

  private async worker(): Promise<void> {
    for (;;) {
      const key = await this.queue.get();
      if (key === undefined) return;
      const t0 = performance.now();
      try {
        await this.reconcile(key);
        this.queue.forget(key);
        this.okDuration.observe((performance.now() - t0) / 1000);
      } catch (err) {
        this.errDuration.observe((performance.now() - t0) / 1000);
        const stage = err instanceof PeerApplyError ? err.stage : 'internal';
        this.metrics.reconcileErrors.inc({ stage });
        const r = this.records.get(key);
        if (r) {
          r.lastError = errorMessage(err);
          this.setState(r, 'error');
        }
        const delay = this.queue.retry(key);
        this.log.warn(
          {
            node:
              key === PRUNE_KEY
                ? '(initial-sync prune)'
                : key === SEED_KEY
                  ? '(saved state)'
                  : key === RESYNC_KEY
                    ? '(periodic datapath sync)'
                    : key,
            stage,
            err: errorMessage(err),
            retryInMs: delay,
          },
          'peer reconcile failed; will retry',
        );
      } finally {
        this.queue.done(key);
      }
    }
  }

  /** One level-triggered pass for one node. Throws PeerApplyError to be retried. */
  private async reconcile(name: string): Promise<void> {
    if (name === PRUNE_KEY) return this.finishInitialSync();
    if (name === SEED_KEY) return this.seedLastGood();
    if (name === RESYNC_KEY) return this.resyncDatapath();
    const r = this.records.get(name);
    if (!r) return;
    if (r.observed === undefined) {
      await this.removeNode(name, r);
      return;
    }
    const isLocal = name === this.config.nodeName;
    const from = r.acceptedFrom;
    const known =
      from !== undefined &&
      r.accepted !== undefined &&
      from.peer === r.accepted &&
      from.familiesGen === this.familiesGen &&
      r.observed.createdAt === r.acceptedCreatedAt &&
      sameTopology(r.observed, from.observed);
    const v = known
      ? validateAnnotations(r.observed, this.backend.peerAnnotations, from.peer)
      : validateNode(r.observed, this.backend.peerAnnotations);
    if (v.kind === 'refused') {
      this.refuse(name, r, { reason: v.reason, field: v.field, message: v.message });
      return;
    }
    if (v.kind === 'pending') {
      r.pendingOn = `${v.field}: ${v.message}`;
      this.clearRefusal(name, r);
      if (isLocal) this.setState(r, 'local');
      else if (!r.applied) this.setState(r, 'pending');
      return;
    }
    const peer = v.peer;
    const insane = isLocal || known ? undefined : this.senselessValues(r, peer);
    if (insane) {
      this.refuse(name, r, insane);
      return;
    }
    if (r.accepted !== undefined && samePeer(r.accepted, peer)) {
      // Nothing veil cares about changed (most Node updates): its values are already indexed as
      // this node's, so no conflict check is needed.
      this.clearRefusal(name, r);
      r.pendingOn = undefined;
      if (isLocal) this.setState(r, 'local');
      else await this.apply(name, r, peer);
      return;
    }
    const { refusal, displace } = this.findConflicts(peer, known);
    if (refusal) {
      this.refuse(name, r, refusal);
      return;
    }
    // This node is older than every holder it conflicts with: they give way (same rule on every
    // agent and across restarts, whatever order the nodes were listed in).
    for (const d of displace) await this.displace(d.owner, d.refusal);
    this.reindex(r.accepted, peer);
    const hadAccepted = r.accepted !== undefined;
    r.accepted = peer;
    r.acceptedCreatedAt = r.createdAt;
    r.acceptedFrom = { observed: r.observed, peer, familiesGen: this.familiesGen };
    this.clearRefusal(name, r);
    r.pendingOn = undefined;
    // It may have released a key/ID/CIDR someone else was refused for.
    if (hadAccepted) this.requeueConflicted(name);
    if (isLocal) {
      this.setState(r, 'local');
      this.updateClusterFamilies(peer);
      return;
    }
    await this.apply(name, r, peer);
  }

  /**
   * Values that parse but make no sense for a remote node, judged on their own: pod CIDRs of a
   * family the cluster does not use, a pod CIDR covering the node's own address, or pod CIDRs
   * dropped while the node lives (its pods may still use them: the last good entry stays until the
   * node is deleted, so their traffic is never sent in clear).
   */
  private senselessValues(r: NodeRecord, peer: PeerNode): Refusal | undefined {
    if (this.clusterFamilies.size > 0) {
      const bad = peer.podCIDRs.find((c) => !this.clusterFamilies.has(c.family));
      if (bad) {
        const fams = [...this.clusterFamilies].map((f) => `IPv${f}`).join(' and ');
        return {
          reason: 'pod-cidr-family',
          field: 'spec.podCIDRs',
          message: `${bad.text} is IPv${bad.family}, but this cluster's pods use ${fams} only (the local node's pod CIDRs)`,
        };
      }
    }
    for (const ip of [peer.internalIPv4, peer.internalIPv6]) {
      const host = ip === undefined ? undefined : hostCidr(ip);
      const covering = host && peer.podCIDRs.find((c) => covers(c, host));
      if (covering)
        return {
          reason: 'cidr-covers-node-ip',
          field: 'spec.podCIDRs',
          message: `${covering.text} contains the node's own address ${ip}`,
        };
    }
    const last = r.applied?.peer ?? r.accepted;
    // Deleted and registered again under the same name (seen as one coalesced update): a new node.
    const reborn =
      r.observed?.createdAt !== undefined && r.acceptedCreatedAt !== undefined && r.observed.createdAt !== r.acceptedCreatedAt;
    if (last && !reborn) {
      const now = new Set(peer.podCIDRs.map((c) => c.text));
      const dropped = last.podCIDRs.filter((c) => !now.has(c.text)).map((c) => c.text);
      if (dropped.length > 0) {
        return {
          reason: 'pod-cidr-removed',
          field: 'spec.podCIDRs',
          message: `${dropped.join(', ')} removed from a live node whose pods may still use it; the last good entry is kept until the node is deleted`,
        };
      }
    }
    return undefined;
  }

  /** The local node's pod CIDR families define the cluster's; a change re-judges every node. */
  private updateClusterFamilies(local: PeerNode): void {
    const fams = new Set(local.podCIDRs.map((c) => c.family));
    const same = fams.size === this.clusterFamilies.size && [...fams].every((f) => this.clusterFamilies.has(f));
    if (same) return;
    this.clusterFamilies = fams;
    this.familiesGen++;
    for (const name of this.records.keys()) if (name !== this.config.nodeName) this.queue.add(name);
  }

  private async apply(name: string, r: NodeRecord, peer: PeerNode): Promise<void> {
    if (r.applied && samePeer(r.applied.peer, peer) && r.state !== 'error' && !r.reprogram && !r.seeded) {
      this.setState(r, 'active');
      return;
    }
    let result;
    try {
      result = await this.backend.upsertPeer(peer);
    } catch (err) {
      throw new PeerApplyError(name, 'backend', `backend ${this.backend.name}: upsert ${name}: ${errorMessage(err)}`, {
        cause: err,
      });
    }
    const entry: IpcacheEntry = {
      nodeName: name,
      nodeIPs: [peer.internalIPv4, peer.internalIPv6].filter((x): x is string => x !== undefined),
      podCIDRs: peer.podCIDRs.map((c) => c.text),
      flags: IpcacheFlags.REMOTE | IpcacheFlags.ENCRYPT_READY | (result?.flags ?? 0),
      keyIndex: result?.keyIndex ?? 0,
      nodeId: peer.nodeId,
    };
    // A stranded entry may have been overwritten by the winner's prefixes: always rewrite it.
    const prior = r.applied?.entry ?? (r.stranded ? undefined : this.adoptedEntries.get(name));
    if (!prior || !sameIpcacheEntry(prior, entry)) {
      try {
        await this.datapath.upsert(entry);
      } catch (err) {
        throw new PeerApplyError(name, 'datapath', `datapath: upsert ${name}: ${errorMessage(err)}`, { cause: err });
      }
    }
    r.applied = { peer, entry };
    r.reprogram = false;
    r.stranded = undefined;
    r.seeded = false;
    r.lastError = undefined;
    this.setState(r, 'active');
    this.scheduleSave();
  }

  /**
   * Level-triggered check of the datapath itself: a node whose values did not change is not
   * rewritten by its reconcile, so an entry the datapath lost (e.g. prefixes another node briefly
   * claimed, then released) would stay lost. A diff against everything programmed puts it back.
   */
  private async resyncDatapath(): Promise<void> {
    if (!this.isSynced) return;
    const desired: IpcacheEntry[] = [];
    for (const [name, r] of this.records) {
      if (name === this.config.nodeName || r.observed === undefined) continue;
      const e = r.applied?.entry ?? r.stranded;
      if (e) desired.push(e);
    }
    let res;
    try {
      res = await this.datapath.syncPeers(desired);
    } catch (err) {
      throw new PeerApplyError('(resync)', 'datapath', `datapath: periodic sync: ${errorMessage(err)}`, { cause: err });
    }
    const repaired = [...res.added, ...res.updated, ...res.removed];
    if (repaired.length > 0)
      this.log.warn(
        { added: res.added, updated: res.updated, removed: res.removed },
        'periodic resync repaired datapath entries',
      );
  }

  // ---- last good state across restarts ----------------------------------------------------

  /**
   * Restores the saved last good peers: indexed (so conflicts are judged against them before the
   * nodes are listed again), handed to the backend (which may know no node names after a
   * restart) and, where the datapath lost it, to the datapath. Idempotent on retry.
   */
  private async seedLastGood(): Promise<void> {
    const file = this.opts.stateFile;
    if (file === undefined) return;
    const { nodes, problem } = readLastGood(file);
    if (problem) this.log.warn({ file, problem }, 'ignoring saved last good peer state');
    for (const n of nodes) {
      const name = n.peer.name;
      if (name === this.config.nodeName) continue;
      const r = this.record(name);
      if (r.applied) continue;
      r.createdAt ??= n.createdAt;
      const adopted = this.adoptedEntries.get(name);
      if (!adopted || !sameIpcacheEntry(adopted, n.entry)) {
        try {
          await this.datapath.upsert(n.entry);
        } catch (err) {
          throw new PeerApplyError(name, 'datapath', `datapath: restore last good ${name}: ${errorMessage(err)}`, { cause: err });
        }
      }
      if (!r.accepted) {
        this.index(n.peer, 'add');
        r.accepted = n.peer;
        r.acceptedCreatedAt = n.createdAt;
      }
      r.applied = { peer: n.peer, entry: n.entry };
      // The backend learns it on the node's next apply, or at the initial-sync prune if it stays
      // refused (backends like WireGuard know no node names after a restart).
      r.seeded = true;
      this.setState(r, 'active');
    }
    if (nodes.length > 0) this.log.info({ file, peers: nodes.length }, 'restored last good peers saved before the restart');
  }

  private scheduleSave(): void {
    if (this.opts.stateFile === undefined || this.saveTimer) return;
    this.saveTimer = setTimeout(() => {
      this.saveTimer = undefined;
      this.save();
    }, this.opts.saveDelayMs);
    this.saveTimer.unref();
  }

  private save(): void {
    const file = this.opts.stateFile;
    if (file === undefined) return;
    const nodes: LastGood[] = [];
    for (const [name, r] of this.records) {
      if (name === this.config.nodeName || !r.applied) continue;
      nodes.push({
        peer: r.applied.peer,
        entry: r.applied.entry,
        ...(r.createdAt !== undefined ? { createdAt: r.createdAt } : {}),
      });
    }
    try {
      writeLastGood(file, nodes);
    } catch (err) {
      this.log.warn({ file, err: errorMessage(err) }, 'saving last good peer state failed');
    }
  }

  private async removeNode(name: string, r: NodeRecord): Promise<void> {
    this.clearRefusal(name, r);
    if (r.accepted) {
      this.index(r.accepted, 'remove');
      r.accepted = undefined;
      this.requeueConflicted(name);
    }
    if (
      name !== this.config.nodeName &&
      (r.applied || r.stranded || this.adoptedPeers.has(name) || this.adoptedEntries.has(name))
    ) {
      try {
        await this.backend.removePeer(name);
      } catch (err) {
        throw new PeerApplyError(name, 'backend', `backend ${this.backend.name}: remove ${name}: ${errorMessage(err)}`, {
          cause: err,
        });
      }
      try {
        await this.datapath.remove(name);
      } catch (err) {
        throw new PeerApplyError(name, 'datapath', `datapath: remove ${name}: ${errorMessage(err)}`, { cause: err });
      }
      this.adoptedPeers.delete(name);
      this.adoptedEntries.delete(name);
      r.applied = undefined;
      r.stranded = undefined;
      this.scheduleSave();
      this.log.info({ node: name }, 'peer removed');
    }
    // A re-add that raced the removal keeps the record.
    if (r.observed === undefined) {
      this.count(r.state, -1);
      this.records.delete(name);
    }
  }

  // ---- cross-node checks ------------------------------------------------------------------

  /**
   * Conflicts of `peer` with the nodes currently holding its unique values. The older node (then
   * the smaller name) wins: when `peer` loses any conflict it is refused; otherwise every holder
   * it conflicts with is to be displaced.
   */
  private findConflicts(
    peer: PeerNode,
    uniqueOnly = false,
  ): { refusal?: Refusal; displace: { owner: string; refusal: Refusal }[] } {
    // `peerLoses` undefined: decided by seniority; true/false: fixed (node addresses beat pod CIDRs).
    const found: Conflict[] = [];
    for (const spec of this.backend.peerAnnotations) {
      if (!spec.unique) continue;
      const value = peer.backend[spec.key];
      if (value === undefined) continue;
      const owner = this.uniqueIndex.get(spec.key)?.get(value);
      if (owner !== undefined && owner !== peer.name) {
        const field = `annotations[${spec.key}]`;
        found.push({
          owner,
          mine: {
            reason: 'duplicate-key',
            field,
            message: `value already used by node ${owner} (the older node keeps it)`,
            conflictsWith: owner,
          },
          theirs: {
            reason: 'duplicate-key',
            field,
            message: `value also published by node ${peer.name}, an older node (the older node keeps it)`,
            conflictsWith: peer.name,
          },
        });
      }
    }
    // Unchanged topology of an accepted node: its node ID, addresses and CIDRs are indexed as its
    // own and conflict-free (a newcomer claiming one is refused or displaces this node).
    if (!uniqueOnly) this.findTopologyConflicts(peer, found);
    return this.decide(peer, found);
  }

  private findTopologyConflicts(peer: PeerNode, found: Conflict[]): void {
    if (peer.nodeId !== 0) {
      const owner = this.nodeIdIndex.get(peer.nodeId);
      if (owner !== undefined && owner !== peer.name) {
        const field = `annotations[${NODE_ID_ANNOTATION}]`;
        found.push({
          owner,
          mine: {
            reason: 'duplicate-node-id',
            field,
            message: `node ID ${peer.nodeId} already used by node ${owner}`,
            conflictsWith: owner,
          },
          theirs: {
            reason: 'duplicate-node-id',
            field,
            message: `node ID ${peer.nodeId} also used by node ${peer.name}, an older node`,
            conflictsWith: peer.name,
          },
        });
      }
    }
    for (const c of peer.podCIDRs) {
      const owner = this.cidrIndex.overlapping(c, peer.name);
      if (owner !== undefined) {
        found.push({
          owner,
          mine: {
            reason: 'cidr-overlap',
            field: 'spec.podCIDRs',
            message: `${c.text} overlaps a pod CIDR of node ${owner}`,
            conflictsWith: owner,
          },
          theirs: {
            reason: 'cidr-overlap',
            field: 'spec.podCIDRs',
            message: `overlaps pod CIDR ${c.text} of node ${peer.name}, an older node`,
            conflictsWith: peer.name,
          },
        });
      }
    }
    for (const ip of [peer.internalIPv4, peer.internalIPv6]) {
      const host = ip === undefined ? undefined : hostCidr(ip);
      if (!host) continue;
      const field = 'status.addresses[InternalIP]';
      const ipOwner = this.nodeIpIndex.overlapping(host, peer.name);
      if (ipOwner !== undefined) {
        found.push({
          owner: ipOwner,
          mine: {
            reason: 'duplicate-node-ip',
            field,
            message: `${ip} is already the address of node ${ipOwner}`,
            conflictsWith: ipOwner,
          },
          theirs: {
            reason: 'duplicate-node-ip',
            field,
            message: `${ip} is also claimed by node ${peer.name}, an older node`,
            conflictsWith: peer.name,
          },
        });
      }
      const podOwner = this.cidrIndex.overlapping(host, peer.name);
      if (podOwner !== undefined) {
        found.push({
          owner: podOwner,
          mine: {
            reason: 'cidr-covers-node-ip',
            field,
            message: `unreachable: ${ip} lies in a pod CIDR of node ${podOwner}`,
            conflictsWith: podOwner,
          },
          theirs: {
            reason: 'cidr-covers-node-ip',
            field: 'spec.podCIDRs',
            message: `a pod CIDR contains ${ip}, the address of node ${peer.name}`,
            conflictsWith: peer.name,
          },
          peerLoses: false,
        });
      }
    }
    for (const c of peer.podCIDRs) {
      const owner = this.nodeIpIndex.overlapping(c, peer.name);
      if (owner !== undefined) {
        found.push({
          owner,
          mine: {
            reason: 'cidr-covers-node-ip',
            field: 'spec.podCIDRs',
            message: `${c.text} contains an address of node ${owner} (pod traffic to it would enter the tunnel)`,
            conflictsWith: owner,
          },
          theirs: { reason: 'cidr-covers-node-ip', field: 'spec.podCIDRs', message: '', conflictsWith: peer.name },
          peerLoses: true,
        });
      }
    }
  }

  private decide(peer: PeerNode, found: Conflict[]): { refusal?: Refusal; displace: { owner: string; refusal: Refusal }[] } {
    // Our own values are ours in our view: this agent holds the local private key, so a remote
    // node publishing the local key (or node ID, address) is wrong whatever its age.
    const local = this.config.nodeName;
    for (const f of found) {
      if (f.owner === local) f.peerLoses = true;
      else if (peer.name === local && f.peerLoses === undefined) f.peerLoses = false;
    }
    const displace: { owner: string; refusal: Refusal }[] = [];
    for (const f of found) if (f.peerLoses === true) return { refusal: f.mine, displace: [] };
    for (const f of found) {
      if (f.peerLoses === undefined && this.olderThan(f.owner, peer.name)) return { refusal: f.mine, displace: [] };
      if (!displace.some((d) => d.owner === f.owner)) displace.push({ owner: f.owner, refusal: f.theirs });
    }
    return { displace };
  }

  /** The durable tie-break every agent computes alike: older creationTimestamp, then smaller name. */
  private olderThan(a: string, b: string): boolean {
    const ta = createdMs(this.records.get(a)?.createdAt);
    const tb = createdMs(this.records.get(b)?.createdAt);
    if (ta !== tb) return ta < tb;
    return a < b;
  }

  /**
   * An older node won one of `name`'s values. Its accepted state is released; its ipcache entry
   * stays (encrypt-ready: never plaintext) but stops counting as programmed; a lost key also leaves
   * the backend (a device cannot give one key to two peers).
   */
  private async displace(name: string, refusal: Refusal): Promise<void> {
    const r = this.records.get(name);
    if (!r) return;
    if (r.accepted) {
      this.index(r.accepted, 'remove');
      r.accepted = undefined;
    }
    if (r.applied && name !== this.config.nodeName) {
      if (refusal.reason === 'duplicate-key') {
        try {
          await this.backend.removePeer(name);
        } catch (err) {
          throw new PeerApplyError(
            name,
            'backend',
            `backend ${this.backend.name}: remove displaced ${name}: ${errorMessage(err)}`,
            { cause: err },
          );
        }
      }
      r.stranded = r.applied.entry;
      r.applied = undefined;
      this.scheduleSave();
    }
    this.refuse(name, r, refusal);
  }

  /**
   * Moves a node's indexed values from `old` (its previously accepted state, if any) to `peer`.
   * Most changes (a key rotation) leave addresses, pod CIDRs and node ID alone: then only the
   * unique annotations move.
   */
  private reindex(old: PeerNode | undefined, peer: PeerNode): void {
    if (
      old === undefined ||
      old.nodeId !== peer.nodeId ||
      old.internalIPv4 !== peer.internalIPv4 ||
      old.internalIPv6 !== peer.internalIPv6 ||
      old.podCIDRs.length !== peer.podCIDRs.length ||
      old.podCIDRs.some((c, i) => c.text !== peer.podCIDRs[i]?.text)
    ) {
      if (old !== undefined) this.index(old, 'remove');
      this.index(peer, 'add');
      return;
    }
    this.indexUnique(old, 'remove');
    this.indexUnique(peer, 'add');
  }

  private indexUnique(peer: PeerNode, op: 'add' | 'remove'): void {
    for (const spec of this.backend.peerAnnotations) {
      if (!spec.unique) continue;
      const value = peer.backend[spec.key];
      if (value === undefined) continue;
      let m = this.uniqueIndex.get(spec.key);
      if (!m) this.uniqueIndex.set(spec.key, (m = new Map<string, string>()));
      if (op === 'add') m.set(value, peer.name);
      else if (m.get(value) === peer.name) m.delete(value);
    }
  }

  /** Adds/removes a peer's unique values to/from the indexes. */
  private index(peer: PeerNode, op: 'add' | 'remove'): void {
    this.indexUnique(peer, op);
    if (peer.nodeId !== 0) {
      if (op === 'add') this.nodeIdIndex.set(peer.nodeId, peer.name);
      else if (this.nodeIdIndex.get(peer.nodeId) === peer.name) this.nodeIdIndex.delete(peer.nodeId);
    }
    for (const c of peer.podCIDRs) {
      if (op === 'add') this.cidrIndex.add(c, peer.name);
      else this.cidrIndex.remove(c, peer.name);
    }
    for (const ip of [peer.internalIPv4, peer.internalIPv6]) {
      const host = ip === undefined ? undefined : hostCidr(ip);
      if (!host) continue;
      if (op === 'add') this.nodeIpIndex.add(host, peer.name);
      else this.nodeIpIndex.remove(host, peer.name);
    }
  }

  /** Nodes refused for a conflict with `releaser` get another chance. */
  private requeueConflicted(releaser: string): void {
    const waiters = this.conflictWaiters.get(releaser);
    if (!waiters) return;
    this.conflictWaiters.delete(releaser);
    for (const name of waiters) this.queue.add(name);
  }

  private clearRefusal(name: string, r: NodeRecord): void {
    const holder = r.refusal?.conflictsWith;
    if (holder !== undefined) {
      const w = this.conflictWaiters.get(holder);
      w?.delete(name);
      if (w?.size === 0) this.conflictWaiters.delete(holder);
    }
    r.refusal = undefined;
  }

  private refuse(name: string, r: NodeRecord, refusal: Refusal): void {
    const same =
      r.refusal !== undefined &&
      r.refusal.reason === refusal.reason &&
      r.refusal.field === refusal.field &&
      r.refusal.message === refusal.message;
    this.clearRefusal(name, r);
    r.refusal = refusal;
    r.pendingOn = undefined;
    if (refusal.conflictsWith !== undefined && CONFLICT_REASONS.has(refusal.reason)) {
      let w = this.conflictWaiters.get(refusal.conflictsWith);
      if (!w) this.conflictWaiters.set(refusal.conflictsWith, (w = new Set()));
      w.add(name);
    }
    this.setState(r, name === this.config.nodeName ? 'local' : 'refused');
    // The same bad input seen again (resync, unrelated Node update) is not a new refusal.
    if (same) return;
    this.metrics.refusedPeers.inc({ reason: refusal.reason });
    this.log.warn(
      {
        node: name,
        field: refusal.field,
        reason: refusal.reason,
        conflictsWith: refusal.conflictsWith,
        keptLastGood: r.applied !== undefined,
      },
      `refusing update of node ${name}: ${refusal.field}: ${refusal.message}`,
    );
    this.events.record({
      node: name,
      type: 'Warning',
      reason: 'PeerRefused',
      message:
        `veil refused this node's update (${refusal.reason}): ${refusal.field}: ${refusal.message}` +
        (r.applied ? '; keeping its last good state' : ''),
    });
  }
}

/** An address as a host prefix (/32 or /128). */
function hostCidr(ip: string): Cidr | undefined {
  const parsed = parseIP(ip);
  if (!parsed) return undefined;
  const c = parseCidr(`${ip}/${parsed.family === 4 ? 32 : 128}`);
  return typeof c === 'string' ? undefined : c;
}

/** `outer` contains `inner`. */
function covers(outer: Cidr, inner: Cidr): boolean {
  if (outer.family !== inner.family || outer.prefixLength > inner.prefixLength) return false;
  const shift = BigInt((outer.family === 4 ? 32 : 128) - outer.prefixLength);
  return outer.network >> shift === inner.network >> shift;
}

function createdMs(createdAt: string | undefined): number {
  const t = createdAt !== undefined ? Date.parse(createdAt) : NaN;
  return Number.isNaN(t) ? Number.POSITIVE_INFINITY : t;
}
