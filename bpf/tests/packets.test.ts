import { describe, expect, it } from 'vitest';
import { ethernet, icmpEcho, internetChecksum, l4Checksum, tcpPacket, udpPacket } from '../src/testing/index.js';

// The packet builder underpins every Program.run assertion, so its checksums are checked
// against the RFC 1071 property: summing a correct header/segment (with its checksum) gives 0.
describe('packet builder', () => {
  it('IPv4 UDP/TCP/ICMP carry valid IP and L4 checksums', () => {
    for (const p of [
      udpPacket({ src: '10.0.0.1', dst: '10.0.0.2', payload: 33 }),
      tcpPacket({ src: '10.0.0.1', dst: '10.0.0.2', payload: 7 }),
    ]) {
      expect(internetChecksum(p.subarray(0, 20))).toBe(0);
      const seg = Buffer.from(p.subarray(20));
      const proto = p[9] as number;
      const off = proto === 17 ? 6 : 16;
      const got = seg.readUInt16BE(off);
      seg.writeUInt16BE(0, off);
      expect(l4Checksum('10.0.0.1', '10.0.0.2', proto, seg)).toBe(got);
    }
    const echo = icmpEcho({ src: '10.0.0.1', dst: '10.0.0.2', payload: 56 });
    expect(internetChecksum(echo.subarray(20))).toBe(0);
    expect(echo.length).toBe(84);
  });

  it('IPv6 packets have the right payload length and L4 checksum', () => {
    const p = udpPacket({ src: 'fd00::1', dst: 'fd00::2', payload: 10 });
    expect(p.readUInt16BE(4)).toBe(18);
    const seg = Buffer.from(p.subarray(40));
    const got = seg.readUInt16BE(6);
    seg.writeUInt16BE(0, 6);
    expect(l4Checksum('fd00::1', 'fd00::2', 17, seg)).toBe(got);
  });

  it('frames a 106-byte IPv4 UDP packet with the right EtherType', () => {
    const f = ethernet(udpPacket({ src: '10.0.0.1', dst: '10.0.0.2', payload: 64 }));
    expect(f.length).toBe(106);
    expect(f.readUInt16BE(12)).toBe(0x0800);
    expect(ethernet(udpPacket({ src: 'fd00::1', dst: 'fd00::2' })).readUInt16BE(12)).toBe(0x86dd);
  });
});
