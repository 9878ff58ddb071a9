import { type AttrSet, attr, encodeAttrs } from '@veil/netlink';
import { attrsOf } from './attrs.js';
import { afOf, familyOfAf, formatIp, parseIp, type IpFamily } from './address.js';
import {
  validateAead,
  validateAuth,
  validateCrypt,
  type AeadAlgorithmName,
  type AuthAlgorithmName,
  type CryptAlgorithmName,
  type XfrmAead,
  type XfrmAuth,
  type XfrmCrypt,
} from './algorithms.js';
import { XfrmDecodeError, XfrmValidationError } from './errors.js';
import {
  currentFromWire,
  limitsFromWire,
  limitsToWire,
  validateLimits,
  type XfrmLifetimeCurrent,
  type XfrmLifetimeLimits,
} from './lifetime.js';
import { markFromWire, markToWire, validateMark, type XfrmMark } from './mark.js';
import {
  decodeXfrmAlgo,
  decodeXfrmAlgoAead,
  decodeXfrmAlgoAuth,
  encodeXfrmAlgo,
  encodeXfrmAlgoAead,
  encodeXfrmAlgoAuth,
} from './nl/algo.js';
import {
  IPPROTO_AH,
  IPPROTO_ESP,
  XFRMA_ALG_AEAD,
  XFRMA_ALG_AUTH_TRUNC,
  XFRMA_ALG_CRYPT,
  XFRMA_IF_ID,
  XFRMA_LTIME_VAL,
  XFRMA_MARK,
  XFRMA_REPLAY_ESN_VAL,
  XFRMA_REPLAY_VAL,
  XFRMA_SET_MARK,
  XFRMA_SET_MARK_MASK,
  XFRMA_SRCADDR,
  XFRM_MODE_TRANSPORT,
  XFRM_MODE_TUNNEL,
  XFRM_STATE_ESN,
} from './nl/constants.js';
import { xfrmLifetimeCur, zeroLifetimeCur } from './nl/lifetime.js';
import { xfrmMark } from './nl/mark.js';
import { XFRMA_REPLAY_ESN_MAX, decodeReplayStateEsn, encodeReplayStateEsn, xfrmReplayState } from './nl/replay-esn.js';
import { emptySelector } from './nl/selector.js';
import { decodeStruct, encodeStruct } from './nl/struct.js';
import { xfrmUsersaId } from './nl/usersa-id.js';
import { XFRM_USERSA_INFO_SIZE, xfrmUsersaInfo, type XfrmUsersaInfoWire } from './nl/usersa-info.js';
import { isMatchAll, selectorFromWire, validateSelector, type XfrmSelector } from './selector.js';
import { U32_MAX, checkIfId, checkInt, checkObject, checkOneOf, checkU32 } from './validate.js';

/** IPsec protocol of a state or template. */
export type XfrmProto = 'esp' | 'ah';
/** Encapsulation mode. */
export type XfrmMode = 'transport' | 'tunnel';

export const PROTO_NUM: Record<XfrmProto, number> = { esp: IPPROTO_ESP, ah: IPPROTO_AH };
export const MODE_NUM: Record<XfrmMode, number> = { transport: XFRM_MODE_TRANSPORT, tunnel: XFRM_MODE_TUNNEL };

export function protoName(n: number, what: string): XfrmProto {
  if (n === IPPROTO_ESP) return 'esp';
  if (n === IPPROTO_AH) return 'ah';
  throw new XfrmDecodeError(what, `unsupported IPsec protocol ${n}`);
}
export function modeName(n: number, what: string): XfrmMode {
  if (n === XFRM_MODE_TRANSPORT) return 'transport';
  if (n === XFRM_MODE_TUNNEL) return 'tunnel';
  throw new XfrmDecodeError(what, `unsupported mode ${n}`);
}

/** Replay counters the kernel reports. Read only. */
export interface XfrmReplayCounters {
  /** Outbound sequence number (low 32 bits). */
  oseq: number;
  /** Highest inbound sequence number seen (low 32 bits). */
  seq: number;
  /** High 32 bits of the outbound sequence number (ESN only, else 0). */
  oseqHi: number;
  /** High 32 bits of the inbound sequence number (ESN only, else 0). */
  seqHi: number;
}

/** Per-SA error counters (struct xfrm_stats). Read only. */
export interface XfrmStateStats {
  replayWindow: number;
  replay: number;
  integrityFailed: number;
}

/**
 * An IPsec security association (XFRM state).
 *
 * Exactly one transform set: `aead`, or `crypt` with `auth` (ESP), or `auth` alone (AH, or
 * ESP with null encryption is not supported here).
 */
