// The TypeScript layouts (src/layouts.ts, src/trace.ts) against the C structs as the compiler laid
// them out: the BTF of the built objects. Needs `make` (npm run build -w @veil/bpf) and bpftool; no root.
import { u16, u32 } from 'libbpf-ts';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  counterLayout,
  counterValue,
  datapathConfig,
  datapathConfigLayout,
  fieldAt,
  indexKey,
  ipcacheKey,
  ipcacheKeyLayout,
  ipcacheValue,
  ipcacheValueLayout,
  objectPath,
  STRUCT_LAYOUTS,
  type StructLayout,
  StructLayoutError,
  structLayout,
  strictCidrValue,
  traceLayout,
  traceObjectPath,
  traceValue,
} from '../src/index.js';
import { Btf, type BtfType, compareLayout } from './btf.js';

const messages = (btf: Btf, layout: StructLayout) => compareLayout(btf, layout).map((m) => m.message);

describe('TypeScript layouts match the BTF of the compiled objects', () => {
  let prod: Btf;
  let trace: Btf;
  beforeAll(() => {
    prod = Btf.fromObject(objectPath());
    trace = Btf.fromObject(traceObjectPath());
  });

  it('every descriptor matches obj/veil_trace.bpf.o: struct size, every member offset and size', () => {
    expect(STRUCT_LAYOUTS.map((l) => l.name)).toEqual([
      'ipcache_key',
      'ipcache_value',
      'veil_config',
      'veil_counter',
      'veil_trace',
    ]);
    for (const layout of STRUCT_LAYOUTS) expect(messages(trace, layout), layout.name).toEqual([]);
  });

  it('the production object obj/veil.bpf.o agrees too, and carries no veil_trace', () => {
    for (const layout of STRUCT_LAYOUTS.filter((l) => l !== traceLayout)) expect(messages(prod, layout), layout.name).toEqual([]);
    expect(compareLayout(prod, traceLayout).map((m) => m.kind)).toEqual(['missing-struct']);
  });

  it('each map is declared with the C types whose descriptors its codecs use, at the codec sizes', () => {
    const maps = [
      { map: 'ipcache', key: [ipcacheKeyLayout.name, ipcacheKey.size], value: [ipcacheValueLayout.name, ipcacheValue.size] },
      { map: 'strict_cidrs', key: [ipcacheKeyLayout.name, ipcacheKey.size], value: ['__u8', strictCidrValue.size] },
      { map: 'config', key: ['__u32', indexKey.size], value: [datapathConfigLayout.name, datapathConfig.size] },
      { map: 'counters', key: ['__u32', indexKey.size], value: [counterLayout.name, counterValue.size] },
      { map: 'trace', key: ['__u32', indexKey.size], value: [traceLayout.name, traceValue.size] },
    ] as const;
    for (const m of maps) {
      const t = trace.mapTypes(m.map);
      expect([trace.nameOf(t.key), trace.sizeOf(t.key)], `${m.map} key`).toEqual(m.key);
      expect([trace.nameOf(t.value), trace.sizeOf(t.value)], `${m.map} value`).toEqual(m.value);
    }
  });

  it('each codec is exactly as large as its descriptor', () => {
    expect(ipcacheKey.size).toBe(ipcacheKeyLayout.size);
    expect(ipcacheValue.size).toBe(ipcacheValueLayout.size);
    expect(datapathConfig.size).toBe(datapathConfigLayout.size);
    expect(counterValue.size).toBe(counterLayout.size);
    expect(traceValue.size).toBe(traceLayout.size);
  });

  describe('the check catches drift (deliberately wrong descriptors against the real BTF)', () => {
    // Plain objects, not structLayout(): these must be able to describe impossible layouts.
    const wrong = (name: string, size: number, fields: Record<string, [number, number]>): StructLayout => ({
      name,
      size,
      fields: Object.fromEntries(Object.entries(fields).map(([k, [offset, len]]) => [k, { offset, size: len }])),
    });

    it('names each member whose offset differs, with both offsets', () => {
      const swapped = wrong('ipcache_value', 24, {
        node_ip: [0, 16],
        ifindex: [20, 4],
        node_id: [16, 2],
        flags: [22, 1],
        key_index: [23, 1],
      });
      expect(compareLayout(trace, swapped)).toEqual([
        {
          struct: 'ipcache_value',
          field: 'ifindex',
          kind: 'offset',
          c: 16,
          ts: 20,
          message: 'struct ipcache_value field ifindex: C offset 16 vs TS offset 20',
        },
        {
          struct: 'ipcache_value',
          field: 'node_id',
          kind: 'offset',
          c: 20,
          ts: 16,
          message: 'struct ipcache_value field node_id: C offset 20 vs TS offset 16',
        },
      ]);
    });

    it('names a struct size and a member size that differ', () => {
      const fields = Object.fromEntries(
        Object.entries(datapathConfigLayout.fields).map(([k, f]) => [k, [f.offset, f.size] as [number, number]]),
      );
      const grown = wrong('veil_config', 32, { ...fields, wg_port: [24, 4] });
      expect(messages(trace, grown)).toEqual([
        'struct veil_config: C size 28 vs TS size 32',
        'struct veil_config field wg_port: C size 2 vs TS size 4',
      ]);
    });

    it('names members present on one side only', () => {
      const renamed = wrong('ipcache_key', 24, { prefixlen: [0, 4], family: [4, 1], addr: [8, 16], zone: [5, 1] });
      expect(messages(trace, renamed)).toEqual([
        'struct ipcache_key field pad: in C (offset 5, size 3), missing from the TS descriptor',
        'struct ipcache_key field zone: in the TS descriptor (offset 5, size 1), missing from C',
      ]);
    });

    it('names a struct the object does not have', () => {
      expect(messages(trace, wrong('veil_endpoint', 8, { id: [0, 8] }))).toEqual([
        `struct veil_endpoint: not in the BTF of ${traceObjectPath()}`,
      ]);
    });
  });
});

