import { EventEmitter } from 'node:events';
import {
  NETLINK_CAP_ACK,
  NETLINK_EXT_ACK,
  NETLINK_GET_STRICT_CHK,
  NLMSG_DONE,
  NLMSG_ERROR,
  NLMSG_HDRLEN,
  NLMSG_NOOP,
  NLMSG_OVERRUN,
  NLM_F_ACK,
  NLM_F_DUMP,
  NLM_F_DUMP_INTR,
  NLM_F_MULTI,
  NLM_F_REQUEST,
  Protocol,
  type ProtocolName,
} from './constants.js';
import {
  DumpInterruptedError,
  NetlinkBaseError,
  NetlinkError,
  NetlinkTimeoutError,
  NetlinkValidationError,
  SocketClosedError,
} from './errors.js';
import { type NetlinkRequest, type NlMsg, decodeDone, decodeNlmsgerr, decodeNlmsgs, encodeNlmsg } from './message.js';
import { type NativeSocketHandle, callNative, loadBinding, wrapNativeError } from './native.js';
import { operationName } from './opnames.js';

/** Options of `NetlinkSocket.open`. */
export interface NetlinkSocketOptions {
  /**
   * Network namespace to open the socket in: a path (`/run/netns/x`, `/proc/<pid>/ns/net`), a
   * name under /run/netns, or an open fd. The calling thread enters it just for socket() and is
   * always restored. Default: the caller's namespace.
   */
  netns?: string | number;
  /** Multicast groups to join (group numbers such as RTNLGRP_LINK = 1; > 32 allowed). */
  groups?: readonly number[];
  /** SO_RCVBUF in bytes (SO_RCVBUFFORCE when `rcvbufForce`, which needs CAP_NET_ADMIN). */
  rcvbuf?: number;
  rcvbufForce?: boolean;
  /** NETLINK_GET_STRICT_CHK: kernel validates dump requests strictly and honours filters. Default true. */
  strictCheck?: boolean;
  /** NETLINK_EXT_ACK: kernel attaches error text to NLMSG_ERROR. Default true. */
  extAck?: boolean;
  /** Default timeout of request()/dump() in ms (inactivity for dumps). Default 30 000. */
  timeoutMs?: number;
  /**
   * Most requests in flight at once; more are queued. Bounds how many ACKs can pile up in the
   * receive buffer (a full buffer makes the kernel drop them). Default 64.
   */
  maxInFlight?: number;
}

/** Per-call options of `request()` and `dump()`. */
export interface RequestOptions {
  /** Overrides the socket's default timeout (ms). */
  timeoutMs?: number;
  /**
   * request() only. true (default): set NLM_F_ACK and resolve on the ACK with every reply seen
   * before it. false: resolve on the first reply (or NLMSG_DONE of a multipart reply) — only
   * for requests that are known to produce a reply.
   */
  ack?: boolean;
}

/** Events of a NetlinkSocket. */
export interface NetlinkSocketEvents {
  /** A message that answers no pending request: multicast (`group` > 0) or unsolicited unicast (0). */
  message: [msg: NlMsg, group: number];
  /** The receive buffer overflowed (ENOBUFS): notifications were lost; subscribers must resync. */
  overrun: [];
  /** A receive-side failure not tied to a request (e.g. an undecodable datagram). */
  error: [err: Error];
}

interface Pending {
  kind: 'request' | 'dump';
  operation: string;
  ack: boolean;
  replies: NlMsg[];
  interrupted: boolean;
  resolve: (msgs: NlMsg[]) => void;
  reject: (err: Error) => void;
  timeoutMs: number;
  /** Date.now() after which the request times out (reset by every reply part). */
  deadline: number;
}

/** A request waiting for a slot in the in-flight window. */
interface Outgoing {
  kind: Pending['kind'];
  operation: string;
  ack: boolean;
  timeoutMs: number;
  /** Encoded message; its seq field is patched when it is sent. */
  bytes: Buffer;
  resolve: (msgs: NlMsg[]) => void;
  reject: (err: Error) => void;
}

