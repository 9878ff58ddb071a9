// Reads a compiled object's BTF (through `bpftool btf dump file <obj> -j`) and compares the C
// structs in it with the TypeScript layout descriptors (src/struct-layout.ts), the way bpf2go keeps
// Go types and C from drifting, but as a check instead of a generator.
import { execFileSync } from 'node:child_process';
import type { StructLayout } from '../src/index.js';

/** One member of a BTF STRUCT/UNION as bpftool prints it. */
export interface BtfMember {
  name: string;
  type_id: number;
  bits_offset: number;
  /** Present (non-zero) only for bitfields. */
  bitfield_size?: number;
}

/** One BTF type as bpftool prints it (only the fields this check reads). */
export interface BtfType {
  id: number;
  kind: string;
  name: string;
  size?: number;
  type_id?: number;
  nr_elems?: number;
  members?: BtfMember[];
}

/** bpftool could not be run or printed something that is not BTF JSON. */
export class BtfReadError extends Error {
  override name = 'BtfReadError';
  constructor(
    readonly path: string,
    detail: string,
  ) {
    super(`reading the BTF of ${path}: ${detail}`);
  }
}

/** A type id that is missing or of a kind whose size this check does not know. */
export class BtfTypeError extends Error {
  override name = 'BtfTypeError';
  constructor(
    readonly source: string,
    readonly typeId: number,
    detail: string,
  ) {
    super(`${source}: BTF type ${typeId}: ${detail}`);
  }
}

// Kinds that only qualify or rename another type: their size is the referenced type's.
const TRANSPARENT = new Set(['TYPEDEF', 'CONST', 'VOLATILE', 'RESTRICT', 'TYPE_TAG']);
// Kinds whose size BTF states directly.
const SIZED = new Set(['INT', 'STRUCT', 'UNION', 'ENUM', 'ENUM64', 'FLOAT', 'DATASEC']);
// BPF is a 64-bit target.
const POINTER_SIZE = 8;

/** The types of one object's BTF, by id. */
export class Btf {
  private readonly byId = new Map<number, BtfType>();

  constructor(
    types: readonly BtfType[],
    /** What the types came from, for error messages. */
    readonly source: string,
  ) {
    for (const t of types) this.byId.set(t.id, t);
  }

  /** Runs `bpftool btf dump file <path> -j` (bpftool from $BPFTOOL, else PATH plus /usr/sbin). */
  static fromObject(path: string): Btf {
    const bpftool = process.env.BPFTOOL ?? 'bpftool';
    let out: string;
    try {
      out = execFileSync(bpftool, ['btf', 'dump', 'file', path, '-j'], {
        encoding: 'utf8',
        maxBuffer: 64 << 20,
        stdio: ['ignore', 'pipe', 'pipe'],
        env: { ...process.env, PATH: `${process.env.PATH ?? ''}:/usr/sbin:/sbin` },
      });
    } catch (e) {
      const err = e as { stderr?: string | Buffer; message: string };
      const stderr = err.stderr?.toString().trim();
      throw new BtfReadError(path, `${bpftool} failed: ${stderr || err.message}`);
    }
    let parsed: unknown;
    try {
      parsed = JSON.parse(out);
    } catch (e) {
      throw new BtfReadError(path, `bpftool output is not JSON (${(e as Error).message})`);
    }
    const types = (parsed as { types?: unknown }).types;
    if (!Array.isArray(types)) throw new BtfReadError(path, 'bpftool JSON has no "types" array');
    return new Btf(types as BtfType[], path);
  }

  /** The named STRUCT, or undefined when the object has none. */
  struct(name: string): BtfType | undefined {
    for (const t of this.byId.values()) if (t.kind === 'STRUCT' && t.name === name) return t;
    return undefined;
  }

  /** Byte size of a type, through typedefs and qualifiers; arrays are elements × element size. */
  sizeOf(id: number): number {
    if (id === 0) return 0; // void
    const t = this.byId.get(id);
    if (t === undefined) throw new BtfTypeError(this.source, id, 'no such type id');
    if (TRANSPARENT.has(t.kind)) return this.sizeOf(this.ref(t));
    if (SIZED.has(t.kind)) {
      if (t.size === undefined) throw new BtfTypeError(this.source, id, `${t.kind} without a size`);
      return t.size;
    }
    if (t.kind === 'PTR') return POINTER_SIZE;
    if (t.kind === 'ARRAY') return (t.nr_elems ?? 0) * this.sizeOf(this.ref(t));
    throw new BtfTypeError(this.source, id, `kind ${t.kind} has no size this check knows`);
  }

