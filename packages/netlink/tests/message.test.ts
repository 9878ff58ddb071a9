import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import {
  NetlinkDecodeError,
  NetlinkError,
  NetlinkValidationError,
  attr,
  decodeDone,
  decodeNlmsgerr,
  decodeNlmsgs,
  encodeNlmsg,
  errnoCode,
} from '../src/index.js';
import {
  NLMSGERR_ATTR_MSG,
  NLMSGERR_ATTR_OFFS,
  NLMSG_DONE,
  NLMSG_ERROR,
  NLM_F_ACK,
  NLM_F_ACK_TLVS,
  NLM_F_CAPPED,
  NLM_F_CREATE,
  NLM_F_EXCL,
  NLM_F_MULTI,
  NLM_F_REQUEST,
  NETLINK_ROUTE,
  NETLINK_XFRM,
  NETLINK_GENERIC,
} from '../src/constants.js';
import { errnoNumber } from '../src/errno.js';
import { operationName } from '../src/opnames.js';

const hex = (s: string) => Buffer.from(s.replace(/\s+/g, ''), 'hex');

describe('nlmsghdr', () => {
  it('encodes the header of `ip link set vethcap0 up` byte for byte', () => {
    // captured with strace from iproute2 6.1: RTM_NEWLINK, REQUEST|ACK, seq 0x6b02d10d
    const golden = hex('20000000 1000 0500 0dd1026b 00000000 00000000 03000000 01000000 01000000');
    const ifi = hex('00000000 03000000 01000000 01000000');
    expect(encodeNlmsg({ type: 16, flags: NLM_F_REQUEST | NLM_F_ACK, seq: 0x6b02d10d }, ifi)).toEqual(golden);
  });

  it('pads to 4 bytes but nlmsg_len excludes the padding', () => {
    const m = encodeNlmsg({ type: 0x20 }, [Buffer.of(1, 2, 3)]);
    expect(m.length).toBe(20);
    expect(m.readUInt32LE(0)).toBe(19);
  });

  it('writes every byte of a message from several parts: the padding is zero even when the buffer pool held garbage', () => {
    // encodeNlmsg takes its buffer from Node's pool (allocUnsafe): leave 0xff bytes behind there first.
    for (let i = 0; i < 64; i++) Buffer.allocUnsafe(64).fill(0xff);
    const m = encodeNlmsg({ type: 16, flags: 5, seq: 7, pid: 9 }, [Buffer.from([1, 2]), Buffer.from([3]), Buffer.alloc(0)]);
    expect([...m]).toEqual([19, 0, 0, 0, 16, 0, 5, 0, 7, 0, 0, 0, 9, 0, 0, 0, 1, 2, 3, 0]);
    const single = encodeNlmsg({ type: 16 }, Buffer.from([0xaa]));
    expect([...single.subarray(16)]).toEqual([0xaa, 0, 0, 0]);
  });

  it('splits a datagram holding several messages', () => {
    const a = encodeNlmsg({ type: 16, flags: NLM_F_MULTI, seq: 7, pid: 42 }, attr.u32(1, 1));
    const b = encodeNlmsg({ type: NLMSG_DONE, flags: NLM_F_MULTI, seq: 7, pid: 42 }, Buffer.alloc(4));
    const msgs = decodeNlmsgs(Buffer.concat([a, b]));
    expect(msgs.map((m) => [m.type, m.seq, m.pid, m.payload.length])).toEqual([
      [16, 7, 42, 8],
      [NLMSG_DONE, 7, 42, 4],
    ]);
  });

  it('rejects truncated/oversized lengths with NetlinkDecodeError', () => {
    expect(() => decodeNlmsgs(Buffer.alloc(8))).toThrow(NetlinkDecodeError);
    const bad = encodeNlmsg({ type: 16 }, Buffer.alloc(8));
    bad.writeUInt32LE(100, 0);
    expect(() => decodeNlmsgs(bad)).toThrow(/runs past/);
    bad.writeUInt32LE(4, 0);
    expect(() => decodeNlmsgs(bad)).toThrow(/shorter than the header/);
  });

  it('validates header fields', () => {
    expect(() => encodeNlmsg({ type: 0x10000 })).toThrow(NetlinkValidationError);
    expect(() => encodeNlmsg({ type: 1, seq: -1 })).toThrow(/nlmsg_seq/);
  });

  it('random bytes never throw anything but NetlinkDecodeError', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), (arr) => {
        try {
          for (const m of decodeNlmsgs(Buffer.from(arr))) {
            if (m.type === NLMSG_ERROR) decodeNlmsgerr(m);
            if (m.type === NLMSG_DONE) decodeDone(m);
          }
        } catch (e) {
          if (!(e instanceof NetlinkDecodeError)) throw e;
        }
      }),
      { numRuns: 3000 },
    );
  });

  it('random message lists round-trip', () => {
    const msgArb = fc.record({
      type: fc.integer({ min: 0, max: 0xffff }),
      flags: fc.integer({ min: 0, max: 0xffff }),
      seq: fc.integer({ min: 0, max: 0xffffffff }),
      pid: fc.integer({ min: 0, max: 0xffffffff }),
      payload: fc.uint8Array({ maxLength: 64 }).map((a) => Buffer.from(a)),
    });
    fc.assert(
      fc.property(fc.array(msgArb, { maxLength: 6 }), (list) => {
        const buf = Buffer.concat(list.map((m) => encodeNlmsg(m, m.payload)));
        const back = decodeNlmsgs(buf);
        expect(back.map(({ type, flags, seq, pid, payload }) => ({ type, flags, seq, pid, payload }))).toEqual(list);
      }),
    );
  });
});