/** Datagrams handed to the kernel in one sendmsg(), in submission order. */
interface Outbound {
  bytes: Buffer;
  entries: [number, Pending][];
  /** Dumps go alone: a dump start ends the kernel's processing of its datagram's later messages. */
  dump: boolean;
}

/** A capped success ACK: nlmsghdr (16) + int error (4) + the request's nlmsghdr (16). */
const ACK_LEN = 36;

/** Messages packed into one sendmsg() by requestMany (the kernel handles them in order). */
const MAX_BATCH_BYTES = 64 * 1024;

const DEFAULT_TIMEOUT_MS = 30_000;

function checkGroup(g: unknown, field: string): number {
  if (typeof g !== 'number' || !Number.isInteger(g) || g < 1 || g > 0xffffffff) {
    throw new NetlinkValidationError(field, 'must be a multicast group number >= 1', g);
  }
  return g;
}

/**
 * A netlink socket (AF_NETLINK, SOCK_RAW) with request/reply matching by sequence number,
 * multipart dumps and multicast events. Receiving never blocks the event loop.
 *
 * Concurrency: any number of request() calls may be in flight. Dumps on one socket are queued
 * and run one at a time, because the kernel allows only one dump per socket (EBUSY).
 */
export class NetlinkSocket extends EventEmitter<NetlinkSocketEvents> {
  /** Netlink protocol number (NETLINK_ROUTE, NETLINK_XFRM, NETLINK_GENERIC, ...). */
  readonly protocol: number;
  /** Port id the kernel assigned (nl_pid from getsockname). */
  readonly portId: number;

  private handle: NativeSocketHandle | undefined;
  private seq: number;
  private readonly pending = new Map<number, Pending>();
  private dumpChain: Promise<unknown> = Promise.resolve();
  private dumpsOutstanding = 0;
  private readonly timeoutMs: number;
  private keepAlive: boolean;
  private refed = true;
  private readonly maxInFlight: number;
  private inFlight = 0;
  private readonly waiting: Outgoing[] = [];
  // One timer for every deadline (a timer per request costs more than the request).
  private sweepTimer: NodeJS.Timeout | undefined;
  private sweepAt = Infinity;
  // While > 0, freed window slots are refilled after the whole batch of datagrams is handled,
  // so the waiting requests go out together instead of one datagram per ACK.
  private dispatching = 0;
  // sendmsg() runs off the JS thread (see sendAsync). One call at a time: what is submitted
  // meanwhile waits here and then goes out in as few datagrams as possible.
  private readonly outbound: Outbound[] = [];
  private sending = false;

  private constructor(protocol: number, handle: NativeSocketHandle, opts: NetlinkSocketOptions) {
    super();
    this.protocol = protocol;
    this.handle = handle;
    this.portId = callNative(() => handle.portId());
    this.timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    this.maxInFlight = opts.maxInFlight ?? 64;
    this.seq = Math.floor(Math.random() * 0x7fffffff) >>> 0 || 1;
    this.keepAlive = (opts.groups?.length ?? 0) > 0;
    this.updateRef();
  }

