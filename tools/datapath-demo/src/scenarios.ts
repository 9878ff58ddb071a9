import { type Datapath, ipsecMark, type ReasonName, TcAction } from '@veil/bpf';
import { arpRequest, decodeIcmpError, ethernet, tcpPacket, udpPacket } from '@veil/bpf/testing';
import { SkBuff, type Program } from 'libbpf-ts';

/** One packet through one program via BPF_PROG_TEST_RUN, with what we expect to happen. */
export interface Scenario {
  name: string;
  program: 'from-pod' | 'from-tunnel' | 'to-wire';
  frame: Buffer;
  /** Applied to the config before the run (merged into the base config). */
  config?: Parameters<Datapath['setConfig']>[0];
  ctxMark?: number;
  expect: { reason: ReasonName; verdict: number; ifindex?: number; mark?: number };
}

export interface ScenarioResult {
  scenario: Scenario;
  ok: boolean;
  reason: string;
  verdict: number;
  redirect: string;
  mark: number;
  note: string;
}

export const WG_IFINDEX = 42;
export const VETH_IFINDEX = 77;

/** ipcache contents for the Program.run part of the demo. */
export function fillDemoIpcache(dp: Datapath): void {
  dp.ipcache.update('10.1.0.5/32', { local: true, ifindex: VETH_IFINDEX });
  dp.ipcache.update('10.2.0.0/24', { remote: true, encryptReady: true, nodeIp: '192.168.0.2', nodeId: 2, keyIndex: 1 });
  dp.ipcache.update('10.3.0.0/24', { remote: true, nodeIp: '192.168.0.3', nodeId: 3 });
  dp.ipcache.update('192.168.0.2/32', { remote: true, isNode: true, encryptReady: true, nodeIp: '192.168.0.2', nodeId: 2 });
  dp.ipcache.update('fd00:1::5/128', { local: true, ifindex: VETH_IFINDEX });
  dp.ipcache.update('fd00:2::/64', { remote: true, encryptReady: true, nodeIp: '192.168.0.2', nodeId: 2, keyIndex: 1 });
  dp.addStrictCidr('10.0.0.0/8');
  dp.addStrictCidr('fd00::/16');
}

const base = {
  backend: 'wireguard',
  wgIfindex: WG_IFINDEX,
  strict: false,
  mtu: 1420,
  wgPort: 51871,
  nodeEncryption: false,
} as const;

