import { describe, expect, it } from 'vitest';
import { analyzeCapture, captureHealth, isWireGuardMessage, pcapFrames } from '../src/pcap.js';
import { hostPort, markedPayload, splitHostPort } from '../src/helpers.js';
import { agentConfig, captureFailures, formatSummary, labDualStack, pairCounts, type LabSummary } from '../src/up.js';
import { LAB_POD_SUPERNET6, nodePodCIDRs, planLab, podIPs, type LabNode } from '../src/state.js';
import { nodeLinkLocal6 } from '../src/topology.js';
import { cniNetworkConfig, parseCniResult } from '../src/cni.js';
import { deniedCalls } from '../src/apiserver.js';
import { canonicalCidr, canonicalIp, parseIp, parsePrefix, prefixContains } from '@veil/ip';

/** A classic little-endian pcap (Ethernet) holding `frames`. */
function pcap(frames: Buffer[]): Buffer {
  const head = Buffer.alloc(24);
  head.writeUInt32LE(0xa1b2c3d4, 0);
  head.writeUInt16LE(2, 4);
  head.writeUInt16LE(4, 6);
  head.writeUInt32LE(65535, 16);
  head.writeUInt32LE(1, 20);
  const recs = frames.map((f) => {
    const h = Buffer.alloc(16);
    h.writeUInt32LE(f.length, 8);
    h.writeUInt32LE(f.length, 12);
    return Buffer.concat([h, f]);
  });
  return Buffer.concat([head, ...recs]);
}

/** Ethernet + IPv4 (+ 8 bytes of L4 header) + payload. */
function ipv4(proto: number, src: string, dst: string, l4: Uint8Array, payload: Uint8Array = Buffer.alloc(0)): Buffer {
  const eth = Buffer.alloc(14);
  eth.writeUInt16BE(0x0800, 12);
  const ip = Buffer.alloc(20);
  ip[0] = 0x45;
  ip.writeUInt16BE(20 + l4.length + payload.length, 2);
  ip[9] = proto;
  parseIp(src).bytes.copy(ip, 12);
  parseIp(dst).bytes.copy(ip, 16);
  return Buffer.concat([eth, ip, l4, payload]);
}
/** Ethernet + IPv6 (next header `nh`) + L4 bytes + payload. */
function ipv6(nh: number, src: string, dst: string, l4: Uint8Array, payload: Uint8Array = Buffer.alloc(0)): Buffer {
  const eth = Buffer.alloc(14);
  eth.writeUInt16BE(0x86dd, 12);
  const ip = Buffer.alloc(40);
  ip[0] = 0x60;
  ip.writeUInt16BE(l4.length + payload.length, 4);
  ip[6] = nh;
  ip[7] = 64;
  parseIp(src).bytes.copy(ip, 8);
  parseIp(dst).bytes.copy(ip, 24);
  return Buffer.concat([eth, ip, l4, payload]);
}
function udp(sport: number, dport: number): Buffer {
  const b = Buffer.alloc(8);
  b.writeUInt16BE(sport, 0);
  b.writeUInt16BE(dport, 2);
  return b;
}

/** A WireGuard message of `type` with the right length (transport: `data` bytes of ciphertext, a multiple of 16). */
function wg(type: 1 | 2 | 3 | 4, data = 16): Buffer {
  const len = { 1: 148, 2: 92, 3: 64, 4: 32 + data }[type];
  const b = Buffer.alloc(len, 0xab);
  b[0] = type;
  b.fill(0, 1, 4);
  return b;
}
/** Like {@link udp}, with the UDP length field set for `payload`. */
function udpFor(sport: number, dport: number, payload: Buffer): Buffer {
  const b = udp(sport, dport);
  b.writeUInt16BE(8 + payload.length, 4);
  return b;
}

