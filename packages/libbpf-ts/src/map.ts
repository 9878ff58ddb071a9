import { readFileSync, unlinkSync } from 'node:fs';
import { constants } from 'node:os';
import { type Codec, withField } from './codec.js';
import { ArgumentError, BpfError, ClosedError, CodecSizeError, NotSupportedError, bpfError, check } from './errors.js';
import { FdHandle } from './handle.js';
import { native } from './native.js';

const { ENOENT } = constants.errno;

/** Map types by libbpf's names (libbpf_bpf_map_type_str); unknown future types pass through as strings. */
export type MapType =
  | 'unspec'
  | 'hash'
  | 'array'
  | 'prog_array'
  | 'perf_event_array'
  | 'percpu_hash'
  | 'percpu_array'
  | 'stack_trace'
  | 'cgroup_array'
  | 'lru_hash'
  | 'lru_percpu_hash'
  | 'lpm_trie'
  | 'array_of_maps'
  | 'hash_of_maps'
  | 'devmap'
  | 'sockmap'
  | 'cpumap'
  | 'xskmap'
  | 'sockhash'
  | 'cgroup_storage'
  | 'reuseport_sockarray'
  | 'percpu_cgroup_storage'
  | 'queue'
  | 'stack'
  | 'sk_storage'
  | 'devmap_hash'
  | 'struct_ops'
  | 'ringbuf'
  | 'inode_storage'
  | 'task_storage'
  | 'bloom_filter'
  | 'user_ringbuf'
  | (string & {});

/** A map's name and shape, as the ELF describes it (MapSpec) and as the kernel reports it (MapInfo). */
export interface MapShape {
  readonly name: string;
  readonly type: MapType;
  readonly keySize: number;
  readonly valueSize: number;
  readonly maxEntries: number;
  readonly flags: number;
}

/** What the kernel reports about a live map (bpf_obj_get_info_by_fd). */
export interface MapInfo extends MapShape {
  /** Kernel map id (bpftool map show id …). */
  readonly id: number;
  /** Name: libbpf's name for maps from an object, the kernel's (≤15 chars) for pinned maps. */
  readonly name: string;
}

/** BPF_ANY / BPF_NOEXIST / BPF_EXIST. */
export type UpdateFlag = 'any' | 'noexist' | 'exist';

const updateFlags: Record<UpdateFlag, number> = { any: 0, noexist: 1, exist: 2 };

function flagValue(f: UpdateFlag | undefined): number {
  if (f === undefined) return 0;
  const v = updateFlags[f];
  if (v === undefined) throw new ArgumentError('flags', `must be 'any', 'noexist' or 'exist', got ${String(f)}`);
  return v;
}

const perCpuTypes = new Set<string>(['percpu_hash', 'percpu_array', 'lru_percpu_hash', 'percpu_cgroup_storage']);

let possibleCpus: number | undefined;
/** libbpf_num_possible_cpus(): the number of slots in a per-CPU map value. */
export function numPossibleCpus(): number {
  if (possibleCpus === undefined)
    possibleCpus = check(native.numPossibleCpus(), 'numPossibleCpus', '/sys/devices/system/cpu/possible');
  return possibleCpus;
}

/** Reads the map info of an fd and maps errno to BpfError. */
export function mapInfoOf(fd: number, name: string | undefined, context: string): MapInfo {
  const r = native.mapInfo(fd);
  if (r.err < 0) throw bpfError('map.info', r.err, context);
  return {
    id: r.id,
    name: name ?? r.name,
    type: r.type,
    keySize: r.keySize,
    valueSize: r.valueSize,
    maxEntries: r.maxEntries,
    flags: r.flags,
  };
}

/** Which kind of BPF object an fd is, from /proc/self/fdinfo (map_type: / prog_type: / link_type:). */
export function fdKind(fd: number): 'map' | 'program' | 'link' | 'other' {
  let text: string;
  try {
    text = readFileSync(`/proc/self/fdinfo/${fd}`, 'utf8');
  } catch {
    return 'other';
  }
  if (/^map_type:/m.test(text)) return 'map';
  if (/^prog_type:/m.test(text)) return 'program';
  if (/^link_type:/m.test(text)) return 'link';
  return 'other';
}

