import { formatIPv4, formatIPv6, ipFamily, tryParseIp } from '@veil/ip';

/**
 * A small packet builder and decoder for Program.run suites, benchmarks and the demo:
 * Ethernet, ARP, IPv4, IPv6, TCP, UDP, ICMP/ICMPv6 echo, with correct checksums.
 * IPv4 vs IPv6 is chosen from the address text.
 */

export const ETH_P_IP = 0x0800;
export const ETH_P_ARP = 0x0806;
export const ETH_P_IPV6 = 0x86dd;
export const IPPROTO = { ICMP: 1, TCP: 6, UDP: 17, ESP: 50, ICMPV6: 58 } as const;

export const POD_MAC = '02:00:00:00:00:01';
export const GW_MAC = '02:00:00:00:00:fe';

/** RFC 1071 checksum of `buf` with an optional 32-bit partial `seed`; returns the field value. */
export function internetChecksum(buf: Buffer, seed = 0): number {
  let sum = seed;
  for (let i = 0; i + 1 < buf.length; i += 2) sum += buf.readUInt16BE(i);
  if (buf.length % 2) sum += (buf[buf.length - 1] as number) << 8;
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return ~sum & 0xffff;
}

function addrBytes(a: string): Buffer {
  const ip = tryParseIp(a);
  if (!ip) throw new Error(`not an IP address: ${a}`);
  return ip.bytes;
}

function macBytes(mac: string): Buffer {
  const b = Buffer.from(mac.split(':').map((x) => parseInt(x, 16)));
  if (b.length !== 6) throw new Error(`bad MAC ${mac}`);
  return b;
}

/** The partial sum of the IPv4/IPv6 pseudo-header, as a seed for internetChecksum. */
function pseudoSeed(src: string, dst: string, proto: number, len: number): number {
  const s = addrBytes(src);
  const d = addrBytes(dst);
  const tail = Buffer.alloc(s.length === 4 ? 4 : 8);
  if (s.length === 4) {
    tail[1] = proto;
    tail.writeUInt16BE(len, 2);
  } else {
    tail.writeUInt32BE(len, 0);
    tail[7] = proto;
  }
  const all = Buffer.concat([s, d, tail]);
  let sum = 0;
  for (let i = 0; i < all.length; i += 2) sum += all.readUInt16BE(i);
  return sum;
}

/** Checksum of an L4 segment (whose checksum field is zero) under the pseudo-header. */
export function l4Checksum(src: string, dst: string, proto: number, segment: Buffer): number {
  return internetChecksum(segment, pseudoSeed(src, dst, proto, segment.length));
}

export interface IpOptions {
  src: string;
  dst: string;
  /** IPv4 protocol / IPv6 next header. */
  proto: number;
  payload: Buffer;
  /** IPv4 DF bit (default true, like ping -M do and TCP). */
  df?: boolean;
  ttl?: number;
}

/** An IPv4 or IPv6 packet (family from the addresses) carrying `payload` as is. */
export function ipPacket(o: IpOptions): Buffer {
  if (ipFamily(o.src) === 4 && ipFamily(o.dst) === 4) {
    const h = Buffer.alloc(20);
    h[0] = 0x45;
    h.writeUInt16BE(20 + o.payload.length, 2);
    h.writeUInt16BE(0x1234, 4);
    h.writeUInt16BE(o.df === false ? 0 : 0x4000, 6);
    h[8] = o.ttl ?? 64;
    h[9] = o.proto;
    addrBytes(o.src).copy(h, 12);
    addrBytes(o.dst).copy(h, 16);
    h.writeUInt16BE(internetChecksum(h), 10);
    return Buffer.concat([h, o.payload]);
  }
  if (ipFamily(o.src) === 6 && ipFamily(o.dst) === 6) {
    const h = Buffer.alloc(40);
    h.writeUInt32BE(0x60000000, 0);
    h.writeUInt16BE(o.payload.length, 4);
    h[6] = o.proto;
    h[7] = o.ttl ?? 64;
    addrBytes(o.src).copy(h, 8);
    addrBytes(o.dst).copy(h, 24);
    return Buffer.concat([h, o.payload]);
  }
  throw new Error(`src ${o.src} and dst ${o.dst} must be the same IP family`);
}