describe('underlay capture analysis', () => {
  const pods = ['10.244.1.11', '10.244.2.11'];
  const nodeIPs = ['198.18.0.1', '198.18.0.2'];
  const opts = { wgPort: 51871, podIPs: pods, nodeIPs };
  const clean = { plaintextIPv6Packets: 0, markerPackets: 0, malformedTunnelPackets: 0, truncatedRecords: 0 };

  it('counts WireGuard UDP between nodes as encrypted even if the ciphertext happens to contain a pod address', () => {
    const data = wg(4, 32);
    Buffer.from([10, 244, 2, 11]).copy(data, 20);
    const init = wg(1);
    const buf = pcap([
      ipv4(17, '198.18.0.1', '198.18.0.2', udpFor(51871, 51871, data), data),
      ipv4(17, '198.18.0.2', '198.18.0.1', udpFor(40000, 51871, init), init),
    ]);
    expect(analyzeCapture(buf, opts)).toEqual({
      packets: 2,
      encryptedPackets: 2,
      plaintextPackets: 0,
      plaintextBytes: 0,
      ...clean,
    });
  });

  it('parses WireGuard messages: types 1-4 with their lengths, reserved bytes zero', () => {
    expect([wg(1), wg(2), wg(3), wg(4, 0), wg(4, 1408)].map((m) => isWireGuardMessage(m))).toEqual([
      true,
      true,
      true,
      true,
      true,
    ]);
    // A full-size inner packet is padded only up to the tunnel MTU (1420 is not a multiple of 16).
    expect([isWireGuardMessage(wg(4, 1420)), isWireGuardMessage(wg(4, 1420), 1400), isWireGuardMessage(wg(4, 1404))]).toEqual([
      true,
      false,
      false,
    ]);
    const badReserved = wg(4);
    badReserved[2] = 1;
    expect(
      [
        wg(1).subarray(0, 147),
        Buffer.concat([wg(2), Buffer.alloc(1)]),
        wg(4).subarray(0, 40),
        badReserved,
        Buffer.from([5, 0, 0, 0]),
        Buffer.alloc(0),
      ].map((m) => isWireGuardMessage(m)),
    ).toEqual([false, false, false, false, false, false]);
  });

  it('does not count tunnel-port UDP as encrypted unless it is WireGuard between node addresses', () => {
    const icmp = ipv4(1, '10.244.1.11', '10.244.2.11', Buffer.alloc(8));
    const notWg = ipv4(17, '198.18.0.1', '198.18.0.2', udpFor(51871, 51871, icmp), icmp); // a pod packet in clear on the port
    const msg = wg(4);
    const fromPod = ipv4(17, '10.244.1.11', '198.18.0.2', udpFor(51871, 51871, msg), msg); // right format, wrong outer address
    const r = analyzeCapture(pcap([notWg, fromPod]), opts);
    expect(r).toMatchObject({ packets: 2, encryptedPackets: 0, malformedTunnelPackets: 2, plaintextPackets: 2 });
  });

  it('finds the run marker in any packet, whatever its addresses or protocol', () => {
    const marker = Buffer.from('00112233445566778899aabbccddeeff', 'hex');
    const natted = ipv4(6, '198.18.0.1', '203.0.113.9', Buffer.alloc(20), Buffer.concat([Buffer.from('x'), marker]));
    const icmp = ipv4(1, '198.18.0.1', '198.18.0.2', Buffer.alloc(8), marker);
    const other = ipv4(6, '198.18.0.1', '198.18.0.2', Buffer.alloc(20), marker.subarray(0, 15));
    const r = analyzeCapture(pcap([natted, icmp, other]), { ...opts, marker });
    expect(r).toMatchObject({ packets: 3, markerPackets: 2, plaintextPackets: 0 });
  });

  it('finds pod addresses in cleartext pod packets and in packets that tunnel them unencrypted', () => {
    const direct = ipv4(1, '10.244.1.11', '10.244.2.11', Buffer.alloc(8));
    const tunnelled = ipv4(
      17,
      '198.18.0.1',
      '198.18.0.2',
      udp(4789, 4789),
      ipv4(1, '10.244.1.11', '10.244.2.11', Buffer.alloc(8)),
    );
    const apiText = ipv4(6, '198.18.0.1', '198.18.0.254', Buffer.alloc(20), Buffer.from('"podCIDR":"10.244.1.0/24"'));
    const r = analyzeCapture(pcap([direct, tunnelled, apiText]), opts);
    expect(r).toEqual({
      packets: 3,
      encryptedPackets: 0,
      plaintextPackets: 2,
      plaintextBytes: direct.length + tunnelled.length,
      ...clean,
    });
  });

  it('counts IPv6 pod packets on the (IPv4) underlay as cleartext, and finds the marker in their payload', () => {
    const pods6 = ['fd00:10:244:1::11', 'fd00:10:244:2::11'];
    const marker = Buffer.from('00112233445566778899aabbccddeeff', 'hex');
    const o = { ...opts, podIPs: [...pods, ...pods6], marker };
    // ICMPv6 echo between two pods' IPv6 addresses, routed in clear (no steering).
    const echo6 = ipv6(58, pods6[0]!, pods6[1]!, Buffer.from([128, 0, 0, 0, 0, 1, 0, 1]), marker);
    // The same packet tunnelled without encryption (IPv6 in UDP over the IPv4 underlay).
    const tunnelled = ipv4(17, '198.18.0.1', '198.18.0.2', udp(4789, 4789), ipv6(6, pods6[1]!, pods6[0]!, Buffer.alloc(20)));
    // Underlay IPv6 between the nodes' link-local addresses (neighbour discovery): no pod address, not cleartext.
    const nd = ipv6(58, 'fe80::1', 'fe80::2', Buffer.from([135, 0, 0, 0, 0, 0, 0, 0]));
    const r = analyzeCapture(pcap([echo6, tunnelled, nd]), o);
    expect(r).toEqual({
      packets: 3,
      encryptedPackets: 0,
      plaintextPackets: 2,
      plaintextBytes: echo6.length + tunnelled.length,
      plaintextIPv6Packets: 2,
      markerPackets: 1,
      malformedTunnelPackets: 0,
      truncatedRecords: 0,
    });
    // IPv6 pod packets inside WireGuard between the nodes' IPv4 addresses are encrypted ones.
    const data = wg(4, 64);
    parseIp(pods6[1]!).bytes.copy(data, 20);
    const sealed = ipv4(17, '198.18.0.1', '198.18.0.2', udpFor(51871, 51871, data), data);
    expect(analyzeCapture(pcap([sealed]), o)).toMatchObject({ encryptedPackets: 1, plaintextPackets: 0 });
  });

  it('counts ESP as encrypted', () => {
    const esp = ipv4(50, '198.18.0.1', '198.18.0.2', Buffer.from([0, 0, 0, 1, 0, 0, 0, 1]), Buffer.from([10, 244, 1, 11]));
    expect(analyzeCapture(pcap([esp]), { ...opts, wgPort: 0 }).encryptedPackets).toBe(1);
  });

  it('counts records cut by the snap length or mid-write as truncated', () => {
    const f = ipv4(1, '1.1.1.1', '2.2.2.2', Buffer.alloc(8));
    const whole = pcap([f, f]);
    expect(analyzeCapture(whole, opts).truncatedRecords).toBe(0);
    expect(analyzeCapture(whole.subarray(0, whole.length - 3), opts)).toMatchObject({ packets: 1, truncatedRecords: 1 });
    const snapped = Buffer.from(whole);
    snapped.writeUInt32LE(f.length + 100, 24 + 12); // original length > captured length
    expect(analyzeCapture(snapped, opts)).toMatchObject({ packets: 2, truncatedRecords: 1 });
  });

  it('counts only node-to-node ESP as encrypted; other ESP is searched for pod addresses', () => {
    const tunnel = ipv4(50, '198.18.0.1', '198.18.0.2', Buffer.from([0, 0, 1, 1, 0, 0, 0, 1]), Buffer.from([10, 244, 1, 11]));
    const stray = ipv4(50, '10.244.1.11', '10.244.2.11', Buffer.from([0, 0, 1, 1, 0, 0, 0, 2]));
    const r = analyzeCapture(pcap([tunnel, stray]), { ...opts, wgPort: 0 });
    expect(r).toEqual({ packets: 2, encryptedPackets: 1, plaintextPackets: 1, plaintextBytes: stray.length, ...clean });
  });

  it('reads big-endian files, stops at a truncated last record and refuses other formats', () => {
    const le = pcap([ipv4(1, '1.1.1.1', '2.2.2.2', Buffer.alloc(8))]);
    const be = Buffer.from(le);
    be.writeUInt32BE(0xa1b2c3d4, 0);
    be.writeUInt32BE(1, 20);
    be.writeUInt32BE(le.readUInt32LE(24 + 8), 24 + 8);
    expect([...pcapFrames(be)]).toHaveLength(1);
    expect([...pcapFrames(le.subarray(0, le.length - 3))]).toHaveLength(0);
    expect(() => [...pcapFrames(Buffer.alloc(24))]).toThrow(/bad magic/);
    const raw = Buffer.from(le);
    raw.writeUInt32LE(101, 20);
    expect(() => [...pcapFrames(raw)]).toThrow(/link type 101/);
  });
});

