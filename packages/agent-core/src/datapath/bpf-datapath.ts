import { join } from 'node:path';
import {
  BpfObjectMissingError,
  type DatapathConfig,
  Datapath as BpfObjectDatapath,
  formatCidr,
  IPSEC_MARK_ENCRYPT,
  IPSEC_MARK_MASK,
  type IpcacheValue,
  type IpcacheValueInput,
  objectPath as defaultObjectPath,
  PROGRAMS,
  REASONS,
} from '@veil/bpf';
import {
  decodeRoute,
  type Link,
  type LinkEvent,
  type LinkWatcher,
  listLinks,
  listRoutes,
  NetlinkSocket,
  type NlMsg,
  type Route,
  RT_TABLE_MAIN,
  RTM_DELROUTE,
  RTM_NEWROUTE,
  RTN_UNICAST,
  RTNLGRP_IPV4_ROUTE,
  RTNLGRP_IPV6_ROUTE,
  watchLinks,
} from '@veil/netlink';
import { attachTc, BpfError, listTc, ObjectSpec, type Program, type TcLink, VerifierError } from 'libbpf-ts';
import { type AttachTarget, type Datapath, type DatapathSyncResult, type IpcacheEntry, IpcacheFlags, type IpcachePrefixEntry, type Steering, type VerdictCounters } from '../types/index.js';
import {
  codeOf,
  DatapathArgumentError,
  DatapathAttachError,
  DatapathClosedError,
  DatapathLoadError,
  DatapathMapError,
  messageOf,
} from './errors.js';
import { canonicalPrefix, entryPrefixes, namePatternMatcher, normalizeEntry, planSync, sameValue, verifyAdopted } from './model.js';
import { type AttachRole, type BpfDatapathOptions, checkTuning, type DatapathTuning, type ResolvedOptions, resolveOptions } from './options.js';
import { ensureBpffs, PINNED_MAPS, removePins } from './pins.js';
import { readStateFile, removeStateFile, StateFileWriter } from './state-file.js';

/** An attach target: the core's kinds, or an explicit role (`tunnel` / `underlay`). */
export type BpfAttachTarget = AttachTarget;

/** One program attached to one interface. */
export interface Attachment {
  readonly ifname: string;
  readonly ifindex: number;
  readonly role: AttachRole;
  readonly program: string;
  readonly direction: 'ingress' | 'egress';
  readonly progId: number;
}

/** Counter totals by reason, packets and bytes (summed over CPUs). */
export type CounterDetails = Record<string, { packets: bigint; bytes: bigint }>;

const ROLE_PROGRAM: Record<AttachRole, { program: keyof typeof PROGRAMS; direction: 'ingress' | 'egress' }> = {
  pod: { program: 'fromPod', direction: 'ingress' },
  tunnel: { program: 'fromTunnel', direction: 'ingress' },
  underlay: { program: 'toWire', direction: 'egress' },
};

// libbpf names filters "<prog>:[<id>]" with the kernel's 15-character program name.
const VEIL_FILTER_NAME = /^veil_(from_pod|from_tunne|to_wire)/;

interface Attached extends Attachment {
  readonly link: TcLink;
}

/**
 * The BPF datapath over @veil/bpf's `veil.bpf.o`, with its maps pinned under `pinDir` so a
 * restarted agent reuses the same ipcache / config / counters and replaces the tc filters in
 * place (same priority + handle): no detach, no traffic gap.
 *
 * - ipcache: node entries (see {@link IpcacheEntry}) become per-prefix map entries (pod CIDRs +
 *   node IPs as IS_NODE host prefixes); a JSON state file maps prefixes back to node names and is
 *   verified against the map at start (`entries()` only reports what the map really holds).
 * - local pods: veths matching `podVethPatterns` get `veil_from_pod` as they appear (link
 *   events), and every `<pod-ip> dev <veth>` host route becomes a LOCAL /32 (/128) with the
 *   veth's ifindex, so from-tunnel can deliver straight into the pod.
 * - `close()` releases handles only: pins, filters and map contents stay.
 */
export class BpfDatapath implements Datapath {
  private readonly log: ResolvedOptions['logger'];
  private readonly isPod: (name: string) => boolean;
  /** Node index: node name → normalized entry (adopted or programmed). */
  private readonly nodes = new Map<string, IpcacheEntry>();
  /** Prefix → owning node name (the index, inverted). */
  private readonly owner = new Map<string, string>();
  /** Local pod host prefixes → veth ifindex (LOCAL entries with an ifindex). */
  private readonly localPods = new Map<string, number>();
  /** Local pod CIDRs (LOCAL entries without an ifindex). */
  private localCidrs = new Set<string>();
  /** Explicit targets by name (pod veths, tunnel, underlay). */
  private readonly wanted = new Map<string, AttachRole>();
  private readonly byIfindex = new Map<number, Attached>();
  /** ifindexes detach() was asked for: not re-attached until the device is recreated. */
  private readonly suppressed = new Set<number>();
  private readonly stateWriter: StateFileWriter;
  private linkWatcher: LinkWatcher | undefined;
  private watching: Promise<void> | undefined;
  private routeSock: NetlinkSocket | undefined;
  private querySock: NetlinkSocket | undefined;
  private attachCalled = false;
  private closed = false;
  /** Node encryption on: node-IP entries are steered like pod CIDRs (see entryPrefixes). */
  private encryptNodeIPs: boolean;
  private readonly rejectedAtStart: string[];
  /** Errors from event-driven work (link/route events), newest last, bounded. */
  readonly backgroundErrors: Error[] = [];

