import { NLA_F_NESTED, NLA_F_NET_BYTEORDER, NLA_HDRLEN, NLA_TYPE_MASK, align4 } from './constants.js';
import { NetlinkDecodeError, NetlinkValidationError } from './errors.js';

/*
 * struct nlattr {            // <linux/netlink.h>
 *   __u16 nla_len;           // header + payload, WITHOUT trailing padding
 *   __u16 nla_type;          // bit 15: NLA_F_NESTED, bit 14: NLA_F_NET_BYTEORDER
 * };                         // payload follows, padded to 4 bytes
 */

const MAX_PAYLOAD = 0xffff - NLA_HDRLEN;

/** One decoded attribute. `data` is a view into the decoded buffer (not a copy). */
export interface NlAttr {
  /** Attribute type with the flag bits masked off. */
  readonly type: number;
  /** NLA_F_NESTED was set. (Many older families nest without setting it.) */
  readonly nested: boolean;
  /** NLA_F_NET_BYTEORDER was set. */
  readonly netByteOrder: boolean;
  /** Payload without header or padding. */
  readonly data: Buffer;
  /** Offset of the attribute header within the buffer passed to the decoder. */
  readonly offset: number;
}

function checkType(type: number): void {
  if (!Number.isInteger(type) || type < 0 || type > NLA_TYPE_MASK) {
    throw new NetlinkValidationError('attribute type', `must be an integer 0..${NLA_TYPE_MASK}`, type);
  }
}

function checkInt(type: number, v: number, min: number, max: number, what: string): void {
  if (!Number.isInteger(v) || v < min || v > max) {
    throw new NetlinkValidationError(`attribute ${type} value`, `must be a ${what} integer ${min}..${max}`, v);
  }
}

/**
 * Encodes one attribute: header, payload, zero padding to 4 bytes.
 * `flags` may carry NLA_F_NESTED / NLA_F_NET_BYTEORDER.
 */
export function encodeAttr(type: number, payload: Buffer | Uint8Array, flags = 0): Buffer {
  checkType(type);
  if (payload.length > MAX_PAYLOAD) {
    throw new NetlinkValidationError(`attribute ${type} payload`, `longer than ${MAX_PAYLOAD} bytes`, payload.length);
  }
  const len = NLA_HDRLEN + payload.length;
  const out = Buffer.alloc(align4(len));
  out.writeUInt16LE(len, 0);
  out.writeUInt16LE(type | (flags & (NLA_F_NESTED | NLA_F_NET_BYTEORDER)), 2);
  out.set(payload, NLA_HDRLEN);
  return out;
}

/** Parts accepted wherever attribute lists are concatenated; falsy entries are skipped (optional attrs). */
export type AttrPart = Buffer | undefined | null | false;

/** Concatenates encoded attributes, skipping `undefined`/`null`/`false` (handy for optional fields). */
export function encodeAttrs(parts: readonly AttrPart[]): Buffer {
  return Buffer.concat(parts.filter((p): p is Buffer => Buffer.isBuffer(p)));
}

/**
 * Typed attribute encoders. Each returns one padded attribute, ready to concatenate.
 * Integers are host (little-endian) order unless the name says `be`.
 */
