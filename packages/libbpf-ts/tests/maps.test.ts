import { parseIp } from '@veil/ip';
import { describePrivileged } from '@veil/test-utils';
import { afterAll, beforeAll, expect, it } from 'vitest';
import {
  BpfObject,
  NotSupportedError,
  ObjectSpec,
  bytes,
  lpmKey,
  numPossibleCpus,
  struct,
  u16,
  u32,
  u64,
  u8,
} from '../src/index.js';
import { cidrOf, fixture, lpmV4, v4 } from './helpers.js';

// struct endpoint { __u32 ifindex; __u8 mac[6]; __u16 flags; }
const endpoint = struct(12, { ifindex: [0, u32], mac: [4, bytes(6)], flags: [10, u16] });
// struct lpm_v6_key { __u32 prefixlen; __u8 family; __u8 pad[3]; __u8 addr[16]; }
const lpmV6Key = lpmKey(struct(20, { family: [0, u8], addr: [4, bytes(16)] }));

/** 16 address bytes of IPv6 text (the custom key's addr field is bytes(16)). */
const ip6 = (text: string): Buffer => parseIp(text).bytes;

describePrivileged('BpfMap against the kernel', ['root', 'bpf'], () => {
  let obj: BpfObject;
  beforeAll(() => {
    const spec = ObjectSpec.open(fixture('maps'));
    spec.setMaxEntries('hash_map', 4096);
    expect(spec.maps.get('hash_map')?.maxEntries).toBe(4096);
    obj = spec.load();
  });
  afterAll(() => obj?.close());

  it('exposes map and program metadata', () => {
    expect(obj.maps.get('lpm_v4')).toMatchObject({ type: 'lpm_trie', keySize: 8, valueSize: 4, maxEntries: 200000, flags: 1 });
    expect(obj.maps.get('hash_map')?.maxEntries).toBe(4096);
    expect(obj.maps.get('hash_map')?.id).toBeGreaterThan(0);
    expect(obj.programs.get('classify')).toEqual({ name: 'classify', section: 'tc', type: 'sched_cls' });
    const m = obj.map('hash_map', u32, u64);
    expect(m.fd).toBeGreaterThan(2);
    expect(m.info).toMatchObject({ name: 'hash_map', type: 'hash', keySize: 4, valueSize: 8 });
    expect(m.isPerCpu).toBe(false);
  });

  it('hash: update / lookup / delete with flags', () => {
    const m = obj.map('hash_map', u32, u64);
    expect(m.lookup(7)).toBeUndefined();
    m.update(7, 70n);
    expect(m.lookup(7)).toBe(70n);
    m.update(7, 71n, 'exist');
    expect(m.lookup(7)).toBe(71n);
    m.update(8, 80, 'noexist');
    expect(m.lookup(8)).toBe(80n);
    expect(m.delete(7)).toBe(true);
    expect(m.delete(7)).toBe(false);
    expect(m.lookup(7)).toBeUndefined();
    m.delete(8);
  });

  it('hash: keys() / entries() walk every element', () => {
    const m = obj.map('hash_map', u32, u64);
    for (let i = 100; i < 150; i++) m.update(i, BigInt(i * 2));
    expect([...m.keys()].sort((a, b) => a - b)).toEqual(Array.from({ length: 50 }, (_, i) => 100 + i));
    const entries = new Map(m.entries());
    expect(entries.size).toBe(50);
    expect(entries.get(120)).toBe(240n);
    expect(new Map([...m]).get(149)).toBe(298n);
    for (const k of [...m.keys()]) m.delete(k);
    expect([...m.keys()]).toEqual([]);
  });

  it('hash: updateBatch / deleteBatch', () => {
    const m = obj.map('hash_map', u32, u64);
    expect(m.supportsBatch('update')).toBe(true);
    expect(m.supportsBatch('delete')).toBe(true);
    const entries = Array.from({ length: 1000 }, (_, i) => [i, BigInt(i) << 32n] as const);
    expect(m.updateBatch(entries)).toBe(1000);
    expect(m.lookup(999)).toBe(999n << 32n);
    expect([...m.keys()].length).toBe(1000);
    expect(m.deleteBatch(Array.from({ length: 500 }, (_, i) => i))).toBe(500);
    expect([...m.keys()].length).toBe(500);
    expect(m.lookup(10)).toBeUndefined();
    const many = m.updateMany(Array.from({ length: 10 }, (_, i) => [i, 1n] as const));
    expect(many).toEqual({ count: 10, batched: true });
    // NOEXIST cannot go through the batch op: updateMany falls back to single updates
    expect(m.updateMany([[5000, 1n]], 'noexist')).toEqual({ count: 1, batched: false });
    m.deleteBatch([...m.keys()]);
    expect([...m.keys()]).toEqual([]);
  });

  it('array: struct values, iteration over all slots, no delete batch', () => {
    const m = obj.map('array_map', u32, endpoint);
    const v = { ifindex: 3, mac: Buffer.from('020000000001', 'hex'), flags: 0x8001 };
    m.update(2, v);
    expect(m.lookup(2)).toEqual(v);
    expect(m.lookup(3)).toEqual({ ifindex: 0, mac: Buffer.alloc(6), flags: 0 });
    expect([...m.keys()]).toEqual(Array.from({ length: 16 }, (_, i) => i));
    expect(m.supportsBatch('update')).toBe(true);
    expect(m.supportsBatch('delete')).toBe(false);
    expect(
      m.updateBatch([
        [0, v],
        [15, v],
      ]),
    ).toBe(2);
    expect(m.lookup(15)).toEqual(v);
    expect(() => m.deleteBatch([0])).toThrow(NotSupportedError);
  });

  it('lpm_trie (IPv4): longest-prefix lookups, iteration, batch and updateMany', () => {
    const m = obj.map('lpm_v4', lpmV4, u32);
    m.update(v4('10.0.0.0/8'), 1);
    m.update(v4('10.1.0.0/16'), 2);
    m.update({ prefixLen: 24, data: Buffer.from([10, 1, 2, 0]) }, 3);
    expect(m.lookup(v4('10.1.2.3'))).toBe(3);
    expect(m.lookup(v4('10.1.9.9'))).toBe(2);
    expect(m.lookup(v4('10.200.0.1'))).toBe(1);
    expect(m.lookup(v4('11.0.0.1'))).toBeUndefined();
    expect([...m.keys()].map(cidrOf).sort()).toEqual(['10.0.0.0/8', '10.1.0.0/16', '10.1.2.0/24']);
    expect(m.delete(v4('10.1.0.0/16'))).toBe(true);
    expect(m.lookup(v4('10.1.9.9'))).toBe(1);

    const prefixes = Array.from({ length: 2000 }, (_, i) => [v4(`172.${16 + (i >> 8)}.${i & 255}.0/24`), i] as const);
    const batched = m.supportsBatch('update');
    const r = m.updateMany(prefixes);
    expect(r).toEqual({ count: 2000, batched });
    expect(m.lookup(v4('172.16.5.77'))).toBe(5);
    expect(m.lookup(v4('172.23.207.1'))).toBe(1999);
    if (m.supportsBatch('delete')) {
      expect(m.deleteBatch(prefixes.map(([p]) => p))).toBe(2000);
    } else {
      expect(() => m.deleteBatch(prefixes.map(([p]) => p))).toThrow(NotSupportedError);
      for (const [p] of prefixes) m.delete(p);
    }
    expect(m.lookup(v4('172.16.5.77'))).toBeUndefined();
    for (const k of [...m.keys()]) m.delete(k);
  });

  it('lpm_trie with a custom key (prefixlen + family + pad + 16-byte addr)', () => {
    const m = obj.map('lpm_v6', lpmV6Key, u32);
    // prefixLen counts family (8) + pad (24) bits before the address
    m.update({ prefixLen: 32 + 48, data: { family: 10, addr: ip6('fd00:1:2::') } }, 48);
    m.update({ prefixLen: 32 + 128, data: { family: 10, addr: ip6('fd00:1:2::5') } }, 128);
    expect(m.lookup({ prefixLen: 160, data: { family: 10, addr: ip6('fd00:1:2::5') } })).toBe(128);
    expect(m.lookup({ prefixLen: 160, data: { family: 10, addr: ip6('fd00:1:2:3::9') } })).toBe(48);
    expect(m.lookup({ prefixLen: 160, data: { family: 2, addr: ip6('fd00:1:2::5') } })).toBeUndefined();
    const keys = [...m.keys()];
    expect(keys).toHaveLength(2);
    expect(keys).toContainEqual({ prefixLen: 80, data: { family: 10, addr: ip6('fd00:1:2::') } });
    for (const k of keys) expect(m.delete(k)).toBe(true);
  });

  it('a map type without batch ops: NotSupportedError, updateMany falls back to a loop', () => {
    const m = obj.map('devmap_hash', u32, u32); // values are ifindexes: 1 is lo
    expect(m.supportsBatch('update')).toBe(false);
    expect(m.supportsBatch('delete')).toBe(false);
    const e = (() => {
      try {
        m.updateBatch([[1, 1]]);
      } catch (err) {
        return err;
      }
    })();
    expect(e).toBeInstanceOf(NotSupportedError);
    expect(e).toMatchObject({ code: 'ENOTSUPP', op: 'map.updateBatch', context: "map 'devmap_hash' (batch of 1)" });
    expect(
      m.updateMany([
        [1, 1],
        [2, 1],
        [3, 1],
      ]),
    ).toEqual({ count: 3, batched: false });
    expect(new Map(m.entries())).toEqual(
      new Map([
        [1, 1],
        [2, 1],
        [3, 1],
      ]),
    );
    expect(() => m.deleteBatch([1])).toThrow(NotSupportedError);
    for (const k of [1, 2, 3]) expect(m.delete(k)).toBe(true);
  });

  it('per-CPU hash: one slot per possible CPU (value rounded up to 8 bytes)', () => {
    const n = numPossibleCpus();
    const m = obj.map('pcpu_hash', u32, u32);
    expect(m.isPerCpu).toBe(true);
    const values = Array.from({ length: n }, (_, cpu) => 1000 + cpu);
    m.updatePerCpu(1, values);
    expect(m.lookupPerCpu(1)).toEqual(values);
    expect(m.lookupReduce(1, (acc, v) => acc + v, 0)).toBe(values.reduce((a, b) => a + b, 0));
    m.update(2, 5);
    expect(m.lookupPerCpu(2)).toEqual(new Array(n).fill(5));
    expect(m.lookupPerCpu(3)).toBeUndefined();
    expect(m.lookupReduce(3, (a, v) => a + v, 0)).toBeUndefined();
    expect(new Map(m.entriesPerCpu()).get(1)).toEqual(values);
    expect(
      m.updateBatch([
        [4, 9],
        [5, 10],
      ]),
    ).toBe(2);
    expect(m.lookupPerCpu(5)).toEqual(new Array(n).fill(10));
    expect(m.deleteBatch([1, 2, 4, 5])).toBe(4);
    expect([...m.keys()]).toEqual([]);
  });

  it('per-CPU array counters are summed with lookupReduce', () => {
    const m = obj.map('pcpu_counters', u32, u64);
    m.updatePerCpu(
      3,
      Array.from({ length: numPossibleCpus() }, (_, i) => BigInt(i + 1)),
    );
    const n = BigInt(numPossibleCpus());
    expect(m.lookupReduce(3, (a, v) => a + v, 0n)).toBe((n * (n + 1n)) / 2n);
  });
});
