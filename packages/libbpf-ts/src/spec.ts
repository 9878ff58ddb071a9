import { type Codec, withField } from './codec.js';
import { ArgumentError, ClosedError, CodecSizeError, NotFoundError, VerifierError, bpfError, check } from './errors.js';
import { FdHandle } from './handle.js';
import { type MapInfo, type MapShape, checkPath, mapInfoOf } from './map.js';
import { native, type ObjHandle } from './native.js';
import { BpfObject, type ProgramSpec } from './object.js';

/** A map as described by the ELF (before load). */
export interface MapSpec extends MapShape {
  /** libbpf's internal maps (.rodata, .data, .bss, .kconfig). */
  readonly internal: boolean;
  readonly pinPath?: string;
}

/** A global variable of a data section (offset/size from the object's BTF DATASEC). */
export interface VarSpec {
  readonly name: string;
  readonly offset: number;
  readonly size: number;
}

/**
 * A BPF ELF object read by libbpf (bpf_object__open_file), not yet in the kernel: inspect it,
 * adjust map sizes, pin paths and `.rodata` constants, then load() it.
 *
 * Single use: load() consumes the spec (success or failure) and close() releases it unloaded;
 * afterwards every method throws ClosedError. Open the file again to load another copy.
 */
export class ObjectSpec {
  private handle: ObjHandle | undefined;
  private readonly mapSpecs = new Map<string, MapSpec>();
  /** Programs by function name. */
  readonly programs: ReadonlyMap<string, ProgramSpec>;
  /** `const volatile` globals of `.rodata`, settable with setConstant() before load. */
  readonly constants: ReadonlyMap<string, VarSpec>;

  private constructor(
    readonly path: string,
    handle: ObjHandle,
  ) {
    this.handle = handle;
    const info = native.objInfo(handle);
    for (const m of info.maps) this.mapSpecs.set(m.name, { ...m });
    this.programs = new Map(info.programs.map((p) => [p.name, { name: p.name, section: p.section, type: p.type }]));
    this.constants = new Map(native.objDatasec(handle, '.rodata').map((v) => [v.name, v]));
  }

  /** Opens and parses an ELF object (`bpf_object__open_file`). BpfError on a missing/bad file. */
  static open(path: string): ObjectSpec {
    checkPath(path);
    const r = native.objOpen(path);
    if (r.err < 0 || !r.handle) throw bpfError('object.open', r.err || -22, `'${path}'`, lastLine(r.log));
    return new ObjectSpec(path, r.handle);
  }

  /** Maps by name (libbpf names; internal maps look like "<obj>.rodata"). Reflects setMaxEntries/setPinPath. */
  get maps(): ReadonlyMap<string, MapSpec> {
    return this.mapSpecs;
  }

  private h(): ObjHandle {
    if (!this.handle) throw new ClosedError(`object spec '${this.path}'`);
    return this.handle;
  }

  private mapSpec(name: string): MapSpec {
    const m = typeof name === 'string' ? this.mapSpecs.get(name) : undefined;
    if (!m) throw new NotFoundError('map', String(name), [...this.mapSpecs.keys()], `'${this.path}'`);
    return m;
  }

  /** Overrides max_entries of map `name` (bpf_map__set_max_entries). */
  setMaxEntries(name: string, n: number): this {
    const h = this.h();
    const m = this.mapSpec(name);
    if (!Number.isInteger(n) || n < 1 || n > 0xffffffff)
      throw new ArgumentError('maxEntries', `must be an integer ≥ 1, got ${String(n)}`);
    check(native.objSetMaxEntries(h, name, n), 'spec.setMaxEntries', `map '${name}'`);
    this.mapSpecs.set(name, { ...m, maxEntries: n });
    return this;
  }

  /**
   * Pins map `name` at `path` on load (bpf_map__set_pin_path). If a compatible map is already
   * pinned there libbpf reuses it (its contents survive); an incompatible one fails the load.
   */
  setPinPath(name: string, path: string): this {
    const h = this.h();
    const m = this.mapSpec(name);
    checkPath(path);
    check(native.objSetPinPath(h, name, path), 'spec.setPinPath', `map '${name}'`);
    this.mapSpecs.set(name, { ...m, pinPath: path });
    return this;
  }

  /**
   * Sets a `const volatile` global in `.rodata` before load. Numbers/bigints/booleans are written
   * little-endian in the variable's size (range-checked); Buffers must match the size exactly.
   * With a codec, codec.size must equal the variable's size (CodecSizeError otherwise).
   */
  setConstant(name: string, value: number | bigint | boolean | Buffer): this;
  setConstant<T, In>(name: string, codec: Codec<T, In>, value: In): this;
  setConstant(name: string, a: unknown, b?: unknown): this {
    const h = this.h();
    const v = typeof name === 'string' ? this.constants.get(name) : undefined;
    if (!v) throw new NotFoundError('constant', String(name), [...this.constants.keys()], `.rodata of '${this.path}'`);
    const target = `constant '${name}'`;
    const bytes = Buffer.alloc(v.size);
    if (typeof a === 'object' && a !== null && !Buffer.isBuffer(a) && 'encode' in a) {
      const codec = a as Codec<unknown, unknown>;
      if (codec.size !== v.size) throw new CodecSizeError(target, 'constant', codec.size, v.size);
      withField(name, () => codec.encode(b, bytes, 0));
    } else {
      encodeScalar(name, v.size, a, bytes);
    }
    const init = native.objGetInitialValue(h, '.rodata');
    if (!init || init.length < v.offset + v.size) {
      throw bpfError('spec.setConstant', -2, target, 'the object has no .rodata initial value covering this variable');
    }
    bytes.copy(init, v.offset);
    check(native.objSetInitialValue(h, '.rodata', init), 'spec.setConstant', target);
    return this;
  }

