import { AttrSet } from '@veil/netlink';
import { XfrmDecodeError } from './errors.js';
import { HOST_LE } from './nl/struct.js';

/** Decodes the attributes after a fixed struct, turning framing errors into XfrmDecodeError. */
export function attrsOf(payload: Buffer, offset: number, what: string): AttrSet {
  try {
    return AttrSet.decode(payload, offset);
  } catch (e) {
    throw new XfrmDecodeError(what, `malformed attributes: ${(e as Error).message}`);
  }
}

/** sizeof(struct nlattr) */
export const NLA_HDRLEN = 4;

/**
 * Writes an nlattr header (host order `nla_len` = header + payload, then `nla_type`) in place.
 * Used by the hot encoders that build a whole request in one allocation; the payload must be a
 * multiple of 4 bytes so no padding is needed after it.
 */
export function putAttrHeader(v: DataView, offset: number, type: number, payloadLen: number): number {
  v.setUint16(offset, NLA_HDRLEN + payloadLen, HOST_LE);
  v.setUint16(offset + 2, type, HOST_LE);
  return offset + NLA_HDRLEN;
}
