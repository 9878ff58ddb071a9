import { roundTrip } from '@veil/test-utils';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  ArgumentError,
  type Codec,
  array,
  be16,
  be32,
  bool,
  bytes,
  i16,
  i32,
  i64,
  i8,
  lpmKey,
  struct,
  u16,
  u32,
  u64,
  u8,
} from '../src/index.js';

describe('integer codecs', () => {
  const cases: [string, Codec<number>, number, number, number][] = [
    ['u8', u8, 1, 0, 0xff],
    ['u16', u16, 2, 0, 0xffff],
    ['u32', u32, 4, 0, 0xffffffff],
    ['i8', i8, 1, -128, 127],
    ['i16', i16, 2, -32768, 32767],
    ['i32', i32, 4, -(2 ** 31), 2 ** 31 - 1],
    ['be16', be16, 2, 0, 0xffff],
    ['be32', be32, 4, 0, 0xffffffff],
  ];
  for (const [name, c, size, min, max] of cases) {
    it(`${name}: size ${size}, round-trips every value in range`, () => {
      expect(c.size).toBe(size);
      fc.assert(fc.property(fc.integer({ min, max }), (v) => roundTrip(c, v) === v));
    });
    it(`${name}: rejects out-of-range and non-integers with ArgumentError`, () => {
      const buf = Buffer.alloc(8);
      for (const bad of [min - 1, max + 1, 1.5, Number.NaN]) {
        expect(() => c.encode(bad, buf, 0)).toThrow(ArgumentError);
      }
      expect(() => c.encode('1' as unknown as number, buf, 0)).toThrow(/needs an integer/);
    });
  }

  it('u32 is little-endian, be16/be32 are network order', () => {
    const b = Buffer.alloc(4);
    u32.encode(0x01020304, b, 0);
    expect([...b]).toEqual([4, 3, 2, 1]);
    be32.encode(0x01020304, b, 0);
    expect([...b]).toEqual([1, 2, 3, 4]);
    be16.encode(0x0800, b, 0);
    expect([...b.subarray(0, 2)]).toEqual([8, 0]);
  });

  it('u64/i64 round-trip bigints and accept safe integers', () => {
    fc.assert(fc.property(fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }), (v) => roundTrip(u64, v) === v));
    fc.assert(fc.property(fc.bigInt({ min: -(1n << 63n), max: (1n << 63n) - 1n }), (v) => roundTrip(i64, v) === v));
    expect(roundTrip(u64, 42)).toBe(42n);
    const buf = Buffer.alloc(8);
    expect(() => u64.encode(-1n, buf, 0)).toThrow(/u64 out of range/);
    expect(() => u64.encode(1n << 64n, buf, 0)).toThrow(ArgumentError);
    expect(() => u64.encode(2 ** 60, buf, 0)).toThrow(/safe integer/);
  });

  it('bool', () => {
    expect(roundTrip(bool, true)).toBe(true);
    expect(roundTrip(bool, false)).toBe(false);
    expect(() => bool.encode(1 as unknown as boolean, Buffer.alloc(1), 0)).toThrow(ArgumentError);
  });
});

describe('bytes / array / struct', () => {
  it('bytes(n) round-trips n-byte buffers and rejects other lengths', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 64 }).chain((n) => fc.tuple(fc.constant(n), fc.uint8Array({ minLength: n, maxLength: n }))),
        ([n, arr]) => {
          return roundTrip(bytes(n), Buffer.from(arr)).equals(Buffer.from(arr));
        },
      ),
    );
    expect(() => bytes(6).encode(Buffer.alloc(5), Buffer.alloc(6), 0)).toThrow('bytes(6) needs exactly 6 bytes, got 5');
    expect(() => bytes(0)).toThrow(ArgumentError);
  });

  it('array(codec, n)', () => {
    const c = array(u16, 5);
    expect(c.size).toBe(10);
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 0, max: 0xffff }), { minLength: 5, maxLength: 5 }), (v) => {
        expect(roundTrip(c, v)).toEqual(v);
      }),
    );
    expect(() => c.encode([1, 2], Buffer.alloc(10), 0)).toThrow('array needs exactly 5 elements, got 2');
    expect(() => c.encode([1, 2, 3, 4, 70000], Buffer.alloc(10), 0)).toThrow(/^\[4\]: u16/);
  });

  // struct endpoint { __u32 ifindex; __u8 mac[6]; __u16 flags; }  (12 bytes)
  const endpoint = struct(12, { ifindex: [0, u32], mac: [4, bytes(6)], flags: [10, u16] });

  it('struct lays fields at their offsets and round-trips', () => {
    expect(endpoint.size).toBe(12);
    const buf = Buffer.alloc(12);
    endpoint.encode({ ifindex: 7, mac: Buffer.from('aabbccddeeff', 'hex'), flags: 0x0102 }, buf, 0);
    expect(buf.toString('hex')).toBe('07000000aabbccddeeff0201');
    fc.assert(
      fc.property(
        fc.nat(),
        fc.uint8Array({ minLength: 6, maxLength: 6 }),
        fc.integer({ min: 0, max: 0xffff }),
        (ifindex, mac, flags) => {
          const v = { ifindex, mac: Buffer.from(mac), flags };
          expect(roundTrip(endpoint, v)).toEqual(v);
        },
      ),
    );
  });

  it('struct zeroes padding and names the bad field', () => {
    const padded = struct(8, { a: [0, u8], b: [4, u32] });
    const buf = Buffer.alloc(8, 0xff);
    padded.encode({ a: 1, b: 2 }, buf, 0);
    expect(buf.toString('hex')).toBe('0100000002000000');
    expect(() => endpoint.encode({ ifindex: -1, mac: Buffer.alloc(6), flags: 0 }, Buffer.alloc(12), 0)).toThrow(
      /^ifindex: u32 needs/,
    );
    expect(() => endpoint.encode({ ifindex: 1, mac: Buffer.alloc(6) } as never, Buffer.alloc(12), 0)).toThrow(
      'flags: missing field',
    );
    expect(() => endpoint.encode(null as never, Buffer.alloc(12), 0)).toThrow(ArgumentError);
  });

  it('struct rejects overlapping or overflowing layouts', () => {
    expect(() => struct(8, { a: [0, u32], b: [2, u32] })).toThrow("b: field at offset 2 overlaps 'a' (ends at 4)");
    expect(() => struct(4, { a: [2, u32] })).toThrow('a: field [2, 6) does not fit in a 4-byte struct');
    expect(() => struct(4, { a: [-1, u8] })).toThrow(ArgumentError);
  });
});

describe('LPM key codec', () => {
  it('lpmKey(dataCodec) builds custom LPM keys', () => {
    // struct { __u32 prefixlen; __u8 family; __u8 pad[3]; __u8 addr[16]; }
    const k = lpmKey(struct(20, { family: [0, u8], addr: [4, bytes(16)] }));
    expect(k.size).toBe(24);
    // fd00:1::/64
    const v = { prefixLen: 32 + 64, data: { family: 10, addr: Buffer.from('fd000001000000000000000000000000', 'hex') } };
    expect(roundTrip(k, v)).toEqual(v);
    const b = Buffer.alloc(24);
    k.encode(v, b, 0);
    expect(b.toString('hex')).toBe('600000000a000000fd000001000000000000000000000000');
    expect(() => k.encode({ prefixLen: 161, data: v.data }, b, 0)).toThrow('prefixLen: must be an integer in [0, 160], got 161');
    expect(() => k.encode({ prefixLen: 8, data: { family: 300, addr: Buffer.alloc(16) } }, b, 0)).toThrow(/^data\.family: u8/);
  });
});