describe('capture health', () => {
  const stats =
    'tcpdump: listening on br0, link-type EN10MB (Ethernet), snapshot length 262144 bytes\n12 packets captured\n12 packets received by filter\n0 packets dropped by kernel\n';
  const ok = { code: 0, signal: null };

  it('is healthy when tcpdump exited 0, dropped nothing and the file holds every packet whole', () => {
    expect(captureHealth(stats, ok, { packets: 12, truncatedRecords: 0 })).toEqual({
      exitCode: 0,
      signal: null,
      captured: 12,
      droppedByKernel: 0,
      problems: [],
    });
  });

  it('names every reason a capture cannot be trusted', () => {
    expect(
      captureHealth(stats.replace('0 packets dropped by kernel', '3 packets dropped by kernel'), ok, {
        packets: 12,
        truncatedRecords: 0,
      }).problems,
    ).toEqual(['3 packets dropped by kernel']);
    expect(captureHealth(stats, { code: 1, signal: null }, { packets: 12, truncatedRecords: 0 }).problems).toEqual([
      'tcpdump exited 1',
    ]);
    expect(captureHealth('', { code: null, signal: 'SIGKILL' }, { packets: 0, truncatedRecords: 0 }).problems).toEqual([
      'tcpdump killed by SIGKILL',
      'tcpdump printed no capture statistics',
    ]);
    expect(captureHealth(stats, ok, { packets: 11, truncatedRecords: 1 }).problems).toEqual([
      'tcpdump captured 12 packets, the file holds 11',
      '1 truncated capture records',
    ]);
  });

  it('turns into lab failures: unhealthy capture, marker, malformed tunnel packets; a non-encrypting backend must show the marker', () => {
    const a = {
      packets: 5,
      encryptedPackets: 4,
      plaintextPackets: 0,
      plaintextBytes: 0,
      plaintextIPv6Packets: 0,
      markerPackets: 1,
      malformedTunnelPackets: 1,
      truncatedRecords: 0,
    };
    const h = captureHealth(stats.replace('0 packets dropped', '2 packets dropped'), ok, { packets: 12, truncatedRecords: 0 });
    expect(captureFailures(a, h, true)).toEqual([
      'capture unhealthy: 2 packets dropped by kernel',
      'the probe marker is in 1 underlay packets (probe payload in clear)',
      '1 packets on the tunnel port are not WireGuard messages between node addresses',
    ]);
    const healthy = captureHealth(stats, ok, { packets: 12, truncatedRecords: 0 });
    expect(captureFailures({ ...a, markerPackets: 0 }, healthy, false)).toEqual([
      'the probe marker is nowhere in the capture of a backend that does not encrypt: the marker search cannot see leaks',
    ]);
    expect(captureFailures({ ...a, markerPackets: 0, malformedTunnelPackets: 0 }, healthy, true)).toEqual([]);
  });
});