describe('NLMSG_ERROR / extended ACK (struct nlmsgerr + enum nlmsgerr_attrs)', () => {
  const request = encodeNlmsg(
    { type: 16, flags: NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL, seq: 9, pid: 0 },
    Buffer.alloc(16),
  );

  function errorMsg(errno: number, flags: number, echo: Buffer, tlvs: Buffer[] = []): Buffer {
    const err = Buffer.alloc(4);
    err.writeInt32LE(-errno);
    return encodeNlmsg({ type: NLMSG_ERROR, flags, seq: 9, pid: 1234 }, [err, echo, ...tlvs]);
  }

  it('decodes a plain ACK', () => {
    const [m] = decodeNlmsgs(errorMsg(0, NLM_F_CAPPED, request.subarray(0, 16)));
    const e = decodeNlmsgerr(m!);
    expect(e.errno).toBe(0);
    expect(e.request).toMatchObject({ type: 16, seq: 9 });
    expect(e.extAck).toEqual({});
  });

  it('decodes ext-ack TLVs after a capped request header', () => {
    const tlvs = [attr.string(NLMSGERR_ATTR_MSG, 'Unknown device type'), attr.u32(NLMSGERR_ATTR_OFFS, 36)];
    const [m] = decodeNlmsgs(errorMsg(95, NLM_F_CAPPED | NLM_F_ACK_TLVS, request.subarray(0, 16), tlvs));
    const e = decodeNlmsgerr(m!);
    expect(e.errno).toBe(95);
    expect(e.extAck).toEqual({ message: 'Unknown device type', offset: 36 });
    const err = new NetlinkError(e.errno, 'RTM_NEWLINK', e.extAck);
    expect(err.code).toBe('EOPNOTSUPP');
    expect(err.extAckMessage).toBe('Unknown device type');
    expect(err.message).toBe('RTM_NEWLINK failed: EOPNOTSUPP: Unknown device type');
  });

  it('decodes ext-ack TLVs after a full (uncapped) request echo', () => {
    const tlvs = [attr.string(NLMSGERR_ATTR_MSG, 'boom')];
    const [m] = decodeNlmsgs(errorMsg(17, NLM_F_ACK_TLVS, request, tlvs));
    expect(decodeNlmsgerr(m!).extAck.message).toBe('boom');
  });

  it('decodes NLMSG_DONE with and without an error', () => {
    const ok = decodeNlmsgs(encodeNlmsg({ type: NLMSG_DONE, flags: NLM_F_MULTI }, Buffer.alloc(4)));
    expect(decodeDone(ok[0]!).errno).toBe(0);
    const err = Buffer.alloc(4);
    err.writeInt32LE(-22);
    const bad = decodeNlmsgs(
      encodeNlmsg({ type: NLMSG_DONE, flags: NLM_F_MULTI | NLM_F_ACK_TLVS }, [err, attr.string(NLMSGERR_ATTR_MSG, 'bad filter')]),
    );
    expect(decodeDone(bad[0]!)).toEqual({ errno: 22, extAck: { message: 'bad filter' } });
  });
});

describe('names', () => {
  it('maps errno numbers and codes both ways', () => {
    expect(errnoCode(17)).toBe('EEXIST');
    expect(errnoCode(-2)).toBe('ENOENT');
    expect(errnoCode(95)).toBe('EOPNOTSUPP');
    expect(errnoCode(11)).toBe('EAGAIN');
    expect(errnoCode(4000)).toBe('E4000');
    expect(errnoNumber('ENODEV')).toBe(19);
  });
  it('names operations per protocol', () => {
    expect(operationName(NETLINK_ROUTE, 16)).toBe('RTM_NEWLINK');
    expect(operationName(NETLINK_ROUTE, 34)).toBe('RTM_GETRULE');
    expect(operationName(NETLINK_XFRM, 16)).toBe('XFRM_MSG_NEWSA');
    expect(operationName(NETLINK_XFRM, 19)).toBe('XFRM_MSG_NEWPOLICY');
    expect(operationName(NETLINK_GENERIC, 30)).toBe('nlmsg type 30');
    expect(operationName(NETLINK_ROUTE, NLMSG_ERROR)).toBe('NLMSG_ERROR');
  });
});