export interface XfrmState {
  /** Outer source address. */
  src: string;
  /** Outer destination address; with `spi` and `proto` it identifies the SA. */
  dst: string;
  /** Default 'esp'. */
  proto?: XfrmProto;
  /** Security parameter index, 1..0xffffffff (0 is reserved). */
  spi: number;
  /** Request id linking the SA to policy templates. Default 0 (matches any template reqid). */
  reqid?: number;
  mode: XfrmMode;
  /** AEAD transform (ESP only). */
  aead?: XfrmAead;
  /** Authentication transform (with `crypt` for ESP, alone for AH). On read, `truncLen` is set. */
  auth?: XfrmAuth;
  /** Encryption transform (ESP, together with `auth`). */
  crypt?: XfrmCrypt;
  /** Extended (64-bit) sequence numbers. Default false. */
  esn?: boolean;
  /** Anti-replay window in packets, 0..4096 (0 disables replay protection). Default 0. */
  replayWindow?: number;
  /** Mark the packet must carry for this SA to apply. undefined = no mark match. */
  mark?: XfrmMark;
  /** Mark to set on packets after transformation (XFRMA_SET_MARK). undefined = none. */
  outputMark?: XfrmMark;
  /** XFRM interface id (1..0xffffffff). undefined = not bound to an xfrm interface. */
  ifId?: number;
  /** Inner-traffic selector. undefined = any traffic (the kernel's default). */
  selector?: XfrmSelector;
  /** Expiry limits. undefined = none. */
  limits?: XfrmLifetimeLimits;
  /** Read only: byte/packet counters and timestamps. Ignored on write. */
  current?: XfrmLifetimeCurrent;
  /** Read only: sequence numbers. Ignored on write. */
  replay?: XfrmReplayCounters;
  /** Read only: error counters. Ignored on write. */
  stats?: XfrmStateStats;
}

/** Names one SA for get/delete: `ip xfrm state get src A dst B proto esp spi X`. */
export interface XfrmStateId {
  /** Source address; optional (the kernel looks SAs up by dst, spi and proto). */
  src?: string;
  dst: string;
  /** Default 'esp'. */
  proto?: XfrmProto;
  spi: number;
  /** Must equal the SA's mark when it has one. */
  mark?: XfrmMark;
}

function checkSpi(field: string, v: unknown): number {
  if (v === 0) throw new XfrmValidationError(field, 'SPI 0 is reserved (RFC 4303); use 1..0xffffffff');
  return checkInt(field, v, 1, U32_MAX);
}

function checkAddrPair(
  srcField: string,
  src: unknown,
  dstField: string,
  dst: unknown,
): { family: IpFamily; src: Uint8Array; dst: Uint8Array } {
  const s = parseIp(srcField, src);
  const d = parseIp(dstField, dst);
  if (s.family !== d.family) {
    throw new XfrmValidationError(srcField, `mixed address families: ${srcField} is ${s.family}, ${dstField} is ${d.family}`);
  }
  return { family: s.family, src: s.bytes, dst: d.bytes };
}

