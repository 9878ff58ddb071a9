import { constants } from 'node:os';
import { ArgumentError, NotFoundError, bpfError } from './errors.js';
import { native } from './native.js';
import { Program } from './program.js';

const { ENOENT, ENODEV, ENXIO } = constants.errno;

/** clsact attach point. */
export type TcDirection = 'ingress' | 'egress';

// enum bpf_tc_attach_point { BPF_TC_INGRESS = 1 << 0, BPF_TC_EGRESS = 1 << 1, ... }
const attachPoints: Record<TcDirection, number> = { ingress: 1, egress: 2 };
// BPF_TC_F_REPLACE
const TC_F_REPLACE = 1;

export interface TcAttachOptions {
  ifindex: number;
  direction: TcDirection;
  program: Program;
  /** Filter priority 1..65535; omitted: the kernel picks one (reported in TcLink.priority). */
  priority?: number;
  /** Filter handle; omitted: the kernel picks one (reported in TcLink.handle). */
  handle?: number;
  /** Network namespace file (e.g. /run/netns/<name>); the calling thread enters it for the call only. */
  netns?: string;
  /** Replace an existing filter with the same priority+handle instead of failing with EEXIST. */
  replace?: boolean;
}

/** A cls_bpf filter attached by attachTc. */
export interface TcLink {
  readonly ifindex: number;
  readonly direction: TcDirection;
  readonly priority: number;
  readonly handle: number;
  readonly netns?: string;
  /** Kernel id of the attached program. */
  readonly progId: number;
  /**
   * Deletes exactly this filter (by handle+priority): never the clsact qdisc, never other filters.
   * Idempotent; returns false when the filter was already gone.
   */
  detach(): boolean;
}

function checkIfindex(v: unknown): asserts v is number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 1 || v > 0x7fffffff) {
    throw new ArgumentError('ifindex', `must be a positive integer, got ${String(v)}`);
  }
}

function checkDirection(v: unknown): asserts v is TcDirection {
  if (v !== 'ingress' && v !== 'egress') throw new ArgumentError('direction', `must be 'ingress' or 'egress', got ${String(v)}`);
}

function checkNetns(v: unknown): asserts v is string | undefined {
  if (v !== undefined && (typeof v !== 'string' || v.length === 0))
    throw new ArgumentError('netns', 'must be a path like /run/netns/<name>');
}

function checkU(field: string, v: unknown, max: number, min = 1): asserts v is number | undefined {
  if (v !== undefined && (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max)) {
    throw new ArgumentError(field, `must be an integer in [${min}, ${max}], got ${typeof v === 'number' ? v : typeof v}`);
  }
}

function where(ifindex: number, direction: TcDirection, netns?: string): string {
  return `ifindex ${ifindex} ${direction}${netns ? ` in ${netns}` : ''}`;
}

/**
 * Attaches a sched_cls program as a direct-action cls_bpf filter on the clsact hook of an interface
 * (`tc qdisc add dev X clsact; tc filter add dev X ingress bpf da ...`). An existing clsact qdisc
 * is reused. The filter keeps the program alive after its BpfObject is closed, until detach().
 */
export function attachTc(opts: TcAttachOptions): TcLink {
  if (typeof opts !== 'object' || opts === null) throw new ArgumentError('opts', 'must be an object');
  const { ifindex, direction, program, priority, handle, netns } = opts;
  checkIfindex(ifindex);
  checkDirection(direction);
  if (!(program instanceof Program)) throw new ArgumentError('program', 'must be a Program');
  checkU('priority', priority, 0xffff);
  checkU('handle', handle, 0xffffffff);
  checkNetns(netns);
  const fd = program.fd;
  const r = native.tcAttach(
    ifindex,
    attachPoints[direction],
    fd,
    priority ?? 0,
    handle ?? 0,
    opts.replace ? TC_F_REPLACE : 0,
    netns ?? null,
  );
  if (r.err < 0) {
    const ctx = r.op === 'setns' ? `netns '${netns}'` : `${where(ifindex, direction, netns)} (program '${program.name}')`;
    throw bpfError(r.op, r.err, ctx);
  }
  const link = {
    ifindex,
    direction,
    priority: r.priority ?? 0,
    handle: r.handle ?? 0,
    progId: r.progId ?? 0,
    ...(netns !== undefined ? { netns } : {}),
  };
  let detached = false;
  return {
    ...link,
    detach(): boolean {
      if (detached) return false;
      const d = native.tcDetach(ifindex, attachPoints[direction], link.priority, link.handle, netns ?? null);
      if (d === -ENOENT || d === -ENODEV) {
        detached = true;
        return false;
      }
      if (d < 0)
        throw bpfError('tc.detach', d, `${where(ifindex, direction, netns)} prio ${link.priority} handle ${link.handle}`);
      detached = true;
      return true;
    },
  };
}