/** Checks a codec against a map's key or value size. */
export function checkCodec(target: string, role: 'key' | 'value', codec: Codec<unknown, never>, expected: number): void {
  if (typeof codec !== 'object' || codec === null || typeof codec.encode !== 'function' || typeof codec.decode !== 'function') {
    throw new ArgumentError(role, `${target}: ${role} codec must be a Codec { size, encode, decode }`);
  }
  if (codec.size !== expected) throw new CodecSizeError(target, role, codec.size, expected);
}

export function unlinkPin(path: string, op: string): void {
  if (typeof path !== 'string' || path.length === 0) throw new ArgumentError('path', 'must be a non-empty string');
  try {
    unlinkSync(path);
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    throw new BpfError(op, Math.abs(err.errno ?? 0) || ENOENT, `'${path}'`);
  }
}

export function checkPath(path: unknown, field = 'path'): asserts path is string {
  if (typeof path !== 'string' || path.length === 0)
    throw new ArgumentError(field, `must be a non-empty string, got ${typeof path}`);
}

/**
 * What maps and programs share: an fd (possibly shared with a BpfObject) seen through a view that
 * close() retires, and closes the fd only when the view owns it; pins by that fd.
 */
export abstract class FdView {
  /** For error messages: "map 'routes'", "program 'tc_ingress'". */
  protected readonly ctx: string;
  private viewClosed = false;

  protected constructor(
    protected readonly handle: FdHandle,
    private readonly kind: 'map' | 'program',
    name: string,
    private readonly ownsFd: boolean,
  ) {
    this.ctx = `${kind} '${name}'`;
  }

  /** The fd (valid until close()). */
  get fd(): number {
    return this.fdOrThrow();
  }

  get closed(): boolean {
    return this.viewClosed || this.handle.isClosed;
  }

  protected fdOrThrow(): number {
    if (this.viewClosed) throw new ClosedError(this.ctx);
    return this.handle.get();
  }

  /** BPF_OBJ_PIN at `path` on a bpffs (`bpftool map pin` / `bpftool prog pin`). */
  pin(path: string): void {
    checkPath(path);
    check(native.objPin(this.fdOrThrow(), path), `${this.kind}.pin`, `${this.ctx} at '${path}'`);
  }

  /** Removes a pin (unlink). The object lives on while fds or other pins reference it. */
  unpin(path: string): void {
    this.fdOrThrow();
    unlinkPin(path, `${this.kind}.unpin`);
  }

  /** Closes this view (and the fd, when the view owns it: opened with fromPin). Idempotent. */
  close(): void {
    this.viewClosed = true;
    if (this.ownsFd) this.handle.close();
  }
}

/**
 * A typed view of a live BPF map. Keys and values go through codecs whose sizes were checked
 * against the map when the view was created. All operations are synchronous syscalls.
 */
export class BpfMap<K, V, KIn = K, VIn = V> extends FdView {
  /** True for percpu_hash / percpu_array / lru_percpu_hash: values are one slot per possible CPU. */
  readonly isPerCpu: boolean;
  private readonly keyBuf: Buffer;
  private readonly valBuf: Buffer;
  /** Per-CPU slot stride: value size rounded up to 8 bytes. */
  private readonly stride: number;
  private readonly batchSupport: { update?: boolean; delete?: boolean } = {};

  /**
   * @internal Use BpfObject.map() or BpfMap.fromPin().
   * `ownsFd`: whether close() closes the fd (fromPin) or only this view (maps of a BpfObject).
   */
  constructor(
    handle: FdHandle,
    readonly info: MapInfo,
    private readonly keyCodec: Codec<K, KIn>,
    private readonly valueCodec: Codec<V, VIn>,
    ownsFd: boolean,
  ) {
    super(handle, 'map', info.name, ownsFd);
    this.isPerCpu = perCpuTypes.has(info.type);
    this.stride = this.isPerCpu ? Math.ceil(info.valueSize / 8) * 8 : info.valueSize;
    this.keyBuf = Buffer.alloc(Math.max(info.keySize, 1));
    this.valBuf = Buffer.alloc(this.isPerCpu ? this.stride * numPossibleCpus() : Math.max(info.valueSize, 1));
  }

