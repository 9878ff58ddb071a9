// Runs in the kernel lane (Debian's 6.1 under qemu, VEIL_KERNEL_LANE=1), whose verifier is the
// oldest we can boot: production nodes run 6.1, 5.15 and 5.10, and the 6.18 host accepts code
// that they reject (see veil_bound in lib/common.h). One lane boot covers three things:
//   1. every object loads, with the verifier log in the failure message when it does not;
//   2. a compact verdict table on the production object (no trace map), checked through
//      return code, mark, counters and the ICMP error bytes;
//   3. the host's Program.run suites (imported below), re-run on this kernel's BPF_PROG_TEST_RUN.
import { release } from 'node:os';
import { describePrivileged } from '@veil/test-utils';
import { type BpfObject, ObjectSpec, SkBuff, VerifierError } from 'libbpf-ts';
import { afterAll, beforeAll, beforeEach, expect, it } from 'vitest';
import {
  benchObjectPath,
  type Datapath,
  ipsecMark,
  loadDatapath,
  type LoadDatapathOptions,
  type ReasonName,
  REASONS,
  TcAction,
} from '../../src/index.js';
import { decodeIcmpError, ethernet, GW_MAC, internetChecksum, POD_MAC, tcpPacket, udpPacket } from '../../src/testing/index.js';
import { A, fillIpcache, REMOTE_KEY_INDEX, REMOTE_NODE_ID, WG_IFINDEX } from '../fixtures.js';

import '../from-pod.test.js';
import '../from-tunnel.test.js';
import '../to-wire.test.js';
import '../gso.test.js';

/** Rethrows a verifier rejection with the program name, the kernel and the end of the log. */
function withVerifierLog<T>(what: string, load: () => T): T {
  try {
    return load();
  } catch (e) {
    if (e instanceof VerifierError) {
      const tail = e.log.trimEnd().split('\n').slice(-40).join('\n');
      throw new Error(`${release()} rejected ${e.program ?? '?'} of ${what}:\n${tail}`, { cause: e });
    }
    throw e;
  }
}

function load(opts: LoadDatapathOptions): Datapath {
  return withVerifierLog(opts.trace ? 'veil_trace.bpf.o' : 'veil.bpf.o', () => loadDatapath(opts));
}

/** The packets counted since the last reset, by reason (non-zero only). */
function counted(dp: Datapath): Partial<Record<ReasonName, bigint>> {
  const c = dp.readCounters();
  const out: Partial<Record<ReasonName, bigint>> = {};
  for (const r of REASONS) if (c[r].packets !== 0n) out[r] = c[r].packets;
  return out;
}

describePrivileged(`kernel lane (${release()}): every object passes the verifier`, ['root', 'bpf'], () => {
  for (const trace of [false, true]) {
    it(`${trace ? 'veil_trace.bpf.o' : 'veil.bpf.o'}: all three programs pass the verifier`, () => {
      const dp = load({ trace, ipcacheMaxEntries: 1024 });
      try {
        for (const p of [dp.fromPod, dp.fromTunnel, dp.toWire]) expect(p.fd).toBeGreaterThan(0);
        expect(dp.traceMap === undefined).toBe(!trace);
      } finally {
        dp.close();
      }
    });
  }

  it('the benchmark baselines load', () => {
    for (const which of ['passthrough', 'lpm_redirect'] as const) {
      const path = benchObjectPath(which);
      const obj: BpfObject = withVerifierLog(path, () => ObjectSpec.open(path).load());
      obj.close();
    }
  });
});

