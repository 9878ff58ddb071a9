import { describe, expect, it } from 'vitest';
import { analyzeCapture, pcapFrames } from '../src/pcap.js';
import { planLab } from '../src/state.js';
import { parseIp } from '@veil/ip';

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
function udp(sport: number, dport: number): Buffer {
  const b = Buffer.alloc(8);
  b.writeUInt16BE(sport, 0);
  b.writeUInt16BE(dport, 2);
  return b;
}

describe('underlay capture analysis', () => {
  const pods = ['10.244.1.11', '10.244.2.11'];

  it('counts WireGuard UDP as encrypted even if the ciphertext happens to contain a pod address', () => {
    const inner = Buffer.from([10, 244, 2, 11]);
    const buf = pcap([ipv4(17, '198.18.0.1', '198.18.0.2', udp(51871, 51871), inner), ipv4(17, '198.18.0.2', '198.18.0.1', udp(40000, 51871))]);
    expect(analyzeCapture(buf, 51871, pods)).toEqual({ packets: 2, encryptedPackets: 2, plaintextPackets: 0, plaintextBytes: 0 });
  });

  it('finds pod addresses in cleartext pod packets and in packets that tunnel them unencrypted', () => {
    const direct = ipv4(1, '10.244.1.11', '10.244.2.11', Buffer.alloc(8));
    const tunnelled = ipv4(17, '198.18.0.1', '198.18.0.2', udp(4789, 4789), ipv4(1, '10.244.1.11', '10.244.2.11', Buffer.alloc(8)));
    const apiText = ipv4(6, '198.18.0.1', '198.18.0.254', Buffer.alloc(20), Buffer.from('"podCIDR":"10.244.1.0/24"'));
    const r = analyzeCapture(pcap([direct, tunnelled, apiText]), 51871, pods);
    expect(r).toEqual({ packets: 3, encryptedPackets: 0, plaintextPackets: 2, plaintextBytes: direct.length + tunnelled.length });
  });

  it('counts ESP as encrypted', () => {
    const esp = ipv4(50, '198.18.0.1', '198.18.0.2', Buffer.from([0, 0, 0, 1, 0, 0, 0, 1]), Buffer.from([10, 244, 1, 11]));
    expect(analyzeCapture(pcap([esp]), 0, pods).encryptedPackets).toBe(1);
  });

  it('with node addresses, counts only node-to-node ESP as encrypted', () => {
    const tunnel = ipv4(50, '198.18.0.1', '198.18.0.2', Buffer.from([0, 0, 1, 1, 0, 0, 0, 1]), Buffer.from([10, 244, 1, 11]));
    const stray = ipv4(50, '10.244.1.11', '10.244.2.11', Buffer.from([0, 0, 1, 1, 0, 0, 0, 2]));
    const r = analyzeCapture(pcap([tunnel, stray]), 0, pods, ['198.18.0.1', '198.18.0.2']);
    expect(r).toEqual({ packets: 2, encryptedPackets: 1, plaintextPackets: 1, plaintextBytes: stray.length });
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

describe('lab plan', () => {
  it('gives every node a /24, an underlay address, and pods with lxc host veths', () => {
    const nodes = planLab(3, 2, '/run/x', '/run/x/bpf');
    expect(nodes.map((n) => [n.name, n.netns, n.underlayIP, n.podCIDR, n.pinDir])).toEqual([
      ['n1', 'veil-lab-n1', '198.18.0.1', '10.244.1.0/24', '/run/x/bpf/n1'],
      ['n2', 'veil-lab-n2', '198.18.0.2', '10.244.2.0/24', '/run/x/bpf/n2'],
      ['n3', 'veil-lab-n3', '198.18.0.3', '10.244.3.0/24', '/run/x/bpf/n3'],
    ]);
    expect(nodes[1]?.pods).toEqual([
      { name: 'n2-p1', netns: 'veil-lab-n2-p1', ip: '10.244.2.11', hostVeth: 'lxcn2p1' },
      { name: 'n2-p2', netns: 'veil-lab-n2-p2', ip: '10.244.2.12', hostVeth: 'lxcn2p2' },
    ]);
    // IFNAMSIZ: 15 characters at most.
    expect(Math.max(...planLab(50, 50, '/r', '/r/b').flatMap((n) => n.pods.map((p) => p.hostVeth.length)))).toBeLessThanOrEqual(15);
  });
});

describe('chaos ping statistics', () => {
  it('counts lost pings and the longest run of them', async () => {
    const { pingStats } = await import('../src/chaos.js');
    const out = [1, 2, 5, 6, 9].map((s) => `64 bytes from 10.244.2.11: icmp_seq=${s} ttl=62 time=0.5 ms`).join('\n') + '\n10 packets transmitted, 5 received, 50% packet loss, time 900ms\n';
    expect(pingStats('a', 'b', out)).toEqual({ from: 'a', to: 'b', sent: 10, received: 5, lost: 5, longestGapS: 0.2 });
  });
});