  /**
   * Opens a pinned map (bpf_obj_get) and checks the codecs against its key/value sizes.
   * Throws ArgumentError when the pin is not a map, CodecSizeError on a size mismatch.
   * The returned map owns its fd: close() it.
   */
  static fromPin<K, V, KIn = K, VIn = V>(path: string, key: Codec<K, KIn>, value: Codec<V, VIn>): BpfMap<K, V, KIn, VIn> {
    checkPath(path);
    const fd = check(native.objGet(path), 'map.fromPin', `'${path}'`);
    const handle = new FdHandle(fd, `pinned map '${path}'`);
    try {
      const kind = fdKind(fd);
      if (kind !== 'map') throw new ArgumentError('path', `'${path}' is a pinned ${kind}, not a map`);
      const info = mapInfoOf(fd, undefined, `'${path}'`);
      const target = `pinned map '${path}' (${info.name})`;
      checkCodec(target, 'key', key, info.keySize);
      checkCodec(target, 'value', value, info.valueSize);
      return new BpfMap(handle, info, key, value, true);
    } catch (e) {
      handle.close();
      throw e;
    }
  }

  get name(): string {
    return this.info.name;
  }
  get type(): MapType {
    return this.info.type;
  }
  get keySize(): number {
    return this.info.keySize;
  }
  get valueSize(): number {
    return this.info.valueSize;
  }
  get maxEntries(): number {
    return this.info.maxEntries;
  }
  private encodeKey(k: KIn, buf = this.keyBuf, off = 0): Buffer {
    withField('key', () => this.keyCodec.encode(k, buf, off));
    return buf;
  }

  private encodeValue(v: VIn, buf: Buffer, off: number): void {
    withField('value', () => this.valueCodec.encode(v, buf, off));
  }

  private notPerCpu(op: string): void {
    if (this.isPerCpu) throw new ArgumentError('map', `${this.ctx} is per-CPU (${this.type}): use ${op}PerCpu()`);
  }

  private requirePerCpu(op: string): void {
    if (!this.isPerCpu) throw new ArgumentError('map', `${this.ctx} is not per-CPU (${this.type}): ${op} needs a per-CPU map`);
  }

  /** BPF_MAP_LOOKUP_ELEM; undefined when the key is absent. Not for per-CPU maps (see lookupPerCpu). */
  lookup(k: KIn): V | undefined {
    const fd = this.fdOrThrow();
    this.notPerCpu('lookup');
    const r = native.mapLookup(fd, this.encodeKey(k), this.valBuf);
    if (r === -ENOENT) return undefined;
    check(r, 'map.lookup', this.ctx);
    return this.valueCodec.decode(this.valBuf, 0);
  }

  /**
   * BPF_MAP_UPDATE_ELEM (`bpftool map update`). flags: 'any' (default), 'noexist' (EEXIST if present),
   * 'exist' (ENOENT if absent). On per-CPU maps the value is written to every CPU's slot.
   */
  update(k: KIn, v: VIn, flags?: UpdateFlag): void {
    const fd = this.fdOrThrow();
    const f = flagValue(flags);
    this.encodeKey(k);
    this.fillValue(v, this.valBuf, 0);
    check(native.mapUpdate(fd, this.keyBuf, this.valBuf, f), 'map.update', this.ctx);
  }

  /** BPF_MAP_DELETE_ELEM; false when the key was absent. Arrays cannot delete (BpfError EINVAL). */
  delete(k: KIn): boolean {
    const fd = this.fdOrThrow();
    const r = native.mapDelete(fd, this.encodeKey(k));
    if (r === -ENOENT) return false;
    check(r, 'map.delete', this.ctx);
    return true;
  }

  /** Writes one value (or, for per-CPU maps, the same value into every CPU slot) at buf[off]. */
  private fillValue(v: VIn, buf: Buffer, off: number): void {
    if (!this.isPerCpu) {
      this.encodeValue(v, buf, off);
      return;
    }
    buf.fill(0, off, off + this.stride * numPossibleCpus());
    this.encodeValue(v, buf, off);
    for (let cpu = 1; cpu < numPossibleCpus(); cpu++) buf.copy(buf, off + cpu * this.stride, off, off + this.info.valueSize);
  }

  /** Raw key iteration via BPF_MAP_GET_NEXT_KEY; each yielded Buffer is fresh. */
  private *rawKeys(): Generator<Buffer> {
    let prev: Buffer | null = null;
    for (;;) {
      const fd = this.fdOrThrow();
      const next = Buffer.alloc(this.info.keySize);
      const r = native.mapGetNextKey(fd, prev, next);
      if (r === -ENOENT) return;
      check(r, 'map.getNextKey', this.ctx);
      yield next;
      prev = next;
    }
  }