  /**
   * Opens a socket. Validates every option before any syscall.
   * @throws NetlinkValidationError for bad options, NetlinkSyscallError when a syscall fails.
   */
  static open(protocol: ProtocolName | number, opts: NetlinkSocketOptions = {}): NetlinkSocket {
    const proto = typeof protocol === 'string' ? Protocol[protocol] : protocol;
    if (typeof proto !== 'number' || !Number.isInteger(proto) || proto < 0 || proto > 31) {
      throw new NetlinkValidationError('protocol', 'must be ROUTE, XFRM, GENERIC or a protocol number 0..31', protocol);
    }
    let nsPath: string | null = null;
    let nsFd = -1;
    if (typeof opts.netns === 'string') {
      if (opts.netns.length === 0) throw new NetlinkValidationError('netns', 'must not be empty', opts.netns);
      nsPath = opts.netns.includes('/') ? opts.netns : `/run/netns/${opts.netns}`;
    } else if (typeof opts.netns === 'number') {
      if (!Number.isInteger(opts.netns) || opts.netns < 0) {
        throw new NetlinkValidationError('netns', 'fd must be a non-negative integer', opts.netns);
      }
      nsFd = opts.netns;
    } else if (opts.netns !== undefined) {
      throw new NetlinkValidationError('netns', 'must be a path, a name or an fd', opts.netns);
    }
    const groups = (opts.groups ?? []).map((g, i) => checkGroup(g, `groups[${i}]`));
    if (opts.rcvbuf !== undefined && (!Number.isInteger(opts.rcvbuf) || opts.rcvbuf <= 0 || opts.rcvbuf > 0x7fffffff)) {
      throw new NetlinkValidationError('rcvbuf', 'must be a positive integer number of bytes', opts.rcvbuf);
    }
    if (opts.maxInFlight !== undefined && (!Number.isInteger(opts.maxInFlight) || opts.maxInFlight < 1)) {
      throw new NetlinkValidationError('maxInFlight', 'must be an integer >= 1', opts.maxInFlight);
    }
    if (opts.timeoutMs !== undefined && !(opts.timeoutMs > 0)) {
      throw new NetlinkValidationError('timeoutMs', 'must be > 0', opts.timeoutMs);
    }
    // Groups 1..32 go in the bind() mask; higher ones need NETLINK_ADD_MEMBERSHIP.
    let mask = 0;
    for (const g of groups) if (g <= 32) mask = (mask | (1 << (g - 1))) >>> 0;

    let sock: NetlinkSocket | undefined;
    const native = loadBinding();
    const handle = callNative(
      () =>
        new native.NativeSocket(
          proto,
          nsPath,
          nsFd,
          mask,
          (data, lengths, groups) => sock?.onDatagrams(data, lengths, groups),
          (err) => sock?.onNativeError(err),
        ),
    );
    try {
      callNative(() => {
        for (const g of groups) if (g > 32) handle.addMembership(g);
        if (opts.rcvbuf !== undefined) handle.setRcvbuf(opts.rcvbuf, opts.rcvbufForce ?? false);
        if (opts.extAck ?? true) {
          handle.setNetlinkOption(NETLINK_EXT_ACK, 1);
          // Errors then carry only the request header, not an echo of the whole request.
          handle.setNetlinkOption(NETLINK_CAP_ACK, 1);
        }
        if ((opts.strictCheck ?? true) && proto === Protocol.ROUTE) handle.setNetlinkOption(NETLINK_GET_STRICT_CHK, 1);
      });
      sock = new NetlinkSocket(proto, handle, opts);
    } catch (e) {
      handle.close();
      throw e;
    }
    return sock;
  }

  /** True until close(). */
  get isOpen(): boolean {
    return this.handle !== undefined;
  }

  /**
   * Sends a request and resolves with its replies once the kernel ACKs it.
   * Rejects with NetlinkError (errno, code, operation, extAckMessage) on NLMSG_ERROR.
   */
  request(req: NetlinkRequest, opts: RequestOptions = {}): Promise<NlMsg[]> {
    return new Promise<NlMsg[]>((resolve, reject) => {
      this.waiting.push(this.outgoing('request', req, opts, resolve, reject));
      this.pump(false);
    });
  }

  /**
   * Sends many requests, packing them into as few datagrams as the in-flight window allows
   * (up to 64 KiB each; the kernel processes and ACKs every message in order). Each request
   * settles on its own, exactly like request(); a failure does not stop the others.
   */
  requestMany(reqs: readonly NetlinkRequest[], opts: RequestOptions = {}): Promise<PromiseSettledResult<NlMsg[]>[]> {
    // One promise for the whole batch, not one per request: at 10,000 requests the per-request
    // promises and Promise.allSettled were a large share of the time spent in the GC.
    const results = new Array<PromiseSettledResult<NlMsg[]>>(reqs.length);
    if (reqs.length === 0) return Promise.resolve(results);
    return new Promise((resolveAll) => {
      let left = reqs.length;
      const settle = (i: number, r: PromiseSettledResult<NlMsg[]>): void => {
        results[i] = r;
        if (--left === 0) resolveAll(results);
      };
      for (let i = 0; i < reqs.length; i++) {
        let o: Outgoing;
        try {
          o = this.outgoing(
            'request',
            reqs[i]!,
            opts,
            (value) => settle(i, { status: 'fulfilled', value }),
            (reason: Error) => settle(i, { status: 'rejected', reason }),
          );
        } catch (e) {
          settle(i, { status: 'rejected', reason: e });
          continue;
        }
        this.waiting.push(o);
      }
      this.pump(true);
    });
  }

