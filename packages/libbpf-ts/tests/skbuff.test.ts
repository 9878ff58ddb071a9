import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ArgumentError, SkBuff } from '../src/index.js';
import { native } from '../src/native.js';

describe('SkBuff (struct __sk_buff)', () => {
  it('offsets and size match linux/bpf.h as compiled into the addon', () => {
    const { size, ...layout } = native.skbLayout;
    expect(SkBuff.size).toBe(size);
    expect(SkBuff.size).toBe(192);
    for (const [field, off] of Object.entries(layout)) {
      expect([field, SkBuff.offsets[field as keyof typeof SkBuff.offsets]]).toEqual([field, off]);
    }
    expect(Object.keys(SkBuff.offsets).sort()).toEqual(Object.keys(layout).sort());
  });

  it('encode writes only the fields BPF_PROG_TEST_RUN accepts; decode reads them back', () => {
    const u32 = fc.nat({ max: 0xffffffff });
    fc.assert(
      fc.property(
        u32,
        u32,
        u32,
        fc.array(u32, { maxLength: 5 }),
        fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }),
        (mark, priority, ifindex, cb, tstamp) => {
          const buf = SkBuff.encode({ mark, priority, ifindex, cb, tstamp });
          expect(buf.length).toBe(192);
          const f = SkBuff.decode(buf);
          expect(f.mark).toBe(mark);
          expect(f.priority).toBe(priority);
          expect(f.ifindex).toBe(ifindex);
          expect(f.cb.slice(0, cb.length)).toEqual(cb);
          expect(f.tstamp).toBe(tstamp);
          expect(f.len + f.protocol + f.tcIndex + f.hash).toBe(0);
        },
      ),
    );
    expect(SkBuff.encode({ mark: 0x11223344 }).readUInt32LE(8)).toBe(0x11223344);
    expect(SkBuff.encode().equals(Buffer.alloc(192))).toBe(true);
  });

  it('rejects bad fields with ArgumentError naming them', () => {
    expect(() => SkBuff.encode({ mark: -1 })).toThrow('mark: must be a u32, got -1');
    expect(() => SkBuff.encode({ cb: [1, 2, 3, 4, 5, 6] })).toThrow('cb: must be an array of at most 5 u32');
    expect(() => SkBuff.encode({ cb: [1, 2.5] })).toThrow('cb[1]: must be a u32, got 2.5');
    expect(() => SkBuff.encode({ tstamp: 5 as unknown as bigint })).toThrow(ArgumentError);
    expect(() => SkBuff.decode(Buffer.alloc(10))).toThrow('ctx: needs a Buffer of at least 192 bytes, got 10');
  });
});