  /** All keys (BPF_MAP_GET_NEXT_KEY). Concurrent deletes may restart a hash walk, as in the kernel. */
  *keys(): IterableIterator<K> {
    for (const k of this.rawKeys()) yield this.keyCodec.decode(k, 0);
  }

  /** All [key, value] pairs; entries deleted during the walk are skipped. Not for per-CPU maps. */
  *entries(): IterableIterator<[K, V]> {
    this.notPerCpu('entries');
    for (const k of this.rawKeys()) {
      const r = native.mapLookup(this.fdOrThrow(), k, this.valBuf);
      if (r === -ENOENT) continue;
      check(r, 'map.lookup', this.ctx);
      yield [this.keyCodec.decode(k, 0), this.valueCodec.decode(this.valBuf, 0)];
    }
  }

  /** All [key, per-CPU values] pairs of a per-CPU map. */
  *entriesPerCpu(): IterableIterator<[K, V[]]> {
    this.requirePerCpu('entriesPerCpu');
    for (const k of this.rawKeys()) {
      const r = native.mapLookup(this.fdOrThrow(), k, this.valBuf);
      if (r === -ENOENT) continue;
      check(r, 'map.lookup', this.ctx);
      yield [this.keyCodec.decode(k, 0), this.decodePerCpu()];
    }
  }

  [Symbol.iterator](): IterableIterator<[K, V]> {
    return this.entries();
  }

  /** Whether the kernel implements BPF_MAP_{UPDATE,DELETE}_BATCH for this map type (probed once, count 0). */
  supportsBatch(op: 'update' | 'delete' = 'update'): boolean {
    const fd = this.fdOrThrow();
    const cached = this.batchSupport[op];
    if (cached !== undefined) return cached;
    // The kernel checks for the op before looking at count, so a zero-count call is a pure probe.
    const r =
      op === 'update' ? native.mapUpdateBatch(fd, this.keyBuf, this.valBuf, 0, 0) : native.mapDeleteBatch(fd, this.keyBuf, 0);
    const supported = r.err === 0;
    if (!supported) {
      const e = bpfError(`map.${op}Batch`, r.err, this.ctx);
      if (!(e instanceof NotSupportedError)) throw e;
    }
    this.batchSupport[op] = supported;
    return supported;
  }

  /**
   * BPF_MAP_UPDATE_BATCH: all entries in one syscall. Returns the number written.
   * NotSupportedError when the kernel has no batch op for this map type (use updateMany).
   * On a mid-batch failure the BpfError's context says how many entries were written.
   */
  updateBatch(entries: Iterable<readonly [KIn, VIn]>, flags?: UpdateFlag): number {
    const fd = this.fdOrThrow();
    const f = flagValue(flags);
    // generic_map_update_batch accepts only BPF_F_LOCK in elem_flags: NOEXIST/EXIST would be EINVAL.
    if (f !== 0)
      throw new ArgumentError('flags', `BPF_MAP_UPDATE_BATCH only supports 'any'; use updateMany() or update() for '${flags}'`);
    const list = toList(entries, 'entries');
    if (list.length === 0) return 0;
    const ks = this.info.keySize;
    const vs = this.isPerCpu ? this.stride * numPossibleCpus() : this.info.valueSize;
    const keys = Buffer.alloc(ks * list.length);
    const vals = Buffer.alloc(vs * list.length);
    list.forEach((e, i) => {
      if (!Array.isArray(e) || e.length !== 2) throw new ArgumentError(`entries[${i}]`, 'must be a [key, value] pair');
      withField(`entries[${i}]`, () => {
        this.encodeKey(e[0], keys, i * ks);
        this.fillValue(e[1], vals, i * vs);
      });
    });
    const r = native.mapUpdateBatch(fd, keys, vals, list.length, f);
    if (r.err < 0) {
      const e = bpfError('map.updateBatch', r.err, `${this.ctx} (${batchProgress(r.count, list.length)})`);
      if (e instanceof NotSupportedError) this.batchSupport.update = false;
      throw e;
    }
    this.batchSupport.update = true;
    return r.count;
  }