  private constructor(
    private readonly opts: ResolvedOptions,
    /** The loaded object with typed map handles (maps are the pinned ones). */
    readonly bpf: BpfObjectDatapath,
  ) {
    this.log = opts.logger;
    this.isPod = namePatternMatcher(opts.podVethPatterns);
    this.stateWriter = new StateFileWriter(opts.stateFile, opts.pinDir, () => this.nodes.values(), opts.stateWriteDelayMs, (e) =>
      this.log?.warn({ err: e.message, file: opts.stateFile }, 'datapath state file write failed'),
    );
    // Before adopt(): the recorded entries are verified against the values this setting implies.
    this.encryptNodeIPs = opts.nodeEncryption ?? bpf.getConfig().nodeEncryption;
    this.rejectedAtStart = this.adopt();
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
      if (opts.localPodCIDRs) dp.setLocalPodCIDRsSync(opts.localPodCIDRs);
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
    return this.rejectedAtStart;
  }

  // ---- adoption --------------------------------------------------------------------------

  private readAll(): Map<string, IpcacheValue> {
    const out = new Map<string, IpcacheValue>();
    try {
      for (const [k, v] of this.bpf.ipcache.entries()) out.set(formatCidr(k), v);
    } catch (e) {
      throw new DatapathMapError('ipcache', 'read', codeOf(e), `reading the ipcache failed: ${messageOf(e)}`, { cause: e });
    }
    return out;
  }

  private adopt(): string[] {
    const all = this.readAll();
    for (const [p, v] of all) {
      if (!v.local) continue;
      if (v.ifindex !== 0) this.localPods.set(p, v.ifindex);
      else this.localCidrs.add(p);
    }
    const recorded = readStateFile(this.opts.stateFile, this.opts.pinDir);
    if (recorded.problem) this.log?.warn({ problem: recorded.problem }, 'datapath state file ignored');
    const { adopted, rejected } = verifyAdopted(
      recorded.nodes,
      (p) => {
        const v = all.get(p);
        return v && !v.local ? v : undefined;
      },
      this.encryptNodeIPs,
    );
    for (const e of adopted) this.index(e);
    if (rejected.length > 0) this.log?.info({ rejected: rejected.length }, 'recorded ipcache entries not backed by the pinned map (will be reprogrammed)');
    return rejected;
  }

  /** The prefixes a node owns, with node IPs steered only when node encryption is on. */
  private prefixesOf(e: IpcacheEntry): Map<string, IpcacheValueInput> {
    return entryPrefixes(e, this.encryptNodeIPs);
  }

  private index(e: IpcacheEntry): void {
    const prev = this.nodes.get(e.nodeName);
    if (prev) for (const p of this.prefixesOf(prev).keys()) if (this.owner.get(p) === e.nodeName) this.owner.delete(p);
    this.nodes.set(e.nodeName, e);
    for (const p of this.prefixesOf(e).keys()) this.owner.set(p, e.nodeName);
  }

  private unindex(name: string): void {
    const prev = this.nodes.get(name);
    if (!prev) return;
    for (const p of this.prefixesOf(prev).keys()) if (this.owner.get(p) === name) this.owner.delete(p);
    this.nodes.delete(name);
  }

  private live(op: string): void {
    if (this.closed) throw new DatapathClosedError(op);
  }

  // ---- ipcache (peers) ---------------------------------------------------------------------

  async entries(): Promise<ReadonlyMap<string, IpcacheEntry>> {
    this.live('entries');
    return new Map(this.nodes);
  }

  /** Writes (only the changed) prefixes of one node and deletes the prefixes it no longer owns. */
  async upsert(entry: IpcacheEntry): Promise<void> {
    this.live('upsert');
    const e = normalizeEntry(entry);
    const want = this.prefixesOf(e);
    const prev = this.nodes.get(e.nodeName);
    const updates: [string, IpcacheValueInput][] = [];
    for (const [p, v] of want) {
      if (this.localPods.has(p) || this.localCidrs.has(p)) continue;
      if (!sameValue(this.lookup(p), v)) updates.push([p, v]);
    }
    const stale = prev ? [...this.prefixesOf(prev).keys()].filter((p) => !want.has(p) && this.owner.get(p) === e.nodeName) : [];
    this.writeMap(updates, `upsert ${e.nodeName}`);
    this.deleteMap(stale, `upsert ${e.nodeName}`);
    for (const p of want.keys()) {
      const o = this.owner.get(p);
      if (o !== undefined && o !== e.nodeName) this.noteTakeover(p, o, e.nodeName);
    }
    this.index(e);
    this.stateWriter.markDirty();
  }

