import { isIP, SocketAddress } from 'node:net';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  bigIntToIp,
  canonicalCidr,
  canonicalIp,
  describeIpProblem,
  formatIp,
  formatPrefix,
  hasHostBits,
  ipFamily,
  ipToBigInt,
  IpSyntaxError,
  isIp,
  maskBytes,
  maskInPlace,
  parseIp,
  parsePrefix,
  parsePrefixLength,
  prefixContains,
  prefixesOverlap,
  tryParseIp,
  tryParsePrefix,
  type IpProblem,
} from '../src/index.js';

/** Node's own reading of an address (its parser is libuv's inet_pton), as bytes. */
function nodeBytes(text: string): Buffer {
  const family = isIP(text) === 4 ? 'ipv4' : 'ipv6';
  const addr = new SocketAddress({ address: text, family }).address;
  if (family === 'ipv4') return Buffer.from(addr.split('.').map(Number));
  const out = Buffer.alloc(16);
  // Node may keep a dotted IPv4 tail (::0.1.0.0): turn it into two groups first.
  const v4 = /(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(addr);
  const groupsText = v4
    ? addr.slice(0, v4.index) + [((+v4[1]! << 8) | +v4[2]!).toString(16), ((+v4[3]! << 8) | +v4[4]!).toString(16)].join(':')
    : addr;
  const full = groupsText.includes('::')
    ? (() => {
        const [h, t] = groupsText.split('::') as [string, string];
        const hs = h ? h.split(':') : [];
        const ts = t ? t.split(':') : [];
        return [...hs, ...Array<string>(8 - hs.length - ts.length).fill('0'), ...ts];
      })()
    : groupsText.split(':');
  full.forEach((g, i) => out.writeUInt16BE(parseInt(g, 16), i * 2));
  return out;
}

describe('parsing', () => {
  it('reads what node:net reads, byte for byte (IPv4 and IPv6, with and without ::)', () => {
    fc.assert(
      fc.property(fc.oneof(fc.ipV4(), fc.ipV6()), (text) => {
        const ip = tryParseIp(text);
        expect(ip, text).toBeDefined();
        expect(ip!.family).toBe(isIP(text));
        expect(ip!.bytes.equals(nodeBytes(text)), text).toBe(true);
      }),
      { numRuns: 2000 },
    );
  });

  it('round-trips through the formatter', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 16, maxLength: 16 }), fc.uint8Array({ minLength: 4, maxLength: 4 }), (v6, v4) => {
        expect(tryParseIp(formatIp(v6))!.bytes.equals(Buffer.from(v6))).toBe(true);
        expect(tryParseIp(formatIp(v4))!.bytes.equals(Buffer.from(v4))).toBe(true);
      }),
    );
  });

  it('refuses what is not strictly an address', () => {
    for (const bad of [
      '',
      '1.2.3',
      '1.2.3.4.5',
      '01.2.3.4', // leading zero: octal to some parsers
      '256.0.0.1',
      '1.2.3.4 ',
      'a.b.c.d',
      '1::2::3',
      '1:2:3:4:5:6:7:8:9',
      '1:2:3:4:5:6:7::8', // '::' must stand for at least one group
      '12345::',
      'fe80::1%eth0', // zones are not addresses
      '::ffff:1.2.3',
      ':',
      'g::1',
    ]) {
      expect(tryParseIp(bad), bad).toBeUndefined();
      expect(isIp(bad), bad).toBe(false);
    }
    expect(ipFamily('::ffff:10.0.0.1')).toBe(6);
    expect(ipFamily('10.0.0.1')).toBe(4);
    expect(ipFamily(42)).toBeUndefined();
  });

  it('parses an embedded IPv4 tail', () => {
    expect(formatIp(parseIp('::ffff:192.0.2.1').bytes)).toBe('::ffff:c000:201');
    expect(formatIp(parseIp('64:ff9b::10.0.0.1').bytes)).toBe('64:ff9b::a00:1');
  });
});

describe('formatting (RFC 5952)', () => {
  it.each([
    ['2001:0db8:0000:0000:0000:0000:0000:0001', '2001:db8::1'],
    ['2001:db8:0:1:1:1:1:1', '2001:db8:0:1:1:1:1:1'], // a single zero group stays
    ['2001:0:0:1:0:0:0:1', '2001:0:0:1::1'], // the longest run wins
    ['2001:db8:0:0:1:0:0:1', '2001:db8::1:0:0:1'], // the first of equal runs wins
    ['0:0:0:0:0:0:0:0', '::'],
    ['FD00::ABCD', 'fd00::abcd'],
  ])('%s → %s', (input, want) => {
    expect(canonicalIp(input)).toBe(want);
  });

  it('refuses byte strings that are no address', () => {
    expect(() => formatIp(new Uint8Array(5))).toThrow(RangeError);
  });
});

