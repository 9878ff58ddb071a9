import { afOf, familyOfAf, formatIp, isZeroAddress, parseIp, type IpFamily } from './address.js';
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
  XFRMA_IF_ID,
  XFRMA_MARK,
  XFRMA_TMPL,
  XFRM_POLICY_ALLOW,
  XFRM_POLICY_BLOCK,
  XFRM_POLICY_FWD,
  XFRM_POLICY_IN,
  XFRM_POLICY_OUT,
  XFRM_SHARE_ANY,
} from './nl/constants.js';
import { zeroLifetimeCur } from './nl/lifetime.js';
import { emptySelector, xfrmSelector } from './nl/selector.js';
import { xfrmMark } from './nl/mark.js';
import { HOST_LE, decodeStruct, viewOf } from './nl/struct.js';
import { XFRM_USER_TMPL_SIZE, xfrmUserTmpl, type XfrmUserTmplWire } from './nl/user-tmpl.js';
import { XFRM_USERPOLICY_ID_SIZE, xfrmUserpolicyId } from './nl/userpolicy-id.js';
import { XFRM_USERPOLICY_INFO_SIZE, xfrmUserpolicyInfo } from './nl/userpolicy-info.js';
import { selectorFromWire, validateSelector, type XfrmSelector } from './selector.js';
import { MODE_NUM, PROTO_NUM, modeName, protoName, u32Attr, type XfrmMode, type XfrmProto } from './state.js';
import { NLA_HDRLEN, attrsOf, putAttrHeader } from './attrs.js';
import { U32_MAX, checkIfId, checkInt, checkObject, checkOneOf, checkU32 } from './validate.js';

/** Policy direction. */
export type XfrmDir = 'in' | 'out' | 'fwd';
/** Policy action. */
export type XfrmAction = 'allow' | 'block';

const DIR_NUM: Record<XfrmDir, number> = { in: XFRM_POLICY_IN, out: XFRM_POLICY_OUT, fwd: XFRM_POLICY_FWD };
const DIRS = ['in', 'out', 'fwd'] as const;

/**
 * One SA template of a policy (struct xfrm_user_tmpl):
 * `tmpl src A dst B proto esp spi X reqid N mode tunnel [level use]`.
 */
export interface XfrmTemplate {
  /** Tunnel source. Required in tunnel mode; undefined in transport mode = any. */
  src?: string;
  /** Tunnel destination. Required in tunnel mode; undefined in transport mode = any. */
  dst?: string;
  /** Default 'esp'. */
  proto?: XfrmProto;
  /** SPI to require. undefined = any SPI. */
  spi?: number;
  mode: XfrmMode;
  /** Must match the SA's reqid. Default 0 (any). */
  reqid?: number;
  /** `level use`: the SA is optional. Default false (`level required`). */
  optional?: boolean;
}

/** An IPsec policy (SPD entry). */
export interface XfrmPolicy {
  selector: XfrmSelector;
  dir: XfrmDir;
  /** Lower value = higher priority. Default 0. */
  priority?: number;
  /** Default 'allow'. */
  action?: XfrmAction;
  /** Mark the packet must carry for the policy to apply. undefined = any packet. */
  mark?: XfrmMark;
  /** XFRM interface id. undefined = none. */
  ifId?: number;
  /** Kernel-assigned index. Set on read; on write, undefined lets the kernel choose. */
  index?: number;
  /** SA templates, applied in order. undefined or [] = no transformation (plain allow/block). */
  templates?: XfrmTemplate[];
  /** Expiry limits. undefined = none. */
  limits?: XfrmLifetimeLimits;
  /** Read only: use counters. Ignored on write. */
  current?: XfrmLifetimeCurrent;
}

/**
 * Names one policy for get/delete: by selector + dir (as `ip xfrm policy get|delete` does) or by
 * kernel index + dir. `mark` and `ifId` must equal the policy's own.
 */
export type XfrmPolicyId =
  | { selector: XfrmSelector; dir: XfrmDir; mark?: XfrmMark; ifId?: number }
  | { index: number; dir: XfrmDir; mark?: XfrmMark; ifId?: number };

