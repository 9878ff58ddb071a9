import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

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
  Buffer.from(dst.split('.').map(Number)).copy(pkt, 30);
  return pkt;
}
