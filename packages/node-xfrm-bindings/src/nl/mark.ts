import { u32, type StructCodec } from './struct.js';

/**
 * struct xfrm_mark (8 bytes, host order): XFRMA_MARK on states and policies.
 *
 *   struct xfrm_mark {
 *       __u32 v;   // 0  value
 *       __u32 m;   // 4  mask
 *   };             // sizeof = 8
 */
export interface XfrmMarkWire {
  v: number;
  m: number;
}

export const XFRM_MARK_SIZE = 8;

export const xfrmMark: StructCodec<XfrmMarkWire> = {
  name: 'xfrm_mark',
  size: XFRM_MARK_SIZE,
  write(v, o, m) {
    u32.set(v, o, m.v);
    u32.set(v, o + 4, m.m);
  },
  read(v, o) {
    return { v: u32.get(v, o), m: u32.get(v, o + 4) };
  },
};
