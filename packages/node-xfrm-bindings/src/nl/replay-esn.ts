import { XfrmDecodeError } from '../errors.js';
import { u32, viewOf, type StructCodec } from './struct.js';

/**
 * struct xfrm_replay_state_esn (24 bytes + bitmap): XFRMA_REPLAY_ESN_VAL.
 *
 *   struct xfrm_replay_state_esn {
 *       unsigned int bmp_len;        //  0  4  bitmap length in __u32 words
 *       __u32        oseq;           //  4  4
 *       __u32        seq;            //  8  4
 *       __u32        oseq_hi;        // 12  4
 *       __u32        seq_hi;         // 16  4
 *       __u32        replay_window;  // 20  4  in packets
 *       __u32        bmp[];          // 24     bmp_len words
 *   };                               // sizeof = 24
 *
 * The kernel accepts the bare 24-byte header even when bmp_len > 0 (iproute2 sends it that way).
 */
export interface XfrmReplayStateEsnWire {
  bmpLen: number;
  oseq: number;
  seq: number;
  oseqHi: number;
  seqHi: number;
  replayWindow: number;
  /** Bitmap words; empty on requests. */
  bmp: number[];
}

export const XFRM_REPLAY_STATE_ESN_SIZE = 24;
/** XFRMA_REPLAY_ESN_MAX: the largest replay window (bits) the kernel accepts. */
export const XFRMA_REPLAY_ESN_MAX = 4096;

export function encodeReplayStateEsn(r: XfrmReplayStateEsnWire): Uint8Array {
  const out = new Uint8Array(XFRM_REPLAY_STATE_ESN_SIZE + r.bmp.length * 4);
  const v = viewOf(out);
  u32.set(v, 0, r.bmpLen);
  u32.set(v, 4, r.oseq);
  u32.set(v, 8, r.seq);
  u32.set(v, 12, r.oseqHi);
  u32.set(v, 16, r.seqHi);
  u32.set(v, 20, r.replayWindow);
  r.bmp.forEach((w, i) => u32.set(v, 24 + i * 4, w));
  return out;
}

export function decodeReplayStateEsn(bytes: Uint8Array): XfrmReplayStateEsnWire {
  const what = 'xfrm_replay_state_esn';
  if (bytes.byteLength < XFRM_REPLAY_STATE_ESN_SIZE) {
    throw new XfrmDecodeError(what, `need ${XFRM_REPLAY_STATE_ESN_SIZE} bytes, got ${bytes.byteLength}`);
  }
  const v = viewOf(bytes);
  const bmpLen = u32.get(v, 0);
  // Read whatever bitmap words are present, up to bmp_len: requests may omit them.
  const words = Math.min(bmpLen, Math.floor((bytes.byteLength - XFRM_REPLAY_STATE_ESN_SIZE) / 4));
  const bmp: number[] = [];
  for (let i = 0; i < words; i++) bmp.push(u32.get(v, 24 + i * 4));
  return {
    bmpLen,
    oseq: u32.get(v, 4),
    seq: u32.get(v, 8),
    oseqHi: u32.get(v, 12),
    seqHi: u32.get(v, 16),
    replayWindow: u32.get(v, 20),
    bmp,
  };
}

/**
 * struct xfrm_replay_state (12 bytes): XFRMA_REPLAY_VAL, the non-ESN replay counters.
 *
 *   struct xfrm_replay_state {
 *       __u32 oseq;    // 0
 *       __u32 seq;     // 4
 *       __u32 bitmap;  // 8
 *   };                 // sizeof = 12
 */
export interface XfrmReplayStateWire {
  oseq: number;
  seq: number;
  bitmap: number;
}

export const xfrmReplayState: StructCodec<XfrmReplayStateWire> = {
  name: 'xfrm_replay_state',
  size: 12,
  write(v, o, r) {
    u32.set(v, o, r.oseq);
    u32.set(v, o + 4, r.seq);
    u32.set(v, o + 8, r.bitmap);
  },
  read(v, o) {
    return { oseq: u32.get(v, o), seq: u32.get(v, o + 4), bitmap: u32.get(v, o + 8) };
  },
};