function encodeTemplate(
  field: string,
  t: unknown,
  prevFamily: IpFamily,
  dir: XfrmDir,
): { wire: XfrmUserTmplWire; family: IpFamily } {
  const o = checkObject(field, t);
  const mode = checkOneOf(`${field}.mode`, o.mode, ['transport', 'tunnel'] as const);
  const proto = o.proto === undefined ? 'esp' : checkOneOf(`${field}.proto`, o.proto, ['esp', 'ah'] as const);
  let family = prevFamily;
  let saddr: Uint8Array = new Uint8Array(16);
  let daddr: Uint8Array = new Uint8Array(16);
  if (o.src !== undefined || o.dst !== undefined || mode === 'tunnel') {
    if (o.src === undefined)
      throw new XfrmValidationError(`${field}.src`, `required${mode === 'tunnel' ? ' in tunnel mode' : ' when dst is set'}`);
    if (o.dst === undefined)
      throw new XfrmValidationError(`${field}.dst`, `required${mode === 'tunnel' ? ' in tunnel mode' : ' when src is set'}`);
    const s = parseIp(`${field}.src`, o.src);
    const d = parseIp(`${field}.dst`, o.dst);
    if (s.family !== d.family) {
      throw new XfrmValidationError(`${field}.src`, `mixed address families: src is ${s.family}, dst is ${d.family}`);
    }
    family = s.family;
    saddr = s.bytes;
    daddr = d.bytes;
  }
  // The kernel (validate_tmpl) lets only tunnel/beet templates change the address family.
  if (mode === 'transport' && family !== prevFamily) {
    throw new XfrmValidationError(
      `${field}.src`,
      `transport mode template is ${family} but the selector/previous template is ${prevFamily}`,
    );
  }
  const optional = o.optional === undefined ? false : o.optional;
  if (typeof optional !== 'boolean') throw new XfrmValidationError(`${field}.optional`, 'must be a boolean');
  if (optional && mode === 'tunnel' && dir === 'out') {
    throw new XfrmValidationError(`${field}.optional`, 'an outbound policy cannot have an optional tunnel template');
  }
  const spi = o.spi === undefined ? 0 : checkInt(`${field}.spi`, o.spi, 1, U32_MAX);
  const reqid = o.reqid === undefined ? 0 : checkU32(`${field}.reqid`, o.reqid);
  return {
    family,
    wire: {
      id: { daddr, spi, proto: PROTO_NUM[proto] },
      family: afOf(family),
      saddr,
      reqid,
      mode: MODE_NUM[mode],
      share: XFRM_SHARE_ANY,
      optional: optional ? 1 : 0,
      // "any algorithm", as iproute2 sends.
      aalgos: U32_MAX,
      ealgos: U32_MAX,
      calgos: U32_MAX,
    },
  };
}

/** Validates a policy and builds the XFRM_MSG_NEWPOLICY/UPDPOLICY payload. */
export function encodePolicyPayload(p: XfrmPolicy): Buffer {
  const o = checkObject('policy', p);
  const sel = validateSelector('selector', o.selector);
  const dir = checkOneOf('dir', o.dir, DIRS);
  const priority = o.priority === undefined ? 0 : checkU32('priority', o.priority);
  const action = o.action === undefined ? 'allow' : checkOneOf('action', o.action, ['allow', 'block'] as const);
  const mark = o.mark === undefined ? undefined : validateMark('mark', o.mark);
  const ifId = o.ifId === undefined ? undefined : checkIfId('ifId', o.ifId);
  const index = o.index === undefined ? 0 : checkU32('index', o.index);
  const limits = o.limits === undefined ? undefined : validateLimits('limits', o.limits);
  if (o.templates !== undefined && !Array.isArray(o.templates)) throw new XfrmValidationError('templates', 'must be an array');
  const tmplIn = (o.templates as unknown[] | undefined) ?? [];
  if (tmplIn.length > 6) throw new XfrmValidationError('templates', 'at most 6 templates (XFRM_MAX_DEPTH)');
  let prev = sel.family;
  const tmpls: XfrmUserTmplWire[] = [];
  tmplIn.forEach((t, i) => {
    const r = encodeTemplate(`templates[${i}]`, t, prev, dir);
    prev = r.family;
    tmpls.push(r.wire);
  });
  if (action === 'block' && tmpls.length > 0) throw new XfrmValidationError('templates', "a 'block' policy takes no templates");

  // One allocation for the whole request: this path runs 10,000s of times in bulk installs.
  const tmplLen = tmpls.length > 0 ? NLA_HDRLEN + tmpls.length * XFRM_USER_TMPL_SIZE : 0;
  const out = Buffer.alloc(
    XFRM_USERPOLICY_INFO_SIZE + tmplLen + (mark ? NLA_HDRLEN + 8 : 0) + (ifId !== undefined ? NLA_HDRLEN + 4 : 0),
  );
  const v = viewOf(out);
  xfrmUserpolicyInfo.write(v, 0, {
    sel: sel.wire,
    lft: limitsToWire(limits),
    curlft: zeroLifetimeCur(),
    priority,
    index,
    dir: DIR_NUM[dir],
    action: action === 'allow' ? XFRM_POLICY_ALLOW : XFRM_POLICY_BLOCK,
    flags: 0,
    share: XFRM_SHARE_ANY,
  });
  let off = XFRM_USERPOLICY_INFO_SIZE;
  if (tmpls.length > 0) {
    off = putAttrHeader(v, off, XFRMA_TMPL, tmpls.length * XFRM_USER_TMPL_SIZE);
    for (const t of tmpls) {
      xfrmUserTmpl.write(v, off, t);
      off += XFRM_USER_TMPL_SIZE;
    }
  }
  putMarkAndIfId(v, off, mark, ifId);
  return out;
}

