import { endianness } from 'node:os';
import { XfrmDecodeError } from '../errors.js';

/** Netlink structs carry host-order integers (`__u32`) next to network-order ones (`__be32`). */
export const HOST_LE = endianness() === 'LE';

/**
 * A fixed-size kernel struct: `size` is sizeof(struct) on x86_64, including tail padding.
 * `write` fills `size` bytes at `offset` (padding stays zero); `read` never reads past `size`.
 */
export interface StructCodec<T> {
  /** The C name, used in decode errors. */
  readonly name: string;
  readonly size: number;
  write(view: DataView, offset: number, value: T): void;
  read(view: DataView, offset: number): T;
}

export function viewOf(bytes: Uint8Array): DataView {
  return new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/** Encodes one struct into a fresh zeroed buffer of exactly `codec.size` bytes. */
export function encodeStruct<T>(codec: StructCodec<T>, value: T): Uint8Array {
  const out = new Uint8Array(codec.size);
  codec.write(viewOf(out), 0, value);
  return out;
}

/**
 * Decodes one struct from the start of `bytes`. Shorter input is a typed error; longer input is
 * accepted because newer kernels may append fields.
 */
export function decodeStruct<T>(codec: StructCodec<T>, bytes: Uint8Array, offset = 0): T {
  if (bytes.byteLength - offset < codec.size) {
    throw new XfrmDecodeError(codec.name, `need ${codec.size} bytes, got ${Math.max(0, bytes.byteLength - offset)}`);
  }
  return codec.read(viewOf(bytes), offset);
}

// Field helpers. Host-order fields follow HOST_LE; `be` fields are network order.
export const u8 = {
  get: (v: DataView, o: number): number => v.getUint8(o),
  set: (v: DataView, o: number, x: number): void => v.setUint8(o, x),
};
export const u16 = {
  get: (v: DataView, o: number): number => v.getUint16(o, HOST_LE),
  set: (v: DataView, o: number, x: number): void => v.setUint16(o, x, HOST_LE),
};
export const u32 = {
  get: (v: DataView, o: number): number => v.getUint32(o, HOST_LE),
  set: (v: DataView, o: number, x: number): void => v.setUint32(o, x, HOST_LE),
};
export const i32 = {
  get: (v: DataView, o: number): number => v.getInt32(o, HOST_LE),
  set: (v: DataView, o: number, x: number): void => v.setInt32(o, x, HOST_LE),
};
export const u64 = {
  get: (v: DataView, o: number): bigint => v.getBigUint64(o, HOST_LE),
  set: (v: DataView, o: number, x: bigint): void => v.setBigUint64(o, x, HOST_LE),
};
export const be16 = {
  get: (v: DataView, o: number): number => v.getUint16(o, false),
  set: (v: DataView, o: number, x: number): void => v.setUint16(o, x, false),
};
export const be32 = {
  get: (v: DataView, o: number): number => v.getUint32(o, false),
  set: (v: DataView, o: number, x: number): void => v.setUint32(o, x, false),
};

/** Copies `n` raw bytes out of a view (a copy, so callers may keep it). */
export function getBytes(v: DataView, o: number, n: number): Uint8Array {
  return new Uint8Array(v.buffer.slice(v.byteOffset + o, v.byteOffset + o + n));
}

/** Writes `src` at `o`; `src` must fit in `n` bytes (the rest is left as is, i.e. zero). */
export function setBytes(v: DataView, o: number, n: number, src: Uint8Array): void {
  if (src.byteLength > n) throw new RangeError(`field of ${n} bytes cannot hold ${src.byteLength}`);
  new Uint8Array(v.buffer, v.byteOffset + o, n).set(src);
}