export const attr = {
  u8(type: number, v: number): Buffer {
    checkInt(type, v, 0, 0xff, 'u8');
    return encodeAttr(type, Buffer.of(v));
  },
  u16(type: number, v: number): Buffer {
    checkInt(type, v, 0, 0xffff, 'u16');
    const b = Buffer.alloc(2);
    b.writeUInt16LE(v);
    return encodeAttr(type, b);
  },
  u32(type: number, v: number): Buffer {
    checkInt(type, v, 0, 0xffffffff, 'u32');
    const b = Buffer.alloc(4);
    b.writeUInt32LE(v);
    return encodeAttr(type, b);
  },
  s32(type: number, v: number): Buffer {
    checkInt(type, v, -0x80000000, 0x7fffffff, 's32');
    const b = Buffer.alloc(4);
    b.writeInt32LE(v);
    return encodeAttr(type, b);
  },
  u64(type: number, v: bigint | number): Buffer {
    const big = typeof v === 'bigint' ? v : Number.isSafeInteger(v) ? BigInt(v) : -1n;
    if (big < 0n || big > 0xffffffffffffffffn) {
      throw new NetlinkValidationError(`attribute ${type} value`, 'must be a u64 (bigint or safe integer)', v);
    }
    const b = Buffer.alloc(8);
    b.writeBigUInt64LE(big);
    return encodeAttr(type, b);
  },
  /** Big-endian u16 (ports). Sets no flag bit; pass `true` to also set NLA_F_NET_BYTEORDER. */
  be16(type: number, v: number, markNetByteOrder = false): Buffer {
    checkInt(type, v, 0, 0xffff, 'u16');
    const b = Buffer.alloc(2);
    b.writeUInt16BE(v);
    return encodeAttr(type, b, markNetByteOrder ? NLA_F_NET_BYTEORDER : 0);
  },
  be32(type: number, v: number, markNetByteOrder = false): Buffer {
    checkInt(type, v, 0, 0xffffffff, 'u32');
    const b = Buffer.alloc(4);
    b.writeUInt32BE(v);
    return encodeAttr(type, b, markNetByteOrder ? NLA_F_NET_BYTEORDER : 0);
  },
  /** NUL-terminated string (NLA_NUL_STRING / NLA_STRING as iproute2 sends it). */
  string(type: number, s: string): Buffer {
    if (s.includes('\0')) throw new NetlinkValidationError(`attribute ${type} value`, 'string contains NUL', s);
    return encodeAttr(type, Buffer.from(`${s}\0`, 'utf8'));
  },
  /** Opaque bytes, copied as is. */
  binary(type: number, data: Buffer | Uint8Array): Buffer {
    return encodeAttr(type, data);
  },
  /** Zero-length flag attribute (NLA_FLAG). */
  flag(type: number): Buffer {
    return encodeAttr(type, Buffer.alloc(0));
  },
  /**
   * Nested attribute containing `children` (already-encoded attributes, falsy entries skipped).
   * Sets NLA_F_NESTED unless `{ nestedFlag: false }` (a few legacy families reject the flag).
   */
  nested(type: number, children: readonly AttrPart[], opts: { nestedFlag?: boolean } = {}): Buffer {
    return encodeAttr(type, encodeAttrs(children), opts.nestedFlag === false ? 0 : NLA_F_NESTED);
  },
} as const;

/**
 * Decodes a run of attributes from `buf[offset, end)`. Every attribute is kept, known or not.
 * Up to 3 trailing bytes (missing final padding) are tolerated; anything else malformed throws
 * NetlinkDecodeError.
 */
export function decodeAttrs(buf: Buffer, offset = 0, end = buf.length): NlAttr[] {
  if (offset < 0 || end > buf.length || offset > end) {
    throw new NetlinkDecodeError(`attribute range [${offset}, ${end}) outside buffer of ${buf.length} bytes`, offset);
  }
  const out: NlAttr[] = [];
  let off = offset;
  while (end - off >= NLA_HDRLEN) {
    const len = buf.readUInt16LE(off);
    const rawType = buf.readUInt16LE(off + 2);
    if (len < NLA_HDRLEN) throw new NetlinkDecodeError(`attribute length ${len} shorter than its header`, off);
    if (off + len > end) {
      throw new NetlinkDecodeError(`attribute length ${len} runs past the end (${end - off} bytes left)`, off);
    }
    out.push({
      type: rawType & NLA_TYPE_MASK,
      nested: (rawType & NLA_F_NESTED) !== 0,
      netByteOrder: (rawType & NLA_F_NET_BYTEORDER) !== 0,
      data: buf.subarray(off + NLA_HDRLEN, off + len),
      offset: off,
    });
    off += align4(len);
  }
  return out;
}

/**
 * Read-only view over a decoded attribute list with typed accessors.
 *
 * - Accessors return `undefined` when the attribute is absent and throw NetlinkDecodeError when
 *   it is present with the wrong size.
 * - When a type occurs more than once, `get()` and the typed accessors return the LAST one (as
 *   the kernel's nla_parse does); `getAll()` returns all of them in order.
 * - Unknown attributes are never an error: they stay in `all` (see `unknown()`).
 */