  private noteTakeover(prefix: string, from: string, to: string): void {
    // Last writer wins, like the map; the previous owner keeps its entry (the reconciler refuses
    // overlapping CIDRs, so this is a transient clash) but no longer deletes the prefix on removal.
    this.log?.warn({ prefix, from, to }, 'ipcache prefix taken over');
  }

  async remove(nodeName: string): Promise<void> {
    this.live('remove');
    if (typeof nodeName !== 'string' || nodeName.length === 0) throw new DatapathArgumentError('nodeName', 'needs a non-empty string');
    const prev = this.nodes.get(nodeName);
    if (!prev) return;
    const mine = [...this.prefixesOf(prev).keys()].filter((p) => this.owner.get(p) === nodeName && !this.localPods.has(p) && !this.localCidrs.has(p));
    this.deleteMap(mine, `remove ${nodeName}`);
    this.unindex(nodeName);
    this.stateWriter.markDirty();
  }

  /**
   * Makes the remote part of the ipcache exactly `entries`: reads the map back, writes only
   * changed prefixes (batched), deletes every non-LOCAL prefix no entry owns (also orphans the
   * state file never recorded). LOCAL entries are not touched.
   */
  async syncPeers(entries: readonly IpcacheEntry[]): Promise<DatapathSyncResult> {
    this.live('syncPeers');
    if (!Array.isArray(entries)) throw new DatapathArgumentError('entries', 'needs an array');
    const desired = entries.map((e, i) => normalizeEntry(e, `entries[${i}]`));
    const seen = new Set<string>();
    for (const [i, e] of desired.entries()) {
      if (seen.has(e.nodeName)) throw new DatapathArgumentError(`entries[${i}].nodeName`, `'${e.nodeName}' appears twice`);
      seen.add(e.nodeName);
    }
    const current = new Map<string, IpcacheValue>();
    const local = new Set<string>();
    for (const [p, v] of this.readAll()) {
      if (v.local) local.add(p);
      else current.set(p, v);
    }
    const plan = planSync(current, this.nodes, desired, local, this.encryptNodeIPs);
    this.writeMap(plan.updates, 'syncPeers');
    this.deleteMap(plan.deletes, 'syncPeers');
    this.nodes.clear();
    this.owner.clear();
    for (const e of plan.index.values()) this.index(e);
    this.stateWriter.markDirty();
    this.stateWriter.flush();
    return { added: plan.added, updated: plan.updated, removed: plan.removed };
  }

  private lookup(prefix: string): IpcacheValue | undefined {
    try {
      return this.bpf.ipcache.lookup(prefix);
    } catch (e) {
      throw new DatapathMapError('ipcache', 'lookup', codeOf(e), `ipcache lookup ${prefix} failed: ${messageOf(e)}`, { cause: e });
    }
  }

  private writeMap(updates: [string, IpcacheValueInput][], what: string): void {
    if (updates.length === 0) return;
    try {
      this.bpf.ipcache.updateMany(updates);
    } catch (e) {
      throw new DatapathMapError('ipcache', 'update', codeOf(e), `${what}: writing ${updates.length} ipcache entries failed: ${messageOf(e)}`, { cause: e });
    }
  }

  private deleteMap(prefixes: string[], what: string): void {
    if (prefixes.length === 0) return;
    const m = this.bpf.ipcache;
    try {
      if (prefixes.length > 1 && m.supportsBatch('delete')) {
        try {
          m.deleteBatch(prefixes);
          return;
        } catch (e) {
          // A key vanished meanwhile (ENOENT stops the batch): fall back to one by one.
          if (!(e instanceof BpfError) || e.code !== 'ENOENT') throw e;
        }
      }
      for (const p of prefixes) m.delete(p);
    } catch (e) {
      throw new DatapathMapError('ipcache', 'delete', codeOf(e), `${what}: deleting ${prefixes.length} ipcache entries failed: ${messageOf(e)}`, { cause: e });
    }
  }

  // ---- local entries -------------------------------------------------------------------------