function putMarkAndIfId(v: DataView, offset: number, mark: Required<XfrmMark> | undefined, ifId: number | undefined): number {
  let off = offset;
  if (mark) {
    off = putAttrHeader(v, off, XFRMA_MARK, 8);
    xfrmMark.write(v, off, markToWire(mark));
    off += 8;
  }
  if (ifId !== undefined) {
    off = putAttrHeader(v, off, XFRMA_IF_ID, 4);
    v.setUint32(off, ifId, HOST_LE);
    off += 4;
  }
  return off;
}

/** Validates a policy id and builds the XFRM_MSG_GETPOLICY/DELPOLICY payload. */
export function encodePolicyIdPayload(id: XfrmPolicyId): Buffer {
  const o = checkObject('id', id);
  const dir = checkOneOf('dir', o.dir, DIRS);
  let wire;
  if (o.selector !== undefined) {
    if (o.index !== undefined) throw new XfrmValidationError('index', 'give either selector or index, not both');
    wire = { sel: validateSelector('selector', o.selector).wire, index: 0, dir: DIR_NUM[dir] };
  } else {
    if (o.index === undefined) throw new XfrmValidationError('selector', 'a policy id needs a selector or an index');
    const index = checkInt('index', o.index, 1, U32_MAX);
    wire = { sel: emptySelector(), index, dir: DIR_NUM[dir] };
  }
  const mark = o.mark === undefined ? undefined : validateMark('mark', o.mark);
  const ifId = o.ifId === undefined ? undefined : checkIfId('ifId', o.ifId);
  const out = Buffer.alloc(XFRM_USERPOLICY_ID_SIZE + (mark ? NLA_HDRLEN + 8 : 0) + (ifId !== undefined ? NLA_HDRLEN + 4 : 0));
  const v = viewOf(out);
  xfrmUserpolicyId.write(v, 0, wire);
  putMarkAndIfId(v, XFRM_USERPOLICY_ID_SIZE, mark, ifId);
  return out;
}

function dirName(n: number): XfrmDir {
  const d = DIRS.find((k) => DIR_NUM[k] === n);
  if (!d) throw new XfrmDecodeError('xfrm_userpolicy_info.dir', `unknown direction ${n}`);
  return d;
}