/** Validates a state and builds the XFRM_MSG_NEWSA/UPDSA payload: xfrm_usersa_info + attributes. */
export function encodeStatePayload(st: XfrmState): Buffer {
  const o = checkObject('state', st);
  const { family, src, dst } = checkAddrPair('src', o.src, 'dst', o.dst);
  const proto = o.proto === undefined ? 'esp' : checkOneOf('proto', o.proto, ['esp', 'ah'] as const);
  const spi = checkSpi('spi', o.spi);
  const reqid = o.reqid === undefined ? 0 : checkU32('reqid', o.reqid);
  const mode = checkOneOf('mode', o.mode, ['transport', 'tunnel'] as const);

  const aead = o.aead === undefined ? undefined : validateAead('aead', o.aead);
  const auth = o.auth === undefined ? undefined : validateAuth('auth', o.auth);
  const crypt = o.crypt === undefined ? undefined : validateCrypt('crypt', o.crypt);
  if (proto === 'esp') {
    if (aead && (auth || crypt)) throw new XfrmValidationError(auth ? 'auth' : 'crypt', 'cannot be combined with aead');
    if (!aead && !crypt) throw new XfrmValidationError('aead', 'an ESP state needs aead, or crypt with auth');
    if (crypt && !auth) throw new XfrmValidationError('auth', 'crypt without auth is not allowed (unauthenticated ESP)');
  } else {
    if (aead || crypt) throw new XfrmValidationError(aead ? 'aead' : 'crypt', 'AH only authenticates; use auth');
    if (!auth) throw new XfrmValidationError('auth', 'an AH state needs auth');
  }

  const esn = o.esn === undefined ? false : o.esn;
  if (typeof esn !== 'boolean') throw new XfrmValidationError('esn', 'must be a boolean');
  const replayWindow = o.replayWindow === undefined ? 0 : checkInt('replayWindow', o.replayWindow, 0, XFRMA_REPLAY_ESN_MAX);
  if (esn && replayWindow === 0) throw new XfrmValidationError('replayWindow', 'ESN needs a replay window > 0');
  const mark = o.mark === undefined ? undefined : validateMark('mark', o.mark);
  const outputMark = o.outputMark === undefined ? undefined : validateMark('outputMark', o.outputMark);
  const ifId = o.ifId === undefined ? undefined : checkIfId('ifId', o.ifId);
  const sel = o.selector === undefined ? undefined : validateSelector('selector', o.selector);
  if (sel && mode === 'transport' && sel.family !== family) {
    throw new XfrmValidationError(
      'selector',
      `transport mode cannot change family: selector is ${sel.family}, addresses are ${family}`,
    );
  }
  const limits = o.limits === undefined ? undefined : validateLimits('limits', o.limits);

  // Windows above 32 packets (or ESN) need XFRMA_REPLAY_ESN_VAL; the u8 in usersa_info is then 0.
  const useEsnAttr = esn || replayWindow > 32;
  const info: XfrmUsersaInfoWire = {
    sel: sel?.wire ?? emptySelector(),
    id: { daddr: dst, spi, proto: PROTO_NUM[proto] },
    saddr: src,
    lft: limitsToWire(limits),
    curlft: zeroLifetimeCur(),
    stats: { replayWindow: 0, replay: 0, integrityFailed: 0 },
    seq: 0,
    reqid,
    family: afOf(family),
    mode: MODE_NUM[mode],
    replayWindow: useEsnAttr ? 0 : replayWindow,
    flags: esn ? XFRM_STATE_ESN : 0,
  };
  return Buffer.concat([
    Buffer.from(encodeStruct(xfrmUsersaInfo, info)),
    encodeAttrs([
      aead &&
        attr.binary(
          XFRMA_ALG_AEAD,
          encodeXfrmAlgoAead({ name: aead.name, key: aead.key, keyLenBits: aead.key.byteLength * 8, icvLenBits: aead.icvLen }),
        ),
      auth &&
        attr.binary(
          XFRMA_ALG_AUTH_TRUNC,
          encodeXfrmAlgoAuth({
            name: auth.name,
            key: auth.key,
            keyLenBits: auth.key.byteLength * 8,
            truncLenBits: auth.truncLen,
          }),
        ),
      crypt &&
        attr.binary(XFRMA_ALG_CRYPT, encodeXfrmAlgo({ name: crypt.name, key: crypt.key, keyLenBits: crypt.key.byteLength * 8 })),
      useEsnAttr &&
        attr.binary(
          XFRMA_REPLAY_ESN_VAL,
          encodeReplayStateEsn({
            bmpLen: Math.ceil(replayWindow / 32),
            oseq: 0,
            seq: 0,
            oseqHi: 0,
            seqHi: 0,
            replayWindow,
            bmp: [],
          }),
        ),
      mark && attr.binary(XFRMA_MARK, encodeStruct(xfrmMark, markToWire(mark))),
      ifId !== undefined && attr.u32(XFRMA_IF_ID, ifId),
      outputMark && attr.u32(XFRMA_SET_MARK, outputMark.value),
      // iproute2 omits the mask when it is the kernel's default (exact match).
      outputMark && outputMark.mask !== U32_MAX && attr.u32(XFRMA_SET_MARK_MASK, outputMark.mask),
    ]),
  ]);
}

/** Validates an SA id and builds the XFRM_MSG_GETSA/DELSA payload: xfrm_usersa_id + attributes. */
export function encodeStateIdPayload(id: XfrmStateId): Buffer {
  const o = checkObject('id', id);
  const dst = parseIp('dst', o.dst);
  const src = o.src === undefined ? undefined : parseIp('src', o.src);
  if (src && src.family !== dst.family) {
    throw new XfrmValidationError('src', `mixed address families: src is ${src.family}, dst is ${dst.family}`);
  }
  const proto = o.proto === undefined ? 'esp' : checkOneOf('proto', o.proto, ['esp', 'ah'] as const);
  const spi = checkSpi('spi', o.spi);
  const mark = o.mark === undefined ? undefined : validateMark('mark', o.mark);
  return Buffer.concat([
    Buffer.from(encodeStruct(xfrmUsersaId, { daddr: dst.bytes, spi, family: afOf(dst.family), proto: PROTO_NUM[proto] })),
    encodeAttrs([
      src && attr.binary(XFRMA_SRCADDR, src.bytes),
      mark && attr.binary(XFRMA_MARK, encodeStruct(xfrmMark, markToWire(mark))),
    ]),
  ]);
}