describe('probe targets', () => {
  it('brackets IPv6 addresses and reads both forms back', () => {
    expect(hostPort('10.244.2.11', 7777)).toBe('10.244.2.11:7777');
    expect(hostPort('fd00:10:244:2::11', 7777)).toBe('[fd00:10:244:2::11]:7777');
    expect(splitHostPort('[fd00:10:244:2::11]:7777')).toEqual({ host: 'fd00:10:244:2::11', port: 7777 });
    expect(splitHostPort('fd00:10:244:2::11:7777')).toEqual({ host: 'fd00:10:244:2::11', port: 7777 });
    expect(splitHostPort('10.244.2.11:7777')).toEqual({ host: '10.244.2.11', port: 7777 });
  });
});

describe('lab summary', () => {
  it('counts pod pairs per family and prints both', () => {
    const ok = { ping: { ok: true, sent: 3, received: 3 }, tcp: { ok: true, bytes: 32768 } };
    const lost = { ping: { ok: false, sent: 3, received: 2 }, tcp: { ok: true, bytes: 32768 } };
    expect(pairCounts([ok, ok, lost])).toEqual({ total: 3, pingOk: 2, tcpOk: 3, ok: 2 });
    const s = {
      ok: true,
      backend: 'wireguard',
      driver: 'userspace',
      nodes: 3,
      pods: 6,
      pairs: pairCounts(Array.from({ length: 24 }, () => ok)),
      pairsIPv6: pairCounts([...Array.from({ length: 23 }, () => ok), lost]),
      capture: {
        packets: 10,
        encryptedPackets: 10,
        plaintextPackets: 0,
        plaintextBytes: 0,
        plaintextIPv6Packets: 0,
        markerPackets: 0,
        malformedTunnelPackets: 0,
        truncatedRecords: 0,
        wireguardPort: 51871,
        health: { exitCode: 0, signal: null, captured: 10, droppedByKernel: 0, problems: [] },
      },
      marker: '00',
      expectsEncryption: true,
      failures: [],
      kept: false,
      durationMs: 1000,
      controlPlane: { kind: 'double', note: '', agentDenials: [], refusedWhileStarting: 0 },
    } satisfies LabSummary;
    expect(formatSummary(s)).toContain(
      'pod pairs across nodes: 24/24 OK over IPv4 (ping 24/24, tcp echo 24/24), 23/24 OK over IPv6 (ping 23/24, tcp echo 24/24)',
    );
  });
});

