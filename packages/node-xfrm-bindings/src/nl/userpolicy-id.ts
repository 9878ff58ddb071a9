import { xfrmSelector, type XfrmSelectorWire } from './selector.js';
import { u32, u8, type StructCodec } from './struct.js';

/**
 * struct xfrm_userpolicy_id (64 bytes): names one policy for XFRM_MSG_GETPOLICY / DELPOLICY,
 * either by selector + dir (index 0) or by index.
 *
 *   struct xfrm_userpolicy_id {
 *       struct xfrm_selector sel;    //  0  56
 *       __u32                index;  // 56   4
 *       __u8                 dir;    // 60   1
 *       // 3 bytes tail padding
 *   };                               // sizeof = 64
 */
export interface XfrmUserpolicyIdWire {
  sel: XfrmSelectorWire;
  index: number;
  dir: number;
}

export const XFRM_USERPOLICY_ID_SIZE = 64;

export const xfrmUserpolicyId: StructCodec<XfrmUserpolicyIdWire> = {
  name: 'xfrm_userpolicy_id',
  size: XFRM_USERPOLICY_ID_SIZE,
  write(v, o, p) {
    xfrmSelector.write(v, o, p.sel);
    u32.set(v, o + 56, p.index);
    u8.set(v, o + 60, p.dir);
  },
  read(v, o) {
    return { sel: xfrmSelector.read(v, o), index: u32.get(v, o + 56), dir: u8.get(v, o + 60) };
  },
};
