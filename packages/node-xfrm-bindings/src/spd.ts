import { attr, encodeAttrs } from '@veil/netlink';
import { attrsOf } from './attrs.js';
import { XfrmDecodeError, XfrmValidationError } from './errors.js';
import { XFRMA_SPD_HINFO, XFRMA_SPD_INFO, XFRMA_SPD_IPV4_HTHRESH, XFRMA_SPD_IPV6_HTHRESH } from './nl/constants.js';
import { SPDINFO_FLAGS_SIZE, xfrmuSpdhinfo, xfrmuSpdhthresh, xfrmuSpdinfo } from './nl/spdinfo.js';
import { decodeStruct, encodeStruct } from './nl/struct.js';
import { checkInt, checkObject } from './validate.js';

/**
 * Hash thresholds of the policy database: policies whose selector prefixes are at least
 * `localBits` (source for out, destination for in) and `remoteBits` long go into the hash table,
 * shorter ones into the slower inexact list.
 */
export interface XfrmSpdHashThreshold {
  localBits: number;
  remoteBits: number;
}

/** What `ip xfrm policy count` reports, plus the hash thresholds. */
export interface XfrmSpdInfo {
  inCount: number;
  outCount: number;
  fwdCount: number;
  /** Per-socket policies. */
  inSocketCount: number;
  outSocketCount: number;
  fwdSocketCount: number;
  /** Current hash buckets. */
  hashBuckets: number;
  /** Maximum hash buckets. */
  hashMaxBuckets: number;
  ipv4Threshold?: XfrmSpdHashThreshold;
  ipv6Threshold?: XfrmSpdHashThreshold;
}

/** Arguments of `setSpdHashThresholds`; omitted families keep their value. */
export interface XfrmSpdHashThresholds {
  ipv4?: XfrmSpdHashThreshold;
  ipv6?: XfrmSpdHashThreshold;
}

// The kernel ignores the u32 that heads SPDINFO bodies; iproute2 sends all ones.
function flagsWord(): Buffer {
  return Buffer.alloc(SPDINFO_FLAGS_SIZE, 0xff);
}

export function encodeGetSpdInfoPayload(): Buffer {
  return flagsWord();
}

function thresh(field: string, v: unknown, max: number): { lbits: number; rbits: number } {
  const o = checkObject(field, v);
  return {
    lbits: checkInt(`${field}.localBits`, o.localBits, 0, max),
    rbits: checkInt(`${field}.remoteBits`, o.remoteBits, 0, max),
  };
}

export function encodeSetSpdPayload(t: XfrmSpdHashThresholds): Buffer {
  const o = checkObject('thresholds', t);
  if (o.ipv4 === undefined && o.ipv6 === undefined) throw new XfrmValidationError('thresholds', 'give ipv4 and/or ipv6');
  const v4 = o.ipv4 === undefined ? undefined : thresh('thresholds.ipv4', o.ipv4, 32);
  const v6 = o.ipv6 === undefined ? undefined : thresh('thresholds.ipv6', o.ipv6, 128);
  return Buffer.concat([
    flagsWord(),
    encodeAttrs([
      v4 && attr.binary(XFRMA_SPD_IPV4_HTHRESH, encodeStruct(xfrmuSpdhthresh, v4)),
      v6 && attr.binary(XFRMA_SPD_IPV6_HTHRESH, encodeStruct(xfrmuSpdhthresh, v6)),
    ]),
  ]);
}

export function decodeSpdInfoPayload(payload: Buffer): XfrmSpdInfo {
  if (payload.byteLength < SPDINFO_FLAGS_SIZE)
    throw new XfrmDecodeError('XFRM_MSG_NEWSPDINFO', `need ${SPDINFO_FLAGS_SIZE} bytes, got ${payload.byteLength}`);
  const a = attrsOf(payload, SPDINFO_FLAGS_SIZE, 'XFRM_MSG_NEWSPDINFO attributes');
  const get = <T>(type: number, codec: { name: string; size: number }, dec: (b: Buffer) => T): T | undefined => {
    const d = a.binary(type);
    if (!d) return undefined;
    if (d.byteLength < codec.size) throw new XfrmDecodeError(codec.name, `need ${codec.size} bytes, got ${d.byteLength}`);
    return dec(d);
  };
  const info = get(XFRMA_SPD_INFO, xfrmuSpdinfo, (b) => decodeStruct(xfrmuSpdinfo, b));
  const h = get(XFRMA_SPD_HINFO, xfrmuSpdhinfo, (b) => decodeStruct(xfrmuSpdhinfo, b));
  const t4 = get(XFRMA_SPD_IPV4_HTHRESH, xfrmuSpdhthresh, (b) => decodeStruct(xfrmuSpdhthresh, b));
  const t6 = get(XFRMA_SPD_IPV6_HTHRESH, xfrmuSpdhthresh, (b) => decodeStruct(xfrmuSpdhthresh, b));
  const out: XfrmSpdInfo = {
    inCount: info?.incnt ?? 0,
    outCount: info?.outcnt ?? 0,
    fwdCount: info?.fwdcnt ?? 0,
    inSocketCount: info?.inscnt ?? 0,
    outSocketCount: info?.outscnt ?? 0,
    fwdSocketCount: info?.fwdscnt ?? 0,
    hashBuckets: h?.spdhcnt ?? 0,
    hashMaxBuckets: h?.spdhmcnt ?? 0,
  };
  if (t4) out.ipv4Threshold = { localBits: t4.lbits, remoteBits: t4.rbits };
  if (t6) out.ipv6Threshold = { localBits: t6.lbits, remoteBits: t6.rbits };
  return out;
}