describe('probe payload', () => {
  it('carries the marker at every KiB boundary', () => {
    const marker = Buffer.from('a1b2c3d4e5f60718293a4b5c6d7e8f90', 'hex');
    const p = markedPayload(4096 + 10, marker);
    expect(p).toHaveLength(4106);
    expect([0, 1024, 2048, 3072].map((off) => p.subarray(off, off + 16).equals(marker))).toEqual([true, true, true, true]);
    expect(p.includes(marker, 3073)).toBe(false); // no room for a whole copy at 4096
    expect(markedPayload(8, marker)).toHaveLength(8);
  });
});

describe('lab plan', () => {
  it('gives every node a /24 and an underlay address, and plans pod addresses (veths are named by the CNI plugin)', () => {
    const nodes = planLab(3, 2, '/run/x', '/run/x/bpf');
    expect(nodes.map((n) => [n.name, n.netns, n.underlayIP, n.podCIDR, n.pinDir])).toEqual([
      ['n1', 'veil-lab-n1', '198.18.0.1', '10.244.1.0/24', '/run/x/bpf/n1'],
      ['n2', 'veil-lab-n2', '198.18.0.2', '10.244.2.0/24', '/run/x/bpf/n2'],
      ['n3', 'veil-lab-n3', '198.18.0.3', '10.244.3.0/24', '/run/x/bpf/n3'],
    ]);
    expect(nodes[1]?.pods).toEqual([
      { name: 'n2-p1', netns: 'veil-lab-n2-p1', ip: '10.244.2.11', ip6: 'fd00:10:244:2::11', hostVeth: '' },
      { name: 'n2-p2', netns: 'veil-lab-n2-p2', ip: '10.244.2.12', ip6: 'fd00:10:244:2::12', hostVeth: '' },
    ]);
  });

  it('is dual-stack: every node an IPv6 /64 inside the supernet strict mode lists, IPv4 first as in Node spec.podCIDRs', () => {
    const nodes = planLab(50, 1, '/run/x', '/run/x/bpf');
    expect(nodePodCIDRs(nodes[0]!)).toEqual(['10.244.1.0/24', 'fd00:10:244:1::/64']);
    expect(nodePodCIDRs(nodes[49]!)).toEqual(['10.244.50.0/24', 'fd00:10:244:50::/64']);
    const supernet = parsePrefix(LAB_POD_SUPERNET6);
    for (const n of nodes) {
      // Canonical text (what the agent's validation and WireGuard's allowed IPs compare).
      expect(canonicalCidr(n.podCIDR6)).toBe(n.podCIDR6);
      const c = parsePrefix(n.podCIDR6);
      expect(c.prefixLen).toBe(64);
      expect(prefixContains(supernet, c)).toBe(true);
      for (const p of n.pods) {
        expect(canonicalIp(p.ip6)).toBe(p.ip6);
        expect(prefixContains(c, parsePrefix(p.ip6))).toBe(true);
      }
    }
    expect(new Set(nodes.map((n) => n.podCIDR6)).size).toBe(50);
    expect(podIPs(nodes[0]!.pods[0]!)).toEqual(['10.244.1.11', 'fd00:10:244:1::11']);
    // The next hops of the routes to a node's IPv6 pod CIDR: one fixed link-local address per node.
    expect(nodes.slice(0, 3).map(nodeLinkLocal6)).toEqual(['fe80::1', 'fe80::2', 'fe80::3']);
  });

  it("strict mode lists both pod supernets in a dual-stack lab's agent config, the IPv4 one in an IPv4-only lab", () => {
    const strictCidrs = (n: LabNode): unknown =>
      (agentConfig(n, 'wireguard', 51871, true, ['veth*']) as { encryption: { strictMode: { cidrs: string[] } } }).encryption
        .strictMode.cidrs;
    expect(strictCidrs(planLab(2, 1, '/run/x', '/run/x/bpf')[0]!)).toEqual(['10.244.0.0/16', 'fd00:10:244::/56']);
    expect(strictCidrs(planLab(2, 1, '/run/x', '/run/x/bpf', false)[0]!)).toEqual(['10.244.0.0/16']);
  });

  it('is dual-stack for every backend but IPsec (its tunnels carry their own family only; the underlay is IPv4), unless told', () => {
    expect(['wireguard', '/x/plaintext-backend', 'ipsec'].map((b) => labDualStack(b))).toEqual([true, true, false]);
    expect([labDualStack('wireguard', false), labDualStack('ipsec', true)]).toEqual([false, true]);
  });

  it('plans IPv4 only when asked', () => {
    const [n1] = planLab(2, 1, '/run/x', '/run/x/bpf', false);
    expect(n1?.podCIDR6).toBeUndefined();
    expect(nodePodCIDRs(n1!)).toEqual(['10.244.1.0/24']);
    expect(podIPs(n1!.pods[0]!)).toEqual(['10.244.1.11']);
  });
});

