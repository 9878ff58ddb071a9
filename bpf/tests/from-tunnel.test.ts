import { describePrivileged } from '@veil/test-utils';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { type Datapath, loadDatapath, TcAction } from '../src/index.js';
import { ethernet, udpPacket } from '../src/testing/index.js';
import { A, fillIpcache, LOCAL_VETH_IFINDEX, WG_IFINDEX } from './fixtures.js';
import { onlyReason, runOnce } from './helpers.js';

// On the WireGuard device (L3) from-tunnel sees the IP header at skb->data and pushes 14 bytes
// before bpf_redirect_neigh; BPF_PROG_TEST_RUN always hands tc programs an Ethernet frame, so
// these suites drive the MAC-header branch (no push) and the privileged WireGuard suite proves
// the L3 branch on wireguard-go's real TUN device.
describePrivileged('from-tunnel (BPF_PROG_TEST_RUN, trace object)', ['root', 'bpf'], () => {
  let dp: Datapath;

  beforeAll(() => {
    dp = loadDatapath({ trace: true, config: { backend: 'wireguard', wgIfindex: WG_IFINDEX } });
    fillIpcache(dp);
  });
  afterAll(() => dp?.close());

  const run = (frame: Buffer) => runOnce(dp, dp.fromTunnel, frame);

  for (const fam of ['v4', 'v6'] as const) {
    const a = A[fam];

    it(`${fam}: a local pod with a known veth is delivered with bpf_redirect_neigh into that veth`, () => {
      const frame = ethernet(udpPacket({ src: a.remote, dst: a.localPod, payload: 200 }));
      const o = run(frame);
      expect(o.retval).toBe(TcAction.REDIRECT);
      expect(o.trace).toMatchObject({ reason: 'tunnel-deliver', kind: 'redirect-neigh', ifindex: LOCAL_VETH_IFINDEX });
      expect(onlyReason(o)).toEqual({ reason: 'tunnel-deliver', packets: 1n, bytes: BigInt(frame.length) });
      // A MAC header was already there: nothing pushed.
      expect(o.data.equals(frame)).toBe(true);
    });

    it(`${fam}: a local pod without a known veth is left to the stack`, () => {
      const o = run(ethernet(udpPacket({ src: a.remote, dst: a.localNoIfindex })));
      expect(o.retval).toBe(TcAction.OK);
      expect(onlyReason(o).reason).toBe('tunnel-pass');
    });

    it(`${fam}: remote and unknown destinations are left to the stack`, () => {
      for (const dst of [a.remote, a.unknown, a.nodeReady]) {
        const frame = ethernet(udpPacket({ src: a.remote, dst }));
        const o = run(frame);
        expect(o.retval).toBe(TcAction.OK);
        expect(onlyReason(o).reason).toBe('tunnel-pass');
        expect(o.data.equals(frame)).toBe(true);
      }
    });

    it(`${fam}: a truncated packet is dropped as malformed`, () => {
      const l3 = udpPacket({ src: a.remote, dst: a.localPod, payload: 100 });
      const o = run(ethernet(l3).subarray(0, 14 + l3.length - 50));
      expect(o.retval).toBe(TcAction.SHOT);
      expect(onlyReason(o).reason).toBe('drop-malformed');
    });
  }

  it('non-IP protocols pass (pass-non-ip)', () => {
    const o = run(ethernet(Buffer.alloc(40, 1), { ethertype: 0x88b5 }));
    expect(o.retval).toBe(TcAction.OK);
    expect(onlyReason(o).reason).toBe('pass-non-ip');
  });
});