describe('BTF reading (hand-written type lists)', () => {
  // struct s { __u32 a; const __u16 b[3]; __u8 c:4; __u8 d:4; };  (bitfields at bit 80 and 84)
  const types: BtfType[] = [
    { id: 1, kind: 'INT', name: 'unsigned int', size: 4 },
    { id: 2, kind: 'TYPEDEF', name: '__u32', type_id: 1 },
    { id: 3, kind: 'INT', name: 'unsigned short', size: 2 },
    { id: 4, kind: 'TYPEDEF', name: '__u16', type_id: 3 },
    { id: 5, kind: 'CONST', name: '(anon)', type_id: 4 },
    { id: 6, kind: 'ARRAY', name: '(anon)', type_id: 5, nr_elems: 3 },
    { id: 7, kind: 'INT', name: 'unsigned char', size: 1 },
    {
      id: 8,
      kind: 'STRUCT',
      name: 's',
      size: 12,
      members: [
        { name: 'a', type_id: 2, bits_offset: 0 },
        { name: 'b', type_id: 6, bits_offset: 32 },
        { name: 'c', type_id: 7, bits_offset: 80, bitfield_size: 4 },
        { name: 'd', type_id: 7, bits_offset: 84, bitfield_size: 4 },
      ],
    },
    { id: 9, kind: 'FWD', name: 'opaque' },
  ];
  const btf = new Btf(types, 'hand-written');

  it('sizes types through typedefs, qualifiers and arrays', () => {
    expect(btf.sizeOf(2)).toBe(4);
    expect(btf.sizeOf(5)).toBe(2);
    expect(btf.sizeOf(6)).toBe(6);
    expect(btf.nameOf(5)).toBe('__u16');
    expect(() => btf.sizeOf(9)).toThrow(/hand-written: BTF type 9: kind FWD/);
    expect(() => btf.sizeOf(42)).toThrow(/BTF type 42: no such type id/);
  });

  it('reports C bitfields, which a byte-offset descriptor cannot mirror', () => {
    const ts = structLayout('s', 12, { a: [0, 4], b: [4, 6], c: [10, 1] });
    expect(messages(btf, ts)).toEqual([
      'struct s field c: C bitfield (4 bits at bit 80) that a byte-offset descriptor cannot mirror',
      'struct s field d: C bitfield (4 bits at bit 84) that a byte-offset descriptor cannot mirror',
    ]);
  });
});

describe('structLayout / fieldAt refuse impossible descriptors', () => {
  it('rejects overlapping and out-of-bounds members, naming struct and member', () => {
    expect(() => structLayout('x', 8, { a: [0, 4], b: [2, 4] })).toThrow(
      new StructLayoutError('x', 'b', "offset 2 overlaps 'a' (ends at 4)"),
    );
    expect(() => structLayout('x', 8, { a: [0, 4], b: [6, 4] })).toThrow(/struct x\.b: \[6, 10\) does not fit in 8 bytes/);
  });

  it('rejects a codec whose size is not the member size', () => {
    expect(fieldAt(datapathConfigLayout, 'wg_port', u16)).toEqual([24, u16]);
    expect(() => fieldAt(datapathConfigLayout, 'wg_port', u32)).toThrow(
      /struct veil_config\.wg_port: member is 2 bytes, codec is 4/,
    );
  });
});
