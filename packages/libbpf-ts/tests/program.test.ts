import { describePrivileged } from '@veil/test-utils';
import { afterEach, expect, it } from 'vitest';
import { BpfError, BpfObject, ObjectSpec, SkBuff, VerifierError, bytes, u32, u64 } from '../src/index.js';
import { fixture, ipv4Packet, lpmV4, v4 } from './helpers.js';

const TC_ACT_OK = 0;
const TC_ACT_SHOT = 2;

describePrivileged('Program.run and .rodata constants', ['root', 'bpf'], () => {
  const open: BpfObject[] = [];
  const load = (configure?: (s: ObjectSpec) => void): BpfObject => {
    const spec = ObjectSpec.open(fixture('maps'));
    configure?.(spec);
    const o = spec.load();
    open.push(o);
    return o;
  };
  afterEach(() => {
    for (const o of open.splice(0)) o.close();
  });

  it('runs a tc program: retval, packet out, skb->mark out', () => {
    const obj = load();
    obj.map('lpm_v4', lpmV4, u32).update(v4('10.9.0.0/16'), 42);
    const pkt = ipv4Packet('10.9.1.1', 64);
    const r = obj.program('classify').run({ data: pkt, ctx: SkBuff.encode() });
    expect(r.retval).toBe(TC_ACT_OK);
    expect(r.data.length).toBe(pkt.length);
    expect(r.data[22]).toBe(7); // TTL rewritten by the program
    expect(pkt[22]).toBe(64); // input untouched
    expect(r.ctx).toBeDefined();
    expect(SkBuff.decode(r.ctx as Buffer).mark).toBe(42);
    // a miss leaves the packet and mark alone
    const miss = obj.program('classify').run({ data: ipv4Packet('192.168.0.1'), ctx: SkBuff.encode({ mark: 9 }) });
    expect(miss.retval).toBe(TC_ACT_OK);
    expect(miss.data[22]).toBe(64);
    expect(SkBuff.decode(miss.ctx as Buffer).mark).toBe(9);
    expect(miss.durationNs).toBeGreaterThanOrEqual(0);
  });

  it('.rodata constants set before load change the program', () => {
    const base = load((s) => s.setConstant('cfg_mark_base', 0x1000).setConstant('cfg_drop_unknown', true));
    base.map('lpm_v4', lpmV4, u32).update(v4('10.0.0.0/8'), 5);
    const hit = base.program('classify').run({ data: ipv4Packet('10.1.1.1'), ctx: SkBuff.encode() });
    expect(SkBuff.decode(hit.ctx as Buffer).mark).toBe(0x1005);
    expect(base.program('classify').run({ data: ipv4Packet('8.8.8.8') }).retval).toBe(TC_ACT_SHOT);

    const defaults = load();
    expect(defaults.program('classify').run({ data: ipv4Packet('8.8.8.8') }).retval).toBe(TC_ACT_OK);
    expect(defaults.program('magic').run({ data: ipv4Packet('1.1.1.1') }).retval >>> 0).toBe(0x55667788);

    const magic = load((s) => s.setConstant('cfg_magic', u64, (0xfeedn << 32n) | 0xcafef00dn));
    expect(magic.program('magic').run({ data: ipv4Packet('1.1.1.1') }).retval >>> 0).toBe(0xcafef00d);
  });

  it('.rodata is readable after load through its section alias', () => {
    const obj = load((s) => s.setConstant('cfg_mark_base', 0xabc).setConstant('cfg_magic', 7n));
    expect(obj.maps.get('maps.rodata')).toMatchObject({ type: 'array', keySize: 4, valueSize: 16 });
    const ro = obj.map('.rodata', u32, bytes(16)).lookup(0) as Buffer;
    expect(ro.readUInt32LE(0)).toBe(0xabc);
    expect(ro.readBigUInt64LE(8)).toBe(7n);
  });

  it('ctx in/out: cb, priority and mark round-trip through __sk_buff', () => {
    const obj = load();
    const r = obj.program('ctx_echo').run({ data: ipv4Packet('1.2.3.4'), ctx: SkBuff.encode({ cb: [0xabcdef], priority: 6 }) });
    expect(r.retval).toBe(6);
    const out = SkBuff.decode(r.ctx as Buffer);
    expect(out.mark).toBe(0xabcdef);
    expect(out.cb[0]).toBe(0xabcdef);
    expect(out.priority).toBe(6);
  });

  it('repeat runs the program N times (counter) and reports a per-run duration', () => {
    const obj = load();
    const counters = obj.map('pcpu_counters', u32, u64);
    const r = obj.program('classify').run({ data: ipv4Packet('1.2.3.4'), repeat: 1000 });
    expect(r.retval).toBe(TC_ACT_OK);
    expect(counters.lookupReduce(0, (a, v) => a + v, 0n)).toBe(1000n);
    expect(Number.isInteger(r.durationNs)).toBe(true);
    expect(r.durationNs).toBeGreaterThan(0);
  });

  it('a program the verifier rejects → VerifierError with the verifier log', () => {
    const spec = ObjectSpec.open(fixture('rejected'));
    let err: unknown;
    try {
      spec.load();
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(VerifierError);
    expect(err).toBeInstanceOf(BpfError);
    const v = err as VerifierError;
    expect(v.program).toBe('unchecked_read');
    expect(v.op).toBe('object.load');
    expect(v.log.length).toBeGreaterThan(0);
    expect(v.log).toMatch(/invalid access to packet/);
    expect(v.log).not.toMatch(/BEGIN PROG LOAD LOG/);
    expect(v.libbpfLog).toMatch(/BEGIN PROG LOAD LOG/);
    expect(v.message).toMatch(/verifier rejected program 'unchecked_read'/);
    // the spec was consumed by the failed load
    expect(() => spec.load()).toThrow(/is closed/);
  });
});
