import { type Codec } from './codec.js';
import { ClosedError, NotFoundError } from './errors.js';
import { FdHandle } from './handle.js';
import { BpfMap, type MapInfo, checkCodec } from './map.js';
import { Program, type ProgramType } from './program.js';

/** A program as described by the ELF. */
export interface ProgramSpec {
  /** Function name. */
  readonly name: string;
  /** ELF section, e.g. "tc" or "classifier/ingress". */
  readonly section: string;
  readonly type: ProgramType;
}

interface LiveMap {
  handle: FdHandle;
  info: MapInfo;
}

interface LiveProgram {
  handle: FdHandle;
  spec: ProgramSpec;
  id: number;
}

/**
 * Live kernel objects from ObjectSpec.load(): maps and programs by name. Holds one fd per map and
 * program; close() releases them all. Pins and tc attachments keep kernel objects alive past close().
 */
export class BpfObject {
  private closed = false;
  private readonly views: { close(): void }[] = [];
  /** Maps by libbpf name, including internal ones ("<obj>.rodata", "<obj>.bss" …). */
  readonly maps: ReadonlyMap<string, MapInfo>;
  /** Programs by function name. */
  readonly programs: ReadonlyMap<string, ProgramSpec>;

  /** @internal Created by ObjectSpec.load(). */
  constructor(
    private readonly path: string,
    private readonly liveMaps: Map<string, LiveMap>,
    private readonly livePrograms: Map<string, LiveProgram>,
  ) {
    this.maps = new Map([...liveMaps].map(([n, m]) => [n, m.info]));
    this.programs = new Map([...livePrograms].map(([n, p]) => [n, p.spec]));
  }

  private ensureOpen(): void {
    if (this.closed) throw new ClosedError(`BPF object '${this.path}'`);
  }

  /**
   * A typed view of map `name`. Internal maps can also be named by section (".bss", ".data").
   * NotFoundError lists the known maps; CodecSizeError names the map and both sizes.
   */
  map<K, V, KIn = K, VIn = V>(name: string, key: Codec<K, KIn>, value: Codec<V, VIn>): BpfMap<K, V, KIn, VIn> {
    this.ensureOpen();
    const live = this.findMap(name);
    const target = `map '${live.info.name}'`;
    checkCodec(target, 'key', key, live.info.keySize);
    checkCodec(target, 'value', value, live.info.valueSize);
    const m = new BpfMap(live.handle, live.info, key, value, false);
    this.views.push(m);
    return m;
  }

  private findMap(name: string): LiveMap {
    const exact = this.liveMaps.get(name);
    if (exact) return exact;
    if (typeof name === 'string' && name.startsWith('.')) {
      const bySection = [...this.liveMaps.entries()].filter(([n]) => n.endsWith(name));
      if (bySection.length === 1 && bySection[0]) return bySection[0][1];
    }
    throw new NotFoundError('map', String(name), [...this.liveMaps.keys()], `'${this.path}'`);
  }

  /** Program `name` (function name); NotFoundError lists the known programs. */
  program(name: string): Program {
    this.ensureOpen();
    const live = this.livePrograms.get(name);
    if (!live) throw new NotFoundError('program', String(name), [...this.livePrograms.keys()], `'${this.path}'`);
    const p = new Program(live.handle, live.spec.name, live.spec.type, live.id, false);
    this.views.push(p);
    return p;
  }

  /** Closes every map and program fd (idempotent). Maps/Programs handed out then throw ClosedError. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const v of this.views) v.close();
    for (const m of this.liveMaps.values()) m.handle.close();
    for (const p of this.livePrograms.values()) p.handle.close();
  }
}
