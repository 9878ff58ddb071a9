import { u32, u8, type StructCodec } from './struct.js';

/**
 * struct xfrmu_spdinfo (24 bytes): XFRMA_SPD_INFO in GETSPDINFO replies, policy counts per direction
 * (the `s` ones count socket policies).
 *
 *   struct xfrmu_spdinfo {
 *       __u32 incnt;    //  0
 *       __u32 outcnt;   //  4
 *       __u32 fwdcnt;   //  8
 *       __u32 inscnt;   // 12
 *       __u32 outscnt;  // 16
 *       __u32 fwdscnt;  // 20
 *   };                  // sizeof = 24
 */
export interface XfrmuSpdinfoWire {
  incnt: number;
  outcnt: number;
  fwdcnt: number;
  inscnt: number;
  outscnt: number;
  fwdscnt: number;
}

const spdFields = ['incnt', 'outcnt', 'fwdcnt', 'inscnt', 'outscnt', 'fwdscnt'] as const;

export const xfrmuSpdinfo: StructCodec<XfrmuSpdinfoWire> = {
  name: 'xfrmu_spdinfo',
  size: 24,
  write(v, o, s) {
    spdFields.forEach((f, i) => u32.set(v, o + i * 4, s[f]));
  },
  read(v, o) {
    const s = {} as XfrmuSpdinfoWire;
    spdFields.forEach((f, i) => (s[f] = u32.get(v, o + i * 4)));
    return s;
  },
};

/**
 * struct xfrmu_spdhinfo (8 bytes): XFRMA_SPD_HINFO, the policy hash table size.
 *
 *   struct xfrmu_spdhinfo {
 *       __u32 spdhcnt;   // 0  current buckets
 *       __u32 spdhmcnt;  // 4  max buckets
 *   };                   // sizeof = 8
 */
export interface XfrmuSpdhinfoWire {
  spdhcnt: number;
  spdhmcnt: number;
}

export const xfrmuSpdhinfo: StructCodec<XfrmuSpdhinfoWire> = {
  name: 'xfrmu_spdhinfo',
  size: 8,
  write(v, o, s) {
    u32.set(v, o, s.spdhcnt);
    u32.set(v, o + 4, s.spdhmcnt);
  },
  read(v, o) {
    return { spdhcnt: u32.get(v, o), spdhmcnt: u32.get(v, o + 4) };
  },
};

/**
 * struct xfrmu_spdhthresh (2 bytes): XFRMA_SPD_IPV4_HTHRESH / XFRMA_SPD_IPV6_HTHRESH. Policies whose
 * selector prefixes are at least lbits (local) / rbits (remote) long are hashed; shorter ones go
 * to the inexact list.
 *
 *   struct xfrmu_spdhthresh {
 *       __u8 lbits;  // 0
 *       __u8 rbits;  // 1
 *   };               // sizeof = 2
 */
export interface XfrmuSpdhthreshWire {
  lbits: number;
  rbits: number;
}

export const xfrmuSpdhthresh: StructCodec<XfrmuSpdhthreshWire> = {
  name: 'xfrmu_spdhthresh',
  size: 2,
  write(v, o, s) {
    u8.set(v, o, s.lbits);
    u8.set(v, o + 1, s.rbits);
  },
  read(v, o) {
    return { lbits: u8.get(v, o), rbits: u8.get(v, o + 1) };
  },
};

/** The u32 that heads NEWSPDINFO/GETSPDINFO bodies; iproute2 sends 0xffffffff and the kernel ignores it. */
export const SPDINFO_FLAGS_SIZE = 4;
