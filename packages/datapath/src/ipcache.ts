import { type Datapath as BpfObjectDatapath, formatCidr, type IpcacheValue, type IpcacheValueInput } from '@veil/bpf';
import {
  type DatapathSyncResult,
  type IpcacheEntry,
  IpcacheFlags,
  type IpcachePrefixEntry,
  errorMessage,
} from '@veil/agent-core';
import { BpfError } from 'libbpf-ts';
import { codeOf, DatapathArgumentError, DatapathMapError } from './errors.js';
import { canonicalPrefix, entryPrefixes, normalizeEntry, planSync, sameValue, verifyAdopted } from './model.js';
import type { ResolvedOptions } from './options.js';
import { readStateFile, StateFileWriter } from './state-file.js';

/**
 * The ipcache as Veil manages it: node entries (remote nodes, owned by name) and LOCAL entries
 * (this node's pod CIDRs, and pod host prefixes with their veth ifindex), written to the pinned
 * map by diff. A JSON state file maps prefixes back to node names across restarts; at start the
 * recorded entries are adopted only where the map backs them exactly.
 */
export class IpcacheTable {
  /** Node index: node name → normalized entry (adopted or programmed). */
  private readonly nodes = new Map<string, IpcacheEntry>();
  /** Prefix → owning node name (the index, inverted). */
  private readonly owner = new Map<string, string>();
  /** Local pod host prefixes → veth ifindex (LOCAL entries with an ifindex). */
  private readonly localPods = new Map<string, number>();
  /** Local pod CIDRs (LOCAL entries without an ifindex). */
  private localCidrs = new Set<string>();
  private readonly stateWriter: StateFileWriter;
  private readonly log: ResolvedOptions['logger'];
  /** Recorded node entries the pinned map did not back exactly at start. */
  readonly rejectedAtStart: string[];

  constructor(
    private readonly bpf: BpfObjectDatapath,
    opts: Pick<ResolvedOptions, 'stateFile' | 'pinDir' | 'stateWriteDelayMs' | 'logger'>,
    /** Node encryption on: node-IP entries are steered like pod CIDRs (see entryPrefixes). */
    private encryptNodeIPs: boolean,
  ) {
    this.log = opts.logger;
    this.stateWriter = new StateFileWriter(
      opts.stateFile,
      opts.pinDir,
      () => this.nodes.values(),
      opts.stateWriteDelayMs,
      (e) => this.log?.warn({ err: e.message, file: opts.stateFile }, 'datapath state file write failed'),
    );
    this.rejectedAtStart = this.adopt(opts.stateFile, opts.pinDir);
  }

  /** Whether node IPs are steered; changing it does not rewrite entries (re-upsert them). */
  get nodeEncryption(): boolean {
    return this.encryptNodeIPs;
  }

  set nodeEncryption(on: boolean) {
    this.encryptNodeIPs = on;
  }

  // ---- adoption --------------------------------------------------------------------------

  private readAll(): Map<string, IpcacheValue> {
    const out = new Map<string, IpcacheValue>();
    try {
      for (const [k, v] of this.bpf.ipcache.entries()) out.set(formatCidr(k), v);
    } catch (e) {
      throw new DatapathMapError('ipcache', 'read', codeOf(e), `reading the ipcache failed: ${errorMessage(e)}`, { cause: e });
    }
    return out;
  }