export function scenarios(): Scenario[] {
  const v4 = (dst: string, payload = 64) => ethernet(udpPacket({ src: '10.1.0.4', dst, payload }));
  const v6 = (dst: string, payload = 64) => ethernet(udpPacket({ src: 'fd00:1::4', dst, payload }));
  const truncated = ethernet(tcpPacket({ src: '10.1.0.4', dst: '10.2.0.7', payload: 100 })).subarray(0, 80);
  return [
    {
      name: 'v4 to a local pod',
      program: 'from-pod',
      frame: v4('10.1.0.5'),
      expect: { reason: 'pass-local', verdict: TcAction.OK },
    },
    {
      name: 'v4 to an unknown address',
      program: 'from-pod',
      frame: v4('1.1.1.1'),
      expect: { reason: 'pass-unknown', verdict: TcAction.OK },
    },
    {
      name: 'v4 to a ready remote pod (WireGuard)',
      program: 'from-pod',
      frame: v4('10.2.0.7'),
      expect: { reason: 'redirect-wireguard', verdict: TcAction.REDIRECT, ifindex: WG_IFINDEX },
    },
    {
      name: 'v6 to a ready remote pod (WireGuard)',
      program: 'from-pod',
      frame: v6('fd00:2::7'),
      expect: { reason: 'redirect-wireguard', verdict: TcAction.REDIRECT, ifindex: WG_IFINDEX },
    },
    {
      name: 'v4 to a ready remote pod (IPsec)',
      program: 'from-pod',
      frame: v4('10.2.0.7'),
      config: { backend: 'ipsec' },
      expect: { reason: 'mark-ipsec', verdict: TcAction.OK, mark: ipsecMark({ keyIndex: 1, nodeId: 2 }) },
    },
    {
      name: 'v4 to a not-ready node, strict off',
      program: 'from-pod',
      frame: v4('10.3.0.7'),
      expect: { reason: 'pass-plaintext-not-ready', verdict: TcAction.OK },
    },
    {
      name: 'v4 to a not-ready node, strict on',
      program: 'from-pod',
      frame: v4('10.3.0.7'),
      config: { strict: true },
      expect: { reason: 'drop-not-ready-strict', verdict: TcAction.SHOT },
    },
    {
      name: 'v4 1500-byte packet, MTU 1420',
      program: 'from-pod',
      frame: v4('10.2.0.7', 1472),
      expect: { reason: 'frag-needed-sent', verdict: TcAction.REDIRECT, ifindex: 1 },
    },
    {
      name: 'v6 1500-byte packet, MTU 1420',
      program: 'from-pod',
      frame: v6('fd00:2::7', 1452),
      expect: { reason: 'frag-needed-sent', verdict: TcAction.REDIRECT, ifindex: 1 },
    },
    {
      name: 'ARP who-has',
      program: 'from-pod',
      frame: arpRequest({ senderIp: '10.1.0.4', targetIp: '10.1.0.1' }),
      expect: { reason: 'pass-non-ip', verdict: TcAction.OK },
    },
    {
      name: 'truncated v4 TCP',
      program: 'from-pod',
      frame: truncated,
      expect: { reason: 'drop-malformed', verdict: TcAction.SHOT },
    },
    {
      name: 'decrypted v4 for a local pod',
      program: 'from-tunnel',
      frame: ethernet(udpPacket({ src: '10.2.0.7', dst: '10.1.0.5' })),
      expect: { reason: 'tunnel-deliver', verdict: TcAction.REDIRECT, ifindex: VETH_IFINDEX },
    },
    {
      name: 'decrypted v6 for a local pod',
      program: 'from-tunnel',
      frame: ethernet(udpPacket({ src: 'fd00:2::7', dst: 'fd00:1::5' })),
      expect: { reason: 'tunnel-deliver', verdict: TcAction.REDIRECT, ifindex: VETH_IFINDEX },
    },
    {
      name: 'clear pod traffic on the wire, strict',
      program: 'to-wire',
      frame: v4('10.2.0.7'),
      config: { strict: true },
      expect: { reason: 'to-wire-drop-clear', verdict: TcAction.SHOT },
    },
    {
      name: "WireGuard's own UDP on the wire, strict",
      program: 'to-wire',
      frame: ethernet(udpPacket({ src: '192.168.0.1', dst: '192.168.0.2', sport: 51871, dport: 51871 })),
      config: { strict: true, nodeEncryption: true },
      expect: { reason: 'to-wire-pass-encrypted', verdict: TcAction.OK },
    },
    {
      name: 'host to a ready remote node, node encryption',
      program: 'to-wire',
      frame: ethernet(tcpPacket({ src: '192.168.0.1', dst: '192.168.0.2' })),
      config: { nodeEncryption: true },
      expect: { reason: 'to-wire-node-encrypt', verdict: TcAction.REDIRECT, ifindex: WG_IFINDEX },
    },
  ];
}

const VERDICTS: Record<number, string> = { 0: 'OK', 2: 'SHOT', 7: 'REDIRECT' };
export const verdictName = (v: number): string => VERDICTS[v] ?? String(v);

/** Runs every scenario on the trace object and reports what happened against what was expected. */
export function runScenarios(dp: Datapath): ScenarioResult[] {
  const progs: Record<Scenario['program'], Program> = {
    'from-pod': dp.fromPod,
    'from-tunnel': dp.fromTunnel,
    'to-wire': dp.toWire,
  };
  return scenarios().map((s) => {
    dp.setConfig({ ...base, ...s.config });
    dp.resetTrace();
    const r = progs[s.program].run({ data: s.frame, ctx: SkBuff.encode({ mark: s.ctxMark ?? 0 }) });
    const t = dp.lastTrace();
    const mark = r.ctx ? SkBuff.decode(r.ctx).mark : 0;
    let note = '';
    if (t?.reason === 'frag-needed-sent') {
      const icmp = decodeIcmpError(r.data);
      const sums = icmp.ipChecksumOk && icmp.icmpChecksumOk ? 'checksums ok' : 'BAD CHECKSUM';
      note = `ICMP${icmp.family === 6 ? 'v6' : ''} ${icmp.type}/${icmp.code} mtu=${icmp.mtu} ${icmp.src}→${icmp.dst}, ${sums}`;
      if (!icmp.ipChecksumOk || !icmp.icmpChecksumOk || icmp.mtu !== 1420) note += ' ✗';
    }
    const redirect = t && t.kind !== 'none' ? `${t.kind} → ifindex ${t.ifindex}` : '';
    const ok =
      t !== undefined &&
      t.reason === s.expect.reason &&
      r.retval === s.expect.verdict &&
      (s.expect.ifindex === undefined || t.ifindex === s.expect.ifindex) &&
      (s.expect.mark === undefined || mark === s.expect.mark) &&
      !note.endsWith('✗');
    return { scenario: s, ok, reason: t?.reason ?? '(no trace)', verdict: r.retval, redirect, mark, note };
  });
}