  /** Current bytes of a `.rodata` constant (its compiled-in value unless setConstant changed it). */
  getConstant(name: string): Buffer {
    const h = this.h();
    const v = this.constants.get(name);
    if (!v) throw new NotFoundError('constant', String(name), [...this.constants.keys()], `.rodata of '${this.path}'`);
    const init = native.objGetInitialValue(h, '.rodata');
    return Buffer.from(init ? init.subarray(v.offset, v.offset + v.size) : Buffer.alloc(v.size));
  }

  /**
   * Creates the maps and loads the programs (bpf_object__load). VerifierError carries the verifier
   * log; other failures are BpfError with libbpf's last message. The spec is consumed either way.
   */
  load(): BpfObject {
    const h = this.h();
    this.handle = undefined;
    const r = native.objLoad(h);
    if (r.err < 0) {
      for (const m of r.maps) native.closeFd(m.fd);
      for (const p of r.programs) native.closeFd(p.fd);
      throw loadError(this.path, r.err, r.log);
    }
    const maps = new Map<string, { handle: FdHandle; info: MapInfo }>();
    const progs = new Map<string, { handle: FdHandle; spec: ProgramSpec; id: number }>();
    try {
      for (const m of r.maps) {
        const handle = new FdHandle(m.fd, `map '${m.name}'`);
        maps.set(m.name, { handle, info: mapInfoOf(m.fd, m.name, `map '${m.name}'`) });
      }
      for (const p of r.programs) {
        const handle = new FdHandle(p.fd, `program '${p.name}'`);
        const info = native.progInfo(p.fd);
        const spec = this.programs.get(p.name) ?? { name: p.name, section: '', type: info.type };
        progs.set(p.name, { handle, spec, id: info.id });
        if (info.err < 0) throw bpfError('program.info', info.err, `program '${p.name}'`);
      }
    } catch (e) {
      for (const m of maps.values()) m.handle.close();
      for (const p of progs.values()) p.handle.close();
      throw e;
    }
    return new BpfObject(this.path, maps, progs);
  }

  /** Releases the unloaded object (idempotent). */
  close(): void {
    if (!this.handle) return;
    native.objClose(this.handle);
    this.handle = undefined;
  }
}

function encodeScalar(name: string, size: number, a: unknown, out: Buffer): void {
  const target = `constant '${name}'`;
  if (Buffer.isBuffer(a)) {
    if (a.length !== size) throw new CodecSizeError(target, 'constant', a.length, size);
    a.copy(out);
    return;
  }
  let n: bigint;
  if (typeof a === 'boolean') n = a ? 1n : 0n;
  else if (typeof a === 'bigint') n = a;
  else if (typeof a === 'number' && Number.isSafeInteger(a)) n = BigInt(a);
  else throw new ArgumentError(name, `needs a number, bigint, boolean or Buffer, got ${typeof a}`);
  if (size > 8) throw new ArgumentError(name, `is ${size} bytes: pass a Buffer or a codec`);
  const bits = BigInt(size * 8);
  const min = -(1n << (bits - 1n));
  const max = (1n << bits) - 1n;
  if (n < min || n > max) throw new ArgumentError(name, `${n} does not fit in ${size} byte(s)`);
  const u = BigInt.asUintN(size * 8, n);
  for (let i = 0; i < size; i++) out[i] = Number((u >> BigInt(8 * i)) & 0xffn);
}

/** The last few informative libbpf lines (the closing "failed to load object" adds nothing). */
function lastLine(log: string): string | undefined {
  const lines = log
    .trim()
    .split('\n')
    .filter((l) => l.length > 0 && !/failed to (load|open) object/.test(l))
    .map((l) => l.replace(/^libbpf: /, ''));
  return lines.length > 0 ? lines.slice(-3).join('; ') : undefined;
}

/** Turns a failed bpf_object__load into VerifierError (program rejected) or BpfError. */
function loadError(path: string, err: number, log: string): Error {
  const failed = /prog '([^']+)': (?:BPF program load failed|failed to load)/.exec(log);
  const begin = log.indexOf('-- BEGIN PROG LOAD LOG --');
  const end = log.indexOf('-- END PROG LOAD LOG --');
  if (failed || begin >= 0) {
    const verifierLog =
      begin >= 0 && end > begin ? log.slice(begin + '-- BEGIN PROG LOAD LOG --'.length, end).replace(/^\n/, '') : log;
    return new VerifierError('object.load', err, `'${path}'`, failed?.[1], verifierLog, log);
  }
  return bpfError('object.load', err, `'${path}'`, lastLine(log));
}
