import { xfrmAddress } from './address.js';
import { be16, i32, u16, u32, u8, type StructCodec } from './struct.js';

/**
 * struct xfrm_selector (56 bytes). Ports are network order, the rest host order.
 *
 *   struct xfrm_selector {
 *       xfrm_address_t   daddr;        //  0  16
 *       xfrm_address_t   saddr;        // 16  16
 *       __be16           dport;        // 32   2
 *       __be16           dport_mask;   // 34   2
 *       __be16           sport;        // 36   2
 *       __be16           sport_mask;   // 38   2
 *       __u16            family;       // 40   2
 *       __u8             prefixlen_d;  // 42   1
 *       __u8             prefixlen_s;  // 43   1
 *       __u8             proto;        // 44   1
 *       // 3 bytes padding
 *       int              ifindex;      // 48   4
 *       __kernel_uid32_t user;         // 52   4
 *   };                                 // sizeof = 56
 */
export interface XfrmSelectorWire {
  daddr: Uint8Array;
  saddr: Uint8Array;
  dport: number;
  dportMask: number;
  sport: number;
  sportMask: number;
  family: number;
  prefixlenD: number;
  prefixlenS: number;
  proto: number;
  ifindex: number;
  user: number;
}

export const XFRM_SELECTOR_SIZE = 56;

export const xfrmSelector: StructCodec<XfrmSelectorWire> = {
  name: 'xfrm_selector',
  size: XFRM_SELECTOR_SIZE,
  write(v, o, s) {
    xfrmAddress.write(v, o, s.daddr);
    xfrmAddress.write(v, o + 16, s.saddr);
    be16.set(v, o + 32, s.dport);
    be16.set(v, o + 34, s.dportMask);
    be16.set(v, o + 36, s.sport);
    be16.set(v, o + 38, s.sportMask);
    u16.set(v, o + 40, s.family);
    u8.set(v, o + 42, s.prefixlenD);
    u8.set(v, o + 43, s.prefixlenS);
    u8.set(v, o + 44, s.proto);
    i32.set(v, o + 48, s.ifindex);
    u32.set(v, o + 52, s.user);
  },
  read(v, o) {
    return {
      daddr: xfrmAddress.read(v, o),
      saddr: xfrmAddress.read(v, o + 16),
      dport: be16.get(v, o + 32),
      dportMask: be16.get(v, o + 34),
      sport: be16.get(v, o + 36),
      sportMask: be16.get(v, o + 38),
      family: u16.get(v, o + 40),
      prefixlenD: u8.get(v, o + 42),
      prefixlenS: u8.get(v, o + 43),
      proto: u8.get(v, o + 44),
      ifindex: i32.get(v, o + 48),
      user: u32.get(v, o + 52),
    };
  },
};

/** An all-zero selector (family AF_UNSPEC), what iproute2 sends for a state without `sel`. */
export function emptySelector(): XfrmSelectorWire {
  return {
    daddr: new Uint8Array(16),
    saddr: new Uint8Array(16),
    dport: 0,
    dportMask: 0,
    sport: 0,
    sportMask: 0,
    family: 0,
    prefixlenD: 0,
    prefixlenS: 0,
    proto: 0,
    ifindex: 0,
    user: 0,
  };
}
