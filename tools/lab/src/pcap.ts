import { parseIp } from '@veil/ip';
/** What an underlay capture shows about encryption. */
export interface CaptureAnalysis {
  packets: number;
  /** IPv4 UDP packets from or to the WireGuard port, and ESP packets (between node addresses, when given). */
  encryptedPackets: number;
  /** Packets (not UDP on the WireGuard port) that carry a pod address in their bytes. */
  plaintextPackets: number;
  plaintextBytes: number;
}

/**
 * Reads a classic pcap file (libpcap format, Ethernet link type, either byte order).
 * Yields each captured frame.
 */
export function* pcapFrames(buf: Buffer): Generator<Buffer> {
  if (buf.length < 24) return;
  const magic = buf.readUInt32LE(0);
  // 0xa1b2c3d4 (µs) / 0xa1b23c4d (ns); read as LE means the file is little-endian.
  const le = magic === 0xa1b2c3d4 || magic === 0xa1b23c4d;
  const be = buf.readUInt32BE(0) === 0xa1b2c3d4 || buf.readUInt32BE(0) === 0xa1b23c4d;
  if (!le && !be) throw new Error('not a pcap file (bad magic)');
  const u32 = (off: number): number => (le ? buf.readUInt32LE(off) : buf.readUInt32BE(off));
  const linktype = u32(20);
  if (linktype !== 1) throw new Error(`unsupported pcap link type ${linktype} (want 1, Ethernet)`);
  // struct pcap_pkthdr { u32 ts_sec; u32 ts_usec; u32 caplen; u32 len; }
  let off = 24;
  while (off + 16 <= buf.length) {
    const caplen = u32(off + 8);
    const start = off + 16;
    if (start + caplen > buf.length) return; // truncated last record (capture stopped mid-write)
    yield buf.subarray(start, start + caplen);
    off = start + caplen;
  }
}

/**
 * Classifies frames: UDP to/from `wgPort` counts as encrypted; any other frame containing one
 * of `podIPs` (as its 4 raw bytes, anywhere, so ICMP errors quoting a header count too) is
 * cleartext pod traffic. ESP (IP protocol 50) counts as encrypted; with `nodeIPs`, only ESP whose
 * source and destination are both node addresses (the IPsec backend's tunnels), so an ESP packet
 * that is not a node-to-node tunnel is still searched for pod addresses.
 */
export function analyzeCapture(buf: Buffer, wgPort: number, podIPs: readonly string[], nodeIPs?: readonly string[]): CaptureAnalysis {
  const needles = podIPs.map((ip) => parseIp(ip).bytes);
  const nodes = nodeIPs ? new Set(nodeIPs) : undefined;
  const v4 = (b: Buffer, off: number): string => `${b[off]}.${b[off + 1]}.${b[off + 2]}.${b[off + 3]}`;
  const out: CaptureAnalysis = { packets: 0, encryptedPackets: 0, plaintextPackets: 0, plaintextBytes: 0 };
  for (const frame of pcapFrames(buf)) {
    out.packets++;
    if (frame.length >= 14 + 20 && frame.readUInt16BE(12) === 0x0800) {
      const ihl = (frame[14]! & 0x0f) * 4;
      const proto = frame[14 + 9];
      const l4 = 14 + ihl;
      if (proto === 50 && (!nodes || (nodes.has(v4(frame, 14 + 12)) && nodes.has(v4(frame, 14 + 16))))) {
        out.encryptedPackets++; // ESP (the IPsec backend)
        continue;
      }
      if (proto === 17 && frame.length >= l4 + 4) {
        const sport = frame.readUInt16BE(l4);
        const dport = frame.readUInt16BE(l4 + 2);
        if (wgPort > 0 && (sport === wgPort || dport === wgPort)) {
          out.encryptedPackets++;
          continue;
        }
      }
    }
    if (needles.some((n) => frame.includes(n))) {
      out.plaintextPackets++;
      out.plaintextBytes += frame.length;
    }
  }
  return out;
}
