import { u8, type StructCodec } from './struct.js';

/**
 * struct xfrm_usersa_flush (1 byte): body of XFRM_MSG_FLUSHSA. proto 0 flushes every protocol.
 *
 *   struct xfrm_usersa_flush {
 *       __u8 proto;   // 0  1
 *   };                // sizeof = 1
 */
export interface XfrmUsersaFlushWire {
  proto: number;
}

export const XFRM_USERSA_FLUSH_SIZE = 1;

export const xfrmUsersaFlush: StructCodec<XfrmUsersaFlushWire> = {
  name: 'xfrm_usersa_flush',
  size: XFRM_USERSA_FLUSH_SIZE,
  write(v, o, s) {
    u8.set(v, o, s.proto);
  },
  read(v, o) {
    return { proto: u8.get(v, o) };
  },
};
