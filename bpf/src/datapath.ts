import { ArgumentError, type BpfMap, type BpfObject, numPossibleCpus, ObjectSpec, type Program } from 'libbpf-ts';
import {
  type Counter,
  counterValue,
  DEFAULT_CONFIG,
  type DatapathConfig,
  datapathConfig,
  indexKey,
  type IpcacheKey,
  type IpcacheKeyInput,
  ipcacheKey,
  type IpcacheValue,
  type IpcacheValueInput,
  ipcacheValue,
  strictCidrValue,
} from './layouts.js';
import { objectPath, PROGRAMS, traceObjectPath } from './paths.js';
import { REASONS, type ReasonName } from './reasons.js';
import { type TraceRecord, traceValue } from './trace.js';

/** Default ipcache size (VEIL_IPCACHE_MAX in bpf/lib/maps.h). */
export const DEFAULT_IPCACHE_MAX_ENTRIES = 65536;
/** Default strict_cidrs size (VEIL_STRICT_CIDRS_MAX). */
export const DEFAULT_STRICT_CIDRS_MAX_ENTRIES = 1024;

export interface LoadDatapathOptions {
  /** Load obj/veil_trace.bpf.o instead of the production object (adds {@link Datapath.lastTrace}). */
  trace?: boolean;
  /** Load this object file instead (same maps and programs expected). */
  path?: string;
  /** ipcache max_entries, set before load. Default 65536. */
  ipcacheMaxEntries?: number;
  /** strict_cidrs max_entries, set before load. Default 1024. */
  strictCidrsMaxEntries?: number;
  /** Initial config; unset fields come from {@link DEFAULT_CONFIG}. */
  config?: Partial<DatapathConfig>;
}

export type IpcacheMap = BpfMap<IpcacheKey, IpcacheValue, IpcacheKeyInput, IpcacheValueInput>;
export type StrictCidrsMap = BpfMap<IpcacheKey, number, IpcacheKeyInput, number>;

/** Counter totals (summed over CPUs) by reason name. */
export type CounterRecord = Record<ReasonName, Counter>;

function checkMaxEntries(field: string, n: number | undefined, dflt: number): number {
  if (n === undefined) return dflt;
  if (!Number.isInteger(n) || n < 1 || n > 0x7fffffff) {
    throw new ArgumentError(field, `needs a positive integer, got ${String(n)}`);
  }
  return n;
}

/**
 * Veil's programs loaded once into the kernel with typed handles on their shared maps.
 * Attach the programs with libbpf-ts `attachTc` (from-pod: veth ingress, from-tunnel: WireGuard
 * ingress, to-wire: underlay egress). `close()` releases everything (attached tc filters
 * keep their own program reference until detached).
 */
export class Datapath {
  /** tc ingress on a pod veth's host side. */
  readonly fromPod: Program;
  /** tc ingress on the WireGuard device. */
  readonly fromTunnel: Program;
  /** tc egress on the underlay device. */
  readonly toWire: Program;
  /** LPM trie: prefix → endpoint (IPv4 and IPv6). */
  readonly ipcache: IpcacheMap;
  /** LPM trie of pod CIDRs for the strict-mode backstop in to-wire. */
  readonly strictCidrs: StrictCidrsMap;
  /** The 1-entry `config` array (prefer getConfig/setConfig, which merge and validate). */
  readonly config: BpfMap<number, DatapathConfig>;
  /** Per-CPU counters by reason index (prefer readCounters). */
  readonly counters: BpfMap<number, Counter>;
  /** Only on the trace object. */
  readonly traceMap: BpfMap<number, TraceRecord> | undefined;

  constructor(readonly object: BpfObject) {
    this.fromPod = object.program(PROGRAMS.fromPod);
    this.fromTunnel = object.program(PROGRAMS.fromTunnel);
    this.toWire = object.program(PROGRAMS.toWire);
    this.ipcache = object.map('ipcache', ipcacheKey, ipcacheValue);
    this.strictCidrs = object.map('strict_cidrs', ipcacheKey, strictCidrValue);
    this.config = object.map('config', indexKey, datapathConfig);
    this.counters = object.map('counters', indexKey, counterValue);
    this.traceMap = object.maps.has('trace') ? object.map('trace', indexKey, traceValue) : undefined;
  }