// The production object, which has no trace map: what is observable is the return code, the
// mark, the counters and the rewritten packet.
describePrivileged('kernel lane: production object verdicts (Program.run)', ['root', 'bpf'], () => {
  let dp: Datapath;

  beforeAll(() => {
    dp = load({ ipcacheMaxEntries: 1024 });
    fillIpcache(dp);
    for (const cidr of ['10.0.0.0/16', 'fd00::/16']) dp.addStrictCidr(cidr);
  });
  afterAll(() => dp?.close());
  beforeEach(() => {
    dp.setConfig({ backend: 'wireguard', wgIfindex: WG_IFINDEX, strict: false, mtu: 0, nodeEncryption: false });
    dp.resetCounters();
  });

  for (const fam of ['v4', 'v6'] as const) {
    const a = A[fam];

    it(`${fam}: from-pod redirects a ready remote pod into WireGuard`, () => {
      const r = dp.fromPod.run({ data: ethernet(tcpPacket({ src: a.pod, dst: a.remote, payload: 100 })) });
      expect(r.retval).toBe(TcAction.REDIRECT);
      expect(counted(dp)).toEqual({ 'redirect-wireguard': 1n });
    });

    it(`${fam}: from-pod sets the IPsec mark`, () => {
      dp.setConfig({ backend: 'ipsec' });
      const r = dp.fromPod.run({ data: ethernet(udpPacket({ src: a.pod, dst: a.remote })), ctx: SkBuff.encode({}) });
      expect(r.retval).toBe(TcAction.OK);
      expect(r.ctx && SkBuff.decode(r.ctx).mark).toBe(ipsecMark({ keyIndex: REMOTE_KEY_INDEX, nodeId: REMOTE_NODE_ID }));
      expect(counted(dp)).toEqual({ 'mark-ipsec': 1n });
    });

    it(`${fam}: from-pod turns an oversized packet into ${fam === 'v4' ? 'ICMP frag-needed' : 'ICMPv6 packet-too-big'}`, () => {
      const mtu = 1300;
      dp.setConfig({ mtu });
      const l3 = udpPacket({ src: a.pod, dst: a.remote, payload: 1400 });
      const r = dp.fromPod.run({ data: ethernet(l3, { src: POD_MAC, dst: GW_MAC }) });
      expect(r.retval).toBe(TcAction.REDIRECT);
      expect(counted(dp)).toEqual({ 'frag-needed-sent': 1n });
      const icmp = decodeIcmpError(r.data);
      expect([icmp.ethSrc, icmp.ethDst, icmp.src, icmp.dst]).toEqual([GW_MAC, POD_MAC, a.remote, a.pod]);
      expect(icmp.ipChecksumOk && icmp.icmpChecksumOk && icmp.lengthOk).toBe(true);
      expect(icmp.mtu).toBe(mtu);
      const quoteLen = fam === 'v4' ? 28 : 128;
      expect(icmp.quote.equals(l3.subarray(0, quoteLen))).toBe(true);
    });

    it(`${fam}: from-tunnel delivers to a local pod's veth`, () => {
      const r = dp.fromTunnel.run({ data: ethernet(udpPacket({ src: a.remote, dst: a.localPod })) });
      expect(r.retval).toBe(TcAction.REDIRECT);
      expect(counted(dp)).toEqual({ 'tunnel-deliver': 1n });
    });

    it(`${fam}: to-wire drops clear pod-to-pod traffic in strict mode`, () => {
      dp.setConfig({ strict: true });
      const r = dp.toWire.run({ data: ethernet(tcpPacket({ src: a.pod, dst: a.remote })) });
      expect(r.retval).toBe(TcAction.SHOT);
      expect(counted(dp)).toEqual({ 'to-wire-drop-clear': 1n });
    });
  }

  // The quote length comes from the IHL here: the bound that 6.1's verifier needs spelled out.
  it('v4: the frag-needed quote follows IP options (IHL 15: 60-byte header + 8)', () => {
    dp.setConfig({ mtu: 1000 });
    const plain = udpPacket({ src: A.v4.pod, dst: A.v4.remote, payload: 1200 });
    const l3 = Buffer.concat([plain.subarray(0, 20), Buffer.alloc(40, 1), plain.subarray(20)]); // 40 NOPs
    l3[0] = 0x4f;
    l3.writeUInt16BE(l3.length, 2);
    l3.writeUInt16BE(0, 10);
    l3.writeUInt16BE(internetChecksum(l3.subarray(0, 60)), 10);
    const r = dp.fromPod.run({ data: ethernet(l3) });
    expect(r.retval).toBe(TcAction.REDIRECT);
    const icmp = decodeIcmpError(r.data);
    expect(icmp.quote.equals(l3.subarray(0, 68))).toBe(true);
    expect(icmp.ipChecksumOk && icmp.icmpChecksumOk && icmp.lengthOk).toBe(true);
  });
});
