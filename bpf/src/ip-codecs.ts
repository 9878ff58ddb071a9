import {
  type IpFailure,
  type IpFamily,
  type IpPrefix as IpBytesPrefix,
  formatIPv4,
  formatIPv6,
  maskInPlace,
  parseIPv4Into,
  parseIPv6Into,
  parsePrefix as parseIpPrefix,
} from '@veil/ip';
import { ArgumentError, type Codec } from 'libbpf-ts';

// The IP-aware map codecs: address text ↔ network-order bytes through @veil/ip, errors as
// libbpf-ts's ArgumentError (so a map operation names the field: "key: …"). libbpf-ts itself
// knows only bytes (`lpmKey(bytes(n))`).

/** An IPv4 address as 4 bytes in network byte order ("10.0.0.1"). */
export const ipv4: Codec<string> = {
  size: 4,
  encode(v, buf, off) {
    if (typeof v !== 'string' || !parseIPv4Into(v, buf, off))
      throw new ArgumentError('value', `'${String(v)}' is not an IPv4 address`);
  },
  decode: (buf, off) => formatIPv4(buf, off),
};

/** An IPv6 address as 16 bytes in network byte order; decodes to RFC 5952 text. */
export const ipv6: Codec<string> = {
  size: 16,
  encode(v, buf, off) {
    if (typeof v !== 'string' || !parseIPv6Into(v, buf, off))
      throw new ArgumentError('value', `'${String(v)}' is not an IPv6 address`);
  },
  decode: (buf, off) => formatIPv6(buf, off),
};

/** An IP prefix: address text plus prefix length in bits. */
export interface IpPrefix {
  addr: string;
  prefixLen: number;
}

function prefixFailure(field: string): IpFailure {
  return (problem, input) => {
    switch (problem.code) {
      case 'not-a-string':
        return new ArgumentError(field, `needs a string like "10.0.0.0/24", got ${typeof input}`);
      case 'wrong-family':
        return new ArgumentError(field, `'${String(input)}' is not an IPv${problem.want} prefix`);
      case 'bad-prefix-length':
        return new ArgumentError(field, `'${String(input)}' has a bad prefix length (0..${problem.max})`);
      default:
        return new ArgumentError(field, `'${String(input)}' is not an IP address or prefix`);
    }
  };
}

/** "10.0.0.0/24" or a bare address (a host prefix) as bytes; ArgumentError naming `field`. */
export function parsePrefixBytes(s: string, family: IpFamily | undefined, field: string): IpBytesPrefix {
  return parseIpPrefix(s, family === undefined ? {} : { family }, prefixFailure(field));
}

/**
 * Parses "10.0.0.0/24", "fd00::/64", or a bare address (a host prefix /32 or /128).
 * `family` restricts the accepted family. Throws ArgumentError naming `field`.
 */
export function parsePrefix(s: string, family?: IpFamily, field = 'prefix'): IpPrefix {
  const p = parsePrefixBytes(s, family, field);
  const slash = s.indexOf('/');
  return { addr: slash >= 0 ? s.slice(0, slash) : s, prefixLen: p.prefixLen };
}

function checkPrefixLen(p: unknown, maxBits: number): asserts p is number {
  if (typeof p !== 'number' || !Number.isInteger(p) || p < 0 || p > maxBits) {
    throw new ArgumentError('prefixLen', `must be an integer in [0, ${maxBits}], got ${String(p)}`);
  }
}

function ipPrefixCodec(family: IpFamily): Codec<IpPrefix, IpPrefix | string> {
  const len = family === 4 ? 4 : 16;
  const addr = family === 4 ? ipv4 : ipv6;
  const parseInto = family === 4 ? parseIPv4Into : parseIPv6Into;
  return {
    size: 4 + len,
    encode(v, buf, off) {
      let prefixLen: number;
      if (typeof v === 'string') {
        const p = parsePrefixBytes(v, family, 'value');
        prefixLen = p.prefixLen;
        p.bytes.copy(buf, off + 4);
      } else if (typeof v === 'object' && v !== null) {
        checkPrefixLen(v.prefixLen, len * 8);
        prefixLen = v.prefixLen;
        if (typeof v.addr !== 'string' || !parseInto(v.addr, buf, off + 4)) {
          throw new ArgumentError('addr', `'${String(v.addr)}' is not an IPv${family} address`);
        }
      } else {
        throw new ArgumentError('value', `IPv${family} prefix needs "a.b.c.d/n" or { addr, prefixLen }`);
      }
      buf.writeUInt32LE(prefixLen, off);
      // Canonical key: host bits are zero, so "10.0.0.5/24" and "10.0.0.0/24" are the same entry.
      maskInPlace(buf, prefixLen, off + 4, len);
    },
    decode(buf, off) {
      return { addr: addr.decode(buf, off + 4), prefixLen: buf.readUInt32LE(off) };
    },
  };
}

/**
 * `struct bpf_lpm_trie_key` with a 4-byte IPv4 address: `struct { __u32 prefixlen; __u8 addr[4]; }`
 * (8 bytes). Accepts "10.0.0.0/24", "10.0.0.1" or { addr, prefixLen }; host bits are zeroed.
 */
export const lpmIPv4: Codec<IpPrefix, IpPrefix | string> = ipPrefixCodec(4);
/** `struct { __u32 prefixlen; __u8 addr[16]; }` (20 bytes). Accepts "fd00::/64", "fd00::1" or { addr, prefixLen }. */
export const lpmIPv6: Codec<IpPrefix, IpPrefix | string> = ipPrefixCodec(6);