describe('prefixes', () => {
  it('keeps, clears or rejects host bits as asked', () => {
    expect(formatPrefix(parsePrefix('10.0.0.1/24'))).toBe('10.0.0.1/24');
    expect(formatPrefix(parsePrefix('10.0.0.1/24', { hostBits: 'clear' }))).toBe('10.0.0.0/24');
    expect(() => parsePrefix('10.244.1.1/16', { hostBits: 'reject' })).toThrow('did you mean 10.244.0.0/16?');
    expect(canonicalCidr('fd00:0:0:1::5/64')).toBe('fd00:0:0:1::/64');
    expect(canonicalCidr('10.1.2.3')).toBe('10.1.2.3/32');
  });

  it('names each problem', () => {
    const problems: [unknown, object, IpProblem['code']][] = [
      [7, {}, 'not-a-string'],
      ['10.0.0/8', {}, 'bad-address'],
      ['10.0.0.0/33', {}, 'bad-prefix-length'],
      ['10.0.0.0/08', {}, 'bad-prefix-length'],
      ['fd00::/129', {}, 'bad-prefix-length'],
      ['10.0.0.0', { allowBare: false }, 'missing-prefix-length'],
      ['fd00::/64', { family: 4 }, 'wrong-family'],
    ];
    for (const [input, options, code] of problems) {
      let caught: unknown;
      try {
        parsePrefix(input, options);
      } catch (err) {
        caught = err;
      }
      expect(caught, String(input)).toBeInstanceOf(IpSyntaxError);
      expect((caught as IpSyntaxError).problem.code).toBe(code);
      expect((caught as IpSyntaxError).message).toBe(describeIpProblem((caught as IpSyntaxError).problem, input));
      expect(tryParsePrefix(String(input), options)).toBeUndefined();
    }
    expect(describeIpProblem({ code: 'bad-prefix-length', max: 32 }, '10.0.0.0/33')).toBe(
      '"10.0.0.0/33": prefix length must be 0..32',
    );
  });

  it('reads a prefix length strictly (no sign, no leading zero, at most 3 digits)', () => {
    for (let n = 0; n <= 128; n++) expect(parsePrefixLength(String(n))).toBe(n);
    expect(parsePrefixLength('999')).toBe(999);
    for (const bad of ['', '08', '00', '-1', '+8', '1000', '8 ', ' 8', '1e1', '0x8', 'x'])
      expect(parsePrefixLength(bad), bad).toBe(-1);
  });

  it('raises the caller’s own error through the fail factory', () => {
    class FieldError extends Error {
      constructor(
        readonly field: string,
        problem: IpProblem,
      ) {
        super(`${field}: ${problem.code}`);
      }
    }
    expect(() => parsePrefix('x/1', {}, (p) => new FieldError('spec.podCIDRs[0]', p))).toThrow(
      new FieldError('spec.podCIDRs[0]', { code: 'bad-address' }),
    );
    expect(() => parseIp('x', (p) => new FieldError('address', p))).toThrow('address: bad-address');
  });

  it('masks, detects host bits and answers containment', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 16, maxLength: 16 }), fc.integer({ min: 0, max: 128 }), (bytes, len) => {
        const net = maskBytes(bytes, len);
        expect(hasHostBits(net, len)).toBe(false);
        const big = ipToBigInt(bytes);
        const mask = len === 0 ? 0n : ((1n << BigInt(len)) - 1n) << BigInt(128 - len);
        expect(ipToBigInt(net)).toBe(big & mask);
        expect(hasHostBits(bytes, len)).toBe((big & ~mask & ((1n << 128n) - 1n)) !== 0n);
        expect(bigIntToIp(6, big).equals(Buffer.from(bytes))).toBe(true);
        const inPlace = Buffer.from(bytes);
        maskInPlace(inPlace, len);
        expect(inPlace.equals(net)).toBe(true);
      }),
    );
    const p8 = parsePrefix('10.0.0.0/8');
    const p24 = parsePrefix('10.1.2.0/24');
    expect(prefixContains(p8, p24)).toBe(true);
    expect(prefixContains(p24, p8)).toBe(false);
    expect(prefixesOverlap(p24, p8)).toBe(true);
    expect(prefixesOverlap(p24, parsePrefix('10.1.3.0/24'))).toBe(false);
    expect(prefixesOverlap(p8, parsePrefix('::/0'))).toBe(false);
  });
});
