import { type DatapathConfig, type Datapath as BpfObjectDatapath, REASONS } from '@veil/bpf';
import type {
  AttachTarget,
  Datapath,
  DatapathCounterDetails,
  DatapathSyncResult,
  IpcacheEntry,
  IpcachePrefixEntry,
  Steering,
  VerdictCounters,
} from '@veil/agent-core';
import { EndpointDiscovery } from './endpoints.js';
import { DatapathArgumentError, DatapathAttachError, DatapathClosedError } from './errors.js';
import { IpcacheTable } from './ipcache.js';
import { loadPinned } from './loader.js';
import { canonicalPrefix } from './model.js';
import { type BpfDatapathOptions, checkTuning, type DatapathTuning, type ResolvedOptions, resolveOptions } from './options.js';
import { ensureBpffs, removePins } from './pins.js';
import { removeStateFile } from './state-file.js';
import { type Attachment, TcAttacher } from './tc-attach.js';
import { steeringConfig, tuningPatch, writeConfig } from './tuning.js';

/**
 * The BPF datapath over @veil/bpf's `veil.bpf.o`, with its maps pinned under `pinDir` so a
 * restarted agent reuses the same ipcache / config / counters and replaces the tc filters in
 * place (same priority + handle): no detach, no traffic gap.
 *
 * A facade over the parts that do the work:
 * - loading and pinning ({@link loadPinned}, `pins.ts`);
 * - the ipcache ({@link IpcacheTable}): node entries (see {@link IpcacheEntry}) become per-prefix
 *   map entries (pod CIDRs + node IPs as IS_NODE host prefixes); a JSON state file maps prefixes
 *   back to node names and is verified against the map at start (`entries()` only reports what
 *   the map really holds);
 * - tc attach and cleanup ({@link TcAttacher}): veths matching `podVethPatterns` get
 *   `veil_from_pod` as they appear;
 * - endpoint discovery ({@link EndpointDiscovery}): link events drive the attachments, and every
 *   `<pod-ip> dev <veth>` host route becomes a LOCAL /32 (/128) with the veth's ifindex, so
 *   from-tunnel can deliver straight into the pod;
 * - tuning (`tuning.ts`): strict mode, node encryption, MTU, exemptions, steering.
 *
 * `close()` releases handles only: pins, filters and map contents stay.
 */
export class BpfDatapath implements Datapath {
  private readonly log: ResolvedOptions['logger'];
  private readonly ipcache: IpcacheTable;
  private readonly tc: TcAttacher;
  private readonly endpoints: EndpointDiscovery;
  private attachCalled = false;
  private closed = false;
  /** Errors from event-driven work (link/route events), newest last, bounded. */
  readonly backgroundErrors: Error[] = [];

  private constructor(
    private readonly opts: ResolvedOptions,
    /** The loaded object with typed map handles (maps are the pinned ones). */
    readonly bpf: BpfObjectDatapath,
  ) {
    this.log = opts.logger;
    // The recorded entries are verified against the values this setting implies.
    this.ipcache = new IpcacheTable(bpf, opts, opts.nodeEncryption ?? bpf.getConfig().nodeEncryption);
    const recordError = (what: string, e: unknown): void => this.recordError(what, e);
    this.tc = new TcAttacher(bpf, opts, { onPodGone: (ifindex) => this.ipcache.dropLocalPodsOn(ifindex), recordError });
    this.endpoints = new EndpointDiscovery(opts, this.tc, this.ipcache, { isClosed: () => this.closed, recordError });
  }

