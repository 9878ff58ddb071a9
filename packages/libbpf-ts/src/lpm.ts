import { type Codec, withField } from './codec.js';
import { ArgumentError } from './errors.js';

// LPM trie keys over bytes only: libbpf-ts knows no IP addresses. The IP-aware key codecs
// (text ↔ bytes) live with the maps that use them, in @veil/bpf.

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