describe('CNI configuration and result', () => {
  it('configures ptp + host-local over both pod CIDRs (one range per family), from .11 and ::11, leases in the lab directory', () => {
    const [n1] = planLab(2, 1, '/run/x', '/run/x/bpf');
    expect(cniNetworkConfig(n1!)).toEqual({
      cniVersion: '1.0.0',
      name: 'veil-lab',
      type: 'ptp',
      mtu: 1420,
      ipMasq: false,
      ipam: {
        type: 'host-local',
        ranges: [
          [{ subnet: '10.244.1.0/24', rangeStart: '10.244.1.11', gateway: '10.244.1.1' }],
          [{ subnet: 'fd00:10:244:1::/64', rangeStart: 'fd00:10:244:1::11', gateway: 'fd00:10:244:1::1' }],
        ],
        routes: [{ dst: '0.0.0.0/0' }, { dst: '::/0' }],
        dataDir: '/run/x/n1/cni-ipam',
      },
    });
  });

  it('configures the IPv4 range only for an IPv4-only node', () => {
    const [n1] = planLab(2, 1, '/run/x', '/run/x/bpf', false);
    expect(cniNetworkConfig(n1!)).toEqual({
      cniVersion: '1.0.0',
      name: 'veil-lab',
      type: 'ptp',
      mtu: 1420,
      ipMasq: false,
      ipam: {
        type: 'host-local',
        ranges: [[{ subnet: '10.244.1.0/24', rangeStart: '10.244.1.11', gateway: '10.244.1.1' }]],
        routes: [{ dst: '0.0.0.0/0' }],
        dataDir: '/run/x/n1/cni-ipam',
      },
    });
  });

  it('reads the pod address and the node-side veth from a spec 1.0.0 result, and names what is missing', () => {
    const result = {
      cniVersion: '1.0.0',
      interfaces: [
        { name: 'veth3f2a9c1e', mac: '6a:1b:00:00:00:01' },
        { name: 'eth0', mac: '6a:1b:00:00:00:02', sandbox: '/run/netns/veil-lab-n1-p1' },
      ],
      ips: [{ interface: 1, address: '10.244.1.11/24', gateway: '10.244.1.1' }],
      routes: [{ dst: '0.0.0.0/0' }],
    };
    expect(parseCniResult(JSON.stringify(result))).toEqual({ ip: '10.244.1.11', hostVeth: 'veth3f2a9c1e' });
    // Dual-stack: one address per family, whichever order the plugin lists them in.
    const ips6 = [{ interface: 1, address: 'fd00:10:244:1::11/64', gateway: 'fd00:10:244:1::1' }, ...result.ips];
    expect(parseCniResult(JSON.stringify({ ...result, ips: ips6 }))).toEqual({
      ip: '10.244.1.11',
      ip6: 'fd00:10:244:1::11',
      hostVeth: 'veth3f2a9c1e',
    });
    expect(() => parseCniResult(JSON.stringify({ ...result, ips: [] }))).toThrow(/no IPv4 pod address/);
    expect(() => parseCniResult(JSON.stringify({ ...result, interfaces: [result.interfaces[1]] }))).toThrow(
      /no node-side interface/,
    );
    expect(() => parseCniResult('oops')).toThrow(/not JSON/);
  });
});

