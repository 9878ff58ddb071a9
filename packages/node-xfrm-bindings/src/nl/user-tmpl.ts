import { xfrmAddress } from './address.js';
import { xfrmId, type XfrmIdWire } from './id.js';
import { u16, u32, u8, type StructCodec } from './struct.js';

/**
 * struct xfrm_user_tmpl (64 bytes): one SA template of a policy. XFRMA_TMPL carries an array of them.
 *
 *   struct xfrm_user_tmpl {
 *       struct xfrm_id  id;        //  0  24  (daddr, spi, proto)
 *       __u16           family;    // 24   2
 *       // 2 bytes padding
 *       xfrm_address_t  saddr;     // 28  16
 *       __u32           reqid;     // 44   4
 *       __u8            mode;      // 48   1
 *       __u8            share;     // 49   1
 *       __u8            optional;  // 50   1
 *       // 1 byte padding
 *       __u32           aalgos;    // 52   4
 *       __u32           ealgos;    // 56   4
 *       __u32           calgos;    // 60   4
 *   };                             // sizeof = 64
 */
export interface XfrmUserTmplWire {
  id: XfrmIdWire;
  family: number;
  saddr: Uint8Array;
  reqid: number;
  mode: number;
  share: number;
  optional: number;
  aalgos: number;
  ealgos: number;
  calgos: number;
}

export const XFRM_USER_TMPL_SIZE = 64;

export const xfrmUserTmpl: StructCodec<XfrmUserTmplWire> = {
  name: 'xfrm_user_tmpl',
  size: XFRM_USER_TMPL_SIZE,
  write(v, o, t) {
    xfrmId.write(v, o, t.id);
    u16.set(v, o + 24, t.family);
    xfrmAddress.write(v, o + 28, t.saddr);
    u32.set(v, o + 44, t.reqid);
    u8.set(v, o + 48, t.mode);
    u8.set(v, o + 49, t.share);
    u8.set(v, o + 50, t.optional);
    u32.set(v, o + 52, t.aalgos);
    u32.set(v, o + 56, t.ealgos);
    u32.set(v, o + 60, t.calgos);
  },
  read(v, o) {
    return {
      id: xfrmId.read(v, o),
      family: u16.get(v, o + 24),
      saddr: xfrmAddress.read(v, o + 28),
      reqid: u32.get(v, o + 44),
      mode: u8.get(v, o + 48),
      share: u8.get(v, o + 49),
      optional: u8.get(v, o + 50),
      aalgos: u32.get(v, o + 52),
      ealgos: u32.get(v, o + 56),
      calgos: u32.get(v, o + 60),
    };
  },
};
