import { describePrivileged } from '@veil/test-utils';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { type Datapath, loadDatapath, TcAction } from '../src/index.js';
import { decodeIcmpError, ethernet, tcpPacket } from '../src/testing/index.js';
import { A, fillIpcache, WG_IFINDEX } from './fixtures.js';
import { onlyReason, runOnce } from './helpers.js';

// A GSO super-packet (TSO on the pod's veth) is longer than the MTU by design; what matters is
// the size of each segment it will be cut into: IP header + TCP header + gso_size.
describePrivileged('from-pod MTU check on GSO packets', ['root', 'bpf'], () => {
  let dp: Datapath;

  beforeAll(() => {
    dp = loadDatapath({ trace: true, config: { backend: 'wireguard', wgIfindex: WG_IFINDEX, mtu: 1420 } });
    fillIpcache(dp);
  });
  afterAll(() => dp?.close());

  for (const fam of ['v4', 'v6'] as const) {
    const a = A[fam];
    const hdrs = fam === 'v4' ? 40 : 60;
    const frame = ethernet(tcpPacket({ src: a.pod, dst: a.remote, payload: 2400 }));

    it(`${fam}: segments that fit are encrypted even though the packet is 2.4 kB`, () => {
      const o = runOnce(dp, dp.fromPod, frame, { gsoSize: 1420 - hdrs, gsoSegs: 3 });
      expect(o.retval).toBe(TcAction.REDIRECT);
      expect(onlyReason(o).reason).toBe('redirect-wireguard');
    });

    it(`${fam}: segments one byte too big get the ICMP error`, () => {
      const o = runOnce(dp, dp.fromPod, frame, { gsoSize: 1421 - hdrs, gsoSegs: 3 });
      expect(o.retval).toBe(TcAction.REDIRECT);
      expect(onlyReason(o).reason).toBe('frag-needed-sent');
      expect(decodeIcmpError(o.data).mtu).toBe(1420);
    });
  }
});
