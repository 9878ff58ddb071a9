import { u64, type StructCodec } from './struct.js';

/** XFRM_INF: "no limit" in every xfrm_lifetime_cfg field. */
export const XFRM_INF = 0xffff_ffff_ffff_ffffn;

/**
 * struct xfrm_lifetime_cfg (64 bytes, host order).
 *
 *   struct xfrm_lifetime_cfg {
 *       __u64 soft_byte_limit;           //  0
 *       __u64 hard_byte_limit;           //  8
 *       __u64 soft_packet_limit;         // 16
 *       __u64 hard_packet_limit;         // 24
 *       __u64 soft_add_expires_seconds;  // 32
 *       __u64 hard_add_expires_seconds;  // 40
 *       __u64 soft_use_expires_seconds;  // 48
 *       __u64 hard_use_expires_seconds;  // 56
 *   };                                   // sizeof = 64
 */
export interface XfrmLifetimeCfgWire {
  softByteLimit: bigint;
  hardByteLimit: bigint;
  softPacketLimit: bigint;
  hardPacketLimit: bigint;
  softAddExpiresSeconds: bigint;
  hardAddExpiresSeconds: bigint;
  softUseExpiresSeconds: bigint;
  hardUseExpiresSeconds: bigint;
}

export const XFRM_LIFETIME_CFG_SIZE = 64;

const cfgFields = [
  'softByteLimit',
  'hardByteLimit',
  'softPacketLimit',
  'hardPacketLimit',
  'softAddExpiresSeconds',
  'hardAddExpiresSeconds',
  'softUseExpiresSeconds',
  'hardUseExpiresSeconds',
] as const;

export const xfrmLifetimeCfg: StructCodec<XfrmLifetimeCfgWire> = {
  name: 'xfrm_lifetime_cfg',
  size: XFRM_LIFETIME_CFG_SIZE,
  write(v, o, c) {
    cfgFields.forEach((f, i) => u64.set(v, o + i * 8, c[f]));
  },
  read(v, o) {
    const c = {} as XfrmLifetimeCfgWire;
    cfgFields.forEach((f, i) => (c[f] = u64.get(v, o + i * 8)));
    return c;
  },
};

/** iproute2's default: byte and packet limits infinite, no expiry timers. */
export function defaultLifetimeCfg(): XfrmLifetimeCfgWire {
  return {
    softByteLimit: XFRM_INF,
    hardByteLimit: XFRM_INF,
    softPacketLimit: XFRM_INF,
    hardPacketLimit: XFRM_INF,
    softAddExpiresSeconds: 0n,
    hardAddExpiresSeconds: 0n,
    softUseExpiresSeconds: 0n,
    hardUseExpiresSeconds: 0n,
  };
}

/**
 * struct xfrm_lifetime_cur (32 bytes, host order): counters the kernel reports.
 *
 *   struct xfrm_lifetime_cur {
 *       __u64 bytes;     //  0
 *       __u64 packets;   //  8
 *       __u64 add_time;  // 16  (seconds since the epoch)
 *       __u64 use_time;  // 24  (seconds since the epoch, 0 = never used)
 *   };                   // sizeof = 32
 */
export interface XfrmLifetimeCurWire {
  bytes: bigint;
  packets: bigint;
  addTime: bigint;
  useTime: bigint;
}

export const XFRM_LIFETIME_CUR_SIZE = 32;

export const xfrmLifetimeCur: StructCodec<XfrmLifetimeCurWire> = {
  name: 'xfrm_lifetime_cur',
  size: XFRM_LIFETIME_CUR_SIZE,
  write(v, o, c) {
    u64.set(v, o, c.bytes);
    u64.set(v, o + 8, c.packets);
    u64.set(v, o + 16, c.addTime);
    u64.set(v, o + 24, c.useTime);
  },
  read(v, o) {
    return { bytes: u64.get(v, o), packets: u64.get(v, o + 8), addTime: u64.get(v, o + 16), useTime: u64.get(v, o + 24) };
  },
};

export function zeroLifetimeCur(): XfrmLifetimeCurWire {
  return { bytes: 0n, packets: 0n, addTime: 0n, useTime: 0n };
}
