import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { CidrIndex, parseCidr, parseIP } from '../src/util/ip.js';
import { WorkQueue } from '../src/reconciler/workqueue.js';
import { Secret, type Cidr } from '../src/index.js';
import { inspect } from 'node:util';

const c = (t: string): Cidr => {
  const r = parseCidr(t);
  if (typeof r === 'string') throw new Error(r);
  return r;
};

describe('ip', () => {
  it('parses IPv4/IPv6 and canonical CIDRs, rejecting host bits and bad lengths', () => {
    expect(parseIP('10.0.0.1')).toEqual({ family: 4, value: 0x0a000001n });
    expect(parseIP('::ffff:1.2.3.4')?.value).toBe(0xffff01020304n);
    expect(parseIP('fd00::1')?.value).toBe((0xfd00n << 112n) | 1n);
    expect(parseIP('1.2.3')).toBeUndefined();
    expect(c('fd00:0:0::/64').text).toBe('fd00::/64');
    expect(parseCidr('10.0.0.1/24')).toMatch(/host bits/);
    expect(parseCidr('10.0.0.0/40')).toMatch(/exceeds 32/);
    expect(parseCidr('10.0.0.0')).toMatch(/missing \/prefix/);
  });

  it('CidrIndex finds overlaps in both directions, per family, ignoring the owner itself', () => {
    const idx = new CidrIndex();
    idx.add(c('10.0.0.0/24'), 'a');
    idx.add(c('10.1.0.0/16'), 'b');
    idx.add(c('fd00::/64'), 'c');
    expect(idx.overlapping(c('10.0.0.128/25'), 'x')).toBe('a'); // inside a
    expect(idx.overlapping(c('10.0.0.0/8'), 'x')).toBe('a'); // contains a (and b)
    expect(idx.overlapping(c('10.1.2.0/24'), 'x')).toBe('b');
    expect(idx.overlapping(c('10.2.0.0/24'), 'x')).toBeUndefined();
    expect(idx.overlapping(c('10.0.0.0/24'), 'a')).toBeUndefined();
    expect(idx.overlapping(c('fd00::/48'), 'x')).toBe('c');
    expect(idx.overlapping(c('0.0.0.0/0'), 'x')).toBeDefined();
    idx.remove(c('10.0.0.0/24'), 'a');
    expect(idx.overlapping(c('10.0.0.0/25'), 'x')).toBeUndefined();
  });

  it('CidrIndex answers like a scan of every CIDR, through adds and removes (IPv4 and IPv6)', () => {
    // Small address spaces (the top bits vary, the rest is zero) so that overlaps are common.
    const cidrArb = fc.oneof(
      fc.tuple(fc.integer({ min: 0, max: 255 }), fc.integer({ min: 0, max: 12 })).map(([hi, len]) => {
        const net = BigInt(hi << 24) & (((1n << BigInt(len)) - 1n) << BigInt(32 - len));
        return { family: 4 as const, prefixLength: len, network: net, text: `v4 ${net}/${len}` };
      }),
      fc.tuple(fc.integer({ min: 0, max: 255 }), fc.integer({ min: 0, max: 12 })).map(([hi, len]) => {
        const net = (BigInt(hi) << 120n) & (((1n << BigInt(len)) - 1n) << BigInt(128 - len));
        return { family: 6 as const, prefixLength: len, network: net, text: `v6 ${net}/${len}` };
      }),
    );
    const owners = ['a', 'b', 'c', 'd'];
    const opArb = fc.record({ add: fc.boolean(), cidr: cidrArb, owner: fc.constantFrom(...owners) });
    const overlaps = (x: Cidr, y: Cidr): boolean => {
      if (x.family !== y.family) return false;
      const bits = BigInt(x.family === 4 ? 32 : 128);
      const shift = bits - BigInt(Math.min(x.prefixLength, y.prefixLength));
      return x.network >> shift === y.network >> shift;
    };
    fc.assert(
      fc.property(fc.array(opArb, { maxLength: 40 }), cidrArb, fc.constantFrom(...owners, 'x'), (ops, q, self) => {
        const idx = new CidrIndex();
        // The reference: family/prefix/network → owner, last add wins, remove only by its owner.
        const ref = new Map<string, { cidr: Cidr; owner: string }>();
        for (const op of ops) {
          const k = `${op.cidr.family} ${op.cidr.prefixLength} ${op.cidr.network}`;
          if (op.add) {
            idx.add(op.cidr, op.owner);
            ref.set(k, { cidr: op.cidr, owner: op.owner });
          } else {
            idx.remove(op.cidr, op.owner);
            if (ref.get(k)?.owner === op.owner) ref.delete(k);
          }
        }
        const got = idx.overlapping(q, self);
        const candidates = [...ref.values()].filter((e) => e.owner !== self && overlaps(e.cidr, q)).map((e) => e.owner);
        if (candidates.length === 0) expect(got).toBeUndefined();
        else expect(candidates).toContain(got);
      }),
      { numRuns: 500 },
    );
  });
});

describe('WorkQueue', () => {
  it('coalesces keys, re-queues a key added while processing, and backs off exponentially', async () => {
    const q = new WorkQueue({ initialRetryMs: 1, maxRetryMs: 8 });
    q.add('a');
    q.add('b');
    q.add('a');
    expect(q.length).toBe(2);
    const k = await q.get();
    expect(k).toBe('a');
    q.add('a'); // while processing: dirty
    expect(q.length).toBe(1);
    q.done('a');
    expect(q.length).toBe(2);
    expect([q.retry('x'), q.retry('x'), q.retry('x'), q.retry('x'), q.retry('x')]).toEqual([1, 2, 4, 8, 8]);
    q.forget('x');
    expect(q.attempts('x')).toBe(0);
    q.shutdown();
    expect(await q.get()).toBeUndefined();
  });

  it('idle() resolves once nothing is queued or processing', async () => {
    const q = new WorkQueue({ initialRetryMs: 1, maxRetryMs: 8 });
    q.add('a');
    let idle = false;
    const p = q.idle().then(() => (idle = true));
    const k = (await q.get())!;
    await new Promise((r) => setTimeout(r, 5));
    expect(idle).toBe(false);
    q.done(k);
    void q.get();
    await p;
    expect(idle).toBe(true);
    q.shutdown();
  });
});

describe('Secret', () => {
  it('never shows its value when serialized or inspected', () => {
    const s = new Secret('super-private');
    expect(JSON.stringify({ s })).toBe('{"s":"[REDACTED]"}');
    // eslint-disable-next-line @typescript-eslint/restrict-template-expressions -- what a template literal shows is the point
    expect(`${s}`).toBe('[REDACTED]');
    expect(inspect({ s })).not.toContain('super-private');
    expect(s.reveal()).toBe('super-private');
  });
});
