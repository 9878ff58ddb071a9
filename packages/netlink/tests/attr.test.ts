import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  AttrSet,
  type AttrTree,
  NLA_F_NESTED,
  NetlinkDecodeError,
  NetlinkValidationError,
  attr,
  decodeAttrTree,
  decodeAttrs,
  encodeAttr,
  encodeAttrTree,
  encodeAttrs,
} from '../src/index.js';
import { NLA_F_NET_BYTEORDER } from '../src/constants.js';

const hex = (s: string) => Buffer.from(s.replace(/\s+/g, ''), 'hex');

describe('attribute encoders (bytes per <linux/netlink.h> struct nlattr)', () => {
  it('u8 pads to 4 bytes with nla_len = 5', () => {
    expect(attr.u8(7, 0xab).toString('hex')).toBe('05000700ab000000');
  });
  it('u16 / u32 / s32 / u64 are little-endian', () => {
    expect(attr.u16(1, 0x1234).toString('hex')).toBe('0600010034120000');
    expect(attr.u32(2, 0x11223344).toString('hex')).toBe('0800020044332211');
    expect(attr.s32(3, -2).toString('hex')).toBe('08000300feffffff');
    expect(attr.u64(4, 0x0102030405060708n).toString('hex')).toBe('0c0004000807060504030201');
    expect(attr.u64(4, 5).toString('hex')).toBe('0c0004000500000000000000');
  });
  it('be16/be32 are big-endian; the NET_BYTEORDER flag is opt-in', () => {
    expect(attr.be16(5, 51820).toString('hex')).toBe('06000500ca6c0000');
    expect(attr.be32(5, 0x0a000001, true).toString('hex')).toBe('080005400a000001');
  });
  it('string is NUL-terminated and padded (IFLA_IFNAME "vethcap0" as iproute2 sends it)', () => {
    expect(attr.string(3, 'vethcap0').toString('hex')).toBe('0d000300766574686361703000000000');
  });
  it('flag has an empty payload', () => {
    expect(attr.flag(9).toString('hex')).toBe('04000900');
  });
  it('nested sets NLA_F_NESTED by default and can leave it off', () => {
    const inner = attr.u32(2, 1400);
    expect(attr.nested(8, [inner]).toString('hex')).toBe('0c0008800800020078050000');
    expect(attr.nested(8, [inner], { nestedFlag: false }).toString('hex')).toBe('0c0008000800020078050000');
  });
  it('encodeAttrs skips falsy parts', () => {
    expect(encodeAttrs([attr.u8(1, 1), undefined, false, null, attr.flag(2)]).toString('hex')).toBe('050001000100000004000200');
  });
  it('rejects out-of-range values with a typed error naming the attribute', () => {
    expect(() => attr.u8(1, 256)).toThrow(NetlinkValidationError);
    expect(() => attr.u16(1, -1)).toThrow(/attribute 1 value/);
    expect(() => attr.u32(1, 1.5)).toThrow(NetlinkValidationError);
    expect(() => attr.u64(1, -1n)).toThrow(NetlinkValidationError);
    expect(() => attr.u64(1, 2 ** 60)).toThrow(NetlinkValidationError);
    expect(() => attr.string(1, 'a\0b')).toThrow(NetlinkValidationError);
    expect(() => encodeAttr(0x4000, Buffer.alloc(0))).toThrow(/attribute type/);
    expect(() => encodeAttr(1, Buffer.alloc(70000))).toThrow(NetlinkValidationError);
  });
});