  /**
   * Sends a dump request (NLM_F_DUMP) and resolves with every part up to NLMSG_DONE.
   * Rejects with DumpInterruptedError if any part carried NLM_F_DUMP_INTR, NetlinkError on error.
   */
  dump(req: NetlinkRequest, opts: RequestOptions = {}): Promise<NlMsg[]> {
    const start = () =>
      new Promise<NlMsg[]>((resolve, reject) => {
        const o = this.outgoing('dump', req, opts, resolve, reject);
        // Dumps do not take window slots: the kernel paces them by our reads.
        this.send([o]);
      });
    // Start at once when no dump is outstanding, else after the previous one settles.
    const run = this.dumpsOutstanding === 0 ? start() : this.dumpChain.then(start);
    this.dumpsOutstanding++;
    const settled = run.then(
      () => undefined,
      () => undefined,
    );
    this.dumpChain = settled;
    void settled.then(() => this.dumpsOutstanding--);
    return run;
  }

  /** Joins a multicast group (NETLINK_ADD_MEMBERSHIP). */
  joinGroup(group: number): void {
    const g = checkGroup(group, 'group');
    const h = this.live('joinGroup');
    callNative(() => h.addMembership(g));
  }

  /** Leaves a multicast group (NETLINK_DROP_MEMBERSHIP). */
  leaveGroup(group: number): void {
    const g = checkGroup(group, 'group');
    const h = this.live('leaveGroup');
    callNative(() => h.dropMembership(g));
  }

  /** Sets SO_RCVBUF (or SO_RCVBUFFORCE with `force`, needs CAP_NET_ADMIN). */
  setReceiveBuffer(bytes: number, force = false): void {
    if (!Number.isInteger(bytes) || bytes <= 0 || bytes > 0x7fffffff) {
      throw new NetlinkValidationError('bytes', 'must be a positive integer', bytes);
    }
    const h = this.live('setReceiveBuffer');
    callNative(() => h.setRcvbuf(bytes, force));
  }

  /** Keep the event loop alive while the socket is open (default when groups were given). */
  ref(): this {
    this.keepAlive = true;
    this.updateRef();
    return this;
  }

  /** Let the process exit while only this socket is open (pending requests still hold it). */
  unref(): this {
    this.keepAlive = false;
    this.updateRef();
    return this;
  }

  /** Stops receiving, closes the fd and rejects pending requests with SocketClosedError. Idempotent. */
  close(): void {
    const h = this.handle;
    if (!h) return;
    this.handle = undefined;
    h.close();
    if (this.sweepTimer) clearTimeout(this.sweepTimer);
    this.sweepTimer = undefined;
    this.sweepAt = Infinity;
    const pending = [...this.pending.values()];
    this.pending.clear();
    const waiting = this.waiting.splice(0);
    this.outbound.length = 0;
    this.inFlight = 0;
    for (const p of pending) p.reject(new SocketClosedError(p.operation));
    for (const w of waiting) w.reject(new SocketClosedError(w.operation));
  }

  private live(op: string): NativeSocketHandle {
    if (!this.handle) throw new SocketClosedError(op);
    return this.handle;
  }

  private nextSeq(): number {
    do {
      this.seq = (this.seq + 1) >>> 0;
    } while (this.seq === 0 || this.pending.has(this.seq));
    return this.seq;
  }

  private updateRef(): void {
    const want = this.keepAlive || this.pending.size > 0 || this.waiting.length > 0;
    if (!this.handle || want === this.refed) return;
    if (want) this.handle.ref();
    else this.handle.unref();
    this.refed = want;
  }

