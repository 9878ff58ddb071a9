import { type Codec, withField } from './codec.js';
import { ArgumentError } from './errors.js';
import { type IpPrefix, formatIPv4, formatIPv6, maskBits, parseIPv4, parseIPv6, parsePrefix } from './ip.js';

/** An IPv4 address as 4 bytes in network byte order ("10.0.0.1"). */
export const ipv4: Codec<string> = {
  size: 4,
  encode(v, buf, off) {
    const b = typeof v === 'string' ? parseIPv4(v) : undefined;
    if (!b) throw new ArgumentError('value', `'${String(v)}' is not an IPv4 address`);
    b.copy(buf, off);
  },
  decode: (buf, off) => formatIPv4(buf, off),
};

/** An IPv6 address as 16 bytes in network byte order; decodes to RFC 5952 text. */
export const ipv6: Codec<string> = {
  size: 16,
  encode(v, buf, off) {
    const b = typeof v === 'string' ? parseIPv6(v) : undefined;
    if (!b) throw new ArgumentError('value', `'${String(v)}' is not an IPv6 address`);
    b.copy(buf, off);
  },
  decode: (buf, off) => formatIPv6(buf, off),
};

/** A decoded LPM trie key: prefix length in bits plus the data it applies to. */
export interface LpmKey<T> {
  prefixLen: number;
  data: T;
}

/**
 * A generic LPM trie key:
 * ```c
 * struct bpf_lpm_trie_key { __u32 prefixlen; __u8 data[]; };  // prefixlen in host order
 * ```
 * `data` is laid out by `dataCodec`; prefixLen counts bits of `data` (0 .. 8 × dataCodec.size).
 * For a custom layout such as `{ prefixlen; __u8 family; __u8 pad[3]; __u8 addr[16] }` use
 * `lpmKey(struct(20, { family: [0, u8], addr: [4, bytes(16)] }))` and count the family/pad bits
 * in prefixLen (e.g. 32 + 64 for a /64).
 */
export function lpmKey<T, In>(dataCodec: Codec<T, In>): Codec<LpmKey<T>, LpmKey<In>> {
  const maxBits = dataCodec.size * 8;
  return {
    size: 4 + dataCodec.size,
    encode(v, buf, off) {
      if (typeof v !== 'object' || v === null) throw new ArgumentError('value', 'LPM key needs { prefixLen, data }');
      checkPrefixLen(v.prefixLen, maxBits);
      buf.writeUInt32LE(v.prefixLen, off);
      withField('data', () => dataCodec.encode(v.data, buf, off + 4));
    },
    decode(buf, off) {
      return { prefixLen: buf.readUInt32LE(off), data: dataCodec.decode(buf, off + 4) };
    },
  };
}

function checkPrefixLen(p: unknown, maxBits: number): asserts p is number {
  if (typeof p !== 'number' || !Number.isInteger(p) || p < 0 || p > maxBits) {
    throw new ArgumentError('prefixLen', `must be an integer in [0, ${maxBits}], got ${String(p)}`);
  }
}

function ipPrefixCodec(family: 4 | 6): Codec<IpPrefix, IpPrefix | string> {
  const len = family === 4 ? 4 : 16;
  const parse = family === 4 ? parseIPv4 : parseIPv6;
  const format = family === 4 ? formatIPv4 : formatIPv6;
  return {
    size: 4 + len,
    encode(v, buf, off) {
      let addr: Buffer | undefined;
      let prefixLen: number;
      if (typeof v === 'string') {
        // Fast path for the common "addr/len" text; parsePrefix produces the precise error otherwise.
        const slash = v.indexOf('/');
        addr = parse(slash >= 0 ? v.slice(0, slash) : v);
        const lenText = slash >= 0 ? v.slice(slash + 1) : undefined;
        prefixLen = lenText === undefined ? len * 8 : Number(lenText);
        if (!addr || (lenText !== undefined && !/^(0|[1-9][0-9]{0,2})$/.test(lenText)) || prefixLen > len * 8) {
          parsePrefix(v, family, 'value');
          throw new ArgumentError('value', `'${v}' is not an IPv${family} prefix`);
        }
      } else if (typeof v === 'object' && v !== null) {
        checkPrefixLen(v.prefixLen, len * 8);
        prefixLen = v.prefixLen;
        addr = typeof v.addr === 'string' ? parse(v.addr) : undefined;
        if (!addr) throw new ArgumentError('addr', `'${String(v.addr)}' is not an IPv${family} address`);
      } else {
        throw new ArgumentError('value', `IPv${family} prefix needs "a.b.c.d/n" or { addr, prefixLen }`);
      }
      buf.writeUInt32LE(prefixLen, off);
      addr.copy(buf, off + 4);
      // Canonical key: host bits are zero, so "10.0.0.5/24" and "10.0.0.0/24" are the same entry.
      maskBits(buf, off + 4, len, prefixLen);
    },
    decode(buf, off) {
      return { addr: format(buf, off + 4), prefixLen: buf.readUInt32LE(off) };
    },
  };
}

/** `struct { __u32 prefixlen; __u8 addr[4]; }` (8 bytes). Accepts "10.0.0.0/24", "10.0.0.1" or { addr, prefixLen }. */
export const lpmIPv4: Codec<IpPrefix, IpPrefix | string> = ipPrefixCodec(4);
/** `struct { __u32 prefixlen; __u8 addr[16]; }` (20 bytes). Accepts "fd00::/64", "fd00::1" or { addr, prefixLen }. */
export const lpmIPv6: Codec<IpPrefix, IpPrefix | string> = ipPrefixCodec(6);