  /**
   * Loads the programs, reusing (or creating) the maps pinned under `pinDir`, adopts the ipcache
   * state recorded there, and applies the tuning options. Synchronous: every step is a syscall.
   * Throws {@link DatapathArgumentError}, {@link BpffsError} or {@link DatapathLoadError}.
   */
  static open(options: BpfDatapathOptions = {}): BpfDatapath {
    const opts = resolveOptions(options);
    for (const [i, c] of (opts.localPodCIDRs ?? []).entries()) canonicalPrefix(c, `options.localPodCIDRs[${i}]`);
    for (const [i, c] of (opts.strict?.cidrs ?? []).entries()) canonicalPrefix(c, `options.strict.cidrs[${i}]`);
    ensureBpffs(opts.pinDir, { mount: opts.mountBpffs, bpffsRoot: opts.bpffsRoot });
    const bpf = loadPinned(opts);
    let dp: BpfDatapath;
    try {
      dp = new BpfDatapath(opts, bpf);
      dp.applyTuning(opts);
      if (opts.localPodCIDRs) dp.ipcache.setLocalPodCIDRs(opts.localPodCIDRs);
    } catch (e) {
      bpf.close();
      throw e;
    }
    return dp;
  }

  /**
   * Removes the pins under `pinDir` and the state file (what `veil lab down` and tests use).
   * Attached filters keep their programs (and those the maps) alive until the interfaces or
   * filters go away. Returns the pins removed.
   */
  static purge(opts: { pinDir: string; stateFile?: string }): string[] {
    if (opts === null || typeof opts !== 'object' || typeof opts.pinDir !== 'string' || opts.pinDir.length === 0) {
      throw new DatapathArgumentError('pinDir', 'needs a directory path');
    }
    const removed = removePins(opts.pinDir);
    if (opts.stateFile !== undefined) removeStateFile(opts.stateFile);
    return removed;
  }

  /** The pin directory in use. */
  get pinDir(): string {
    return this.opts.pinDir;
  }

  /** Recorded node entries the pinned map did not back exactly at start (left for re-upsert / sync). */
  get rejectedEntries(): readonly string[] {
    return this.ipcache.rejectedAtStart;
  }

  private live(op: string): void {
    if (this.closed) throw new DatapathClosedError(op);
  }

  // ---- ipcache (peers) ---------------------------------------------------------------------

  async entries(): Promise<ReadonlyMap<string, IpcacheEntry>> {
    this.live('entries');
    return this.ipcache.entries();
  }

  /** Writes (only the changed) prefixes of one node and deletes the prefixes it no longer owns. */
  async upsert(entry: IpcacheEntry): Promise<void> {
    this.live('upsert');
    this.ipcache.upsert(entry);
  }

  async remove(nodeName: string): Promise<void> {
    this.live('remove');
    this.ipcache.remove(nodeName);
  }

  /**
   * Makes the remote part of the ipcache exactly `entries`: reads the map back, writes only
   * changed prefixes (batched), deletes every non-LOCAL prefix no entry owns (also orphans the
   * state file never recorded). LOCAL entries are not touched.
   */
  async syncPeers(entries: readonly IpcacheEntry[]): Promise<DatapathSyncResult> {
    this.live('syncPeers');
    return this.ipcache.syncPeers(entries);
  }

  /** The ipcache as the programs see it (read from the pinned map), with owning node names. */
  ipcacheDump(): IpcachePrefixEntry[] {
    this.live('ipcacheDump');
    return this.ipcache.dump();
  }

  // ---- local entries -------------------------------------------------------------------------

  /** Snapshot of the LOCAL pod host entries: prefix → host-side veth ifindex. */
  localEndpoints(): ReadonlyMap<string, number> {
    return this.ipcache.localEndpoints();
  }

  /** Replaces this node's pod CIDRs (LOCAL entries without ifindex) by diff. */
  async setLocalPodCIDRs(cidrs: readonly string[]): Promise<void> {
    this.live('setLocalPodCIDRs');
    this.ipcache.setLocalPodCIDRs(cidrs);
  }

  // ---- config ----------------------------------------------------------------------------

  /** The config the programs currently see (read back from the pinned map). */
  get config(): DatapathConfig {
    this.live('config');
    return this.bpf.getConfig();
  }

  async setSteering(steering: Steering): Promise<void> {
    this.live('setSteering');
    this.bpf.setConfig(steeringConfig(steering));
  }

