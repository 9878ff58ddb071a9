import { ArgumentError } from './errors.js';

/**
 * A fixed-size binary layout. `T` is what decode() returns, `In` what encode() accepts
 * (usually the same; a codec may accept a looser input form, e.g. text it parses).
 */
export interface Codec<T, In = T> {
  /** Exact byte size; checked against the map's key/value size. */
  readonly size: number;
  /** Writes exactly `size` bytes at `off`. Throws ArgumentError for out-of-range input. */
  encode(v: In, buf: Buffer, off: number): void;
  decode(buf: Buffer, off: number): T;
}

/** The decoded type of a codec. */
export type CodecValue<C> = C extends Codec<infer T, never> ? T : never;
/** The accepted input type of a codec. */
export type CodecInput<C> = C extends Codec<unknown, infer In> ? In : never;

/** Prefixes the field path of an ArgumentError thrown by `fn` (so errors read "key.addr: …"). */
export function withField<R>(field: string, fn: () => R): R {
  try {
    return fn();
  } catch (e) {
    if (e instanceof ArgumentError) {
      const inner = e.field === 'value' ? '' : e.field.startsWith('[') ? e.field : `.${e.field}`;
      throw new ArgumentError(`${field}${inner}`, e.message.slice(e.field.length + 2));
    }
    throw e;
  }
}

function intCodec(size: 1 | 2 | 4, signed: boolean, bigEndian = false): Codec<number> {
  const min = signed ? -(2 ** (size * 8 - 1)) : 0;
  const max = signed ? 2 ** (size * 8 - 1) - 1 : 2 ** (size * 8) - 1;
  const label = `${bigEndian ? 'be' : signed ? 'i' : 'u'}${size * 8}`;
  return {
    size,
    encode(v, buf, off) {
      if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
        throw new ArgumentError('value', `${label} needs an integer in [${min}, ${max}], got ${String(v)}`);
      }
      if (signed) buf.writeIntLE(v, off, size);
      else if (bigEndian) buf.writeUIntBE(v, off, size);
      else buf.writeUIntLE(v, off, size);
    },
    decode(buf, off) {
      if (signed) return buf.readIntLE(off, size);
      return bigEndian ? buf.readUIntBE(off, size) : buf.readUIntLE(off, size);
    },
  };
}

function int64Codec(signed: boolean): Codec<bigint, bigint | number> {
  const min = signed ? -(1n << 63n) : 0n;
  const max = signed ? (1n << 63n) - 1n : (1n << 64n) - 1n;
  const label = signed ? 'i64' : 'u64';
  return {
    size: 8,
    encode(v, buf, off) {
      let b: bigint;
      if (typeof v === 'bigint') b = v;
      else if (typeof v === 'number' && Number.isSafeInteger(v)) b = BigInt(v);
      else throw new ArgumentError('value', `${label} needs a bigint or safe integer, got ${String(v)}`);
      if (b < min || b > max) throw new ArgumentError('value', `${label} out of range: ${b}`);
      if (signed) buf.writeBigInt64LE(b, off);
      else buf.writeBigUInt64LE(b, off);
    },
    decode(buf, off) {
      return signed ? buf.readBigInt64LE(off) : buf.readBigUInt64LE(off);
    },
  };
}

/** __u8 */
export const u8: Codec<number> = intCodec(1, false);
/** __u16, host (little-endian) order */
export const u16: Codec<number> = intCodec(2, false);
/** __u32, host (little-endian) order */
export const u32: Codec<number> = intCodec(4, false);
/** __s8 */
export const i8: Codec<number> = intCodec(1, true);
/** __s16 */
export const i16: Codec<number> = intCodec(2, true);
/** __s32 */
export const i32: Codec<number> = intCodec(4, true);
/** __u64 as bigint (numbers accepted on encode) */
export const u64: Codec<bigint, bigint | number> = int64Codec(false);
/** __s64 as bigint */
export const i64: Codec<bigint, bigint | number> = int64Codec(true);
/** __be16: network byte order (ports) */
export const be16: Codec<number> = intCodec(2, false, true);
/** __be32: network byte order */
export const be32: Codec<number> = intCodec(4, false, true);

/** A one-byte boolean (0 / 1; any non-zero decodes as true). */
export const bool: Codec<boolean> = {
  size: 1,
  encode(v, buf, off) {
    if (typeof v !== 'boolean') throw new ArgumentError('value', `bool needs a boolean, got ${typeof v}`);
    buf[off] = v ? 1 : 0;
  },
  decode(buf, off) {
    return buf[off] !== 0;
  },
};

