import { afterEach, describe, expect, it } from 'vitest';
import {
  DumpInterruptedError,
  NetlinkDecodeError,
  NetlinkError,
  NetlinkSocket,
  NetlinkTimeoutError,
  NetlinkValidationError,
  type NlMsg,
  SocketClosedError,
  attr,
  decodeNlmsgs,
  encodeNlmsg,
} from '../src/index.js';
import {
  NLMSGERR_ATTR_MSG,
  NLMSG_DONE,
  NLMSG_ERROR,
  NLMSG_OVERRUN,
  NLM_F_ACK_TLVS,
  NLM_F_CAPPED,
  NLM_F_DUMP_INTR,
  NLM_F_MULTI,
} from '../src/constants.js';
import { feedDatagram } from '../src/socket.js';

/**
 * These tests drive the real dispatcher with fake reply streams: the socket is real (an
 * unprivileged NETLINK_ROUTE socket) but its send is replaced, so the kernel never sees the
 * requests and every reply comes from the test.
 */
type SendCb = (err: Error | undefined) => void;
function fakeKernel(opts: Parameters<typeof NetlinkSocket.open>[1] = {}) {
  const sock = NetlinkSocket.open('ROUTE', opts);
  const sent: NlMsg[] = [];
  const datagrams: number[] = [];
  // With `holdSends`, sendmsg() "blocks in the kernel" until the test calls the callback (as a
  // module autoload does); otherwise it completes at once.
  const held: SendCb[] = [];
  const ctl = { holdSends: false };
  const handle = (sock as unknown as { handle: object }).handle;
  // The native method is a read-only prototype property; shadow it on the instance.
  Object.defineProperty(handle, 'sendAsync', {
    value: (b: Buffer, cb: SendCb) => {
      const msgs = decodeNlmsgs(Buffer.from(b));
      datagrams.push(msgs.length);
      sent.push(...msgs);
      if (ctl.holdSends) held.push(cb);
      else cb(undefined);
    },
  });
  const pid = sock.portId;
  const reply = (seq: number, type: number, flags: number, payload: Buffer | Buffer[]) =>
    encodeNlmsg({ type, flags, seq, pid }, payload);
  const ack = (seq: number, errno = 0, msg?: string) => {
    const e = Buffer.alloc(4);
    e.writeInt32LE(-errno);
    const hdr = encodeNlmsg({ type: 16, seq }).subarray(0, 16);
    return reply(seq, NLMSG_ERROR, NLM_F_CAPPED | (msg ? NLM_F_ACK_TLVS : 0), [
      e,
      hdr,
      msg ? attr.string(NLMSGERR_ATTR_MSG, msg) : Buffer.alloc(0),
    ]);
  };
  const done = (seq: number, flags = 0, errno = 0) => {
    const e = Buffer.alloc(4);
    e.writeInt32LE(-errno);
    return reply(seq, NLMSG_DONE, NLM_F_MULTI | flags, e);
  };
  const feed = (...bufs: Buffer[]) => feedDatagram(sock, Buffer.concat(bufs));
  return { sock, sent, datagrams, reply, ack, done, feed, held, ctl };
}

const tick = () => new Promise((r) => setImmediate(r));
let open: NetlinkSocket[] = [];
afterEach(() => {
  for (const s of open) s.close();
  open = [];
});
function k(opts?: Parameters<typeof NetlinkSocket.open>[1]) {
  const f = fakeKernel(opts);
  open.push(f.sock);
  return f;
}

