import { parseIp } from '@veil/ip';
/** What an underlay capture shows about encryption. */
export interface CaptureAnalysis {
  packets: number;
  /**
   * IPv4 UDP packets on the WireGuard port between node addresses that parse as WireGuard
   * messages, and ESP packets between node addresses.
   */
  encryptedPackets: number;
  /** Packets not counted as encrypted that carry a pod address in their bytes. */
  plaintextPackets: number;
  plaintextBytes: number;
  /** Of `plaintextPackets`, those carrying a pod IPv6 address (dual-stack labs). */
  plaintextIPv6Packets: number;
  /** Packets (any kind, encrypted ones included) that carry the run's probe marker: probe payload in clear. */
  markerPackets: number;
  /** UDP on the WireGuard port that is not a WireGuard message between node addresses (not counted as encrypted). */
  malformedTunnelPackets: number;
  /** Records cut short: by the snap length (caplen < len), or a last record cut mid-write. */
  truncatedRecords: number;
}

/** The lab's WireGuard device MTU: the 1500-byte underlay minus WireGuard's worst-case (IPv6) overhead of 80. */
export const WG_TUNNEL_MTU = 1420;

/** What to look for in a capture. */
export interface CaptureOptions {
  /** The WireGuard UDP port; 0 when the backend is not WireGuard. */
  wgPort: number;
  podIPs: readonly string[];
  /** Underlay addresses of the nodes (ghost nodes included): the only valid outer addresses of tunnel packets. */
  nodeIPs: readonly string[];
  /** The run's random probe marker (in every ping and TCP probe payload). */
  marker?: Buffer;
  /** The WireGuard device MTU (full-size transport messages are padded only up to it); default {@link WG_TUNNEL_MTU}. */
  tunnelMtu?: number;
}

/** One captured frame and whether the capture cut it short (caplen < original length). */
interface PcapRecord {
  frame: Buffer;
  snapped: boolean;
}

/** Reads every record of a classic pcap; `truncatedTail` when the last record was cut mid-write. */
function readRecords(buf: Buffer): { records: PcapRecord[]; truncatedTail: boolean } {
  const records: PcapRecord[] = [];
  if (buf.length < 24) return { records, truncatedTail: buf.length > 0 };
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
    const len = u32(off + 12);
    const start = off + 16;
    if (start + caplen > buf.length) return { records, truncatedTail: true }; // capture stopped mid-write
    records.push({ frame: buf.subarray(start, start + caplen), snapped: caplen < len });
    off = start + caplen;
  }
  return { records, truncatedTail: off !== buf.length };
}

/**
 * Reads a classic pcap file (libpcap format, Ethernet link type, either byte order).
 * Yields each captured frame.
 */
export function* pcapFrames(buf: Buffer): Generator<Buffer> {
  for (const r of readRecords(buf).records) yield r.frame;
}

/**
 * True if `msg` (a UDP payload) is a WireGuard message: type 1 initiation (148 bytes), 2
 * response (92), 3 cookie reply (64), 4 transport data (16-byte header + the inner packet padded
 * to a multiple of 16, but never past the tunnel MTU, + 16-byte tag); the three reserved bytes
 * are zero.
 */
export function isWireGuardMessage(msg: Buffer, tunnelMtu = WG_TUNNEL_MTU): boolean {
  if (msg.length < 4 || msg[1] !== 0 || msg[2] !== 0 || msg[3] !== 0) return false;
  switch (msg[0]) {
    case 1:
      return msg.length === 148;
    case 2:
      return msg.length === 92;
    case 3:
      return msg.length === 64;
    case 4:
      return msg.length >= 32 && ((msg.length - 32) % 16 === 0 || msg.length - 32 === tunnelMtu);
    default:
      return false;
  }
}

/**
 * Classifies frames: UDP on the WireGuard port between node addresses that parses as a
 * WireGuard message counts as encrypted, and so does ESP between node addresses; any other
 * frame containing one of the pod addresses (IPv4 or IPv6, as its 4 or 16 raw bytes, anywhere, so
 * ICMP errors quoting a header count too) is cleartext pod traffic. Every frame is also searched for the run's marker, so probe payload in
 * clear is caught whatever its addresses (after NAT) or protocol.
 */