function payloadOf(p: Buffer | number | undefined): Buffer {
  if (p === undefined) return Buffer.alloc(0);
  if (typeof p === 'number') return Buffer.alloc(p, 0xab);
  return p;
}

export interface L4Options {
  src: string;
  dst: string;
  sport?: number;
  dport?: number;
  /** Bytes, or a length of filler bytes. */
  payload?: Buffer | number;
  df?: boolean;
}

/** An IPv4/IPv6 UDP packet with a correct UDP checksum. */
export function udpPacket(o: L4Options): Buffer {
  const data = payloadOf(o.payload);
  const u = Buffer.alloc(8 + data.length);
  u.writeUInt16BE(o.sport ?? 40000, 0);
  u.writeUInt16BE(o.dport ?? 8080, 2);
  u.writeUInt16BE(u.length, 4);
  data.copy(u, 8);
  const c = l4Checksum(o.src, o.dst, IPPROTO.UDP, u);
  u.writeUInt16BE(c === 0 ? 0xffff : c, 6);
  return ipPacket({ src: o.src, dst: o.dst, proto: IPPROTO.UDP, payload: u, df: o.df });
}

/** An IPv4/IPv6 TCP segment (ACK|PSH, 20-byte header) with a correct checksum. */
export function tcpPacket(o: L4Options): Buffer {
  const data = payloadOf(o.payload);
  const t = Buffer.alloc(20 + data.length);
  t.writeUInt16BE(o.sport ?? 40000, 0);
  t.writeUInt16BE(o.dport ?? 443, 2);
  t.writeUInt32BE(1, 4);
  t.writeUInt32BE(1, 8);
  t[12] = 5 << 4;
  t[13] = 0x18;
  t.writeUInt16BE(65535, 14);
  data.copy(t, 20);
  t.writeUInt16BE(l4Checksum(o.src, o.dst, IPPROTO.TCP, t), 16);
  return ipPacket({ src: o.src, dst: o.dst, proto: IPPROTO.TCP, payload: t, df: o.df });
}

/** ICMP echo request (IPv4) or ICMPv6 echo request (IPv6) with a correct checksum. */
export function icmpEcho(o: {
  src: string;
  dst: string;
  id?: number;
  seq?: number;
  payload?: Buffer | number;
  df?: boolean;
}): Buffer {
  const data = payloadOf(o.payload);
  const m = Buffer.alloc(8 + data.length);
  const v6 = ipFamily(o.src) === 6;
  m[0] = v6 ? 128 : 8;
  m.writeUInt16BE(o.id ?? 0x4242, 4);
  m.writeUInt16BE(o.seq ?? 1, 6);
  data.copy(m, 8);
  m.writeUInt16BE(v6 ? l4Checksum(o.src, o.dst, IPPROTO.ICMPV6, m) : internetChecksum(m), 2);
  return ipPacket({ src: o.src, dst: o.dst, proto: v6 ? IPPROTO.ICMPV6 : IPPROTO.ICMP, payload: m, df: o.df });
}

/** Prepends an Ethernet header; the EtherType follows the IP version nibble unless given. */
export function ethernet(l3: Buffer, o: { src?: string; dst?: string; ethertype?: number } = {}): Buffer {
  const h = Buffer.alloc(14);
  macBytes(o.dst ?? GW_MAC).copy(h, 0);
  macBytes(o.src ?? POD_MAC).copy(h, 6);
  const version = (l3[0] ?? 0) >> 4;
  h.writeUInt16BE(o.ethertype ?? (version === 6 ? ETH_P_IPV6 : ETH_P_IP), 12);
  return Buffer.concat([h, l3]);
}

