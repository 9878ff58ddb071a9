import { describePrivileged } from '@veil/test-utils';
import { afterAll, beforeAll, beforeEach, expect, it } from 'vitest';
import { type Datapath, loadDatapath, TcAction } from '../src/index.js';
import { arpRequest, ethernet, ipPacket, IPPROTO, tcpPacket, udpPacket } from '../src/testing/index.js';
import { A, fillIpcache, WG_IFINDEX } from './fixtures.js';
import { onlyReason, runOnce } from './helpers.js';

const WG_PORT = 51871;
const ENCRYPT_MARK = 0x0d00;

describePrivileged('to-wire (BPF_PROG_TEST_RUN, trace object)', ['root', 'bpf'], () => {
  let dp: Datapath;

  beforeAll(() => {
    dp = loadDatapath({ trace: true });
    fillIpcache(dp);
    for (const cidr of ['10.0.0.0/16', 'fd00::/16']) dp.addStrictCidr(cidr);
  });
  afterAll(() => dp?.close());
  beforeEach(() => {
    dp.setConfig({
      backend: 'wireguard',
      wgIfindex: WG_IFINDEX,
      strict: true,
      nodeEncryption: false,
      allowRemoteNodeIdentities: false,
      wgPort: WG_PORT,
      encryptMark: ENCRYPT_MARK,
      encryptMarkMask: 0x0f00,
    });
  });

  const run = (frame: Buffer, ctx = {}) => runOnce(dp, dp.toWire, frame, ctx);

  for (const fam of ['v4', 'v6'] as const) {
    const a = A[fam];
    const node = fam === 'v4' ? { self: '192.168.0.1', peer: '192.168.0.2' } : { self: 'fd01::1', peer: 'fd01::2' };

    it(`${fam}: strict mode drops pod-to-pod traffic leaving in clear (to-wire-drop-clear)`, () => {
      const frame = ethernet(tcpPacket({ src: a.pod, dst: a.remote }));
      const o = run(frame);
      expect(o.retval).toBe(TcAction.SHOT);
      expect(onlyReason(o)).toEqual({ reason: 'to-wire-drop-clear', packets: 1n, bytes: BigInt(frame.length) });
    });

    it(`${fam}: strict off lets the same packet pass`, () => {
      dp.setConfig({ strict: false });
      const o = run(ethernet(tcpPacket({ src: a.pod, dst: a.remote })));
      expect(o.retval).toBe(TcAction.OK);
      expect(onlyReason(o).reason).toBe('to-wire-pass');
    });

    it(`${fam}: traffic with an address outside strict_cidrs passes`, () => {
      const o = run(ethernet(tcpPacket({ src: a.pod, dst: a.unknown })));
      expect(o.retval).toBe(TcAction.OK);
      expect(onlyReason(o).reason).toBe('to-wire-pass');
    });

    it(`${fam}: WireGuard's own UDP (either port) passes as encrypted`, () => {
      for (const [sport, dport] of [
        [WG_PORT, WG_PORT],
        [WG_PORT, 40000],
        [40000, WG_PORT],
      ] as const) {
        const o = run(ethernet(udpPacket({ src: node.self, dst: node.peer, sport, dport, payload: 148 })));
        expect(o.retval).toBe(TcAction.OK);
        expect(onlyReason(o).reason).toBe('to-wire-pass-encrypted');
      }
    });

    it(`${fam}: ESP and fwmarked packets pass as encrypted, even between pod addresses`, () => {
      const esp = run(ethernet(ipPacket({ src: a.pod, dst: a.remote, proto: IPPROTO.ESP, payload: Buffer.alloc(64) })));
      expect(esp.retval).toBe(TcAction.OK);
      expect(onlyReason(esp).reason).toBe('to-wire-pass-encrypted');
      const marked = run(ethernet(tcpPacket({ src: a.pod, dst: a.remote })), { mark: 0x00070d00 });
      expect(marked.retval).toBe(TcAction.OK);
      expect(onlyReason(marked).reason).toBe('to-wire-pass-encrypted');
      // A mark outside the mask's match does not exempt.
      expect(run(ethernet(tcpPacket({ src: a.pod, dst: a.remote })), { mark: 0x0e00 }).retval).toBe(TcAction.SHOT);
    });

    it(`${fam}: node encryption redirects host traffic to a ready remote node into WireGuard`, () => {
      dp.setConfig({ nodeEncryption: true });
      const frame = ethernet(tcpPacket({ src: node.self, dst: a.nodeReady }));
      const o = run(frame);
      expect(o.retval).toBe(TcAction.REDIRECT);
      expect(o.trace).toMatchObject({ reason: 'to-wire-node-encrypt', kind: 'redirect', ifindex: WG_IFINDEX });
      expect(onlyReason(o)).toEqual({ reason: 'to-wire-node-encrypt', packets: 1n, bytes: BigInt(frame.length) });
    });

    it(`${fam}: node encryption leaves not-ready nodes, WireGuard UDP and the feature-off case alone`, () => {
      dp.setConfig({ nodeEncryption: true });
      expect(onlyReason(run(ethernet(tcpPacket({ src: node.self, dst: a.nodeNotReady })))).reason).toBe('to-wire-pass');
      // The encrypted packets themselves go to node IPs: they must not loop back into WireGuard.
      const wg = run(ethernet(udpPacket({ src: node.self, dst: a.nodeReady, sport: WG_PORT, dport: WG_PORT })));
      expect(wg.retval).toBe(TcAction.OK);
      expect(onlyReason(wg).reason).toBe('to-wire-pass-encrypted');
      dp.setConfig({ nodeEncryption: false });
      expect(onlyReason(run(ethernet(tcpPacket({ src: node.self, dst: a.nodeReady })))).reason).toBe('to-wire-pass');
    });

    it(`${fam}: strict mode lets node identities inside the pod range through only when allowed`, () => {
      const frame = ethernet(tcpPacket({ src: a.pod, dst: a.nodeInPodRange }));
      expect(run(frame).retval).toBe(TcAction.SHOT);
      dp.setConfig({ allowRemoteNodeIdentities: true });
      const o = run(frame);
      expect(o.retval).toBe(TcAction.OK);
      expect(onlyReason(o).reason).toBe('pass-remote-node');
    });

    it(`${fam}: a truncated packet is dropped as malformed`, () => {
      const frame = ethernet(tcpPacket({ src: a.pod, dst: a.remote, payload: 100 }));
      const o = run(frame.subarray(0, frame.length - 60));
      expect(o.retval).toBe(TcAction.SHOT);
      expect(onlyReason(o).reason).toBe('drop-malformed');
    });
  }

  it('ARP passes (pass-non-ip)', () => {
    const o = run(arpRequest({ senderIp: '192.168.0.1', targetIp: '192.168.0.2' }));
    expect(o.retval).toBe(TcAction.OK);
    expect(onlyReason(o).reason).toBe('pass-non-ip');
  });
});