  /** Validates and encodes a request (throws synchronously into the caller's Promise). */
  private outgoing(
    kind: Pending['kind'],
    req: NetlinkRequest,
    opts: RequestOptions,
    resolve: (m: NlMsg[]) => void,
    reject: (e: Error) => void,
  ): Outgoing {
    const operation = req.operation ?? operationName(this.protocol, req.type);
    if (!this.handle) throw new SocketClosedError(operation);
    const ack = kind === 'request' ? (opts.ack ?? true) : false;
    const base = NLM_F_REQUEST | (kind === 'dump' ? NLM_F_DUMP : ack ? NLM_F_ACK : 0);
    if (opts.timeoutMs !== undefined && !(opts.timeoutMs > 0)) {
      throw new NetlinkValidationError('timeoutMs', 'must be > 0', opts.timeoutMs);
    }
    return {
      kind,
      operation,
      ack,
      timeoutMs: opts.timeoutMs ?? this.timeoutMs,
      bytes: encodeNlmsg({ type: req.type, flags: base | (req.flags ?? 0), seq: 0, pid: 0 }, req.payload),
      resolve,
      reject,
    };
  }

  /**
   * Sends waiting requests while the window has room. With `batch`, consecutive requests share
   * a datagram (requestMany, and whatever queued up behind a full window); a lone request()
   * with room in the window goes out at once in its own datagram.
   */
  private pump(batch: boolean): void {
    while (this.handle && this.waiting.length > 0 && this.inFlight < this.maxInFlight) {
      const room = this.maxInFlight - this.inFlight;
      // A batch refill waits until half the window is free (or everything waiting fits): ACKs
      // stream in while the kernel is still working through a datagram, and refilling per
      // handful of ACKs would send many tiny datagrams, each a thread hand-off and a wakeup.
      if (batch && this.inFlight > 0 && room < this.waiting.length && room < this.maxInFlight >> 1) break;
      let n = 1;
      if (batch) {
        let bytes = this.waiting[0]!.bytes.length;
        while (n < room && n < this.waiting.length && bytes + this.waiting[n]!.bytes.length <= MAX_BATCH_BYTES) {
          bytes += this.waiting[n]!.bytes.length;
          n++;
        }
      }
      this.send(this.waiting.splice(0, n));
    }
    this.updateRef();
  }

  /**
   * Registers requests and queues them as one datagram; a send failure rejects them all.
   * Deadlines start now: the time the kernel spends inside sendmsg() counts, so a request stuck
   * there (e.g. a module autoload waiting behind a netns teardown) times out like any other.
   */
  private send(batch: Outgoing[]): void {
    const h = this.handle;
    if (!h) {
      for (const o of batch) o.reject(new SocketClosedError(o.operation));
      return;
    }
    const entries: [number, Pending][] = [];
    for (const o of batch) {
      const seq = this.nextSeq();
      o.bytes.writeUInt32LE(seq, 8);
      const p: Pending = {
        kind: o.kind,
        operation: o.operation,
        ack: o.ack,
        replies: [],
        interrupted: false,
        resolve: o.resolve,
        reject: o.reject,
        timeoutMs: o.timeoutMs,
        deadline: Infinity,
      };
      this.pending.set(seq, p);
      if (o.kind === 'request') this.inFlight++;
      entries.push([seq, p]);
    }
    this.updateRef();
    for (const [, p] of entries) this.arm(p);
    const bytes = batch.length === 1 ? batch[0]!.bytes : Buffer.concat(batch.map((o) => o.bytes));
    this.outbound.push({ bytes, entries, dump: batch[0]!.kind === 'dump' });
    this.flushOutbound();
  }

