import { xfrmAddress } from './address.js';
import { xfrmId, type XfrmIdWire } from './id.js';
import { xfrmLifetimeCfg, xfrmLifetimeCur, type XfrmLifetimeCfgWire, type XfrmLifetimeCurWire } from './lifetime.js';
import { xfrmSelector, type XfrmSelectorWire } from './selector.js';
import { xfrmStats, type XfrmStatsWire } from './stats.js';
import { u16, u32, u8, type StructCodec } from './struct.js';

/**
 * struct xfrm_usersa_info (224 bytes): the body of XFRM_MSG_NEWSA / UPDSA and of SA dump replies.
 *
 *   struct xfrm_usersa_info {
 *       struct xfrm_selector     sel;            //   0  56
 *       struct xfrm_id           id;             //  56  24
 *       xfrm_address_t           saddr;          //  80  16
 *       struct xfrm_lifetime_cfg lft;            //  96  64
 *       struct xfrm_lifetime_cur curlft;         // 160  32
 *       struct xfrm_stats        stats;          // 192  12
 *       __u32                    seq;            // 204   4
 *       __u32                    reqid;          // 208   4
 *       __u16                    family;         // 212   2
 *       __u8                     mode;           // 214   1  XFRM_MODE_*
 *       __u8                     replay_window;  // 215   1
 *       __u8                     flags;          // 216   1  XFRM_STATE_*
 *       // 7 bytes tail padding (the struct is 8-aligned by its __u64s)
 *   };                                           // sizeof = 224
 */
export interface XfrmUsersaInfoWire {
  sel: XfrmSelectorWire;
  id: XfrmIdWire;
  saddr: Uint8Array;
  lft: XfrmLifetimeCfgWire;
  curlft: XfrmLifetimeCurWire;
  stats: XfrmStatsWire;
  seq: number;
  reqid: number;
  family: number;
  mode: number;
  replayWindow: number;
  flags: number;
}

export const XFRM_USERSA_INFO_SIZE = 224;

export const xfrmUsersaInfo: StructCodec<XfrmUsersaInfoWire> = {
  name: 'xfrm_usersa_info',
  size: XFRM_USERSA_INFO_SIZE,
  write(v, o, s) {
    xfrmSelector.write(v, o, s.sel);
    xfrmId.write(v, o + 56, s.id);
    xfrmAddress.write(v, o + 80, s.saddr);
    xfrmLifetimeCfg.write(v, o + 96, s.lft);
    xfrmLifetimeCur.write(v, o + 160, s.curlft);
    xfrmStats.write(v, o + 192, s.stats);
    u32.set(v, o + 204, s.seq);
    u32.set(v, o + 208, s.reqid);
    u16.set(v, o + 212, s.family);
    u8.set(v, o + 214, s.mode);
    u8.set(v, o + 215, s.replayWindow);
    u8.set(v, o + 216, s.flags);
  },
  read(v, o) {
    return {
      sel: xfrmSelector.read(v, o),
      id: xfrmId.read(v, o + 56),
      saddr: xfrmAddress.read(v, o + 80),
      lft: xfrmLifetimeCfg.read(v, o + 96),
      curlft: xfrmLifetimeCur.read(v, o + 160),
      stats: xfrmStats.read(v, o + 192),
      seq: u32.get(v, o + 204),
      reqid: u32.get(v, o + 208),
      family: u16.get(v, o + 212),
      mode: u8.get(v, o + 214),
      replayWindow: u8.get(v, o + 215),
      flags: u8.get(v, o + 216),
    };
  },
};
