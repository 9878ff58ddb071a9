import { u32, type StructCodec } from './struct.js';

/**
 * struct xfrm_stats (12 bytes, host order): per-SA error counters.
 *
 *   struct xfrm_stats {
 *       __u32 replay_window;     // 0
 *       __u32 replay;            // 4
 *       __u32 integrity_failed;  // 8
 *   };                           // sizeof = 12
 */
export interface XfrmStatsWire {
  replayWindow: number;
  replay: number;
  integrityFailed: number;
}

export const XFRM_STATS_SIZE = 12;

export const xfrmStats: StructCodec<XfrmStatsWire> = {
  name: 'xfrm_stats',
  size: XFRM_STATS_SIZE,
  write(v, o, s) {
    u32.set(v, o, s.replayWindow);
    u32.set(v, o + 4, s.replay);
    u32.set(v, o + 8, s.integrityFailed);
  },
  read(v, o) {
    return { replayWindow: u32.get(v, o), replay: u32.get(v, o + 4), integrityFailed: u32.get(v, o + 8) };
  },
};