  /**
   * Starts the next sendmsg() unless one is running. Request datagrams that queued up behind a
   * slow one go out together (up to MAX_BATCH_BYTES), as requestMany would have sent them.
   */
  private flushOutbound(): void {
    const h = this.handle;
    if (!h || this.sending) return;
    // A datagram whose requests all timed out while it waited is not sent: its callers were
    // told it failed, so it must not take effect later.
    while (this.outbound.length > 0 && this.outbound[0]!.entries.every(([seq, p]) => this.pending.get(seq) !== p)) {
      this.outbound.shift();
    }
    if (this.outbound.length === 0) return;
    let n = 1;
    if (!this.outbound[0]!.dump) {
      let size = this.outbound[0]!.bytes.length;
      while (n < this.outbound.length && !this.outbound[n]!.dump && size + this.outbound[n]!.bytes.length <= MAX_BATCH_BYTES) {
        size += this.outbound[n]!.bytes.length;
        n++;
      }
    }
    const group = this.outbound.splice(0, n);
    const bytes = n === 1 ? group[0]!.bytes : Buffer.concat(group.map((o) => o.bytes));
    this.sending = true;
    try {
      h.sendAsync(bytes, (err) => this.sent(h, group, err));
    } catch (e) {
      this.sending = false;
      this.sendFailed(group, wrapNativeError(e) as Error);
      this.flushOutbound();
    }
  }

  private sent(h: NativeSocketHandle, group: Outbound[], err: Error | undefined): void {
    // A socket closed meanwhile has already rejected everything it had.
    if (this.handle !== h) return;
    this.sending = false;
    if (err) this.sendFailed(group, wrapNativeError(err) as Error);
    this.flushOutbound();
  }

  /** Rejects the requests of datagrams the kernel refused (unless settled meanwhile). */
  private sendFailed(group: Outbound[], err: Error): void {
    this.dispatching++;
    try {
      for (const o of group) {
        for (const [seq, p] of o.entries) {
          if (this.pending.get(seq) !== p) continue;
          this.finish(seq, p);
          p.reject(err);
        }
      }
    } finally {
      this.dispatching--;
    }
    if (this.waiting.length > 0) this.pump(true);
  }

  private arm(p: Pending): void {
    p.deadline = Date.now() + p.timeoutMs;
    if (p.deadline < this.sweepAt) this.scheduleSweep(p.deadline);
  }

  private scheduleSweep(at: number): void {
    if (this.sweepTimer) clearTimeout(this.sweepTimer);
    this.sweepAt = at;
    this.sweepTimer = setTimeout(() => this.sweep(), Math.max(0, at - Date.now()));
    // Pending requests keep the socket handle referenced; the timer need not.
    this.sweepTimer.unref();
  }

  private sweep(): void {
    this.sweepTimer = undefined;
    this.sweepAt = Infinity;
    const now = Date.now();
    let next = Infinity;
    this.dispatching++;
    try {
      for (const [seq, p] of this.pending) {
        if (p.deadline <= now) {
          this.finish(seq, p);
          p.reject(new NetlinkTimeoutError(p.operation, p.timeoutMs));
        } else if (p.deadline < next) {
          next = p.deadline;
        }
      }
    } finally {
      this.dispatching--;
    }
    if (next < Infinity && this.handle && next < this.sweepAt) this.scheduleSweep(next);
    if (this.waiting.length > 0) this.pump(true);
  }

  private finish(seq: number, p: Pending): void {
    if (this.pending.get(seq) !== p) return;
    this.pending.delete(seq);
    if (p.kind === 'request') {
      this.inFlight--;
      // Requests queued behind the window go out in batches (see `dispatching`).
      if (this.waiting.length > 0 && this.dispatching === 0) this.pump(true);
    }
    if (this.pending.size === 0 && this.sweepTimer) {
      clearTimeout(this.sweepTimer);
      this.sweepTimer = undefined;
      this.sweepAt = Infinity;
    }
    this.updateRef();
  }

  private onNativeError(err: Error): void {
    const e = wrapNativeError(err) as Error & { code?: string };
    if (e.code === 'ENOBUFS') {
      this.emit('overrun');
      return;
    }
    this.emitError(e);
  }

  private emitError(e: Error): void {
    if (this.listenerCount('error') > 0) this.emit('error', e);
    else process.emitWarning(e);
  }

