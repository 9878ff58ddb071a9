import { XfrmValidationError } from './errors.js';
import type { XfrmMarkWire } from './nl/mark.js';
import { U32_MAX, checkObject, checkU32 } from './validate.js';

/**
 * A firewall mark match (XFRMA_MARK) or an output mark to set (XFRMA_SET_MARK/_MASK).
 * `ip xfrm ... mark VALUE mask MASK`.
 */
export interface XfrmMark {
  value: number;
  /** Defaults to 0xffffffff (exact match). Always set on read. */
  mask?: number;
}

export function validateMark(field: string, m: unknown): Required<XfrmMark> {
  const o = checkObject(field, m);
  const value = checkU32(`${field}.value`, o.value);
  const mask = o.mask === undefined ? U32_MAX : checkU32(`${field}.mask`, o.mask);
  if ((value & ~mask) >>> 0 !== 0) {
    throw new XfrmValidationError(`${field}.value`, `0x${value.toString(16)} has bits outside mask 0x${mask.toString(16)}`);
  }
  return { value, mask };
}

export function markToWire(m: Required<XfrmMark>): XfrmMarkWire {
  return { v: m.value, m: m.mask };
}

export function markFromWire(w: XfrmMarkWire): Required<XfrmMark> | undefined {
  // The kernel reports an unset mark as absent; a {0, 0} mark means the same.
  return w.v === 0 && w.m === 0 ? undefined : { value: w.v, mask: w.m };
}
