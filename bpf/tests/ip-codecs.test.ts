import { roundTrip } from '@veil/test-utils';
import fc from 'fast-check';
import { ArgumentError } from 'libbpf-ts';
import { describe, expect, it } from 'vitest';
import { ipv4, ipv6, lpmIPv4, lpmIPv6, parsePrefix } from '../src/index.js';

// Moved from libbpf-ts (which now knows only bytes): the IP-aware address and LPM key codecs.
describe('IP address and LPM codecs', () => {
  it('ipv4 round-trips dotted quads in network order', () => {
    fc.assert(fc.property(fc.ipV4(), (a) => roundTrip(ipv4, a) === a));
    const b = Buffer.alloc(4);
    ipv4.encode('10.1.2.3', b, 0);
    expect([...b]).toEqual([10, 1, 2, 3]);
    for (const bad of ['10.1.2', '10.1.2.256', '010.1.2.3', 'fd00::1', '']) {
      expect(() => ipv4.encode(bad, b, 0)).toThrow(ArgumentError);
    }
  });

  it('ipv6 round-trips to the same 16 bytes and prints RFC 5952 text', () => {
    fc.assert(
      fc.property(fc.ipV6(), (a) => {
        const b1 = Buffer.alloc(16);
        ipv6.encode(a, b1, 0);
        const text = ipv6.decode(b1, 0);
        const b2 = Buffer.alloc(16);
        ipv6.encode(text, b2, 0);
        expect(b2.equals(b1)).toBe(true);
        expect(ipv6.decode(b2, 0)).toBe(text);
      }),
    );
    const b = Buffer.alloc(16);
    ipv6.encode('FD00:0:0:0:0:0:0:1', b, 0);
    expect(b.toString('hex')).toBe('fd000000000000000000000000000001');
    expect(ipv6.decode(b, 0)).toBe('fd00::1');
    ipv6.encode('::ffff:10.0.0.1', b, 0);
    expect(b.toString('hex')).toBe('00000000000000000000ffff0a000001');
    ipv6.encode('2001:db8:0:1:1:1:1:1', b, 0);
    expect(ipv6.decode(b, 0)).toBe('2001:db8:0:1:1:1:1:1');
    ipv6.encode('2001:0:0:1:0:0:0:1', b, 0);
    expect(ipv6.decode(b, 0)).toBe('2001:0:0:1::1');
    for (const bad of ['1::2::3', '1:2:3:4:5:6:7:8:9', 'g::1', '10.0.0.1', ':1::', '1::2:']) {
      expect(() => ipv6.encode(bad, b, 0)).toThrow(ArgumentError);
    }
  });

  it('lpmIPv4: struct { __u32 prefixlen; __u8 addr[4] } with prefixlen in host order, host bits masked', () => {
    expect(lpmIPv4.size).toBe(8);
    const b = Buffer.alloc(8);
    lpmIPv4.encode('10.0.0.5/24', b, 0);
    expect(b.toString('hex')).toBe('180000000a000000');
    expect(lpmIPv4.decode(b, 0)).toEqual({ addr: '10.0.0.0', prefixLen: 24 });
    lpmIPv4.encode('10.0.0.5', b, 0);
    expect(lpmIPv4.decode(b, 0)).toEqual({ addr: '10.0.0.5', prefixLen: 32 });
    lpmIPv4.encode({ addr: '172.16.255.255', prefixLen: 12 }, b, 0);
    expect(lpmIPv4.decode(b, 0)).toEqual({ addr: '172.16.0.0', prefixLen: 12 });
    fc.assert(
      fc.property(fc.ipV4(), fc.integer({ min: 0, max: 32 }), (addr, prefixLen) => {
        const out = roundTrip(lpmIPv4, { addr, prefixLen });
        expect(out.prefixLen).toBe(prefixLen);
        // decoding again is a fixed point (canonical)
        expect(roundTrip(lpmIPv4, out)).toEqual(out);
      }),
    );
    expect(() => lpmIPv4.encode('10.0.0.0/33', b, 0)).toThrow("value: '10.0.0.0/33' has a bad prefix length (0..32)");
    expect(() => lpmIPv4.encode('fd00::/8', b, 0)).toThrow("'fd00::/8' is not an IPv4 prefix");
    expect(() => lpmIPv4.encode({ addr: '10.0.0.0', prefixLen: 40 }, b, 0)).toThrow(
      'prefixLen: must be an integer in [0, 32], got 40',
    );
    expect(() => lpmIPv4.encode({ addr: 'nope', prefixLen: 8 }, b, 0)).toThrow("addr: 'nope' is not an IPv4 address");
  });

  it('lpmIPv6 (20 bytes) masks and round-trips', () => {
    expect(lpmIPv6.size).toBe(20);
    const b = Buffer.alloc(20);
    lpmIPv6.encode('fd00:1:2:3::9/48', b, 0);
    expect(b.readUInt32LE(0)).toBe(48);
    expect(lpmIPv6.decode(b, 0)).toEqual({ addr: 'fd00:1:2::', prefixLen: 48 });
    fc.assert(
      fc.property(fc.ipV6(), fc.integer({ min: 0, max: 128 }), (addr, prefixLen) => {
        const out = roundTrip(lpmIPv6, { addr, prefixLen });
        expect(roundTrip(lpmIPv6, out)).toEqual(out);
      }),
    );
  });

  it('parsePrefix', () => {
    expect(parsePrefix('10.0.0.0/8')).toEqual({ addr: '10.0.0.0', prefixLen: 8 });
    expect(parsePrefix('fd00::1')).toEqual({ addr: 'fd00::1', prefixLen: 128 });
    expect(() => parsePrefix('10.0.0.0/-1')).toThrow(ArgumentError);
    expect(() => parsePrefix('10.0.0.0/08')).toThrow(/bad prefix length/);
    expect(() => parsePrefix('x/8', undefined, 'cidr')).toThrow("cidr: 'x/8' is not an IP address or prefix");
  });
});
