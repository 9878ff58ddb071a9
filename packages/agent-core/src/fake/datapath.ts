import {
  sameIpcacheEntry,
  type AttachTarget,
  type Datapath,
  type DatapathSyncResult,
  type IpcacheEntry,
  type Steering,
  type VerdictCounters,
} from '../types/index.js';

/** An in-memory {@link Datapath} recording calls; entries can be pre-seeded (pinned maps). */
export class FakeDatapath implements Datapath {
  readonly ipcache = new Map<string, IpcacheEntry>();
  readonly targets = new Map<string, AttachTarget>();
  readonly calls: { op: string; arg?: unknown }[] = [];
  steeringConfig: Steering | undefined;
  verdicts: Record<string, bigint> = { encrypt: 0n, pass: 0n, drop_strict: 0n };
  /** Names whose upsert throws. */
  readonly failUpsert = new Set<string>();
  /** When set, attach() waits for this promise (readiness tests). */
  attachGate: Promise<void> | undefined;
  private isAttached = false;

  constructor(preexisting: readonly IpcacheEntry[] = []) {
    for (const e of preexisting) this.ipcache.set(e.nodeName, e);
  }

  get attached(): boolean {
    return this.isAttached;
  }

  async attach(targets: readonly AttachTarget[]): Promise<void> {
    this.calls.push({ op: 'attach', arg: targets.map((t) => t.ifname) });
    if (this.attachGate) await this.attachGate;
    for (const t of targets) this.targets.set(t.ifname, t);
    this.isAttached = true;
  }

  async detach(ifnames: readonly string[]): Promise<void> {
    this.calls.push({ op: 'detach', arg: ifnames });
    for (const n of ifnames) this.targets.delete(n);
  }

  async entries(): Promise<ReadonlyMap<string, IpcacheEntry>> {
    return new Map(this.ipcache);
  }

  async upsert(entry: IpcacheEntry): Promise<void> {
    if (this.failUpsert.has(entry.nodeName)) throw new Error(`injected datapath failure for ${entry.nodeName}`);
    this.calls.push({ op: 'upsert', arg: entry.nodeName });
    this.ipcache.set(entry.nodeName, entry);
  }

  async remove(nodeName: string): Promise<void> {
    this.calls.push({ op: 'remove', arg: nodeName });
    this.ipcache.delete(nodeName);
  }

  async syncPeers(entries: readonly IpcacheEntry[]): Promise<DatapathSyncResult> {
    this.calls.push({ op: 'syncPeers', arg: entries.length });
    const want = new Map(entries.map((e) => [e.nodeName, e]));
    const added: string[] = [],
      updated: string[] = [],
      removed: string[] = [];
    for (const name of [...this.ipcache.keys()]) {
      if (!want.has(name)) {
        this.ipcache.delete(name);
        removed.push(name);
      }
    }
    for (const [name, e] of want) {
      const cur = this.ipcache.get(name);
      if (!cur) added.push(name);
      else if (!sameIpcacheEntry(cur, e)) updated.push(name);
      else continue;
      this.ipcache.set(name, e);
    }
    return { added, updated, removed };
  }

  async setSteering(steering: Steering): Promise<void> {
    this.calls.push({ op: 'setSteering', arg: steering });
    this.steeringConfig = steering;
  }

  async counters(): Promise<VerdictCounters> {
    return { ...this.verdicts };
  }

  async close(): Promise<void> {
    this.calls.push({ op: 'close' });
  }
}