  /** Snapshot of the LOCAL pod host entries: prefix → host-side veth ifindex. */
  /** The ipcache as the programs see it (read from the pinned map), with owning node names. */
  ipcacheDump(): IpcachePrefixEntry[] {
    this.live('ipcacheDump');
    const rows: IpcachePrefixEntry[] = [];
    for (const [prefix, v] of this.readAll()) {
      const flags =
        (v.local ? IpcacheFlags.LOCAL : 0) |
        (v.remote ? IpcacheFlags.REMOTE : 0) |
        (v.encryptReady ? IpcacheFlags.ENCRYPT_READY : 0) |
        (v.isNode ? IpcacheFlags.IS_NODE : 0);
      const owner = this.owner.get(prefix);
      rows.push({
        prefix,
        ...(owner !== undefined && !v.local ? { nodeName: owner } : {}),
        ...(v.nodeIp !== undefined ? { nodeIP: v.nodeIp } : {}),
        flags,
        keyIndex: v.keyIndex,
        nodeId: v.nodeId,
        ifindex: v.ifindex,
      });
    }
    return rows;
  }

  localEndpoints(): ReadonlyMap<string, number> {
    return new Map(this.localPods);
  }

  /** Replaces this node's pod CIDRs (LOCAL entries without ifindex) by diff. */
  async setLocalPodCIDRs(cidrs: readonly string[]): Promise<void> {
    this.live('setLocalPodCIDRs');
    this.setLocalPodCIDRsSync(cidrs);
  }

  private setLocalPodCIDRsSync(cidrs: readonly string[]): void {
    if (!Array.isArray(cidrs)) throw new DatapathArgumentError('cidrs', 'needs an array of CIDRs');
    const want = new Set(cidrs.map((c, i) => canonicalPrefix(c, `cidrs[${i}]`)));
    const del = [...this.localCidrs].filter((p) => !want.has(p));
    const add: [string, IpcacheValueInput][] = [...want].filter((p) => !sameValue(this.lookup(p), { local: true })).map((p) => [p, { local: true }]);
    this.writeMap(add, 'setLocalPodCIDRs');
    this.deleteMap(del, 'setLocalPodCIDRs');
    this.localCidrs = want;
  }

  private setLocalPod(prefix: string, ifindex: number): void {
    if (this.localPods.get(prefix) === ifindex && sameValue(this.lookup(prefix), { local: true, ifindex })) return;
    this.writeMap([[prefix, { local: true, ifindex }]], `local pod ${prefix}`);
    this.localPods.set(prefix, ifindex);
    // A remote claim on the same prefix loses: the pod is here.
    const o = this.owner.get(prefix);
    if (o !== undefined) this.noteTakeover(prefix, o, '(local pod)');
    this.log?.debug({ prefix, ifindex }, 'local pod endpoint');
  }

  private dropLocalPod(prefix: string, ifindex?: number): void {
    const cur = this.localPods.get(prefix);
    if (cur === undefined || (ifindex !== undefined && cur !== ifindex)) return;
    this.deleteMap([prefix], `local pod ${prefix}`);
    this.localPods.delete(prefix);
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
    const before = this.encryptNodeIPs;
    this.applyTuning(tuning);
    // Node-IP entries change meaning with node encryption: rewrite them (upsert writes only diffs).
    if (this.encryptNodeIPs !== before) for (const e of [...this.nodes.values()]) await this.upsert(e);
  }

  private applyTuning(t: DatapathTuning): void {
    const patch: Partial<DatapathConfig> = {};
    if (t.strict) {
      patch.strict = t.strict.enabled;
      patch.allowRemoteNodeIdentities = t.strict.allowRemoteNodeIdentities;
      this.syncStrictCidrs(t.strict.cidrs);
    }
    if (t.nodeEncryption !== undefined) {
      patch.nodeEncryption = t.nodeEncryption;
      this.encryptNodeIPs = t.nodeEncryption;
    }
    if (t.mtu !== undefined) patch.mtu = t.mtu;
    if (t.wgPort !== undefined) patch.wgPort = t.wgPort;
    if (t.encryptMark !== undefined) patch.encryptMark = t.encryptMark;
    if (t.encryptMarkMask !== undefined) patch.encryptMarkMask = t.encryptMarkMask;
    if (Object.keys(patch).length === 0) return;
    try {
      this.bpf.setConfig(patch);
    } catch (e) {
      throw new DatapathMapError('config', 'update', codeOf(e), `writing the datapath config failed: ${messageOf(e)}`, { cause: e });
    }
  }

  private syncStrictCidrs(cidrs: readonly string[]): void {
    const want = new Set(cidrs.map((c, i) => canonicalPrefix(c, `strict.cidrs[${i}]`)));
    const m = this.bpf.strictCidrs;
    try {
      const have = new Set([...m.keys()].map(formatCidr));
      for (const p of have) if (!want.has(p)) m.delete(p);
      const add = [...want].filter((p) => !have.has(p)).map((p): [string, number] => [p, 1]);
      if (add.length > 0) m.updateMany(add);
    } catch (e) {
      throw new DatapathMapError('strict_cidrs', 'update', codeOf(e), `syncing strict_cidrs failed: ${messageOf(e)}`, { cause: e });
    }
  }