export class AttrSet {
  private readonly byType = new Map<number, NlAttr[]>();

  constructor(readonly all: readonly NlAttr[]) {
    for (const a of all) {
      const list = this.byType.get(a.type);
      if (list) list.push(a);
      else this.byType.set(a.type, [a]);
    }
  }

  /** Decodes `buf[offset, end)` into an AttrSet. */
  static decode(buf: Buffer, offset = 0, end = buf.length): AttrSet {
    return new AttrSet(decodeAttrs(buf, offset, end));
  }

  has(type: number): boolean {
    return this.byType.has(type);
  }

  get(type: number): NlAttr | undefined {
    const list = this.byType.get(type);
    return list?.[list.length - 1];
  }

  getAll(type: number): readonly NlAttr[] {
    return this.byType.get(type) ?? [];
  }

  /** Attributes whose type is not in `known` (for forward compatibility / debugging). */
  unknown(known: Iterable<number>): NlAttr[] {
    const k = new Set(known);
    return this.all.filter((a) => !k.has(a.type));
  }

  private sized(type: number, size: number, what: string): Buffer | undefined {
    const a = this.get(type);
    if (!a) return undefined;
    if (a.data.length < size) {
      throw new NetlinkDecodeError(`attribute ${type} (${what}) has ${a.data.length} bytes, need ${size}`, a.offset);
    }
    return a.data;
  }

  u8(type: number): number | undefined {
    return this.sized(type, 1, 'u8')?.readUInt8(0);
  }
  u16(type: number): number | undefined {
    return this.sized(type, 2, 'u16')?.readUInt16LE(0);
  }
  u32(type: number): number | undefined {
    return this.sized(type, 4, 'u32')?.readUInt32LE(0);
  }
  s32(type: number): number | undefined {
    return this.sized(type, 4, 's32')?.readInt32LE(0);
  }
  u64(type: number): bigint | undefined {
    return this.sized(type, 8, 'u64')?.readBigUInt64LE(0);
  }
  be16(type: number): number | undefined {
    return this.sized(type, 2, 'be16')?.readUInt16BE(0);
  }
  be32(type: number): number | undefined {
    return this.sized(type, 4, 'be32')?.readUInt32BE(0);
  }
  /** String payload up to the first NUL (the NUL is optional). */
  string(type: number): string | undefined {
    const d = this.get(type)?.data;
    if (!d) return undefined;
    const nul = d.indexOf(0);
    return d.toString('utf8', 0, nul === -1 ? d.length : nul);
  }
  binary(type: number): Buffer | undefined {
    return this.get(type)?.data;
  }
  /** True when a (flag) attribute is present. */
  flag(type: number): boolean {
    return this.has(type);
  }
  /** Decodes the payload of `type` as a nested attribute list (whether or not NLA_F_NESTED is set). */
  nested(type: number): AttrSet | undefined {
    const a = this.get(type);
    if (!a) return undefined;
    return AttrSet.decode(a.data);
  }
}

/** A tree of attributes, for building or inspecting arbitrary nestings generically. */
export type AttrTree = AttrLeaf | AttrNest;
export interface AttrLeaf {
  type: number;
  data: Buffer;
}
export interface AttrNest {
  type: number;
  children: AttrTree[];
}

/** Encodes a tree; nests get NLA_F_NESTED. */
export function encodeAttrTree(nodes: readonly AttrTree[]): Buffer {
  return encodeAttrs(
    nodes.map((n) => ('children' in n ? attr.nested(n.type, [encodeAttrTree(n.children)]) : attr.binary(n.type, n.data))),
  );
}

/** Decodes a tree, descending into attributes that carry NLA_F_NESTED. */
export function decodeAttrTree(buf: Buffer, offset = 0, end = buf.length): AttrTree[] {
  return decodeAttrs(buf, offset, end).map((a) =>
    a.nested ? { type: a.type, children: decodeAttrTree(a.data) } : { type: a.type, data: a.data },
  );
}
