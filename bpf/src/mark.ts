import { ArgumentError } from 'libbpf-ts';

/**
 * The IPsec mark from-pod sets on a packet for a ready remote peer (Cilium's layout):
 *
 *   bits 16..31  node id of the destination node
 *   bits 12..15  key index (SPI generation), 0..15
 *   bits  8..11  0xE: "encrypt"
 *   bits  0..7   0
 *
 * Per-node XFRM OUT policies match `ipsecMark(...)` under {@link IPSEC_MARK_MASK}.
 */
export const IPSEC_MARK_ENCRYPT = 0x0e00;

/** Mask for per-node OUT policies: node id + key index + the encrypt nibble. */
export const IPSEC_MARK_MASK = 0xffffff00;

export interface IpsecMarkFields {
  /** 0..15 */
  keyIndex: number;
  /** 0..65535 */
  nodeId: number;
}

/** `0x0E00 | (keyIndex & 0xF) << 12 | nodeId << 16`, as an unsigned 32-bit number. */
export function ipsecMark(f: IpsecMarkFields): number {
  if (!Number.isInteger(f.keyIndex) || f.keyIndex < 0 || f.keyIndex > 15) {
    throw new ArgumentError('keyIndex', `needs an integer in [0, 15], got ${String(f.keyIndex)}`);
  }
  if (!Number.isInteger(f.nodeId) || f.nodeId < 0 || f.nodeId > 0xffff) {
    throw new ArgumentError('nodeId', `needs an integer in [0, 65535], got ${String(f.nodeId)}`);
  }
  return (IPSEC_MARK_ENCRYPT | (f.keyIndex << 12) | (f.nodeId << 16)) >>> 0;
}

/** The fields of an IPsec mark, or undefined when `mark` does not carry the encrypt nibble. */
export function decodeIpsecMark(mark: number): IpsecMarkFields | undefined {
  if ((mark & 0x0f00) !== IPSEC_MARK_ENCRYPT || (mark & 0xff) !== 0) return undefined;
  return { keyIndex: (mark >>> 12) & 0xf, nodeId: mark >>> 16 };
}