  /** Packets per reason (`redirect-wireguard`, `pass-local`, …), summed over CPUs. */
  async counters(): Promise<VerdictCounters> {
    this.live('counters');
    const out: Record<string, bigint> = {};
    for (const [name, c] of Object.entries(this.bpf.readCounters())) out[name] = c.packets;
    return out;
  }

  /** Packets and bytes per reason, summed over CPUs. */
  counterDetails(): CounterDetails {
    this.live('counterDetails');
    const r = this.bpf.readCounters();
    const out: CounterDetails = {};
    for (const name of REASONS) out[name] = { ...r[name] };
    return out;
  }

  // ---- attach ----------------------------------------------------------------------------

  get attached(): boolean {
    if (this.closed || !this.attachCalled) return false;
    const names = new Set([...this.byIfindex.values()].map((a) => a.ifname));
    for (const n of this.wanted.keys()) if (!names.has(n)) return false;
    return true;
  }

  /** Current attachments. */
  attachments(): Attachment[] {
    return [...this.byIfindex.values()].map(({ link: _link, ...a }) => a);
  }

  /**
   * Attaches to `targets` (replacing filters at our priority/handle in place) and to every
   * existing interface matching `podVethPatterns`; then (option `watch`) follows link and
   * route events. `device` targets need a role from `options.deviceRoles`, or pass
   * `{ kind: 'tunnel' | 'underlay' }`. Targets that do not exist yet are attached when they
   * appear; the error names them all.
   */
  async attach(targets: readonly BpfAttachTarget[]): Promise<void> {
    this.live('attach');
    if (!Array.isArray(targets)) throw new DatapathArgumentError('targets', 'needs an array');
    const roles: [string, AttachRole][] = targets.map((t, i) => [checkIfname(t?.ifname, `targets[${i}].ifname`), this.roleOf(t, i)]);
    for (const [name, role] of roles) this.wanted.set(name, role);
    this.attachCalled = true;
    if (this.opts.watch) await this.startWatching();
    const links = await this.listLinks();
    const failures: DatapathAttachError[] = [];
    this.reconcileLinks(links, failures);
    await this.reconcileRoutes();
    const present = new Set(links.map((l) => l.name));
    for (const [name, role] of roles) {
      if (!present.has(name)) {
        const { program, direction } = ROLE_PROGRAM[role];
        failures.push(new DatapathAttachError(name, PROGRAMS[program], direction, 'ENODEV', `${name}: no such interface${this.where()} (attached when it appears)`));
      }
    }
    if (failures.length > 0) {
      const first = failures[0] as DatapathAttachError;
      throw new DatapathAttachError(first.ifname, first.program, first.direction, first.code,
        `attach failed for ${failures.length} interface(s): ${failures.map((f) => f.message).join('; ')}`, { cause: first });
    }
  }

  /** Detaches our filters from `ifnames` and stops managing them (until recreated). */
  async detach(ifnames: readonly string[]): Promise<void> {
    this.live('detach');
    if (!Array.isArray(ifnames)) throw new DatapathArgumentError('ifnames', 'needs an array');
    const names = new Set(ifnames.map((n, i) => checkIfname(n, `ifnames[${i}]`)));
    for (const n of names) this.wanted.delete(n);
    for (const [idx, a] of [...this.byIfindex]) {
      if (!names.has(a.ifname)) continue;
      try {
        a.link.detach();
      } catch (e) {
        throw new DatapathAttachError(a.ifname, a.program, a.direction, codeOf(e), `detaching ${a.program} from ${a.ifname}${this.where()} failed: ${messageOf(e)}`, { cause: e });
      }
      this.suppressed.add(idx);
      this.forget(idx);
    }
  }

  private where(): string {
    return this.opts.netns ? ` in ${this.opts.netns}` : '';
  }

  private roleOf(t: BpfAttachTarget, i: number): AttachRole {
    switch (t?.kind) {
      case 'pod-veth':
        return 'pod';
      case 'tunnel':
      case 'underlay':
        return t.kind;
      case 'device': {
        const r = this.opts.deviceRoles[t.ifname];
        if (!r) throw new DatapathArgumentError(`targets[${i}]`, `device '${t.ifname}' has no role: set options.deviceRoles['${t.ifname}'] to 'tunnel' or 'underlay', or pass kind 'tunnel' / 'underlay'`);
        return r;
      }
      default:
        throw new DatapathArgumentError(`targets[${i}].kind`, `needs 'pod-veth', 'device', 'tunnel' or 'underlay', got ${String((t as { kind?: unknown })?.kind)}`);
    }
  }

  private roleFor(name: string): AttachRole | undefined {
    return this.wanted.get(name) ?? (this.isPod(name) ? 'pod' : undefined);
  }