function sized(a: AttrSet, type: number, size: number, name: string): Buffer | undefined {
  const d = a.binary(type);
  if (d !== undefined && d.byteLength < size) throw new XfrmDecodeError(name, `need ${size} bytes, got ${d.byteLength}`);
  return d;
}

/**
 * Decodes an XFRM_MSG_NEWSA payload (a dump part or a GETSA reply) into an XfrmState.
 * Throws XfrmDecodeError on malformed bytes; unknown attributes are ignored.
 */
export function decodeStatePayload(payload: Buffer): XfrmState {
  const info = decodeStruct(xfrmUsersaInfo, payload);
  const family = familyOfAf(info.family);
  if (!family) throw new XfrmDecodeError('xfrm_usersa_info', `unknown address family ${info.family}`);
  const a = attrsOf(payload, XFRM_USERSA_INFO_SIZE, 'XFRM state attributes');
  const st: XfrmState = {
    src: formatIp(family, info.saddr),
    dst: formatIp(family, info.id.daddr),
    proto: protoName(info.id.proto, 'xfrm_usersa_info.id.proto'),
    spi: info.id.spi,
    reqid: info.reqid,
    mode: modeName(info.mode, 'xfrm_usersa_info.mode'),
    esn: (info.flags & XFRM_STATE_ESN) !== 0,
    replayWindow: info.replayWindow,
  };

  const aeadRaw = a.binary(XFRMA_ALG_AEAD);
  if (aeadRaw) {
    const w = decodeXfrmAlgoAead(aeadRaw);
    st.aead = { name: w.name as AeadAlgorithmName, key: w.key, icvLen: w.icvLenBits };
  }
  const authRaw = a.binary(XFRMA_ALG_AUTH_TRUNC);
  if (authRaw) {
    const w = decodeXfrmAlgoAuth(authRaw);
    st.auth = { name: w.name as AuthAlgorithmName, key: w.key, truncLen: w.truncLenBits };
  }
  const cryptRaw = a.binary(XFRMA_ALG_CRYPT);
  if (cryptRaw) {
    const w = decodeXfrmAlgo(cryptRaw);
    st.crypt = { name: w.name as CryptAlgorithmName, key: w.key };
  }

  const esnRaw = a.binary(XFRMA_REPLAY_ESN_VAL);
  if (esnRaw) {
    const r = decodeReplayStateEsn(esnRaw);
    st.replayWindow = r.replayWindow;
    st.replay = { oseq: r.oseq, seq: r.seq, oseqHi: r.oseqHi, seqHi: r.seqHi };
  } else {
    const rv = sized(a, XFRMA_REPLAY_VAL, 12, 'XFRMA_REPLAY_VAL');
    if (rv) {
      const r = decodeStruct(xfrmReplayState, rv);
      st.replay = { oseq: r.oseq, seq: r.seq, oseqHi: 0, seqHi: 0 };
    }
  }

  const markRaw = sized(a, XFRMA_MARK, 8, 'XFRMA_MARK');
  if (markRaw) {
    const m = markFromWire(decodeStruct(xfrmMark, markRaw));
    if (m) st.mark = m;
  }
  const smark = a.has(XFRMA_SET_MARK) ? u32Attr(a, XFRMA_SET_MARK, 'XFRMA_SET_MARK') : undefined;
  if (smark !== undefined) {
    const smask = a.has(XFRMA_SET_MARK_MASK) ? u32Attr(a, XFRMA_SET_MARK_MASK, 'XFRMA_SET_MARK_MASK') : U32_MAX;
    st.outputMark = { value: smark, mask: smask };
  }
  const ifId = a.has(XFRMA_IF_ID) ? u32Attr(a, XFRMA_IF_ID, 'XFRMA_IF_ID') : 0;
  if (ifId !== 0) st.ifId = ifId;

  if (!isMatchAll(info.sel)) st.selector = selectorFromWire(info.sel, info.family);
  const limits = limitsFromWire(info.lft);
  if (limits) st.limits = limits;
  const cur = sized(a, XFRMA_LTIME_VAL, 32, 'XFRMA_LTIME_VAL');
  st.current = currentFromWire(cur ? decodeStruct(xfrmLifetimeCur, cur) : info.curlft);
  st.stats = { ...info.stats };
  return st;
}

export function u32Attr(a: AttrSet, type: number, name: string): number {
  const d = a.binary(type);
  if (!d || d.byteLength < 4) throw new XfrmDecodeError(name, `need 4 bytes, got ${d?.byteLength ?? 0}`);
  return d.readUInt32LE(0);
}
