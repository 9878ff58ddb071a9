import { describePrivileged, NETNS_PREFIX } from '@veil/test-utils';
import { type TcLink } from 'libbpf-ts';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { type Datapath } from '../src/index.js';
import { attachLabDatapath, type LabNode, loadLabDatapath, TwoNodeLab } from '../src/testing/index.js';

// The real thing: two node namespaces joined by an underlay veth, wireguard-go in each, a pod
// namespace behind each node. Veil's programs are attached with libbpf-ts and steer pod traffic
// into WireGuard (from-pod), deliver decrypted traffic to the pod (from-tunnel, so the nodes need
// no ip_forward), and guard the underlay (to-wire, strict).
describePrivileged(
  'pod to pod over wireguard-go through Veil programs',
  ['root', 'bpf', 'netns', 'tun', 'wireguard-go', 'wg'],
  () => {
    let lab: TwoNodeLab;
    const dps = new Map<LabNode, Datapath>();
    const links: TcLink[] = [];

    beforeAll(async () => {
      lab = await TwoNodeLab.create({ prefix: `${NETNS_PREFIX}bpf` });
      for (const [n, peer, peerId] of [
        [lab.a, lab.b, 2],
        [lab.b, lab.a, 1],
      ] as const) {
        const dp = loadLabDatapath(n, peer, peerId, 256);
        dps.set(n, dp);
        links.push(...attachLabDatapath(n, dp));
      }
    });

    afterAll(async () => {
      for (const l of links) {
        try {
          l.detach();
        } catch {
          /* the namespace may already be gone */
        }
      }
      for (const dp of dps.values()) dp.close();
      await lab?.destroy();
    });

    const counters = (n: LabNode) => (dps.get(n) as Datapath).readCounters();

    it('the nodes do not forward: delivery is up to from-tunnel', () => {
      for (const n of [lab.a, lab.b]) {
        expect(lab.exec(n.netns, 'sysctl', ['-n', 'net.ipv4.ip_forward']).trim()).toBe('0');
      }
    });

    it('IPv4 ping pod-a → pod-b goes through WireGuard both ways', () => {
      const wgBefore = lab.linkStats(lab.a.netns, lab.a.wgDev);
      const r = lab.tryExec(lab.a.podNetns, 'ping', ['-c', '3', '-i', '0.2', '-W', '3', lab.b.pod4]);
      expect(r.out).toMatch(/3 received/);
      expect(r.status).toBe(0);
      const a = counters(lab.a);
      const b = counters(lab.b);
      expect(a['redirect-wireguard'].packets).toBeGreaterThanOrEqual(3n);
      expect(b['tunnel-deliver'].packets).toBeGreaterThanOrEqual(3n);
      expect(b['redirect-wireguard'].packets).toBeGreaterThanOrEqual(3n);
      expect(a['tunnel-deliver'].packets).toBeGreaterThanOrEqual(3n);
      // What left on the underlay was WireGuard's UDP, nothing in clear.
      expect(a['to-wire-pass-encrypted'].packets).toBeGreaterThanOrEqual(3n);
      expect(a['to-wire-drop-clear'].packets).toBe(0n);
      const wgAfter = lab.linkStats(lab.a.netns, lab.a.wgDev);
      expect(wgAfter.txPackets - wgBefore.txPackets).toBeGreaterThanOrEqual(3);
      expect(wgAfter.rxPackets - wgBefore.rxPackets).toBeGreaterThanOrEqual(3);
      expect(lab.exec(lab.a.netns, 'wg', ['show', lab.a.wgDev, 'latest-handshakes'])).toMatch(/\t[1-9]\d*/);
    });

    it('IPv6 ping pod-b → pod-a goes through WireGuard both ways', () => {
      const before = counters(lab.b)['redirect-wireguard'].packets;
      const r = lab.tryExec(lab.b.podNetns, 'ping', ['-6', '-c', '3', '-i', '0.2', '-W', '3', lab.a.pod6]);
      expect(r.out).toMatch(/3 received/);
      expect(counters(lab.b)['redirect-wireguard'].packets - before).toBeGreaterThanOrEqual(3n);
      expect(counters(lab.a)['tunnel-deliver'].packets).toBeGreaterThanOrEqual(6n);
    });

    it('an oversized DF packet gets "Frag needed" and the sender learns the MTU', () => {
      const before = counters(lab.a)['frag-needed-sent'].packets;
      // 1472 + 28 = 1500 bytes of IP: fits the pod's 1500 MTU, not WireGuard's 1420.
      const big = lab.tryExec(lab.a.podNetns, 'ping', ['-M', 'do', '-c', '2', '-i', '0.2', '-W', '2', '-s', '1472', lab.b.pod4]);
      expect(big.status).not.toBe(0);
      expect(big.out).toMatch(/Frag needed|message too long/i);
      expect(big.out).toMatch(/mtu\s*=\s*1420/);
      expect(counters(lab.a)['frag-needed-sent'].packets - before).toBeGreaterThanOrEqual(1n);
      expect(lab.exec(lab.a.podNetns, 'ip', ['route', 'get', lab.b.pod4])).toMatch(/mtu 1420/);
      // Exactly the MTU still passes.
      const fits = lab.tryExec(lab.a.podNetns, 'ping', ['-M', 'do', '-c', '1', '-W', '3', '-s', '1392', lab.b.pod4]);
      expect(fits.out).toMatch(/1 received/);
    });

    it('IPv6: an oversized packet gets "Packet too big"', () => {
      const before = counters(lab.a)['frag-needed-sent'].packets;
      const big = lab.tryExec(lab.a.podNetns, 'ping', [
        '-6',
        '-M',
        'do',
        '-c',
        '2',
        '-i',
        '0.2',
        '-W',
        '2',
        '-s',
        '1452',
        lab.b.pod6,
      ]);
      expect(big.status).not.toBe(0);
      expect(big.out).toMatch(/Packet too big|message too long/i);
      expect(counters(lab.a)['frag-needed-sent'].packets - before).toBeGreaterThanOrEqual(1n);
    });

    it('node encryption: host-to-host traffic on the underlay is redirected into WireGuard', () => {
      for (const [n, peer, peerId] of [
        [lab.a, lab.b, 2],
        [lab.b, lab.a, 1],
      ] as const) {
        const dp = dps.get(n) as Datapath;
        dp.ipcache.update(`${peer.underlay4}/32`, {
          remote: true,
          isNode: true,
          encryptReady: true,
          nodeIp: peer.underlay4,
          nodeId: peerId,
        });
        dp.setConfig({ nodeEncryption: true });
      }
      try {
        const beforeA = counters(lab.a)['to-wire-node-encrypt'].packets;
        const beforeB = counters(lab.b)['to-wire-node-encrypt'].packets;
        const r = lab.tryExec(lab.a.netns, 'ping', ['-c', '3', '-i', '0.2', '-W', '3', lab.b.underlay4]);
        expect(r.out).toMatch(/3 received/);
        expect(counters(lab.a)['to-wire-node-encrypt'].packets - beforeA).toBeGreaterThanOrEqual(3n);
        expect(counters(lab.b)['to-wire-node-encrypt'].packets - beforeB).toBeGreaterThanOrEqual(3n);
        // The decrypted echo requests arrive on B's WireGuard device and are left to B's stack.
        expect(counters(lab.b)['tunnel-pass'].packets).toBeGreaterThanOrEqual(3n);
      } finally {
        for (const [n, peer] of [
          [lab.a, lab.b],
          [lab.b, lab.a],
        ] as const) {
          const dp = dps.get(n) as Datapath;
          dp.setConfig({ nodeEncryption: false });
          dp.ipcache.delete(`${peer.underlay4}/32`);
        }
      }
    });

    it('strict mode drops traffic to a peer that is not ready; ready again restores it', () => {
      const dp = dps.get(lab.a) as Datapath;
      dp.ipcache.update(lab.b.podCidr4, { remote: true, encryptReady: false, nodeIp: lab.b.underlay4, nodeId: 2 });
      try {
        const before = dp.readCounters()['drop-not-ready-strict'].packets;
        const r = lab.tryExec(lab.a.podNetns, 'ping', ['-c', '2', '-i', '0.2', '-W', '1', lab.b.pod4]);
        expect(r.status).not.toBe(0);
        expect(dp.readCounters()['drop-not-ready-strict'].packets - before).toBeGreaterThanOrEqual(2n);
      } finally {
        dp.ipcache.update(lab.b.podCidr4, { remote: true, encryptReady: true, nodeIp: lab.b.underlay4, nodeId: 2 });
      }
      expect(lab.tryExec(lab.a.podNetns, 'ping', ['-c', '1', '-W', '3', lab.b.pod4]).out).toMatch(/1 received/);
    });
  },
);
