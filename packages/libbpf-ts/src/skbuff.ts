import { ArgumentError } from './errors.js';

/**
 * Fields of `struct __sk_buff` (linux/bpf.h UAPI) that matter to tc programs run through
 * BPF_PROG_TEST_RUN. Offsets (bytes):
 * ```c
 * struct __sk_buff {
 *   __u32 len;             //   0
 *   __u32 pkt_type;        //   4
 *   __u32 mark;            //   8
 *   __u32 queue_mapping;   //  12
 *   __u32 protocol;        //  16
 *   __u32 vlan_present;    //  20
 *   __u32 vlan_tci;        //  24
 *   __u32 vlan_proto;      //  28
 *   __u32 priority;        //  32
 *   __u32 ingress_ifindex; //  36
 *   __u32 ifindex;         //  40
 *   __u32 tc_index;        //  44
 *   __u32 cb[5];           //  48
 *   __u32 hash;            //  68
 *   __u32 tc_classid;      //  72
 *   ...                    //  76..151 data, data_end, napi_id, socket fields, data_meta, flow_keys
 *   __u64 tstamp;          // 152
 *   __u32 wire_len;        // 160
 *   __u32 gso_segs;        // 164
 *   __bpf_md_ptr(sk);      // 168
 *   __u32 gso_size;        // 176
 *   __u8  tstamp_type;     // 180
 *   __u64 hwtstamp;        // 184
 * };                       // sizeof = 192
 * ```
 */
/**
 * Decoded `struct __sk_buff`. BPF_PROG_TEST_RUN copies back only the fields of SkBuffInput
 * (mark, priority, ingressIfindex, ifindex, cb, tstamp, wireLen, gsoSegs, gsoSize, hwtstamp);
 * the others read 0 in a test-run ctx.
 */
export interface SkBuffFields {
  len: number;
  pktType: number;
  mark: number;
  queueMapping: number;
  protocol: number;
  vlanPresent: number;
  vlanTci: number;
  vlanProto: number;
  priority: number;
  ingressIfindex: number;
  ifindex: number;
  tcIndex: number;
  cb: [number, number, number, number, number];
  hash: number;
  tcClassid: number;
  tstamp: bigint;
  wireLen: number;
  gsoSegs: number;
  gsoSize: number;
  hwtstamp: bigint;
}

/**
 * The fields BPF_PROG_TEST_RUN accepts in ctx_in; the kernel rejects (EINVAL) a ctx with any
 * other field non-zero. `ifindex` > 1 must name an existing interface of the caller's netns.
 */
export interface SkBuffInput {
  mark?: number;
  priority?: number;
  ingressIfindex?: number;
  ifindex?: number;
  /** Up to 5 words of skb->cb. */
  cb?: readonly number[];
  tstamp?: bigint;
  wireLen?: number;
  gsoSegs?: number;
  gsoSize?: number;
  hwtstamp?: bigint;
}

const offsets = {
  len: 0,
  pktType: 4,
  mark: 8,
  queueMapping: 12,
  protocol: 16,
  vlanPresent: 20,
  vlanTci: 24,
  vlanProto: 28,
  priority: 32,
  ingressIfindex: 36,
  ifindex: 40,
  tcIndex: 44,
  cb: 48,
  hash: 68,
  tcClassid: 72,
  tstamp: 152,
  wireLen: 160,
  gsoSegs: 164,
  gsoSize: 176,
  hwtstamp: 184,
} as const;

const SIZE = 192;
const u32Inputs = ['mark', 'priority', 'ingressIfindex', 'ifindex', 'wireLen', 'gsoSegs', 'gsoSize'] as const;

function putU32(buf: Buffer, field: string, off: number, v: unknown): void {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v > 0xffffffff) {
    throw new ArgumentError(field, `must be a u32, got ${String(v)}`);
  }
  buf.writeUInt32LE(v, off);
}

function putU64(buf: Buffer, field: string, off: number, v: unknown): void {
  if (typeof v !== 'bigint' || v < 0n || v >= 1n << 64n) throw new ArgumentError(field, `must be a u64 bigint, got ${String(v)}`);
  buf.writeBigUInt64LE(v, off);
}

/** Helper for `struct __sk_buff` buffers used as Program.run() ctx. */
export const SkBuff = {
  /** sizeof(struct __sk_buff) */
  size: SIZE,
  /** Byte offsets of the fields in SkBuffFields. */
  offsets,
  /** A full 192-byte ctx with the given fields set and everything else zero. */
  encode(fields: SkBuffInput = {}): Buffer {
    if (typeof fields !== 'object' || fields === null) throw new ArgumentError('ctx', 'needs an object of __sk_buff fields');
    const buf = Buffer.alloc(SIZE);
    for (const f of u32Inputs) if (fields[f] !== undefined) putU32(buf, f, offsets[f], fields[f]);
    if (fields.cb !== undefined) {
      if (!Array.isArray(fields.cb) || fields.cb.length > 5) throw new ArgumentError('cb', 'must be an array of at most 5 u32');
      fields.cb.forEach((v, i) => putU32(buf, `cb[${i}]`, offsets.cb + 4 * i, v));
    }
    if (fields.tstamp !== undefined) putU64(buf, 'tstamp', offsets.tstamp, fields.tstamp);
    if (fields.hwtstamp !== undefined) putU64(buf, 'hwtstamp', offsets.hwtstamp, fields.hwtstamp);
    return buf;
  },
  /** Reads the fields out of a ctx buffer (e.g. RunResult.ctx). */
  decode(buf: Buffer): SkBuffFields {
    if (!Buffer.isBuffer(buf) || buf.length < SIZE) {
      throw new ArgumentError(
        'ctx',
        `needs a Buffer of at least ${SIZE} bytes, got ${Buffer.isBuffer(buf) ? buf.length : typeof buf}`,
      );
    }
    const u = (o: number) => buf.readUInt32LE(o);
    return {
      len: u(offsets.len),
      pktType: u(offsets.pktType),
      mark: u(offsets.mark),
      queueMapping: u(offsets.queueMapping),
      protocol: u(offsets.protocol),
      vlanPresent: u(offsets.vlanPresent),
      vlanTci: u(offsets.vlanTci),
      vlanProto: u(offsets.vlanProto),
      priority: u(offsets.priority),
      ingressIfindex: u(offsets.ingressIfindex),
      ifindex: u(offsets.ifindex),
      tcIndex: u(offsets.tcIndex),
      cb: [0, 1, 2, 3, 4].map((i) => u(offsets.cb + 4 * i)) as SkBuffFields['cb'],
      hash: u(offsets.hash),
      tcClassid: u(offsets.tcClassid),
      tstamp: buf.readBigUInt64LE(offsets.tstamp),
      wireLen: u(offsets.wireLen),
      gsoSegs: u(offsets.gsoSegs),
      gsoSize: u(offsets.gsoSize),
      hwtstamp: buf.readBigUInt64LE(offsets.hwtstamp),
    };
  },
};
