import { XfrmValidationError } from './errors.js';
import { XFRM_INF, defaultLifetimeCfg, type XfrmLifetimeCfgWire, type XfrmLifetimeCurWire } from './nl/lifetime.js';
import { checkObject } from './validate.js';

/**
 * Soft/hard expiry limits (xfrm_lifetime_cfg). `ip xfrm ... limit byte-soft N limit time-hard S`.
 * Every field is optional: `undefined` means no limit.
 */
export interface XfrmLifetimeLimits {
  softBytes?: bigint;
  hardBytes?: bigint;
  softPackets?: bigint;
  hardPackets?: bigint;
  /** Seconds after creation (> 0). */
  softAddExpiresSeconds?: number;
  hardAddExpiresSeconds?: number;
  /** Seconds after first use (> 0). */
  softUseExpiresSeconds?: number;
  hardUseExpiresSeconds?: number;
}

/** Counters the kernel reports (xfrm_lifetime_cur). Read only. */
export interface XfrmLifetimeCurrent {
  bytes: bigint;
  packets: bigint;
  /** Creation time, seconds since the epoch. */
  addTime: number;
  /** First use, seconds since the epoch; 0 = never used. */
  useTime: number;
}

const countFields = ['softBytes', 'hardBytes', 'softPackets', 'hardPackets'] as const;
const secondFields = [
  'softAddExpiresSeconds',
  'hardAddExpiresSeconds',
  'softUseExpiresSeconds',
  'hardUseExpiresSeconds',
] as const;

export function validateLimits(field: string, l: unknown): XfrmLifetimeLimits {
  const o = checkObject(field, l);
  const out: XfrmLifetimeLimits = {};
  for (const f of countFields) {
    const v = o[f];
    if (v === undefined) continue;
    // XFRM_INF itself is the kernel's "no limit"; say undefined instead.
    if (typeof v !== 'bigint' || v < 0n || v >= XFRM_INF) {
      throw new XfrmValidationError(`${field}.${f}`, 'must be a bigint 0..2^64-2 (undefined = no limit)');
    }
    out[f] = v;
  }
  for (const f of secondFields) {
    const v = o[f];
    if (v === undefined) continue;
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v <= 0) {
      throw new XfrmValidationError(`${field}.${f}`, 'must be a positive integer number of seconds (undefined = no limit)');
    }
    out[f] = v;
  }
  return out;
}

export function limitsToWire(l: XfrmLifetimeLimits | undefined): XfrmLifetimeCfgWire {
  const c = defaultLifetimeCfg();
  if (!l) return c;
  if (l.softBytes !== undefined) c.softByteLimit = l.softBytes;
  if (l.hardBytes !== undefined) c.hardByteLimit = l.hardBytes;
  if (l.softPackets !== undefined) c.softPacketLimit = l.softPackets;
  if (l.hardPackets !== undefined) c.hardPacketLimit = l.hardPackets;
  if (l.softAddExpiresSeconds !== undefined) c.softAddExpiresSeconds = BigInt(l.softAddExpiresSeconds);
  if (l.hardAddExpiresSeconds !== undefined) c.hardAddExpiresSeconds = BigInt(l.hardAddExpiresSeconds);
  if (l.softUseExpiresSeconds !== undefined) c.softUseExpiresSeconds = BigInt(l.softUseExpiresSeconds);
  if (l.hardUseExpiresSeconds !== undefined) c.hardUseExpiresSeconds = BigInt(l.hardUseExpiresSeconds);
  return c;
}

/** Decodes limits; returns undefined when nothing is limited. */
export function limitsFromWire(c: XfrmLifetimeCfgWire): XfrmLifetimeLimits | undefined {
  const l: XfrmLifetimeLimits = {};
  const count = (v: bigint): bigint | undefined => (v === XFRM_INF ? undefined : v);
  const secs = (v: bigint): number | undefined =>
    v === 0n ? undefined : v > BigInt(Number.MAX_SAFE_INTEGER) ? Number.MAX_SAFE_INTEGER : Number(v);
  const set = <K extends keyof XfrmLifetimeLimits>(k: K, v: XfrmLifetimeLimits[K] | undefined): void => {
    if (v !== undefined) l[k] = v;
  };
  set('softBytes', count(c.softByteLimit));
  set('hardBytes', count(c.hardByteLimit));
  set('softPackets', count(c.softPacketLimit));
  set('hardPackets', count(c.hardPacketLimit));
  set('softAddExpiresSeconds', secs(c.softAddExpiresSeconds));
  set('hardAddExpiresSeconds', secs(c.hardAddExpiresSeconds));
  set('softUseExpiresSeconds', secs(c.softUseExpiresSeconds));
  set('hardUseExpiresSeconds', secs(c.hardUseExpiresSeconds));
  return Object.keys(l).length === 0 ? undefined : l;
}

export function currentFromWire(c: XfrmLifetimeCurWire): XfrmLifetimeCurrent {
  return { bytes: c.bytes, packets: c.packets, addTime: Number(c.addTime), useTime: Number(c.useTime) };
}