  /** BPF_MAP_DELETE_BATCH. Returns the number deleted; a missing key fails with ENOENT (context has the count). */
  deleteBatch(keys: Iterable<KIn>): number {
    const fd = this.fdOrThrow();
    const list = toList(keys, 'keys');
    if (list.length === 0) return 0;
    const ks = this.info.keySize;
    const buf = Buffer.alloc(ks * list.length);
    list.forEach((k, i) => withField(`keys[${i}]`, () => this.keyCodec.encode(k, buf, i * ks)));
    const r = native.mapDeleteBatch(fd, buf, list.length);
    if (r.err < 0) {
      const e = bpfError('map.deleteBatch', r.err, `${this.ctx} (${batchProgress(r.count, list.length)})`);
      if (e instanceof NotSupportedError) this.batchSupport.delete = false;
      throw e;
    }
    this.batchSupport.delete = true;
    return r.count;
  }

  /**
   * Writes many entries: one BPF_MAP_UPDATE_BATCH when the map type supports it and flags is 'any',
   * otherwise a loop of update(). Same final map contents either way; `batched` says which path ran.
   */
  updateMany(entries: Iterable<readonly [KIn, VIn]>, flags?: UpdateFlag): { count: number; batched: boolean } {
    const f = flagValue(flags);
    if (f === 0 && this.supportsBatch('update')) return { count: this.updateBatch(entries), batched: true };
    const fd = this.fdOrThrow();
    let count = 0;
    for (const e of entries) {
      if (!Array.isArray(e) || e.length !== 2) throw new ArgumentError(`entries[${count}]`, 'must be a [key, value] pair');
      withField(`entries[${count}]`, () => {
        this.encodeKey(e[0]);
        this.fillValue(e[1], this.valBuf, 0);
      });
      const r = native.mapUpdate(fd, this.keyBuf, this.valBuf, f);
      if (r < 0) throw bpfError('map.update', r, `${this.ctx} (${count} written)`);
      count++;
    }
    return { count, batched: false };
  }

  private decodePerCpu(): V[] {
    const n = numPossibleCpus();
    const out: V[] = new Array<V>(n);
    for (let cpu = 0; cpu < n; cpu++) out[cpu] = this.valueCodec.decode(this.valBuf, cpu * this.stride);
    return out;
  }

  /** Per-CPU lookup: one value per possible CPU (index = CPU number); undefined when absent. */
  lookupPerCpu(k: KIn): V[] | undefined {
    const fd = this.fdOrThrow();
    this.requirePerCpu('lookupPerCpu');
    const r = native.mapLookup(fd, this.encodeKey(k), this.valBuf);
    if (r === -ENOENT) return undefined;
    check(r, 'map.lookup', this.ctx);
    return this.decodePerCpu();
  }

  /** Per-CPU lookup folded with `reduce` (e.g. summing counters); undefined when absent. */
  lookupReduce<R>(k: KIn, reduce: (acc: R, v: V, cpu: number) => R, init: R): R | undefined {
    if (typeof reduce !== 'function') throw new ArgumentError('reduce', 'must be a function');
    const vals = this.lookupPerCpu(k);
    return vals === undefined ? undefined : vals.reduce(reduce, init);
  }

  /** Per-CPU update with one value per possible CPU (values.length === numPossibleCpus()). */
  updatePerCpu(k: KIn, values: readonly VIn[], flags?: UpdateFlag): void {
    const fd = this.fdOrThrow();
    this.requirePerCpu('updatePerCpu');
    const f = flagValue(flags);
    const n = numPossibleCpus();
    // Checked through an unknown alias: Array.isArray would otherwise narrow the readonly VIn[] to any[].
    const list: unknown = values;
    if (!Array.isArray(list) || list.length !== n) {
      throw new ArgumentError(
        'values',
        `needs exactly ${n} values (one per possible CPU), got ${Array.isArray(list) ? list.length : typeof list}`,
      );
    }
    this.encodeKey(k);
    this.valBuf.fill(0);
    values.forEach((v, cpu) => withField(`values[${cpu}]`, () => this.valueCodec.encode(v, this.valBuf, cpu * this.stride)));
    check(native.mapUpdate(fd, this.keyBuf, this.valBuf, f), 'map.update', this.ctx);
  }
}

// The kernel writes the processed count back only when it stopped part-way; an early failure
// leaves the input count in place.
function batchProgress(count: number, total: number): string {
  return count < total ? `${count} of ${total} processed` : `batch of ${total}`;
}

function toList<T>(it: Iterable<T>, field: string): T[] {
  if (it === null || typeof it !== 'object' || typeof it[Symbol.iterator] !== 'function') {
    throw new ArgumentError(field, 'must be iterable');
  }
  return Array.isArray(it) ? (it as T[]) : [...it];
}