  /** The config the programs currently see. */
  getConfig(): DatapathConfig {
    return this.config.lookup(0) ?? { ...DEFAULT_CONFIG };
  }

  /** Merges `patch` into the current config and writes it (the programs see it on their next packet). */
  setConfig(patch: Partial<DatapathConfig>): DatapathConfig {
    const next = { ...this.getConfig(), ...patch };
    this.config.update(0, next);
    return next;
  }

  /** Adds a pod CIDR to strict_cidrs. */
  addStrictCidr(cidr: IpcacheKeyInput): void {
    this.strictCidrs.update(cidr, 1);
  }

  /** Removes a pod CIDR from strict_cidrs; false when it was not there. */
  removeStrictCidr(cidr: IpcacheKeyInput): boolean {
    return this.strictCidrs.delete(cidr);
  }

  /** Every counter summed over CPUs, by reason name. */
  readCounters(): CounterRecord {
    const out = {} as CounterRecord;
    REASONS.forEach((name, i) => {
      out[name] = this.counters.lookupReduce<Counter>(
        i,
        (acc, v) => ({ packets: acc.packets + v.packets, bytes: acc.bytes + v.bytes }),
        { packets: 0n, bytes: 0n },
      ) ?? { packets: 0n, bytes: 0n };
    });
    return out;
  }

  /** Zeroes every counter on every CPU. */
  resetCounters(): void {
    const zeros = Array.from({ length: numPossibleCpus() }, () => ({ packets: 0n, bytes: 0n }));
    for (let i = 0; i < REASONS.length; i++) this.counters.updatePerCpu(i, zeros);
  }

  /**
   * The most recent decision on any CPU (highest per-CPU sequence number wins; Program.run
   * executes on one CPU). Undefined before the first packet. Throws ArgumentError on the
   * production object, which has no trace map.
   */
  lastTrace(): TraceRecord | undefined {
    if (!this.traceMap)
      throw new ArgumentError('trace', 'this datapath was loaded without trace (loadDatapath({ trace: true }))');
    let best: TraceRecord | undefined;
    for (const t of this.traceMap.lookupPerCpu(0) ?? []) {
      if (t.seq > 0n && (!best || t.seq > best.seq)) best = t;
    }
    return best;
  }

  /** Clears the trace record on every CPU. */
  resetTrace(): void {
    if (!this.traceMap) return;
    const zero: TraceRecord = { seq: 0n, reason: 'pass-local', verdict: 0, kind: 'none', ifindex: 0, redirectFlags: 0, mark: 0 };
    this.traceMap.updatePerCpu(
      0,
      Array.from({ length: numPossibleCpus() }, () => zero),
    );
  }

  /** Closes the object and every handle from it. Idempotent. */
  close(): void {
    this.object.close();
  }
}

/**
 * Opens Veil's object (or the trace variant), sizes its maps, loads it, writes the initial
 * config and returns typed handles. Throws libbpf-ts errors (VerifierError with the log,
 * BpfError) or ArgumentError for bad options.
 */
export function loadDatapath(opts: LoadDatapathOptions = {}): Datapath {
  const ipcacheMax = checkMaxEntries('ipcacheMaxEntries', opts.ipcacheMaxEntries, DEFAULT_IPCACHE_MAX_ENTRIES);
  const strictMax = checkMaxEntries('strictCidrsMaxEntries', opts.strictCidrsMaxEntries, DEFAULT_STRICT_CIDRS_MAX_ENTRIES);
  const config = { ...DEFAULT_CONFIG, ...opts.config };
  // Validate the config before anything reaches the kernel.
  datapathConfig.encode(config, Buffer.alloc(datapathConfig.size), 0);

  const spec = ObjectSpec.open(opts.path ?? (opts.trace ? traceObjectPath() : objectPath()));
  try {
    spec.setMaxEntries('ipcache', ipcacheMax).setMaxEntries('strict_cidrs', strictMax);
  } catch (e) {
    spec.close();
    throw e;
  }
  const obj = spec.load();
  try {
    const dp = new Datapath(obj);
    dp.config.update(0, config);
    return dp;
  } catch (e) {
    obj.close();
    throw e;
  }
}