  private attachLink(link: Pick<Link, 'index' | 'name'>, role: AttachRole): void {
    const { program: key, direction } = ROLE_PROGRAM[role];
    const program: Program = this.bpf[key];
    let tc: TcLink;
    try {
      tc = attachTc({
        ifindex: link.index,
        direction,
        program,
        priority: this.opts.tcPriority,
        handle: this.opts.tcHandle,
        replace: true,
        ...(this.opts.netns ? { netns: this.opts.netns } : {}),
      });
    } catch (e) {
      throw new DatapathAttachError(link.name, program.name, direction, codeOf(e), `attaching ${program.name} (tc ${direction}) to ${link.name}${this.where()} failed: ${messageOf(e)}`, { cause: e });
    }
    this.byIfindex.set(link.index, { ifname: link.name, ifindex: link.index, role, program: program.name, direction, progId: tc.progId, link: tc });
    this.log?.info({ ifname: link.name, ifindex: link.index, program: program.name, direction }, 'datapath attached');
    this.removeStaleFilters(link, program, direction);
  }

  /**
   * Removes Veil filters an older agent left at another (priority, handle) on this hook, so only
   * one copy runs. libbpf-ts deletes filters only through a TcLink, so each one is first replaced
   * by our program (harmless: the same decision) and then detached.
   */
  private removeStaleFilters(link: Pick<Link, 'index' | 'name'>, program: Program, direction: 'ingress' | 'egress'): void {
    const netns = this.opts.netns ? { netns: this.opts.netns } : {};
    try {
      for (const f of listTc({ ifindex: link.index, direction, ...netns })) {
        if (f.kind !== 'bpf' || !VEIL_FILTER_NAME.test(f.bpf?.name ?? '')) continue;
        if (f.priority === this.opts.tcPriority && f.handle === this.opts.tcHandle) continue;
        attachTc({ ifindex: link.index, direction, program, priority: f.priority, handle: f.handle, replace: true, ...netns }).detach();
        this.log?.info({ ifname: link.name, direction, priority: f.priority, handle: f.handle }, 'removed a stale Veil tc filter');
      }
    } catch (e) {
      this.recordError(`stale filters on ${link.name}`, e);
    }
  }

  /** Forgets an attachment (device gone / detached) and the local pod entries behind it. */
  private forget(ifindex: number): void {
    const a = this.byIfindex.get(ifindex);
    this.byIfindex.delete(ifindex);
    if (a?.role === 'pod') for (const [p, idx] of [...this.localPods]) if (idx === ifindex) this.dropLocalPod(p, idx);
  }

  /** Brings attachments in line with a full link list. */
  private reconcileLinks(links: readonly Link[], failures: DatapathAttachError[] = []): void {
    const present = new Map(links.map((l) => [l.index, l]));
    for (const idx of [...this.byIfindex.keys()]) if (!present.has(idx)) this.forget(idx);
    for (const idx of [...this.suppressed]) if (!present.has(idx)) this.suppressed.delete(idx);
    for (const l of links) {
      try {
        this.onLinkUp(l);
      } catch (e) {
        if (e instanceof DatapathAttachError) failures.push(e);
        else throw e;
      }
    }
  }

  private onLinkUp(l: Pick<Link, 'index' | 'name'>): boolean {
    const cur = this.byIfindex.get(l.index);
    const role = this.roleFor(l.name);
    if (cur && cur.ifname === l.name && cur.role === role) return false;
    if (cur) {
      // Renamed (or its role changed): drop what we had, maybe attach anew below.
      if (!role) {
        try {
          cur.link.detach();
        } catch {
          /* the filter may be gone with a namespace move */
        }
      }
      this.forget(l.index);
    }
    if (!role || this.suppressed.has(l.index)) return false;
    this.attachLink(l, role);
    return true;
  }

  // ---- link / route events -----------------------------------------------------------------

  private sock(): NetlinkSocket {
    if (!this.querySock || !this.querySock.isOpen) {
      this.querySock = NetlinkSocket.open('ROUTE', this.opts.netns ? { netns: this.opts.netns } : {});
    }
    return this.querySock;
  }

  private async listLinks(): Promise<Link[]> {
    try {
      return await listLinks(this.sock());
    } catch (e) {
      throw new DatapathAttachError('(all)', '-', 'ingress', codeOf(e), `listing interfaces${this.where()} failed: ${messageOf(e)}`, { cause: e });
    }
  }

  private startWatching(): Promise<void> {
    // Concurrent attach() calls share one set of watchers.
    this.watching ??= this.openWatchers().catch((e: unknown) => {
      this.watching = undefined;
      throw new DatapathAttachError('(watch)', '-', 'ingress', codeOf(e), `watching link/route events${this.where()} failed: ${messageOf(e)}`, { cause: e });
    });
    return this.watching;
  }

