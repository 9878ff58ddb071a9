import type { Codec } from 'libbpf-ts';

/** Where one C struct member sits: byte offset and byte size. */
export interface FieldLayout {
  readonly offset: number;
  readonly size: number;
}

/**
 * The byte layout of one C struct the TypeScript codecs mirror, as data: the C struct name, its
 * size and every member (padding included) by its C name. The codecs read their offsets from
 * here, and `tests/btf-layouts.test.ts` compares each descriptor with the compiled object's BTF.
 */
export interface StructLayout<F extends string = string> {
  /** The C struct tag (`struct ipcache_key` → `ipcache_key`). */
  readonly name: string;
  readonly size: number;
  readonly fields: { readonly [K in F]: FieldLayout };
}

/** A descriptor that cannot describe a C struct (overlap, out of bounds) or a codec that does not fit its field. */
export class StructLayoutError extends Error {
  override name = 'StructLayoutError';
  constructor(
    readonly struct: string,
    readonly field: string | undefined,
    detail: string,
  ) {
    super(`struct ${struct}${field === undefined ? '' : `.${field}`}: ${detail}`);
  }
}

/**
 * Builds a descriptor from `{ member: [offset, size] }`, listed in C declaration order. Members
 * must be in bounds and must not overlap, as in any C struct without bitfields or unions.
 */
export function structLayout<F extends string>(
  name: string,
  size: number,
  fields: { readonly [K in F]: readonly [offset: number, size: number] },
): StructLayout<F> {
  if (!Number.isInteger(size) || size <= 0)
    throw new StructLayoutError(name, undefined, `size must be a positive integer, got ${size}`);
  const out = {} as { [K in F]: FieldLayout };
  let end = 0;
  let prev: string | undefined;
  for (const key of Object.keys(fields) as F[]) {
    const [offset, fieldSize] = fields[key];
    if (!Number.isInteger(offset) || offset < 0 || !Number.isInteger(fieldSize) || fieldSize <= 0) {
      throw new StructLayoutError(name, key, `needs a non-negative offset and a positive size, got [${offset}, ${fieldSize}]`);
    }
    if (offset < end) throw new StructLayoutError(name, key, `offset ${offset} overlaps '${String(prev)}' (ends at ${end})`);
    if (offset + fieldSize > size)
      throw new StructLayoutError(name, key, `[${offset}, ${offset + fieldSize}) does not fit in ${size} bytes`);
    out[key] = Object.freeze({ offset, size: fieldSize });
    end = offset + fieldSize;
    prev = key;
  }
  return Object.freeze({ name, size, fields: Object.freeze(out) });
}

/**
 * `[offset, codec]` for libbpf-ts `struct()`, taken from a descriptor field; refuses a codec whose
 * size is not the field's (a u16 codec on a __u32 member would silently shift nothing but lose bits).
 */
export function fieldAt<F extends string, T, In>(layout: StructLayout<F>, field: F, codec: Codec<T, In>): [number, Codec<T, In>] {
  const f: FieldLayout = layout.fields[field];
  if (f.size !== codec.size) throw new StructLayoutError(layout.name, field, `member is ${f.size} bytes, codec is ${codec.size}`);
  return [f.offset, codec];
}