describe('chaos ping statistics', () => {
  it('counts lost pings and the longest run of them', async () => {
    const { pingStats } = await import('../src/chaos.js');
    const out =
      [1, 2, 5, 6, 9].map((s) => `64 bytes from 10.244.2.11: icmp_seq=${s} ttl=62 time=0.5 ms`).join('\n') +
      '\n10 packets transmitted, 5 received, 50% packet loss, time 900ms\n';
    expect(pingStats('a', 'b', out)).toEqual({
      from: 'a',
      to: 'b',
      sent: 10,
      received: 5,
      lost: 4,
      inFlightAtStop: 1,
      longestGapS: 0.2,
      gaps: [
        { atS: 0.2, lengthS: 0.2 },
        { atS: 0.6, lengthS: 0.2 },
      ],
    });
  });

  it('does not count the ping in flight at the stop as lost, but counts every other', async () => {
    const { pingStats } = await import('../src/chaos.js');
    const line = (s: number): string => `64 bytes from 10.244.2.11: icmp_seq=${s} ttl=62 time=0.5 ms`;
    const allButLast = [1, 2, 3].map(line).join('\n') + '\n4 packets transmitted, 3 received, 25% packet loss\n';
    expect(pingStats('a', 'b', allButLast)).toMatchObject({ sent: 4, received: 3, lost: 0, inFlightAtStop: 1, gaps: [] });
    const midLoss = [1, 3, 4].map(line).join('\n') + '\n4 packets transmitted, 3 received, 25% packet loss\n';
    expect(pingStats('a', 'b', midLoss)).toMatchObject({
      sent: 4,
      received: 3,
      lost: 1,
      inFlightAtStop: 0,
      gaps: [{ atS: 0.1, lengthS: 0.1 }],
    });
  });
});

describe('refused agent calls from the audit log', () => {
  const user = 'system:serviceaccount:kube-system:veil';
  const line = (o: object): string => JSON.stringify({ kind: 'Event', stage: 'ResponseComplete', ...o });
  const log = [
    line({
      user: { username: user },
      verb: 'patch',
      requestURI: '/api/v1/nodes/n2',
      requestReceivedTimestamp: '2026-01-01T00:00:10.000Z',
      responseStatus: { code: 403, message: 'no' },
    }),
    line({
      user: { username: user },
      verb: 'watch',
      requestURI: '/api/v1/nodes?watch=true',
      requestReceivedTimestamp: '2026-01-01T00:00:05.500Z',
      responseStatus: { code: 403 },
    }),
    line({
      user: { username: user },
      verb: 'patch',
      requestURI: '/api/v1/nodes/n2?dryRun=All',
      requestReceivedTimestamp: '2026-01-01T00:00:01.000Z',
      responseStatus: { code: 403 },
    }),
    line({
      user: { username: user },
      verb: 'list',
      requestURI: '/api/v1/nodes',
      requestReceivedTimestamp: '2026-01-01T00:00:02.000Z',
      responseStatus: { code: 200 },
    }),
    line({
      user: { username: 'system:serviceaccount:kube-system:other' },
      verb: 'get',
      requestURI: '/api/v1/secrets',
      requestReceivedTimestamp: '2026-01-01T00:00:03.000Z',
      responseStatus: { code: 403 },
    }),
    'not json ' + user,
  ].join('\n');

  it("keeps the user's 401/403 answers (not dry runs), marking those received while the apiserver was starting", () => {
    const from = Date.parse('2026-01-01T00:00:05.000Z');
    expect(deniedCalls(log, user, [{ from, to: from + 1000 }])).toEqual([
      { user, verb: 'patch', uri: '/api/v1/nodes/n2', code: 403, message: 'no', duringStartup: false },
      { user, verb: 'watch', uri: '/api/v1/nodes?watch=true', code: 403, duringStartup: true },
    ]);
    // Without startup windows every refusal counts.
    expect(deniedCalls(log, user).map((d) => d.duringStartup)).toEqual([false, false]);
  });
});

describe('chaos: lost ping send times (ping -D)', () => {
  it('places each lost ping between its answered neighbours, and skips the one in flight at the stop', async () => {
    const { lostPingTimes } = await import('../src/chaos.js');
    // Sent at 1000.0 s + (seq-1) × 0.1 s; replies 2 ms later. Seqs 3 and 4 lost, 6 in flight at the stop.
    const line = (s: number): string =>
      `[${(1000 + (s - 1) * 0.1 + 0.002).toFixed(6)}] 64 bytes from 10.244.2.11: icmp_seq=${s} ttl=62 time=2.00 ms`;
    const out = [1, 2, 5].map(line).join('\n') + '\n6 packets transmitted, 3 received, 50% packet loss, time 500ms\n';
    const t = lostPingTimes(out);
    expect(t).toHaveLength(2);
    expect(t[0]).toBeCloseTo(1_000_200, 0);
    expect(t[1]).toBeCloseTo(1_000_300, 0);
  });

  it('extrapolates one interval per ping past the last answer', async () => {
    const { lostPingTimes } = await import('../src/chaos.js');
    const out =
      '[1000.002000] 64 bytes from 10.244.2.11: icmp_seq=1 ttl=62 time=2.00 ms\n4 packets transmitted, 1 received, 75% packet loss\n';
    // 2 and 3 lost (4 in flight at the stop).
    expect(lostPingTimes(out).map((x) => Math.round(x))).toEqual([1_000_100, 1_000_200]);
  });
});