/** Query options: a filter is identified by interface, direction, priority and handle. */
export interface TcQueryOptions {
  ifindex: number;
  direction: TcDirection;
  priority: number;
  handle: number;
  netns?: string;
}

/** The program id of the cls_bpf filter at (priority, handle), or undefined when there is none (bpf_tc_query). */
export function queryTc(opts: TcQueryOptions): { progId: number } | undefined {
  if (typeof opts !== 'object' || opts === null) throw new ArgumentError('opts', 'must be an object');
  const { ifindex, direction, priority, handle, netns } = opts;
  checkIfindex(ifindex);
  checkDirection(direction);
  checkU('priority', priority, 0xffff);
  checkU('handle', handle, 0xffffffff);
  if (priority === undefined || handle === undefined)
    throw new ArgumentError(priority === undefined ? 'priority' : 'handle', 'is required');
  checkNetns(netns);
  const r = native.tcQuery(ifindex, attachPoints[direction], priority, handle, netns ?? null);
  if (r.err === -ENOENT || r.err === -ENODEV) return undefined;
  if (r.err < 0) throw bpfError('tc.query', r.err, where(ifindex, direction, netns));
  return { progId: r.progId ?? 0 };
}

/** if_nametoindex, optionally inside another network namespace. NotFoundError when there is no such interface. */
export function ifNameToIndex(name: string, netns?: string): number {
  if (typeof name !== 'string' || name.length === 0 || name.length > 15) {
    throw new ArgumentError('name', `must be an interface name of 1..15 characters, got ${String(name)}`);
  }
  checkNetns(netns);
  const r = native.ifNameToIndex(name, netns ?? null);
  if (r === -ENODEV || r === -ENXIO) throw new NotFoundError('interface', name, [], netns ?? 'the current netns');
  if (r < 0) throw bpfError('ifNameToIndex', r, netns ? `netns '${netns}'` : `'${name}'`);
  return r;
}

/** A tc filter on a clsact hook, as listed by listTc. */
export interface TcFilterInfo {
  readonly ifindex: number;
  readonly direction: TcDirection;
  readonly priority: number;
  readonly handle: number;
  /** ETH_P_* in host order (0x0003 = ETH_P_ALL, what attachTc uses). */
  readonly protocol: number;
  /** Classifier kind ("bpf" for cls_bpf). */
  readonly kind: string;
  readonly chain?: number;
  /** cls_bpf details when kind is "bpf". */
  readonly bpf?: {
    readonly progId?: number;
    /** Name the loader gave the filter (libbpf: "<prog>:[<id>]", iproute2: "<file>:[<section>]"). */
    readonly name?: string;
    /** Program tag (hex). */
    readonly tag?: string;
    readonly directAction: boolean;
  };
}

// RTM_GETTFILTER dump over NETLINK_ROUTE (`tc filter show dev X ingress`).
const NETLINK_ROUTE = 0;
const RTM_NEWTFILTER = 44;
const RTM_GETTFILTER = 46;
const NLM_F_REQUEST = 0x1;
const NLM_F_DUMP = 0x300;
// TC_H_MAKE(TC_H_CLSACT, TC_H_MIN_INGRESS / TC_H_MIN_EGRESS)
const clsactParent: Record<TcDirection, number> = { ingress: 0xfffffff2, egress: 0xfffffff3 };
const TCA_KIND = 1;
const TCA_OPTIONS = 2;
const TCA_CHAIN = 11;
const TCA_BPF_NAME = 7;
const TCA_BPF_FLAGS = 8;
const TCA_BPF_TAG = 10;
const TCA_BPF_ID = 11;
const TCA_BPF_FLAG_ACT_DIRECT = 1;

let dumpSeq = 1;

/**
 * Lists the filters on an interface's clsact hook (`tc filter show dev X ingress`), cls_bpf
 * details included. An interface without a clsact qdisc has no filters: [].
 */
