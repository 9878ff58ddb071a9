import { getBytes, setBytes, type StructCodec } from './struct.js';

/**
 * xfrm_address_t: 16 bytes, network order. IPv4 uses the first 4 bytes (a4), the rest is zero.
 *
 *   typedef union {
 *       __be32          a4;
 *       __be32          a6[4];
 *       struct in6_addr in6;
 *   } xfrm_address_t;                 // sizeof = 16
 */
export const XFRM_ADDRESS_SIZE = 16;

export const xfrmAddress: StructCodec<Uint8Array> = {
  name: 'xfrm_address_t',
  size: XFRM_ADDRESS_SIZE,
  write(v, o, addr) {
    setBytes(v, o, XFRM_ADDRESS_SIZE, addr);
  },
  read(v, o) {
    return getBytes(v, o, XFRM_ADDRESS_SIZE);
  },
};