  private async openWatchers(): Promise<void> {
    const netnsOpt = this.opts.netns ? { netns: this.opts.netns } : {};
    this.linkWatcher = await watchLinks(netnsOpt);
    if (this.closed) {
      this.linkWatcher.close();
      return;
    }
    this.linkWatcher.on('link', (ev) => this.onLinkEvent(ev));
    this.linkWatcher.on('resync', (links) => this.background('link resync', async () => {
      this.reconcileLinks(links);
      await this.reconcileRoutes();
    }));
    this.linkWatcher.on('error', (e) => this.recordError('link watcher', e));
    this.routeSock = NetlinkSocket.open('ROUTE', { ...netnsOpt, groups: [RTNLGRP_IPV4_ROUTE, RTNLGRP_IPV6_ROUTE] });
    this.routeSock.on('message', (msg: NlMsg) => this.onRouteMessage(msg));
    this.routeSock.on('overrun', () => this.background('route resync', () => this.reconcileRoutes()));
    this.routeSock.on('error', (e: Error) => this.recordError('route watcher', e));
  }

  private onLinkEvent(ev: LinkEvent): void {
    if (this.closed) return;
    try {
      if (ev.kind === 'del') {
        if (this.byIfindex.has(ev.link.index)) this.log?.info({ ifname: ev.link.name, ifindex: ev.link.index }, 'datapath interface gone');
        this.forget(ev.link.index);
        this.suppressed.delete(ev.link.index);
        return;
      }
      if (this.onLinkUp(ev.link) && this.byIfindex.get(ev.link.index)?.role === 'pod') {
        // Routes to the pod may already exist (added before we saw the link).
        this.background('pod routes', () => this.reconcileRoutes(ev.link.index));
      }
    } catch (e) {
      this.recordError('link event', e);
    }
  }

  private onRouteMessage(msg: NlMsg): void {
    if (this.closed || (msg.type !== RTM_NEWROUTE && msg.type !== RTM_DELROUTE)) return;
    try {
      const r = decodeRoute(msg);
      const prefix = podRoutePrefix(r);
      if (!prefix || r.oif === undefined) return;
      if (msg.type === RTM_DELROUTE) this.dropLocalPod(prefix, r.oif);
      else if (this.byIfindex.get(r.oif)?.role === 'pod') this.setLocalPod(prefix, r.oif);
    } catch (e) {
      this.recordError('route event', e);
    }
  }

  /**
   * Re-reads host routes (main table, both families) and makes the LOCAL pod entries match:
   * `<ip>/32|128 dev <attached pod veth>`. With `onlyIfindex`, only adds for that veth.
   */
  private async reconcileRoutes(onlyIfindex?: number): Promise<void> {
    const routes: Route[] = [];
    for (const family of [4, 6] as const) routes.push(...(await listRoutes(this.sock(), { family, table: RT_TABLE_MAIN })));
    if (this.closed) return;
    const want = new Map<string, number>();
    for (const r of routes) {
      const prefix = podRoutePrefix(r);
      if (!prefix || r.oif === undefined || this.byIfindex.get(r.oif)?.role !== 'pod') continue;
      if (onlyIfindex !== undefined && r.oif !== onlyIfindex) continue;
      want.set(prefix, r.oif);
    }
    for (const [p, idx] of want) this.setLocalPod(p, idx);
    if (onlyIfindex === undefined) for (const [p, idx] of [...this.localPods]) if (want.get(p) !== idx) this.dropLocalPod(p, idx);
  }

  private background(what: string, fn: () => Promise<void> | void): void {
    Promise.resolve()
      .then(fn)
      .catch((e: unknown) => this.recordError(what, e));
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
    this.stateWriter.flush();
    this.closed = true;
    this.linkWatcher?.close();
    this.routeSock?.close();
    this.querySock?.close();
    this.bpf.close();
  }
}

function checkIfname(v: unknown, field: string): string {
  if (typeof v !== 'string' || v.length === 0 || v.length > 15 || /[\s/]/.test(v)) {
    throw new DatapathArgumentError(field, `needs an interface name of 1..15 characters, got ${String(v)}`);
  }
  return v;
}

/** `<ip>/32|128` for a main-table unicast host route out of one interface, else undefined. */
function podRoutePrefix(r: Route): string | undefined {
  if (r.table !== RT_TABLE_MAIN || r.type !== RTN_UNICAST || r.gateway !== undefined || r.oif === undefined) return undefined;
  if (r.dstLen !== (r.family === 4 ? 32 : 128) || r.dst === 'default') return undefined;
  return canonicalPrefix(r.dst, 'route.dst');
}