export function listTc(opts: { ifindex: number; direction: TcDirection; netns?: string }): TcFilterInfo[] {
  if (typeof opts !== 'object' || opts === null) throw new ArgumentError('opts', 'must be an object');
  const { ifindex, direction, netns } = opts;
  checkIfindex(ifindex);
  checkDirection(direction);
  checkNetns(netns);
  // struct nlmsghdr { u32 len; u16 type; u16 flags; u32 seq; u32 pid; }
  // struct tcmsg { u8 family; u8 pad1; u16 pad2; s32 ifindex; u32 handle; u32 parent; u32 info; }
  const req = Buffer.alloc(16 + 20);
  req.writeUInt32LE(req.length, 0);
  req.writeUInt16LE(RTM_GETTFILTER, 4);
  req.writeUInt16LE(NLM_F_REQUEST | NLM_F_DUMP, 6);
  req.writeUInt32LE(dumpSeq++ & 0xffffffff, 8);
  req.writeInt32LE(ifindex, 16 + 4);
  req.writeUInt32LE(clsactParent[direction], 16 + 12);
  const r = native.nlDump(NETLINK_ROUTE, req, netns ?? null);
  // No clsact qdisc (EINVAL) or no such interface (ENODEV) → nothing attached.
  if (r.err === -constants.errno.EINVAL || r.err === -ENODEV) return [];
  if (r.err < 0)
    throw bpfError(
      r.op === 'setns' ? 'setns' : 'tc.list',
      r.err,
      r.op === 'setns' ? `netns '${netns}'` : where(ifindex, direction, netns),
    );
  const out: TcFilterInfo[] = [];
  const data = r.data ?? Buffer.alloc(0);
  for (let off = 0; off + 16 <= data.length;) {
    const len = data.readUInt32LE(off);
    if (len < 16 || off + len > data.length) break;
    const type = data.readUInt16LE(off + 4);
    if (type === RTM_NEWTFILTER && len >= 16 + 20) {
      const f = parseFilter(data.subarray(off + 16, off + len), direction);
      // The first entry of each priority is the classifier itself (handle 0), not a filter.
      if (f && f.handle !== 0) out.push(f);
    }
    off += (len + 3) & ~3;
  }
  return out;
}

function* attrs(buf: Buffer): Generator<{ type: number; data: Buffer }> {
  for (let off = 0; off + 4 <= buf.length;) {
    const len = buf.readUInt16LE(off);
    if (len < 4 || off + len > buf.length) return;
    yield { type: buf.readUInt16LE(off + 2) & 0x3fff, data: buf.subarray(off + 4, off + len) };
    off += (len + 3) & ~3;
  }
}

function cString(b: Buffer): string {
  const nul = b.indexOf(0);
  return b.subarray(0, nul >= 0 ? nul : b.length).toString('utf8');
}

function parseFilter(msg: Buffer, direction: TcDirection): TcFilterInfo | undefined {
  const ifindex = msg.readInt32LE(4);
  const handle = msg.readUInt32LE(8);
  const info = msg.readUInt32LE(16);
  let kind = '';
  let chain: number | undefined;
  let options: Buffer | undefined;
  for (const a of attrs(msg.subarray(20))) {
    if (a.type === TCA_KIND) kind = cString(a.data);
    else if (a.type === TCA_CHAIN && a.data.length >= 4) chain = a.data.readUInt32LE(0);
    else if (a.type === TCA_OPTIONS) options = a.data;
  }
  let bpf: TcFilterInfo['bpf'];
  if (kind === 'bpf' && options) {
    let progId: number | undefined;
    let name: string | undefined;
    let tag: string | undefined;
    let flags = 0;
    for (const a of attrs(options)) {
      if (a.type === TCA_BPF_ID && a.data.length >= 4) progId = a.data.readUInt32LE(0);
      else if (a.type === TCA_BPF_NAME) name = cString(a.data);
      else if (a.type === TCA_BPF_TAG) tag = a.data.toString('hex');
      else if (a.type === TCA_BPF_FLAGS && a.data.length >= 4) flags = a.data.readUInt32LE(0);
    }
    bpf = {
      directAction: (flags & TCA_BPF_FLAG_ACT_DIRECT) !== 0,
      ...(progId !== undefined ? { progId } : {}),
      ...(name !== undefined ? { name } : {}),
      ...(tag !== undefined ? { tag } : {}),
    };
  }
  return {
    ifindex,
    direction,
    priority: info >>> 16,
    handle,
    // tcm_info low 16 bits: protocol in network byte order
    protocol: ((info & 0xff) << 8) | ((info >>> 8) & 0xff),
    kind,
    ...(chain !== undefined ? { chain } : {}),
    ...(bpf ? { bpf } : {}),
  };
}
