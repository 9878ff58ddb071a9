import { describePrivileged } from '@veil/test-utils';
import { afterAll, beforeAll, beforeEach, expect, it } from 'vitest';
import { type Datapath, ipsecMark, loadDatapath, TcAction } from '../src/index.js';
import {
  arpRequest,
  decodeIcmpError,
  ethernet,
  GW_MAC,
  icmpEcho,
  internetChecksum,
  ipPacket,
  IPPROTO,
  POD_MAC,
  tcpPacket,
  udpPacket,
} from '../src/testing/index.js';
import { A, fillIpcache, REMOTE_KEY_INDEX, REMOTE_NODE_ID, WG_IFINDEX } from './fixtures.js';
import { onlyReason, runOnce } from './helpers.js';

describePrivileged('from-pod (BPF_PROG_TEST_RUN, trace object)', ['root', 'bpf'], () => {
  let dp: Datapath;

  beforeAll(() => {
    dp = loadDatapath({ trace: true, ipcacheMaxEntries: 1024 });
    fillIpcache(dp);
  });
  afterAll(() => dp?.close());
  beforeEach(() => {
    dp.setConfig({ backend: 'wireguard', wgIfindex: WG_IFINDEX, strict: false, allowRemoteNodeIdentities: false, mtu: 0 });
  });

  const run = (frame: Buffer, ctx = {}) => runOnce(dp, dp.fromPod, frame, ctx);

  for (const fam of ['v4', 'v6'] as const) {
    const a = A[fam];
    const udp = (dst: string, payload = 64) => ethernet(udpPacket({ src: a.pod, dst, payload }));

    it(`${fam}: local pod passes (pass-local)`, () => {
      const frame = udp(a.localPod);
      const o = run(frame);
      expect(o.retval).toBe(TcAction.OK);
      expect(onlyReason(o)).toEqual({ reason: 'pass-local', packets: 1n, bytes: BigInt(frame.length) });
      expect(o.trace).toMatchObject({ reason: 'pass-local', verdict: TcAction.OK, kind: 'none' });
      expect(o.data.equals(frame)).toBe(true);
    });

    it(`${fam}: unknown destination passes (pass-unknown)`, () => {
      const o = run(udp(a.unknown));
      expect(o.retval).toBe(TcAction.OK);
      expect(onlyReason(o).reason).toBe('pass-unknown');
      expect(o.mark).toBe(0);
    });

    it(`${fam}: ready remote pod + wireguard redirects into the WireGuard ifindex`, () => {
      const frame = ethernet(tcpPacket({ src: a.pod, dst: a.remote, payload: 100 }));
      const o = run(frame);
      expect(o.retval).toBe(TcAction.REDIRECT);
      expect(onlyReason(o)).toEqual({ reason: 'redirect-wireguard', packets: 1n, bytes: BigInt(frame.length) });
      expect(o.trace).toMatchObject({ reason: 'redirect-wireguard', kind: 'redirect', ifindex: WG_IFINDEX, redirectFlags: 0 });
      expect(o.data.equals(frame)).toBe(true);
    });

    it(`${fam}: ready remote pod + ipsec sets the per-node mark and passes`, () => {
      dp.setConfig({ backend: 'ipsec' });
      const o = run(udp(a.remote));
      expect(o.retval).toBe(TcAction.OK);
      const want = ipsecMark({ keyIndex: REMOTE_KEY_INDEX, nodeId: REMOTE_NODE_ID });
      expect(want).toBe(0x00073e00);
      expect(o.mark).toBe(want);
      expect(o.trace).toMatchObject({ reason: 'mark-ipsec', mark: want });
      expect(onlyReason(o).reason).toBe('mark-ipsec');
    });

    it(`${fam}: not-ready remote passes in clear when strict is off`, () => {
      const o = run(udp(a.notReady));
      expect(o.retval).toBe(TcAction.OK);
      expect(onlyReason(o).reason).toBe('pass-plaintext-not-ready');
    });

    it(`${fam}: not-ready remote is dropped when strict is on`, () => {
      dp.setConfig({ strict: true });
      const o = run(udp(a.notReady));
      expect(o.retval).toBe(TcAction.SHOT);
      expect(onlyReason(o).reason).toBe('drop-not-ready-strict');
    });

    it(`${fam}: backend none or a missing wg ifindex counts as not ready`, () => {
      dp.setConfig({ backend: 'none' });
      expect(onlyReason(run(udp(a.remote))).reason).toBe('pass-plaintext-not-ready');
      dp.setConfig({ backend: 'wireguard', wgIfindex: 0, strict: true });
      const o = run(udp(a.remote));
      expect(o.retval).toBe(TcAction.SHOT);
      expect(onlyReason(o).reason).toBe('drop-not-ready-strict');
    });

    it(`${fam}: strict mode lets remote node identities through only when allowed`, () => {
      dp.setConfig({ strict: true });
      expect(run(udp(a.nodeNotReady)).retval).toBe(TcAction.SHOT);
      dp.setConfig({ allowRemoteNodeIdentities: true });
      const o = run(udp(a.nodeNotReady));
      expect(o.retval).toBe(TcAction.OK);
      expect(onlyReason(o).reason).toBe('pass-remote-node');
      // A pod behind a not-ready node is still dropped.
      expect(run(udp(a.notReady)).retval).toBe(TcAction.SHOT);
    });

    it(`${fam}: packets at the MTU are encrypted, not bounced`, () => {
      const mtu = fam === 'v4' ? 1400 : 1380;
      dp.setConfig({ mtu });
      const l3 = udpPacket({ src: a.pod, dst: a.remote, payload: mtu - (fam === 'v4' ? 28 : 48) });
      expect(l3.length).toBe(mtu);
      const o = run(ethernet(l3));
      expect(o.retval).toBe(TcAction.REDIRECT);
      expect(o.trace).toMatchObject({ reason: 'redirect-wireguard', ifindex: WG_IFINDEX });
    });

    it(`${fam}: oversized packets on the encryption path become ${fam === 'v4' ? 'ICMP frag-needed' : 'ICMPv6 packet-too-big'} back to the sender`, () => {
      const mtu = fam === 'v4' ? 1400 : 1380;
      dp.setConfig({ mtu });
      const l3 = udpPacket({ src: a.pod, dst: a.remote, payload: mtu }); // mtu + headers > mtu
      const frame = ethernet(l3, { src: POD_MAC, dst: GW_MAC });
      const o = run(frame);
      expect(o.retval).toBe(TcAction.REDIRECT);
      // Back out of the device it came in on: Program.run's skb->ifindex is lo (1) without ctx.ifindex.
      expect(o.trace).toMatchObject({ reason: 'frag-needed-sent', kind: 'redirect', ifindex: 1, redirectFlags: 0 });
      expect(onlyReason(o)).toEqual({ reason: 'frag-needed-sent', packets: 1n, bytes: BigInt(frame.length) });

      const icmp = decodeIcmpError(o.data);
      expect(icmp.ethSrc).toBe(GW_MAC);
      expect(icmp.ethDst).toBe(POD_MAC);
      expect(icmp.src).toBe(a.remote);
      expect(icmp.dst).toBe(a.pod);
      expect(icmp.ipChecksumOk).toBe(true);
      expect(icmp.icmpChecksumOk).toBe(true);
      expect(icmp.lengthOk).toBe(true);
      expect(icmp.mtu).toBe(mtu);
      if (fam === 'v4') {
        expect([icmp.type, icmp.code]).toEqual([3, 4]);
        // RFC 792: the original IP header + the first 8 bytes of its payload.
        expect(icmp.quote.equals(l3.subarray(0, 28))).toBe(true);
        expect(o.data.length).toBe(14 + 20 + 8 + 28);
      } else {
        expect([icmp.type, icmp.code]).toEqual([2, 0]);
        expect(icmp.quote.equals(l3.subarray(0, 128))).toBe(true);
        expect(o.data.length).toBe(14 + 40 + 8 + 128);
      }
    });

    it(`${fam}: oversized packets with IPsec get the ICMP error too, and no mark`, () => {
      dp.setConfig({ backend: 'ipsec', mtu: 1300 });
      const o = run(ethernet(tcpPacket({ src: a.pod, dst: a.remote, payload: 1400 })));
      expect(o.retval).toBe(TcAction.REDIRECT);
      expect(o.mark).toBe(0);
      expect(decodeIcmpError(o.data).mtu).toBe(1300);
    });

    it(`${fam}: oversized packets in clear (not-ready, strict off) are left alone`, () => {
      dp.setConfig({ mtu: 1300 });
      const o = run(udp(a.notReady, 1500));
      expect(o.retval).toBe(TcAction.OK);
      expect(onlyReason(o).reason).toBe('pass-plaintext-not-ready');
    });

    it(`${fam}: an oversized ICMP error is dropped, never answered with another`, () => {
      dp.setConfig({ mtu: 1300 });
      const errorType = fam === 'v4' ? 3 : 1;
      const body = Buffer.alloc(1400, 0x11);
      body[0] = errorType;
      const frame = ethernet(
        ipPacket({ src: a.pod, dst: a.remote, proto: fam === 'v4' ? IPPROTO.ICMP : IPPROTO.ICMPV6, payload: body }),
      );
      const o = run(frame);
      expect(o.retval).toBe(TcAction.SHOT);
      expect(onlyReason(o).reason).toBe('drop-too-big');
      // An oversized echo request still gets the error.
      expect(run(ethernet(icmpEcho({ src: a.pod, dst: a.remote, payload: 1400 }))).trace?.reason).toBe('frag-needed-sent');
    });

    it(`${fam}: a packet cut short after its IP header is dropped as malformed`, () => {
      // BPF_PROG_TEST_RUN itself refuses frames shorter than the IP header (EINVAL), so the
      // shortest frame it accepts is a complete header whose length field claims more.
      const full = udp(a.remote);
      const o = run(full.subarray(0, 14 + (fam === 'v4' ? 20 : 40) + 4));
      expect(o.retval).toBe(TcAction.SHOT);
      expect(onlyReason(o).reason).toBe('drop-malformed');
    });

    it(`${fam}: a length field beyond the frame is dropped as malformed`, () => {
      const frame = Buffer.from(udp(a.remote));
      if (fam === 'v4') frame.writeUInt16BE(2000, 14 + 2);
      else frame.writeUInt16BE(2000, 14 + 4);
      const o = run(frame);
      expect(o.retval).toBe(TcAction.SHOT);
      expect(onlyReason(o).reason).toBe('drop-malformed');
    });

    it(`${fam}: a wrong version nibble is dropped as malformed`, () => {
      const frame = Buffer.from(udp(a.remote));
      frame[14] = fam === 'v4' ? 0x65 : 0x45;
      expect(onlyReason(run(frame)).reason).toBe('drop-malformed');
    });
  }

  it('v4: IHL below 5 is malformed', () => {
    const frame = Buffer.from(ethernet(udpPacket({ src: A.v4.pod, dst: A.v4.remote })));
    frame[14] = 0x44;
    expect(onlyReason(run(frame)).reason).toBe('drop-malformed');
  });

  it('v4: the frag-needed quote carries IP options (IHL 6) + 8 bytes', () => {
    dp.setConfig({ mtu: 1000 });
    const plain = udpPacket({ src: A.v4.pod, dst: A.v4.remote, payload: 1200 });
    // Insert four NOP options after the 20-byte header and fix IHL, total length and checksum.
    const l3 = Buffer.concat([plain.subarray(0, 20), Buffer.from([1, 1, 1, 1]), plain.subarray(20)]);
    l3[0] = 0x46;
    l3.writeUInt16BE(l3.length, 2);
    l3.writeUInt16BE(0, 10);
    l3.writeUInt16BE(internetChecksum(l3.subarray(0, 24)), 10);
    const o = run(ethernet(l3));
    expect(o.trace?.reason).toBe('frag-needed-sent');
    const icmp = decodeIcmpError(o.data);
    expect(icmp.quote.equals(l3.subarray(0, 24 + 8))).toBe(true);
    expect(icmp.icmpChecksumOk && icmp.ipChecksumOk && icmp.lengthOk).toBe(true);
    expect(icmp.mtu).toBe(1000);
  });

  it('ARP and other non-IP frames pass untouched (pass-non-ip)', () => {
    const arp = arpRequest({ senderIp: A.v4.pod, targetIp: '10.0.1.1' });
    const o = run(arp);
    expect(o.retval).toBe(TcAction.OK);
    expect(o.data.equals(arp)).toBe(true);
    expect(onlyReason(o)).toEqual({ reason: 'pass-non-ip', packets: 1n, bytes: BigInt(arp.length) });
    // Even in strict mode with a tiny MTU.
    dp.setConfig({ strict: true, mtu: 68 });
    expect(run(Buffer.concat([arp, Buffer.alloc(1500)])).retval).toBe(TcAction.OK);
  });

  it('v4: options (IHL 15) running past the end of the frame are malformed', () => {
    const l3 = Buffer.from(ipPacket({ src: A.v4.pod, dst: A.v4.remote, proto: IPPROTO.UDP, payload: Buffer.alloc(0) }));
    l3[0] = 0x4f;
    expect(onlyReason(run(ethernet(l3))).reason).toBe('drop-malformed');
  });

  it('config changes apply to the next packet without reloading', () => {
    const frame = ethernet(udpPacket({ src: A.v4.pod, dst: A.v4.remote }));
    expect(run(frame).retval).toBe(TcAction.REDIRECT);
    dp.setConfig({ backend: 'ipsec' });
    expect(run(frame).mark).toBe(ipsecMark({ keyIndex: REMOTE_KEY_INDEX, nodeId: REMOTE_NODE_ID }));
    dp.setConfig({ backend: 'none' });
    expect(run(frame).trace?.reason).toBe('pass-plaintext-not-ready');
  });

  it('counters accumulate packets and bytes across runs', () => {
    dp.resetCounters();
    const frame = ethernet(udpPacket({ src: A.v4.pod, dst: A.v4.localPod, payload: 10 }));
    for (let i = 0; i < 5; i++) dp.fromPod.run({ data: frame });
    dp.fromPod.run({ data: frame, repeat: 10 });
    const c = dp.readCounters();
    expect(c['pass-local']).toEqual({ packets: 15n, bytes: BigInt(15 * frame.length) });
    expect(c['redirect-wireguard']).toEqual({ packets: 0n, bytes: 0n });
  });
});