export function analyzeCapture(buf: Buffer, opts: CaptureOptions): CaptureAnalysis {
  const needles = opts.podIPs.map((ip) => parseIp(ip).bytes);
  const needles6 = needles.filter((b) => b.length === 16);
  const nodes = new Set(opts.nodeIPs.map((ip) => parseIp(ip).bytes.toString('hex')));
  const wgPort = opts.wgPort;
  const out: CaptureAnalysis = {
    packets: 0,
    encryptedPackets: 0,
    plaintextPackets: 0,
    plaintextBytes: 0,
    plaintextIPv6Packets: 0,
    markerPackets: 0,
    malformedTunnelPackets: 0,
    truncatedRecords: 0,
  };
  const { records, truncatedTail } = readRecords(buf);
  if (truncatedTail) out.truncatedRecords++;
  for (const { frame, snapped } of records) {
    out.packets++;
    if (snapped) out.truncatedRecords++;
    if (opts.marker && opts.marker.length > 0 && frame.includes(opts.marker)) out.markerPackets++;
    if (frame.length >= 14 + 20 && frame.readUInt16BE(12) === 0x0800) {
      const ihl = (frame[14]! & 0x0f) * 4;
      const proto = frame[14 + 9];
      const l4 = 14 + ihl;
      const betweenNodes = nodes.has(frame.subarray(26, 30).toString('hex')) && nodes.has(frame.subarray(30, 34).toString('hex'));
      // ESP (the IPsec backend's tunnels): only between node addresses; other ESP is searched for pod addresses.
      if (proto === 50 && betweenNodes) {
        out.encryptedPackets++;
        continue;
      }
      if (proto === 17 && frame.length >= l4 + 8) {
        const sport = frame.readUInt16BE(l4);
        const dport = frame.readUInt16BE(l4 + 2);
        if (wgPort > 0 && (sport === wgPort || dport === wgPort)) {
          const udpLen = frame.readUInt16BE(l4 + 4);
          if (betweenNodes && isWireGuardMessage(frame.subarray(l4 + 8, l4 + Math.max(8, udpLen)), opts.tunnelMtu)) {
            out.encryptedPackets++;
            continue;
          }
          out.malformedTunnelPackets++;
        }
      }
    }
    if (needles.some((n) => frame.includes(n))) {
      out.plaintextPackets++;
      out.plaintextBytes += frame.length;
      if (needles6.some((n) => frame.includes(n))) out.plaintextIPv6Packets++;
    }
  }
  return out;
}

/** tcpdump's own account of a capture, from its exit and its closing statistics. */
export interface CaptureHealth {
  exitCode: number | null;
  signal: string | null;
  /** "N packets captured"; undefined when tcpdump printed no statistics. */
  captured?: number;
  /** "N packets dropped by kernel". */
  droppedByKernel?: number;
  /** "N packets dropped by interface" (not every tcpdump prints it). */
  droppedByInterface?: number;
  /** Why the capture cannot be trusted; empty when it can. */
  problems: string[];
}

/**
 * Judges a finished capture: tcpdump must have exited 0 after SIGINT and printed its statistics,
 * the kernel must have dropped nothing, and the file must hold every packet tcpdump counted,
 * none cut short. A capture that misses packets cannot prove that nothing leaked.
 */
export function captureHealth(
  log: string,
  exit: { code: number | null; signal: string | null },
  analysis: Pick<CaptureAnalysis, 'packets' | 'truncatedRecords'>,
): CaptureHealth {
  const num = (re: RegExp): number | undefined => {
    const m = re.exec(log);
    return m ? Number(m[1]) : undefined;
  };
  const captured = num(/(\d+) packets? captured/);
  const droppedByKernel = num(/(\d+) packets? dropped by kernel/);
  const droppedByInterface = num(/(\d+) packets? dropped by interface/);
  const problems: string[] = [];
  if (exit.code !== 0)
    problems.push(`tcpdump ${exit.code === null ? `killed by ${exit.signal ?? 'a signal'}` : `exited ${exit.code}`}`);
  if (captured === undefined || droppedByKernel === undefined) problems.push('tcpdump printed no capture statistics');
  if (droppedByKernel !== undefined && droppedByKernel > 0) problems.push(`${droppedByKernel} packets dropped by kernel`);
  if (droppedByInterface !== undefined && droppedByInterface > 0)
    problems.push(`${droppedByInterface} packets dropped by interface`);
  if (captured !== undefined && captured !== analysis.packets)
    problems.push(`tcpdump captured ${captured} packets, the file holds ${analysis.packets}`);
  if (analysis.truncatedRecords > 0) problems.push(`${analysis.truncatedRecords} truncated capture records`);
  return {
    exitCode: exit.code,
    signal: exit.signal,
    ...(captured !== undefined ? { captured } : {}),
    ...(droppedByKernel !== undefined ? { droppedByKernel } : {}),
    ...(droppedByInterface !== undefined ? { droppedByInterface } : {}),
    problems,
  };
}