describe('NetlinkSocket request/reply matching', () => {
  it('fills in seq/flags and resolves on the ACK with the replies before it', async () => {
    const { sock, sent, reply, ack, feed } = k();
    const p = sock.request({ type: 18, payload: Buffer.alloc(16) });
    expect(sent).toHaveLength(1);
    const seq = sent[0]!.seq;
    expect(sent[0]!.flags).toBe(0x05);
    expect(sent[0]!.type).toBe(18);
    feed(reply(seq, 16, 0, Buffer.alloc(16, 1)), ack(seq));
    const out = await p;
    expect(out.map((m) => m.type)).toEqual([16]);
  });

  it('a lone 36-byte ACK datagram settles its request like any other (replies kept, errors typed, strays emitted)', async () => {
    const { sock, sent, reply, ack, feed } = k();
    const ok = sock.request({ type: 18, payload: Buffer.alloc(16), operation: 'OK' });
    const bad = sock.request({ type: 18, payload: Buffer.alloc(16), operation: 'BAD' });
    const [s1, s2] = [sent[0]!.seq, sent[1]!.seq];
    expect(ack(s1)).toHaveLength(36);
    feed(reply(s1, 16, 0, Buffer.alloc(16, 1)));
    feed(ack(s1));
    expect((await ok).map((m) => m.type)).toEqual([16]);
    expect(ack(s2, 17)).toHaveLength(36);
    feed(ack(s2, 17));
    await expect(bad).rejects.toMatchObject({ errno: 17, code: 'EEXIST', operation: 'BAD' });
    const strays: NlMsg[] = [];
    sock.on('message', (m) => strays.push(m));
    feed(ack(s1));
    expect(strays.map((m) => [m.type, m.seq])).toEqual([[NLMSG_ERROR, s1]]);
  });

  it('rejects with a typed NetlinkError carrying errno, code, operation and ext-ack text', async () => {
    const { sock, sent, ack, feed } = k();
    const p = sock.request({ type: 16, flags: 0x600, payload: Buffer.alloc(16) });
    feed(ack(sent[0]!.seq, 17, 'File exists, really'));
    const err = await p.catch((e: unknown) => e);
    expect(err).toBeInstanceOf(NetlinkError);
    expect(err).toMatchObject({ errno: 17, code: 'EEXIST', operation: 'RTM_NEWLINK', extAckMessage: 'File exists, really' });
  });

  it('matches concurrent requests by seq, whatever the reply order', async () => {
    const { sock, sent, reply, ack, feed } = k();
    const a = sock.request({ type: 18, payload: Buffer.alloc(16), operation: 'A' });
    const b = sock.request({ type: 18, payload: Buffer.alloc(16), operation: 'B' });
    const [sa, sb] = [sent[0]!.seq, sent[1]!.seq];
    expect(sa).not.toBe(sb);
    feed(reply(sb, 16, 0, Buffer.from('bbbb')), ack(sb), ack(sa, 19));
    expect((await b)[0]!.payload.toString()).toBe('bbbb');
    await expect(a).rejects.toMatchObject({ code: 'ENODEV', operation: 'A' });
  });

  it('ack:false resolves on the first reply', async () => {
    const { sock, sent, reply, feed } = k();
    const p = sock.request({ type: 18, payload: Buffer.alloc(16) }, { ack: false });
    expect(sent[0]!.flags).toBe(0x01);
    feed(reply(sent[0]!.seq, 16, 0, Buffer.alloc(4)));
    expect(await p).toHaveLength(1);
  });

  it('queues requests beyond maxInFlight and sends them as ACKs come back', async () => {
    const { sock, sent, ack, feed } = k({ maxInFlight: 2 });
    const ps = [0, 1, 2, 3, 4].map(() => sock.request({ type: 18, payload: Buffer.alloc(16) }));
    expect(sent).toHaveLength(2);
    feed(ack(sent[0]!.seq));
    expect(sent).toHaveLength(3);
    feed(ack(sent[1]!.seq), ack(sent[2]!.seq));
    expect(sent).toHaveLength(5);
    feed(ack(sent[3]!.seq), ack(sent[4]!.seq));
    await Promise.all(ps);
  });

  it('requestMany packs requests into shared datagrams within the window; each settles on its own', async () => {
    const { sock, sent, datagrams, ack, feed } = k({ maxInFlight: 8 });
    const reqs = Array.from({ length: 20 }, (_, i) => ({ type: 16, payload: Buffer.alloc(16), operation: `R${i}` }));
    const all = sock.requestMany(reqs);
    expect(datagrams).toEqual([8]);
    // ACK the first 8 in one datagram (one failing): the next 8 go out together.
    feed(...sent.slice(0, 8).map((m, i) => ack(m.seq, i === 3 ? 17 : 0)));
    expect(datagrams).toEqual([8, 8]);
    feed(...sent.slice(8, 16).map((m) => ack(m.seq)));
    expect(datagrams).toEqual([8, 8, 4]);
    feed(...sent.slice(16).map((m) => ack(m.seq)));
    const results = await all;
    expect(results).toHaveLength(20);
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(19);
    expect(results[3]).toMatchObject({ status: 'rejected', reason: { code: 'EEXIST', operation: 'R3' } });
    expect(new Set(sent.map((m) => m.seq)).size).toBe(20);
  });

  it('requestMany keeps datagrams under 64 KiB', async () => {
    const { sock, sent, datagrams, ack, feed } = k({ maxInFlight: 64 });
    const all = sock.requestMany(Array.from({ length: 10 }, () => ({ type: 16, payload: Buffer.alloc(20_000) })));
    expect(datagrams).toEqual([3, 3, 3, 1]);
    feed(...sent.map((m) => ack(m.seq)));
    expect((await all).every((r) => r.status === 'fulfilled')).toBe(true);
  });

  it('times out with NetlinkTimeoutError', async () => {
    const { sock } = k();
    const err = await sock.request({ type: 18, payload: Buffer.alloc(16) }, { timeoutMs: 20 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(NetlinkTimeoutError);
    expect(err).toMatchObject({ operation: 'RTM_GETLINK', timeoutMs: 20 });
  });

  // The kernel runs a request inside sendmsg(); RTM_NEWLINK of a kind whose module is not loaded
  // waits there for modprobe, for minutes when a netns teardown holds pernet_ops_rwsem.
  it('a request stuck inside sendmsg() neither blocks the event loop nor escapes its timeout', async () => {
    const { sock, held, ctl } = k();
    ctl.holdSends = true;
    const p = sock.request({ type: 16, payload: Buffer.alloc(16) }, { timeoutMs: 30 });
    let timerRan = false;
    setTimeout(() => (timerRan = true), 1);
    const err = await p.catch((e: unknown) => e);
    expect(timerRan).toBe(true);
    expect(err).toBeInstanceOf(NetlinkTimeoutError);
    expect(err).toMatchObject({ operation: 'RTM_NEWLINK', timeoutMs: 30 });
    expect(held).toHaveLength(1);
    held[0]!(undefined); // the kernel finishes late: nothing left to settle
  });

  it('requests made while a sendmsg() is in flight go out after it, in order, in one datagram', async () => {
    const { sock, sent, datagrams, ack, feed, held, ctl } = k();
    ctl.holdSends = true;
    const p1 = sock.request({ type: 16, payload: Buffer.alloc(16) });
    const p2 = sock.request({ type: 19, payload: Buffer.alloc(16) });
    const p3 = sock.request({ type: 18, payload: Buffer.alloc(16) });
    expect(datagrams).toEqual([1]);
    ctl.holdSends = false;
    held.shift()!(undefined);
    expect(datagrams).toEqual([1, 2]);
    expect(sent.map((m) => m.type)).toEqual([16, 19, 18]);
    feed(ack(sent[0]!.seq), ack(sent[1]!.seq), ack(sent[2]!.seq));
    await expect(Promise.all([p1, p2, p3])).resolves.toEqual([[], [], []]);
  });

  it('a request that timed out while waiting behind a stuck sendmsg() is never sent', async () => {
    const { sock, sent, ack, feed, held, ctl } = k();
    ctl.holdSends = true;
    const p1 = sock.request({ type: 16, payload: Buffer.alloc(16) });
    const p2 = sock.request({ type: 19, payload: Buffer.alloc(16) }, { timeoutMs: 10 });
    await expect(p2).rejects.toBeInstanceOf(NetlinkTimeoutError);
    ctl.holdSends = false;
    held.shift()!(undefined);
    expect(sent.map((m) => m.type)).toEqual([16]);
    feed(ack(sent[0]!.seq));
    await expect(p1).resolves.toEqual([]);
  });

  it('a failed sendmsg() rejects the requests of that datagram with NetlinkSyscallError', async () => {
    const { sock, held, ctl } = k();
    ctl.holdSends = true;
    const p = sock.request({ type: 16, payload: Buffer.alloc(16) });
    const e = Object.assign(new Error('sendto failed: ENOBUFS'), { errno: 105, code: 'ENOBUFS', syscall: 'sendto' });
    held[0]!(e);
    await expect(p).rejects.toMatchObject({ name: 'NetlinkSyscallError', syscall: 'sendto', code: 'ENOBUFS' });
  });

  it('close() during a sendmsg() rejects at once; the late completion is ignored', async () => {
    const { sock, held, ctl } = k();
    ctl.holdSends = true;
    const p = sock.request({ type: 16, payload: Buffer.alloc(16) });
    sock.close();
    await expect(p).rejects.toBeInstanceOf(SocketClosedError);
    expect(() => held[0]!(undefined)).not.toThrow();
  });

  it('close() rejects pending and later requests with SocketClosedError and is idempotent', async () => {
    const { sock } = k();
    const p = sock.request({ type: 18, payload: Buffer.alloc(16) });
    sock.close();
    sock.close();
    await expect(p).rejects.toBeInstanceOf(SocketClosedError);
    await expect(sock.request({ type: 18, payload: Buffer.alloc(16) })).rejects.toBeInstanceOf(SocketClosedError);
    expect(() => sock.joinGroup(1)).toThrow(SocketClosedError);
    expect(sock.isOpen).toBe(false);
  });

  it('rejects a request whose encoding is invalid without sending', async () => {
    const { sock, sent } = k();
    await expect(sock.request({ type: 0x1ffff, payload: Buffer.alloc(0) })).rejects.toBeInstanceOf(NetlinkValidationError);
    expect(sent).toHaveLength(0);
  });
});

describe('NetlinkSocket dumps', () => {
  it('collects every multipart message until NLMSG_DONE (across datagrams)', async () => {
    const { sock, sent, reply, done, feed } = k();
    const p = sock.dump({ type: 26, payload: Buffer.alloc(12) });
    const seq = sent[0]!.seq;
    expect(sent[0]!.flags).toBe(0x301);
    feed(reply(seq, 24, NLM_F_MULTI, Buffer.alloc(12)), reply(seq, 24, NLM_F_MULTI, Buffer.alloc(12)));
    feed(reply(seq, 24, NLM_F_MULTI, Buffer.alloc(12)), done(seq));
    expect(await p).toHaveLength(3);
  });

  it('NLM_F_DUMP_INTR on any part rejects with DumpInterruptedError, never success', async () => {
    const { sock, sent, reply, done, feed } = k();
    const p = sock.dump({ type: 26, payload: Buffer.alloc(12) });
    const seq = sent[0]!.seq;
    feed(reply(seq, 24, NLM_F_MULTI, Buffer.alloc(12)), reply(seq, 24, NLM_F_MULTI | NLM_F_DUMP_INTR, Buffer.alloc(12)));
    feed(done(seq));
    const err = await p.catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DumpInterruptedError);
    expect(err).toMatchObject({ operation: 'RTM_GETROUTE', partialCount: 2 });
    expect((err as Error).message).toMatch(/incomplete/);
  });

  it('NLM_F_DUMP_INTR carried only by NLMSG_DONE also rejects', async () => {
    const { sock, sent, done, feed } = k();
    const p = sock.dump({ type: 26, payload: Buffer.alloc(12) });
    feed(done(sent[0]!.seq, NLM_F_DUMP_INTR));
    await expect(p).rejects.toBeInstanceOf(DumpInterruptedError);
  });

  it('a negative NLMSG_DONE is a NetlinkError', async () => {
    const { sock, sent, done, feed } = k();
    const p = sock.dump({ type: 26, payload: Buffer.alloc(12) });
    feed(done(sent[0]!.seq, 0, 22));
    await expect(p).rejects.toMatchObject({ name: 'NetlinkError', code: 'EINVAL' });
  });

  it('runs dumps one at a time (the kernel allows one per socket)', async () => {
    const { sock, sent, done, feed } = k();
    const d1 = sock.dump({ type: 26, payload: Buffer.alloc(12) });
    const d2 = sock.dump({ type: 18, payload: Buffer.alloc(16) });
    await tick();
    expect(sent).toHaveLength(1);
    feed(done(sent[0]!.seq));
    await d1;
    await tick();
    expect(sent).toHaveLength(2);
    expect(sent[1]!.type).toBe(18);
    feed(done(sent[1]!.seq));
    expect(await d2).toEqual([]);
  });
});

describe('NetlinkSocket events', () => {
  it('delivers multicast and unsolicited messages as "message" events', async () => {
    const { sock, reply } = k();
    const got: [number, number][] = [];
    sock.on('message', (m, g) => got.push([m.type, g]));
    feedDatagram(sock, reply(0, 16, 0, Buffer.alloc(16)), 1);
    feedDatagram(sock, reply(12345, 17, 0, Buffer.alloc(16)), 0);
    expect(got).toEqual([
      [16, 1],
      [17, 0],
    ]);
  });

  it('a notification with a pending seq on a multicast group is still an event, not a reply', async () => {
    const { sock, sent, reply, ack, feed } = k();
    const events: number[] = [];
    sock.on('message', (m) => events.push(m.type));
    const p = sock.request({ type: 16, payload: Buffer.alloc(16) });
    const seq = sent[0]!.seq;
    feedDatagram(sock, reply(seq, 16, 0, Buffer.alloc(16)), 1);
    feed(ack(seq));
    expect(await p).toEqual([]);
    expect(events).toEqual([16]);
  });

  it('NLMSG_OVERRUN and native ENOBUFS become "overrun"', () => {
    const { sock, reply } = k();
    let n = 0;
    sock.on('overrun', () => n++);
    feedDatagram(sock, reply(0, NLMSG_OVERRUN, 0, Buffer.alloc(0)), 0);
    const enobufs = Object.assign(new Error('recvmsg failed'), { errno: 105, code: 'ENOBUFS', syscall: 'recvmsg' });
    (sock as unknown as { onNativeError(e: Error): void }).onNativeError(enobufs);
    expect(n).toBe(2);
  });

  it('an undecodable datagram is an "error" event with NetlinkDecodeError', () => {
    const { sock } = k();
    const errs: Error[] = [];
    sock.on('error', (e) => errs.push(e));
    feedDatagram(sock, Buffer.from([1, 2, 3, 4, 5]));
    expect(errs[0]).toBeInstanceOf(NetlinkDecodeError);
  });
});

describe('NetlinkSocket.open validation', () => {
  it.each([
    ['protocol', () => NetlinkSocket.open('NOPE' as 'ROUTE')],
    ['protocol', () => NetlinkSocket.open(99)],
    ['netns', () => NetlinkSocket.open('ROUTE', { netns: '' })],
    ['netns', () => NetlinkSocket.open('ROUTE', { netns: -1 })],
    ['groups[1]', () => NetlinkSocket.open('ROUTE', { groups: [1, 0] })],
    ['rcvbuf', () => NetlinkSocket.open('ROUTE', { rcvbuf: -5 })],
    ['maxInFlight', () => NetlinkSocket.open('ROUTE', { maxInFlight: 0 })],
    ['timeoutMs', () => NetlinkSocket.open('ROUTE', { timeoutMs: 0 })],
  ])('rejects bad %s', (field, fn) => {
    try {
      fn();
      expect.unreachable();
    } catch (e) {
      expect(e).toBeInstanceOf(NetlinkValidationError);
      expect((e as NetlinkValidationError).field).toBe(field);
    }
  });

  it('a missing netns path is a NetlinkSyscallError naming open and ENOENT', () => {
    expect(() => NetlinkSocket.open('ROUTE', { netns: '/run/netns/veil-does-not-exist' })).toThrow(
      expect.objectContaining({ name: 'NetlinkSyscallError', syscall: 'open', code: 'ENOENT' }),
    );
  });
});
