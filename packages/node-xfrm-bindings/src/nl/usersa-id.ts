import { xfrmAddress } from './address.js';
import { be32, u16, u8, type StructCodec } from './struct.js';

/**
 * struct xfrm_usersa_id (24 bytes): names one SA for XFRM_MSG_GETSA / DELSA.
 *
 *   struct xfrm_usersa_id {
 *       xfrm_address_t daddr;   //  0  16
 *       __be32         spi;     // 16   4
 *       __u16          family;  // 20   2
 *       __u8           proto;   // 22   1
 *       // 1 byte padding
 *   };                          // sizeof = 24
 */
export interface XfrmUsersaIdWire {
  daddr: Uint8Array;
  spi: number;
  family: number;
  proto: number;
}

export const XFRM_USERSA_ID_SIZE = 24;

export const xfrmUsersaId: StructCodec<XfrmUsersaIdWire> = {
  name: 'xfrm_usersa_id',
  size: XFRM_USERSA_ID_SIZE,
  write(v, o, s) {
    xfrmAddress.write(v, o, s.daddr);
    be32.set(v, o + 16, s.spi);
    u16.set(v, o + 20, s.family);
    u8.set(v, o + 22, s.proto);
  },
  read(v, o) {
    return { daddr: xfrmAddress.read(v, o), spi: be32.get(v, o + 16), family: u16.get(v, o + 20), proto: u8.get(v, o + 22) };
  },
};
