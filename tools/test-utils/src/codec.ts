import { expect } from 'vitest';

/** The shape of a libbpf-ts `Codec` (structural, so test-utils needs no libbpf-ts). */
export interface CodecLike<T, In> {
  readonly size: number;
  encode(v: In, buf: Buffer, off: number): void;
  decode(buf: Buffer, off: number): T;
}

/**
 * Encodes `v` between guard bytes, checks that exactly `size` bytes were written, and decodes it
 * back: the round trip every codec test starts from.
 */
export function roundTrip<T, In>(c: CodecLike<T, In>, v: In, pad = 3): T {
  const buf = Buffer.alloc(c.size + pad * 2, 0xee);
  c.encode(v, buf, pad);
  // encode writes exactly `size` bytes: the guard bytes around it are untouched
  expect(buf.subarray(0, pad).every((b) => b === 0xee)).toBe(true);
  expect(buf.subarray(pad + c.size).every((b) => b === 0xee)).toBe(true);
  return c.decode(buf, pad);
}