/** A broadcast ARP who-has frame. */
export function arpRequest(o: { senderIp: string; targetIp: string; senderMac?: string }): Buffer {
  const a = Buffer.alloc(28);
  a.writeUInt16BE(1, 0);
  a.writeUInt16BE(ETH_P_IP, 2);
  a[4] = 6;
  a[5] = 4;
  a.writeUInt16BE(1, 6);
  macBytes(o.senderMac ?? POD_MAC).copy(a, 8);
  addrBytes(o.senderIp).copy(a, 14);
  addrBytes(o.targetIp).copy(a, 24);
  return ethernet(a, { dst: 'ff:ff:ff:ff:ff:ff', src: o.senderMac ?? POD_MAC, ethertype: ETH_P_ARP });
}

/** An ICMP frag-needed / ICMPv6 packet-too-big as decoded from a frame. */
export interface IcmpError {
  family: 4 | 6;
  ethSrc: string;
  ethDst: string;
  src: string;
  dst: string;
  type: number;
  code: number;
  /** Next-hop MTU (IPv4) / MTU (ICMPv6). */
  mtu: number;
  /** IPv4 header checksum verifies (always true for IPv6, which has none). */
  ipChecksumOk: boolean;
  /** ICMP checksum (ICMPv6: including the pseudo-header) verifies. */
  icmpChecksumOk: boolean;
  /** Declared IP length equals the bytes present. */
  lengthOk: boolean;
  /** The quoted original packet. */
  quote: Buffer;
}

function formatMac(b: Buffer): string {
  return [...b].map((x) => x.toString(16).padStart(2, '0')).join(':');
}

/** Decodes an ICMP error frame (`l3Offset` 14 for Ethernet frames). Throws on anything else. */
export function decodeIcmpError(frame: Buffer, l3Offset = 14): IcmpError {
  const ip = frame.subarray(l3Offset);
  const version = (ip[0] ?? 0) >> 4;
  const eth = l3Offset >= 14 ? frame.subarray(0, 14) : Buffer.alloc(14);
  if (version === 4) {
    const ihl = ((ip[0] as number) & 0xf) * 4;
    if (ip[9] !== IPPROTO.ICMP) throw new Error(`not ICMP (protocol ${String(ip[9])})`);
    const icmp = ip.subarray(ihl);
    return {
      family: 4,
      ethDst: formatMac(eth.subarray(0, 6)),
      ethSrc: formatMac(eth.subarray(6, 12)),
      src: formatIPv4(ip, 12),
      dst: formatIPv4(ip, 16),
      type: icmp[0] as number,
      code: icmp[1] as number,
      mtu: icmp.readUInt16BE(6),
      ipChecksumOk: internetChecksum(ip.subarray(0, ihl)) === 0,
      icmpChecksumOk: internetChecksum(icmp) === 0,
      lengthOk: ip.readUInt16BE(2) === ip.length,
      quote: icmp.subarray(8),
    };
  }
  if (version === 6) {
    if (ip[6] !== IPPROTO.ICMPV6) throw new Error(`not ICMPv6 (next header ${String(ip[6])})`);
    const icmp = ip.subarray(40);
    const src = formatIPv6(ip, 8);
    const dst = formatIPv6(ip, 24);
    return {
      family: 6,
      ethDst: formatMac(eth.subarray(0, 6)),
      ethSrc: formatMac(eth.subarray(6, 12)),
      src,
      dst,
      type: icmp[0] as number,
      code: icmp[1] as number,
      mtu: icmp.readUInt32BE(4),
      ipChecksumOk: true,
      icmpChecksumOk: internetChecksum(icmp, pseudoSeed(src, dst, IPPROTO.ICMPV6, icmp.length)) === 0,
      lengthOk: ip.readUInt16BE(4) + 40 === ip.length,
      quote: icmp.subarray(8),
    };
  }
  throw new Error(`not an IP packet (version ${version})`);
}