  /** Changes runtime knobs (strict mode + strict CIDRs, node encryption, MTU, exemptions) without reload. */
  async configure(tuning: DatapathTuning): Promise<void> {
    this.live('configure');
    checkTuning(tuning, 'tuning');
    for (const [i, c] of (tuning.strict?.cidrs ?? []).entries()) canonicalPrefix(c, `tuning.strict.cidrs[${i}]`);
    const before = this.ipcache.nodeEncryption;
    this.applyTuning(tuning);
    // Node-IP entries change meaning with node encryption: rewrite them (upsert writes only diffs).
    if (this.ipcache.nodeEncryption !== before) for (const e of this.ipcache.entries().values()) await this.upsert(e);
  }

  private applyTuning(t: DatapathTuning): void {
    const patch = tuningPatch(this.bpf, t);
    if (t.nodeEncryption !== undefined) this.ipcache.nodeEncryption = t.nodeEncryption;
    writeConfig(this.bpf, patch);
  }

  /** Packets per reason (`redirect-wireguard`, `pass-local`, …), summed over CPUs. */
  async counters(): Promise<VerdictCounters> {
    this.live('counters');
    const out: Record<string, bigint> = {};
    for (const [name, c] of Object.entries(this.bpf.readCounters())) out[name] = c.packets;
    return out;
  }

  /** Packets and bytes per reason, summed over CPUs. */
  counterDetails(): DatapathCounterDetails {
    this.live('counterDetails');
    const r = this.bpf.readCounters();
    const out: Record<string, { packets: bigint; bytes: bigint }> = {};
    for (const name of REASONS) out[name] = { ...r[name] };
    return out;
  }

  // ---- attach ----------------------------------------------------------------------------

  get attached(): boolean {
    if (this.closed || !this.attachCalled) return false;
    return this.tc.allWantedAttached();
  }

  /** Current attachments. */
  attachments(): Attachment[] {
    return this.tc.attachments();
  }

  /**
   * Attaches to `targets` (replacing filters at our priority/handle in place) and to every
   * existing interface matching `podVethPatterns`; then (option `watch`) follows link and
   * route events. `device` targets need a role from `options.deviceRoles`, or pass
   * `{ kind: 'tunnel' | 'underlay' }`. Targets that do not exist yet are attached when they
   * appear; the error names them all.
   */
  async attach(targets: readonly AttachTarget[]): Promise<void> {
    this.live('attach');
    if (!Array.isArray(targets)) throw new DatapathArgumentError('targets', 'needs an array');
    const roles = this.tc.want(targets);
    this.attachCalled = true;
    if (this.opts.watch) await this.endpoints.startWatching();
    const links = await this.endpoints.listLinks();
    const failures: DatapathAttachError[] = [];
    this.tc.reconcileLinks(links, failures);
    await this.endpoints.reconcileRoutes();
    failures.push(...this.tc.missing(roles, links));
    if (failures.length > 0) {
      const first = failures[0] as DatapathAttachError;
      throw new DatapathAttachError(
        first.ifname,
        first.program,
        first.direction,
        first.code,
        `attach failed for ${failures.length} interface(s): ${failures.map((f) => f.message).join('; ')}`,
        { cause: first },
      );
    }
  }

  /** Detaches our filters from `ifnames` and stops managing them (until recreated). */
  async detach(ifnames: readonly string[]): Promise<void> {
    this.live('detach');
    this.tc.detach(ifnames);
  }

  private recordError(what: string, e: unknown): void {
    if (this.closed) return;
    const err = e instanceof Error ? e : new Error(String(e));
    this.backgroundErrors.push(err);
    if (this.backgroundErrors.length > 32) this.backgroundErrors.shift();
    this.log?.error({ err: err.message, what }, 'datapath background operation failed');
  }

  /** Releases handles and watchers only; pins, filters and map contents stay for the next agent. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.ipcache.flush();
    this.closed = true;
    this.endpoints.close();
    this.bpf.close();
  }
}