/** Raw bytes (`__u8 x[n]`); encode requires a Buffer/Uint8Array of exactly n bytes. decode copies. */
export function bytes(n: number): Codec<Buffer, Uint8Array> {
  checkSize('bytes(n)', n);
  return {
    size: n,
    encode(v, buf, off) {
      if (!(v instanceof Uint8Array)) throw new ArgumentError('value', `bytes(${n}) needs a Buffer, got ${typeof v}`);
      if (v.length !== n) throw new ArgumentError('value', `bytes(${n}) needs exactly ${n} bytes, got ${v.length}`);
      buf.set(v, off);
    },
    decode(buf, off) {
      return Buffer.from(buf.subarray(off, off + n));
    },
  };
}

/** `T x[n]`: n consecutive elements. */
export function array<T, In>(elem: Codec<T, In>, n: number): Codec<T[], readonly In[]> {
  checkSize('array(n)', n);
  return {
    size: elem.size * n,
    encode(v, buf, off) {
      if (!Array.isArray(v) || v.length !== n) {
        throw new ArgumentError('value', `array needs exactly ${n} elements, got ${Array.isArray(v) ? v.length : typeof v}`);
      }
      for (let i = 0; i < n; i++) withField(`[${i}]`, () => elem.encode(v[i] as In, buf, off + i * elem.size));
    },
    decode(buf, off) {
      const out: T[] = new Array<T>(n);
      for (let i = 0; i < n; i++) out[i] = elem.decode(buf, off + i * elem.size);
      return out;
    },
  };
}

/** Field table for struct(): name → [byte offset, codec]. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- one table holds codecs of every type; StructValue/StructInput read each field's own types back
export type StructFields = Record<string, readonly [number, Codec<any, any>]>;
export type StructValue<F extends StructFields> = { [K in keyof F]: CodecValue<F[K][1]> };
export type StructInput<F extends StructFields> = { [K in keyof F]: CodecInput<F[K][1]> };

/**
 * A C struct with explicit offsets, e.g. for
 * `struct endpoint { __u32 ifindex; __u8 mac[6]; __u16 flags; }` (12 bytes):
 * `struct(12, { ifindex: [0, u32], mac: [4, bytes(6)], flags: [10, u16] })`.
 * Fields must fit inside `size` and must not overlap; padding is zeroed on encode.
 */
export function struct<F extends StructFields>(size: number, fields: F): Codec<StructValue<F>, StructInput<F>> {
  checkSize('struct size', size);
  const list = Object.entries(fields).map(([name, [offset, codec]]) => ({ name, offset, codec }));
  const sorted = [...list].sort((a, b) => a.offset - b.offset);
  let end = 0;
  let prev = '';
  for (const f of sorted) {
    if (!Number.isInteger(f.offset) || f.offset < 0)
      throw new ArgumentError(f.name, `offset must be a non-negative integer, got ${f.offset}`);
    if (f.offset + f.codec.size > size) {
      throw new ArgumentError(f.name, `field [${f.offset}, ${f.offset + f.codec.size}) does not fit in a ${size}-byte struct`);
    }
    if (f.offset < end) throw new ArgumentError(f.name, `field at offset ${f.offset} overlaps '${prev}' (ends at ${end})`);
    end = f.offset + f.codec.size;
    prev = f.name;
  }
  return {
    size,
    encode(v, buf, off) {
      if (typeof v !== 'object' || v === null)
        throw new ArgumentError('value', `struct needs an object, got ${v === null ? 'null' : typeof v}`);
      buf.fill(0, off, off + size);
      const rec = v as Record<string, unknown>;
      for (const f of list) {
        if (rec[f.name] === undefined) throw new ArgumentError(f.name, 'missing field');
        withField(f.name, () => f.codec.encode(rec[f.name], buf, off + f.offset));
      }
    },
    decode(buf, off) {
      const out: Record<string, unknown> = {};
      for (const f of list) out[f.name] = f.codec.decode(buf, off + f.offset);
      return out as StructValue<F>;
    },
  };
}

function checkSize(what: string, n: number): void {
  if (!Number.isInteger(n) || n <= 0 || n > 1 << 20) throw new ArgumentError(what, `must be a positive integer, got ${n}`);
}

/** Encodes one value into a fresh Buffer of codec.size bytes. */
export function encodeToBuffer<In>(codec: Codec<unknown, In>, v: In, field = 'value'): Buffer {
  const buf = Buffer.alloc(codec.size);
  withField(field, () => codec.encode(v, buf, 0));
  return buf;
}