/** Decodes an XFRM_MSG_NEWPOLICY payload (a dump part or GETPOLICY reply). */
export function decodePolicyPayload(payload: Buffer): XfrmPolicy {
  const info = decodeStruct(xfrmUserpolicyInfo, payload);
  const a = attrsOf(payload, XFRM_USERPOLICY_INFO_SIZE, 'XFRM policy attributes');
  const p: XfrmPolicy = {
    selector: selectorFromWire(info.sel, 0),
    dir: dirName(info.dir),
    priority: info.priority,
    action: info.action === XFRM_POLICY_BLOCK ? 'block' : 'allow',
    index: info.index,
  };
  const tmplRaw = a.binary(XFRMA_TMPL);
  if (tmplRaw && tmplRaw.byteLength > 0) {
    if (tmplRaw.byteLength % XFRM_USER_TMPL_SIZE !== 0) {
      throw new XfrmDecodeError('XFRMA_TMPL', `${tmplRaw.byteLength} bytes is not a multiple of ${XFRM_USER_TMPL_SIZE}`);
    }
    const v = viewOf(tmplRaw);
    p.templates = [];
    for (let off = 0; off < tmplRaw.byteLength; off += XFRM_USER_TMPL_SIZE) {
      const w = xfrmUserTmpl.read(v, off);
      const fam = familyOfAf(w.family);
      if (!fam) throw new XfrmDecodeError('xfrm_user_tmpl.family', `unknown address family ${w.family}`);
      const t: XfrmTemplate = {
        proto: protoName(w.id.proto, 'xfrm_user_tmpl.id.proto'),
        mode: modeName(w.mode, 'xfrm_user_tmpl.mode'),
        reqid: w.reqid,
      };
      if (!isZeroAddress(w.saddr) || !isZeroAddress(w.id.daddr)) {
        t.src = formatIp(fam, w.saddr);
        t.dst = formatIp(fam, w.id.daddr);
      }
      if (w.id.spi !== 0) t.spi = w.id.spi;
      if (w.optional) t.optional = true;
      p.templates.push(t);
    }
  }
  const markRaw = a.binary(XFRMA_MARK);
  if (markRaw) {
    if (markRaw.byteLength < 8) throw new XfrmDecodeError('XFRMA_MARK', `need 8 bytes, got ${markRaw.byteLength}`);
    const m = markFromWire(decodeStruct(xfrmMark, markRaw));
    if (m) p.mark = m;
  }
  const ifId = a.has(XFRMA_IF_ID) ? u32Attr(a, XFRMA_IF_ID, 'XFRMA_IF_ID') : 0;
  if (ifId !== 0) p.ifId = ifId;
  const limits = limitsFromWire(info.lft);
  if (limits) p.limits = limits;
  p.current = currentFromWire(info.curlft);
  return p;
}

function selectorKey(v: DataView, off: number): string {
  const s = xfrmSelector.read(v, off);
  return `${Buffer.from(s.daddr).toString('hex')}/${s.prefixlenD}|${Buffer.from(s.saddr).toString('hex')}/${s.prefixlenS}|${s.family}|${s.proto}|${s.dport}&${s.dportMask}|${s.sport}&${s.sportMask}|${s.ifindex}|${s.user}`;
}

function markIfIdKey(payload: Buffer, attrOffset: number): string {
  const a = attrsOf(payload, attrOffset, 'XFRM policy attributes');
  const m = a.binary(XFRMA_MARK);
  const mark = m && m.byteLength >= 8 ? `${m.readUInt32LE(0)}/${m.readUInt32LE(4)}` : '0/0';
  const ifId = a.has(XFRMA_IF_ID) ? u32Attr(a, XFRMA_IF_ID, 'XFRMA_IF_ID') : 0;
  return `${mark === '0/0' ? '' : mark}|${ifId}`;
}

/**
 * Identity of a policy as the kernel matches it for selector lookups (selector, dir, mark,
 * if_id), from a GETPOLICY/DELPOLICY payload. undefined for lookups by index.
 */
export function policyIdKey(payload: Buffer): string | undefined {
  const v = viewOf(payload);
  if (v.getUint32(56, HOST_LE) !== 0) return undefined;
  return `${selectorKey(v, 0)}|${payload[60]}|${markIfIdKey(payload, XFRM_USERPOLICY_ID_SIZE)}`;
}

/** The same identity plus the kernel index, from a NEWPOLICY dump part. */
export function policyInfoKey(payload: Buffer): { key: string; index: number } {
  if (payload.byteLength < XFRM_USERPOLICY_INFO_SIZE) {
    throw new XfrmDecodeError('xfrm_userpolicy_info', `need ${XFRM_USERPOLICY_INFO_SIZE} bytes, got ${payload.byteLength}`);
  }
  const v = viewOf(payload);
  return {
    key: `${selectorKey(v, 0)}|${payload[160]}|${markIfIdKey(payload, XFRM_USERPOLICY_INFO_SIZE)}`,
    index: v.getUint32(156, HOST_LE),
  };
}

/** Rewrites a selector-based GETPOLICY/DELPOLICY payload into a lookup by kernel index. */
export function policyIdPayloadByIndex(payload: Buffer, index: number): Buffer {
  const out = Buffer.from(payload);
  out.fill(0, 0, 56);
  out.writeUInt32LE(index, 56);
  return out;
}