/** The config fields a steering mode sets. */
export function steeringConfig(s: Steering): Pick<DatapathConfig, 'backend' | 'wgIfindex'> & Partial<Pick<DatapathConfig, 'mtu'>> {
  if (s === null || typeof s !== 'object') throw new DatapathArgumentError('steering', 'needs an object');
  if (s.kind !== 'none' && s.mtu !== undefined) {
    if (!Number.isInteger(s.mtu) || s.mtu < 68 || s.mtu > 65535) throw new DatapathArgumentError('steering.mtu', `needs an integer in [68, 65535], got ${String(s.mtu)}`);
    const { mtu, ...rest } = s;
    return { ...steeringConfig(rest), mtu };
  }
  switch (s.kind) {
    case 'redirect':
      if (!Number.isInteger(s.ifindex) || s.ifindex < 1 || s.ifindex > 0x7fffffff) {
        throw new DatapathArgumentError('steering.ifindex', `needs a positive ifindex, got ${String(s.ifindex)}`);
      }
      return { backend: 'wireguard', wgIfindex: s.ifindex };
    case 'mark':
      // The programs compute the mark themselves (bpf/src/mark.ts); another layout cannot be honoured.
      if (s.value !== IPSEC_MARK_ENCRYPT || s.keyIndexShift !== 12 || s.nodeIdShift !== 16 || s.mask >>> 0 !== IPSEC_MARK_MASK) {
        throw new DatapathArgumentError(
          'steering',
          `mark layout {value 0x${(s.value >>> 0).toString(16)}, mask 0x${(s.mask >>> 0).toString(16)}, shifts ${s.keyIndexShift}/${s.nodeIdShift}} ` +
            `differs from the programs' (value 0x${IPSEC_MARK_ENCRYPT.toString(16)}, mask 0x${IPSEC_MARK_MASK.toString(16)}, shifts 12/16)`,
        );
      }
      return { backend: 'ipsec', wgIfindex: 0 };
    case 'none':
      return { backend: 'none', wgIfindex: 0 };
    default:
      throw new DatapathArgumentError('steering.kind', `needs 'redirect', 'mark' or 'none', got ${String((s as { kind?: unknown }).kind)}`);
  }
}

/** Opens the object with every shared map pinned under pinDir (reusing compatible pins). */
function loadPinned(opts: ResolvedOptions): BpfObjectDatapath {
  let path: string;
  try {
    path = opts.objectPath ?? defaultObjectPath();
  } catch (e) {
    if (e instanceof BpfObjectMissingError) {
      throw new DatapathLoadError('object-missing', e.path, opts.pinDir, `the BPF object ${e.path} is missing: build it with \`npm run build -w @veil/bpf\``, { cause: e });
    }
    throw e;
  }
  let spec: ObjectSpec;
  try {
    spec = ObjectSpec.open(path);
  } catch (e) {
    const missing = codeOf(e) === 'ENOENT';
    throw new DatapathLoadError(missing ? 'object-missing' : 'open', path, opts.pinDir,
      missing ? `the BPF object ${path} is missing: build it with \`npm run build -w @veil/bpf\`` : `cannot open the BPF object ${path}: ${messageOf(e)}`, { cause: e });
  }
  let obj;
  try {
    if (opts.ipcacheMaxEntries !== undefined) spec.setMaxEntries('ipcache', opts.ipcacheMaxEntries);
    if (opts.strictCidrsMaxEntries !== undefined) spec.setMaxEntries('strict_cidrs', opts.strictCidrsMaxEntries);
    for (const m of PINNED_MAPS) spec.setPinPath(m, join(opts.pinDir, m));
  } catch (e) {
    spec.close();
    throw new DatapathLoadError('open', path, opts.pinDir, `preparing ${path} failed: ${messageOf(e)}`, { cause: e });
  }
  try {
    obj = spec.load();
  } catch (e) {
    if (e instanceof VerifierError) {
      throw new DatapathLoadError('load', path, opts.pinDir, `the verifier rejected ${e.program ?? 'a program'} of ${path}: ${e.log.split('\n').slice(-3).join(' | ')}`, { cause: e });
    }
    // libbpf refuses to reuse a pinned map whose type/sizes/flags differ (EINVAL).
    const incompatible = codeOf(e) === 'EINVAL';
    throw new DatapathLoadError(incompatible ? 'pin-incompatible' : 'load', path, opts.pinDir,
      incompatible
        ? `loading ${path} failed: a map pinned under ${opts.pinDir} is incompatible (different size or max entries?): purge it (BpfDatapath.purge) and restart: ${messageOf(e)}`
        : `loading ${path} with maps pinned under ${opts.pinDir} failed: ${messageOf(e)}`,
      { cause: e });
  }
  try {
    return new BpfObjectDatapath(obj);
  } catch (e) {
    obj.close();
    throw new DatapathLoadError('load', path, opts.pinDir, `${path} lacks Veil's programs or maps: ${messageOf(e)}`, { cause: e });
  }
}
