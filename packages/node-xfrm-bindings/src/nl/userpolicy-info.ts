import { xfrmLifetimeCfg, xfrmLifetimeCur, type XfrmLifetimeCfgWire, type XfrmLifetimeCurWire } from './lifetime.js';
import { xfrmSelector, type XfrmSelectorWire } from './selector.js';
import { u32, u8, type StructCodec } from './struct.js';

/**
 * struct xfrm_userpolicy_info (168 bytes): body of XFRM_MSG_NEWPOLICY / UPDPOLICY and of policy
 * dump replies.
 *
 *   struct xfrm_userpolicy_info {
 *       struct xfrm_selector     sel;       //   0  56
 *       struct xfrm_lifetime_cfg lft;       //  56  64
 *       struct xfrm_lifetime_cur curlft;    // 120  32
 *       __u32                    priority;  // 152   4
 *       __u32                    index;     // 156   4
 *       __u8                     dir;       // 160   1  XFRM_POLICY_IN/OUT/FWD
 *       __u8                     action;    // 161   1  XFRM_POLICY_ALLOW/BLOCK
 *       __u8                     flags;     // 162   1  XFRM_POLICY_LOCALOK/ICMP
 *       __u8                     share;     // 163   1  XFRM_SHARE_*
 *       // 4 bytes tail padding
 *   };                                      // sizeof = 168
 */
export interface XfrmUserpolicyInfoWire {
  sel: XfrmSelectorWire;
  lft: XfrmLifetimeCfgWire;
  curlft: XfrmLifetimeCurWire;
  priority: number;
  index: number;
  dir: number;
  action: number;
  flags: number;
  share: number;
}

export const XFRM_USERPOLICY_INFO_SIZE = 168;

export const xfrmUserpolicyInfo: StructCodec<XfrmUserpolicyInfoWire> = {
  name: 'xfrm_userpolicy_info',
  size: XFRM_USERPOLICY_INFO_SIZE,
  write(v, o, p) {
    xfrmSelector.write(v, o, p.sel);
    xfrmLifetimeCfg.write(v, o + 56, p.lft);
    xfrmLifetimeCur.write(v, o + 120, p.curlft);
    u32.set(v, o + 152, p.priority);
    u32.set(v, o + 156, p.index);
    u8.set(v, o + 160, p.dir);
    u8.set(v, o + 161, p.action);
    u8.set(v, o + 162, p.flags);
    u8.set(v, o + 163, p.share);
  },
  read(v, o) {
    return {
      sel: xfrmSelector.read(v, o),
      lft: xfrmLifetimeCfg.read(v, o + 56),
      curlft: xfrmLifetimeCur.read(v, o + 120),
      priority: u32.get(v, o + 152),
      index: u32.get(v, o + 156),
      dir: u8.get(v, o + 160),
      action: u8.get(v, o + 161),
      flags: u8.get(v, o + 162),
      share: u8.get(v, o + 163),
    };
  },
};