  private adopt(stateFile: string, pinDir: string): string[] {
    const all = this.readAll();
    for (const [p, v] of all) {
      if (!v.local) continue;
      if (v.ifindex !== 0) this.localPods.set(p, v.ifindex);
      else this.localCidrs.add(p);
    }
    const recorded = readStateFile(stateFile, pinDir);
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
    if (rejected.length > 0)
      this.log?.info(
        { rejected: rejected.length },
        'recorded ipcache entries not backed by the pinned map (will be reprogrammed)',
      );
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

  // ---- node entries ------------------------------------------------------------------------

  /** A copy of the node index. */
  entries(): Map<string, IpcacheEntry> {
    return new Map(this.nodes);
  }

  /** Writes (only the changed) prefixes of one node and deletes the prefixes it no longer owns. */
  upsert(entry: IpcacheEntry): void {
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

  remove(nodeName: string): void {
    if (typeof nodeName !== 'string' || nodeName.length === 0)
      throw new DatapathArgumentError('nodeName', 'needs a non-empty string');
    const prev = this.nodes.get(nodeName);
    if (!prev) return;
    const mine = [...this.prefixesOf(prev).keys()].filter(
      (p) => this.owner.get(p) === nodeName && !this.localPods.has(p) && !this.localCidrs.has(p),
    );
    this.deleteMap(mine, `remove ${nodeName}`);
    this.unindex(nodeName);
    this.stateWriter.markDirty();
  }

  /**
   * Makes the remote part of the ipcache exactly `entries`: reads the map back, writes only
   * changed prefixes (batched), deletes every non-LOCAL prefix no entry owns (also orphans the
   * state file never recorded). LOCAL entries are not touched.
   */
  syncPeers(entries: readonly IpcacheEntry[]): DatapathSyncResult {
    if (!Array.isArray(entries)) throw new DatapathArgumentError('entries', 'needs an array');
    const desired = entries.map((e: IpcacheEntry, i) => normalizeEntry(e, `entries[${i}]`));
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

  /** Writes the state file now if anything changed since the last write. */
  flush(): void {
    this.stateWriter.flush();
  }

  // ---- map access --------------------------------------------------------------------------

  private lookup(prefix: string): IpcacheValue | undefined {
    try {
      return this.bpf.ipcache.lookup(prefix);
    } catch (e) {
      throw new DatapathMapError('ipcache', 'lookup', codeOf(e), `ipcache lookup ${prefix} failed: ${errorMessage(e)}`, {
        cause: e,
      });
    }
  }

  private writeMap(updates: [string, IpcacheValueInput][], what: string): void {
    if (updates.length === 0) return;
    try {
      this.bpf.ipcache.updateMany(updates);
    } catch (e) {
      throw new DatapathMapError(
        'ipcache',
        'update',
        codeOf(e),
        `${what}: writing ${updates.length} ipcache entries failed: ${errorMessage(e)}`,
        { cause: e },
      );
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
      throw new DatapathMapError(
        'ipcache',
        'delete',
        codeOf(e),
        `${what}: deleting ${prefixes.length} ipcache entries failed: ${errorMessage(e)}`,
        { cause: e },
      );
    }
  }

  /** The ipcache as the programs see it (read from the pinned map), with owning node names. */
  dump(): IpcachePrefixEntry[] {
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

  // ---- local entries -------------------------------------------------------------------------

  /** Snapshot of the LOCAL pod host entries: prefix → host-side veth ifindex. */
  localEndpoints(): Map<string, number> {
    return new Map(this.localPods);
  }

  /** Replaces this node's pod CIDRs (LOCAL entries without ifindex) by diff. */
  setLocalPodCIDRs(cidrs: readonly string[]): void {
    if (!Array.isArray(cidrs)) throw new DatapathArgumentError('cidrs', 'needs an array of CIDRs');
    const want = new Set(cidrs.map((c, i) => canonicalPrefix(c, `cidrs[${i}]`)));
    const del = [...this.localCidrs].filter((p) => !want.has(p));
    const add: [string, IpcacheValueInput][] = [...want]
      .filter((p) => !sameValue(this.lookup(p), { local: true }))
      .map((p) => [p, { local: true }]);
    this.writeMap(add, 'setLocalPodCIDRs');
    this.deleteMap(del, 'setLocalPodCIDRs');
    this.localCidrs = want;
  }

  /** A LOCAL pod host entry (`<ip>/32|128` → veth ifindex); a remote claim on the prefix loses. */
  setLocalPod(prefix: string, ifindex: number): void {
    if (this.localPods.get(prefix) === ifindex && sameValue(this.lookup(prefix), { local: true, ifindex })) return;
    this.writeMap([[prefix, { local: true, ifindex }]], `local pod ${prefix}`);
    this.localPods.set(prefix, ifindex);
    // A remote claim on the same prefix loses: the pod is here.
    const o = this.owner.get(prefix);
    if (o !== undefined) this.noteTakeover(prefix, o, '(local pod)');
    this.log?.debug({ prefix, ifindex }, 'local pod endpoint');
  }

  /** Deletes a LOCAL pod host entry (only if it still points at `ifindex`, when given). */
  dropLocalPod(prefix: string, ifindex?: number): void {
    const cur = this.localPods.get(prefix);
    if (cur === undefined || (ifindex !== undefined && cur !== ifindex)) return;
    this.deleteMap([prefix], `local pod ${prefix}`);
    this.localPods.delete(prefix);
  }

  /** Deletes every LOCAL pod host entry behind one veth (gone or detached). */
  dropLocalPodsOn(ifindex: number): void {
    for (const [p, idx] of [...this.localPods]) if (idx === ifindex) this.dropLocalPod(p, idx);
  }
}