  /** The name a type is known by after typedef/qualifier hops stop at a named type (`__u32`, `ipcache_key`). */
  nameOf(id: number): string {
    const t = this.byId.get(id);
    if (t === undefined) throw new BtfTypeError(this.source, id, 'no such type id');
    if (t.kind !== 'TYPEDEF' && TRANSPARENT.has(t.kind)) return this.nameOf(this.ref(t));
    return t.name;
  }

  /**
   * Key and value type ids of a BTF-defined map (`struct { __type(key, …); __type(value, …); } name SEC(".maps")`):
   * the VAR's anonymous struct holds `key` and `value` as pointers to the real types.
   */
  mapTypes(map: string): { key: number; value: number } {
    const v = [...this.byId.values()].find((t) => t.kind === 'VAR' && t.name === map);
    if (v === undefined) throw new BtfTypeError(this.source, 0, `no map variable '${map}'`);
    const def = this.byId.get(this.ref(v));
    const pointee = (member: string): number => {
      const m = def?.members?.find((x) => x.name === member);
      const ptr = m === undefined ? undefined : this.byId.get(m.type_id);
      if (ptr?.kind !== 'PTR') throw new BtfTypeError(this.source, v.id, `map '${map}' has no __type(${member}, …)`);
      return this.ref(ptr);
    };
    return { key: pointee('key'), value: pointee('value') };
  }

  private ref(t: BtfType): number {
    if (t.type_id === undefined) throw new BtfTypeError(this.source, t.id, `${t.kind} without type_id`);
    return t.type_id;
  }
}

/** One difference between a C struct and its TypeScript descriptor. */
export interface LayoutMismatch {
  struct: string;
  /** The C member name; undefined for whole-struct mismatches. */
  field?: string;
  kind: 'missing-struct' | 'size' | 'offset' | 'field-size' | 'missing-in-ts' | 'missing-in-c' | 'bitfield';
  /** The C side's number (offset or size in bytes), where there is one. */
  c?: number;
  /** The TypeScript side's number, where there is one. */
  ts?: number;
  /** e.g. "struct ipcache_value field ifindex: C offset 16 vs TS offset 20". */
  message: string;
}

/**
 * Every difference between `layout` and the struct of the same name in `btf`: struct size, each
 * member's offset and size, members on one side only, and C bitfields (a byte-offset descriptor
 * cannot mirror them). Members are matched by their C name. An empty list means they agree.
 */
export function compareLayout(btf: Btf, layout: StructLayout): LayoutMismatch[] {
  const s = layout.name;
  const c = btf.struct(s);
  if (c === undefined) {
    return [{ struct: s, kind: 'missing-struct', message: `struct ${s}: not in the BTF of ${btf.source}` }];
  }
  const out: LayoutMismatch[] = [];
  const cSize = c.size ?? 0;
  if (cSize !== layout.size) {
    out.push({
      struct: s,
      kind: 'size',
      c: cSize,
      ts: layout.size,
      message: `struct ${s}: C size ${cSize} vs TS size ${layout.size}`,
    });
  }
  const seen = new Set<string>();
  for (const m of c.members ?? []) {
    seen.add(m.name);
    const at = `struct ${s} field ${m.name}`;
    if (m.bitfield_size || m.bits_offset % 8 !== 0) {
      out.push({
        struct: s,
        field: m.name,
        kind: 'bitfield',
        message: `${at}: C bitfield (${m.bitfield_size ?? 0} bits at bit ${m.bits_offset}) that a byte-offset descriptor cannot mirror`,
      });
      continue;
    }
    const cOff = m.bits_offset / 8;
    const cLen = btf.sizeOf(m.type_id);
    const ts = Object.hasOwn(layout.fields, m.name) ? layout.fields[m.name] : undefined;
    if (ts === undefined) {
      out.push({
        struct: s,
        field: m.name,
        kind: 'missing-in-ts',
        c: cOff,
        message: `${at}: in C (offset ${cOff}, size ${cLen}), missing from the TS descriptor`,
      });
      continue;
    }
    if (ts.offset !== cOff) {
      out.push({
        struct: s,
        field: m.name,
        kind: 'offset',
        c: cOff,
        ts: ts.offset,
        message: `${at}: C offset ${cOff} vs TS offset ${ts.offset}`,
      });
    }
    if (ts.size !== cLen) {
      out.push({
        struct: s,
        field: m.name,
        kind: 'field-size',
        c: cLen,
        ts: ts.size,
        message: `${at}: C size ${cLen} vs TS size ${ts.size}`,
      });
    }
  }
  for (const [name, f] of Object.entries(layout.fields)) {
    if (seen.has(name)) continue;
    out.push({
      struct: s,
      field: name,
      kind: 'missing-in-c',
      ts: f.offset,
      message: `struct ${s} field ${name}: in the TS descriptor (offset ${f.offset}, size ${f.size}), missing from C`,
    });
  }
  return out;
}
