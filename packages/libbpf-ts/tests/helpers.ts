import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { formatIp, parseIp, parsePrefix } from '@veil/ip';
import { type LpmKey, bytes, lpmKey } from '../src/index.js';

const here = dirname(fileURLToPath(import.meta.url));

/** Path of a compiled fixture (npm run build:fixtures). */
export function fixture(name: string): string {
  const p = join(here, '..', 'build', 'fixtures', `${name}.bpf.o`);
  if (!existsSync(p)) throw new Error(`fixture ${p} is missing: run npm run build -w libbpf-ts`);
  return p;
}

/** An Ethernet + IPv4 packet (no payload checks) to `dst`, 64 bytes. */
export function ipv4Packet(dst: string, ttl = 64): Buffer {
  const pkt = Buffer.alloc(64);
  pkt.writeUInt16BE(0x0800, 12); // ETH_P_IP
  pkt[14] = 0x45; // version 4, IHL 5
  pkt.writeUInt16BE(50, 16); // tot_len
  pkt[22] = ttl;
  pkt[23] = 17; // UDP
  Buffer.from([192, 0, 2, 1]).copy(pkt, 26);
  parseIp(dst).bytes.copy(pkt, 30);
  return pkt;
}

/**
 * The fixture's `struct { __u32 prefixlen; __u8 addr[4]; }` LPM key. libbpf-ts knows bytes only;
 * the tests spell keys as CIDR text and @veil/ip turns it into bytes.
 */
export const lpmV4 = lpmKey(bytes(4));

/** "10.0.0.0/8" (or a bare address, a /32) as an LPM key over 4 address bytes. */
export function v4(cidr: string): LpmKey<Buffer> {
  const p = parsePrefix(cidr, { family: 4 });
  return { prefixLen: p.prefixLen, data: p.bytes };
}

/** An LPM key over address bytes as "addr/len" text. */
export function cidrOf(k: LpmKey<Buffer>): string {
  return `${formatIp(k.data)}/${k.prefixLen}`;
}