describe('attribute reader', () => {
  // IFLA_LINKINFO from a real `ip link add vethcap0 type veth peer name vethcap1` request.
  const linkinfo = hex(
    '34001200 08000100 76657468 28000200 24000100 00000000 00000000 00000000 00000000 0d000300 76657468 63617031 00000000',
  );

  it('decodes a captured iproute2 IFLA_LINKINFO nest', () => {
    const top = AttrSet.decode(linkinfo);
    expect(top.all).toHaveLength(1);
    const info = top.nested(18);
    expect(info?.string(1)).toBe('veth');
    const data = info?.nested(2);
    const peer = data?.binary(1);
    expect(peer?.length).toBe(32);
    // VETH_INFO_PEER = struct ifinfomsg (16 bytes) + attributes
    expect(AttrSet.decode(peer!, 16).string(3)).toBe('vethcap1');
  });

  it('keeps unknown attributes instead of failing', () => {
    const buf = encodeAttrs([attr.u32(1, 5), attr.binary(999, Buffer.from('zz')), attr.u8(2, 9)]);
    const set = AttrSet.decode(buf);
    expect(set.u32(1)).toBe(5);
    expect(set.unknown([1, 2]).map((a) => a.type)).toEqual([999]);
    expect(set.unknown([1, 2])[0]?.data.toString()).toBe('zz');
  });

  it('masks flag bits off the type and reports them', () => {
    const buf = encodeAttrs([encodeAttr(5, Buffer.alloc(4), NLA_F_NESTED | NLA_F_NET_BYTEORDER)]);
    const [a] = decodeAttrs(buf);
    expect(a).toMatchObject({ type: 5, nested: true, netByteOrder: true, offset: 0 });
  });

  it('get() returns the last duplicate, getAll() all of them', () => {
    const set = AttrSet.decode(encodeAttrs([attr.u32(1, 1), attr.u32(1, 2)]));
    expect(set.u32(1)).toBe(2);
    expect(set.getAll(1).map((a) => a.data.readUInt32LE(0))).toEqual([1, 2]);
  });

  it('typed accessors: undefined when absent, typed error when too short', () => {
    const set = AttrSet.decode(encodeAttrs([attr.u8(1, 1)]));
    expect(set.u32(2)).toBeUndefined();
    expect(set.string(2)).toBeUndefined();
    expect(set.flag(2)).toBe(false);
    expect(() => set.u32(1)).toThrow(NetlinkDecodeError);
    expect(() => set.u64(1)).toThrow(/attribute 1 \(u64\)/);
  });

  it('string() accepts payloads with and without the NUL', () => {
    const set = AttrSet.decode(encodeAttrs([attr.binary(1, Buffer.from('abc')), attr.string(2, 'xyz')]));
    expect(set.string(1)).toBe('abc');
    expect(set.string(2)).toBe('xyz');
  });

  it('tolerates a missing final padding, rejects bad lengths with the offset', () => {
    const unpadded = attr.u8(1, 7).subarray(0, 5);
    expect(AttrSet.decode(unpadded).u8(1)).toBe(7);
    expect(() => decodeAttrs(hex('02000100'))).toThrow(NetlinkDecodeError);
    try {
      decodeAttrs(Buffer.concat([attr.u32(1, 1), hex('10000200 0000')]));
      expect.unreachable();
    } catch (e) {
      expect(e).toBeInstanceOf(NetlinkDecodeError);
      expect((e as NetlinkDecodeError).offset).toBe(8);
    }
  });
});

// Random attribute trees: leaves with random payloads, nests of random children.
const typeArb = fc.integer({ min: 0, max: 0x3fff });
const treeArb: fc.Arbitrary<AttrTree[]> = fc.letrec<{ node: AttrTree; nodes: AttrTree[] }>((tie) => ({
  node: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    fc.record({ type: typeArb, data: fc.uint8Array({ maxLength: 40 }).map((a) => Buffer.from(a)) }),
    fc.record({ type: typeArb, children: tie('nodes') }),
  ),
  nodes: fc.array(tie('node'), { maxLength: 5 }),
})).nodes;

describe('properties (fast-check)', () => {
  it('random attribute trees survive encode -> decode', () => {
    fc.assert(
      fc.property(treeArb, (tree) => {
        const bytes = encodeAttrTree(tree);
        expect(bytes.length % 4).toBe(0);
        expect(decodeAttrTree(bytes)).toEqual(tree);
      }),
      { numRuns: 500 },
    );
  });

  it('random bytes never throw anything but NetlinkDecodeError', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), (arr) => {
        const buf = Buffer.from(arr);
        try {
          const set = AttrSet.decode(buf);
          for (const a of set.all) {
            // Reading any attribute as any type either works or fails typed.
            for (const read of [
              () => set.u32(a.type),
              () => set.u64(a.type),
              () => set.string(a.type),
              () => set.nested(a.type),
            ]) {
              try {
                read();
              } catch (e) {
                if (!(e instanceof NetlinkDecodeError)) throw e;
              }
            }
          }
          decodeAttrTree(buf);
        } catch (e) {
          if (!(e instanceof NetlinkDecodeError)) throw e;
        }
      }),
      { numRuns: 2000 },
    );
  });
});
