import { xfrmAddress } from './address.js';
import { be32, u8, type StructCodec } from './struct.js';

/**
 * struct xfrm_id (24 bytes): identifies an SA by (daddr, spi, proto).
 *
 *   struct xfrm_id {
 *       xfrm_address_t daddr;   //  0  16
 *       __be32         spi;     // 16   4
 *       __u8           proto;   // 20   1
 *       // 3 bytes padding
 *   };                          // sizeof = 24
 */
export interface XfrmIdWire {
  daddr: Uint8Array;
  spi: number;
  proto: number;
}

export const XFRM_ID_SIZE = 24;

export const xfrmId: StructCodec<XfrmIdWire> = {
  name: 'xfrm_id',
  size: XFRM_ID_SIZE,
  write(v, o, id) {
    xfrmAddress.write(v, o, id.daddr);
    be32.set(v, o + 16, id.spi);
    u8.set(v, o + 20, id.proto);
  },
  read(v, o) {
    return { daddr: xfrmAddress.read(v, o), spi: be32.get(v, o + 16), proto: u8.get(v, o + 20) };
  },
};