  /** Handles the datagrams of one native wakeup, in order. */
  private onDatagrams(data: Buffer, lengths: number[], groups: number[]): void {
    this.dispatching++;
    try {
      let off = 0;
      for (let i = 0; i < lengths.length; i++) {
        if (!this.handle) return;
        const len = lengths[i]!;
        this.onDatagram(data.subarray(off, off + len), groups[i] ?? 0);
        off += len;
      }
    } finally {
      this.dispatching--;
      if (this.dispatching === 0 && this.waiting.length > 0) this.pump(true);
    }
  }

  /** Handles one datagram. `group` is the multicast group (0 = unicast). */
  private onDatagram(data: Buffer, group: number): void {
    // Fast path for the commonest datagram of a batch: a lone success ACK (capped, no TLVs:
    // nlmsghdr + error 0 + the request's header = 36 bytes). It settles its request exactly as
    // dispatch() would, without decoding it into objects first.
    if (group === 0 && data.length === ACK_LEN && data.readUInt32LE(0) === ACK_LEN && data.readUInt16LE(4) === NLMSG_ERROR) {
      const seq = data.readUInt32LE(8);
      const p = this.pending.get(seq);
      if (p && data.readInt32LE(NLMSG_HDRLEN) === 0 && !(data.readUInt16LE(6) & NLM_F_DUMP_INTR)) {
        this.finish(seq, p);
        if (p.interrupted) p.reject(new DumpInterruptedError(p.operation, p.replies.length));
        else p.resolve(p.replies);
        return;
      }
    }
    let msgs: NlMsg[];
    try {
      msgs = decodeNlmsgs(data);
    } catch (e) {
      this.emitError(e as Error);
      return;
    }
    for (const msg of msgs) this.dispatch(msg, group);
  }

  /** Routes one message to its pending request, or emits it. Exposed to tests via `feed`. */
  private dispatch(msg: NlMsg, group: number): void {
    const p = group === 0 ? this.pending.get(msg.seq) : undefined;
    if (!p) {
      if (msg.type === NLMSG_OVERRUN) this.emit('overrun');
      else this.emit('message', msg, group);
      return;
    }
    const seq = msg.seq;
    try {
      if (msg.type === NLMSG_NOOP) return;
      if (msg.flags & NLM_F_DUMP_INTR) p.interrupted = true;
      if (msg.type === NLMSG_ERROR) {
        const err = decodeNlmsgerr(msg);
        this.finish(seq, p);
        if (err.errno !== 0) p.reject(new NetlinkError(err.errno, p.operation, err.extAck));
        else if (p.interrupted) p.reject(new DumpInterruptedError(p.operation, p.replies.length));
        else p.resolve(p.replies);
        return;
      }
      if (msg.type === NLMSG_DONE) {
        const done = decodeDone(msg);
        if (p.kind === 'request' && p.ack) return; // multipart reply; the ACK follows
        this.finish(seq, p);
        if (done.errno > 0) p.reject(new NetlinkError(done.errno, p.operation, done.extAck));
        else if (p.interrupted) p.reject(new DumpInterruptedError(p.operation, p.replies.length));
        else p.resolve(p.replies);
        return;
      }
      p.replies.push(msg);
      if (p.kind === 'request' && !p.ack && !(msg.flags & NLM_F_MULTI)) {
        this.finish(seq, p);
        p.resolve(p.replies);
        return;
      }
      // Inactivity deadline: long dumps stay alive while parts keep coming.
      p.deadline = Date.now() + p.timeoutMs;
    } catch (e) {
      this.finish(seq, p);
      p.reject(e instanceof NetlinkBaseError ? e : new NetlinkBaseError(String(e)));
    }
  }
}

/**
 * Test hook: feeds a datagram to a socket as if it had been received. Lets unit tests replay
 * captured or synthetic reply streams (e.g. NLM_F_DUMP_INTR) through the real dispatcher.
 * @internal
 */
export function feedDatagram(sock: NetlinkSocket, data: Buffer, group = 0): void {
  (sock as unknown as { onDatagrams(d: Buffer, l: number[], g: number[]): void }).onDatagrams(data, [data.length], [group]);
}