describe('chaos (IPsec): ip xfrm output', () => {
  // `ip xfrm state` / `ip xfrm policy` as iproute2 6.1 prints the IPsec backend's objects (node 1, peer node 2, index 3).
  const states = [
    'src 198.18.0.1 dst 198.18.0.2',
    '\tproto esp spi 0x00000103 reqid 1986357612 mode tunnel',
    '\treplay-window 0 flag af-unspec esn',
    '\tmark 0x23e00/0xffffff00',
    '\taead rfc4106(gcm(aes)) 0x00112233445566778899aabbccddeeff00112233 128',
    '\tanti-replay esn context:',
    '\t seq-hi 0x0, seq 0x0, oseq-hi 0x0, oseq 0x2a',
    'src 198.18.0.2 dst 198.18.0.1',
    '\tproto esp spi 0x00000203 reqid 1986357612 mode tunnel',
    '\treplay-window 0 flag af-unspec esn',
    '\taead rfc4106(gcm(aes)) 0x00112233445566778899aabbccddeeff00112233 128',
    'src 192.0.2.1 dst 192.0.2.2',
    '\tproto esp spi 0x00001000 reqid 7 mode tunnel',
    '',
  ].join('\n');
  // Captured from a netns on this host (policies need no ESP).
  const policies = [
    'src 0.0.0.0/0 dst 0.0.0.0/0 ',
    '\tdir in priority 30289 ptype main ',
    '\ttmpl src 0.0.0.0 dst 0.0.0.0',
    '\t\tproto esp reqid 1986357612 mode tunnel',
    '\t\tlevel use ',
    'src 0.0.0.0/0 dst 0.0.0.0/0 ',
    '\tdir out action block priority 30463 ptype main ',
    '\tmark 0xe00/0xf00 ',
    'src 0.0.0.0/0 dst 0.0.0.0/0 ',
    '\tdir out priority 30288 ptype main ',
    '\tmark 0x23e00/0xffffff00 ',
    '\ttmpl src 198.18.0.1 dst 198.18.0.2',
    '\t\tproto esp reqid 1986357612 mode tunnel',
    '',
  ].join('\n');

  it('parses states and policies, key indexes and who they belong to', async () => {
    const { parseXfrmStates, parseXfrmPolicies, indexesIn, objectsOf, stateIndex, VEIL_REQID } =
      await import('../src/chaos-ipsec.js');
    const s = parseXfrmStates(states);
    expect(s).toEqual([
      { src: '198.18.0.1', dst: '198.18.0.2', spi: 0x103, reqid: VEIL_REQID, mark: { value: 0x23e00, mask: 0xffffff00 } },
      { src: '198.18.0.2', dst: '198.18.0.1', spi: 0x203, reqid: VEIL_REQID },
      { src: '192.0.2.1', dst: '192.0.2.2', spi: 0x1000, reqid: 7 },
    ]);
    expect(s.map(stateIndex)).toEqual([3, 3, 0]);
    const p = parseXfrmPolicies(policies);
    expect(p.map((x) => [x.dir, x.priority, x.mark?.value, x.tmpl.map((t) => `${t.dst}/${t.reqid}`)])).toEqual([
      ['in', 30289, undefined, ['0.0.0.0/1986357612']],
      ['out', 30463, 0xe00, []],
      ['out', 30288, 0x23e00, ['198.18.0.2/1986357612']],
    ]);
    const x = { states: s.filter((q) => q.reqid === VEIL_REQID), policies: p };
    // The block policy's mark carries no key index; the peer policy's and both states' say 3.
    expect(indexesIn(x)).toEqual([3]);
    expect(objectsOf(x, '198.18.0.2', 2)).toEqual([
      'state 198.18.0.1→198.18.0.2 spi 0x103',
      'state 198.18.0.2→198.18.0.1 spi 0x203',
      'policy out mark 0x23e00',
    ]);
    expect(objectsOf(x, '198.18.0.3', 3)).toEqual([]);
  });

  it('key files: the index of the line, the next index wrapping at 15', async () => {
    const { keyFileIndex, nextKeyIndex } = await import('../src/chaos-ipsec.js');
    expect(keyFileIndex('3+ rfc4106(gcm(aes)) 0011 128\n')).toBe(3);
    expect(keyFileIndex('15 rfc4106(gcm(aes)) 0011 128\n')).toBe(15);
    expect(() => keyFileIndex('nonsense\n')).toThrow(/no `<index>/);
    expect([3, 14, 15].map(nextKeyIndex)).toEqual([4, 15, 1]);
  });
});
