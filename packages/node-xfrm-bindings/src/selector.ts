import { afOf, familyOfAf, formatCidr, parseCidr, type IpFamily } from './address.js';
import { XfrmDecodeError, XfrmValidationError } from './errors.js';
import { emptySelector, type XfrmSelectorWire } from './nl/selector.js';
import { checkInt, checkObject } from './validate.js';

/**
 * Traffic selector (struct xfrm_selector): `ip xfrm policy ... src CIDR dst CIDR proto P sport S dport D`.
 * `src` and `dst` must be the same family.
 */
export interface XfrmSelector {
  /** Source prefix, e.g. `10.0.0.0/24` or `fd00::/64`; a bare address means /32 or /128. */
  src: string;
  /** Destination prefix. */
  dst: string;
  /** IP protocol number (6 tcp, 17 udp, 1 icmp, 58 ipv6-icmp...). undefined = any protocol. */
  proto?: number;
  /** Source port (needs `proto`). undefined = any port. */
  srcPort?: number;
  /** Destination port (needs `proto`). undefined = any port. */
  dstPort?: number;
  /** Interface index the traffic must use. undefined = any interface. */
  ifindex?: number;
}

export interface ValidSelector {
  family: IpFamily;
  wire: XfrmSelectorWire;
}

export function validateSelector(field: string, s: unknown): ValidSelector {
  const o = checkObject(field, s);
  const src = parseCidr(`${field}.src`, o.src);
  const dst = parseCidr(`${field}.dst`, o.dst);
  if (src.family !== dst.family) {
    throw new XfrmValidationError(field, `mixed address families: src is ${src.family}, dst is ${dst.family}`);
  }
  const proto = o.proto === undefined ? 0 : checkInt(`${field}.proto`, o.proto, 1, 255);
  const sport = o.srcPort === undefined ? undefined : checkInt(`${field}.srcPort`, o.srcPort, 1, 0xffff);
  const dport = o.dstPort === undefined ? undefined : checkInt(`${field}.dstPort`, o.dstPort, 1, 0xffff);
  if ((sport !== undefined || dport !== undefined) && proto === 0) {
    throw new XfrmValidationError(
      `${field}.${sport !== undefined ? 'srcPort' : 'dstPort'}`,
      'a port needs selector.proto (e.g. 6 for TCP, 17 for UDP)',
    );
  }
  const ifindex = o.ifindex === undefined ? 0 : checkInt(`${field}.ifindex`, o.ifindex, 1, 0x7fffffff);
  return {
    family: src.family,
    wire: {
      daddr: dst.bytes,
      saddr: src.bytes,
      dport: dport ?? 0,
      dportMask: dport === undefined ? 0 : 0xffff,
      sport: sport ?? 0,
      sportMask: sport === undefined ? 0 : 0xffff,
      family: afOf(src.family),
      prefixlenD: dst.prefixLen,
      prefixlenS: src.prefixLen,
      proto,
      ifindex,
      user: 0,
    },
  };
}

/** True for the all-zero selector a state gets when none was given (it matches everything). */
export function isMatchAll(w: XfrmSelectorWire): boolean {
  const e = emptySelector();
  return (
    w.daddr.every((b) => b === 0) &&
    w.saddr.every((b) => b === 0) &&
    w.prefixlenD === 0 &&
    w.prefixlenS === 0 &&
    w.proto === e.proto &&
    w.dportMask === 0 &&
    w.sportMask === 0 &&
    w.ifindex === 0
  );
}

/** Decodes a selector; `fallbackAf` is used when the kernel left family as AF_UNSPEC. */
export function selectorFromWire(w: XfrmSelectorWire, fallbackAf: number): XfrmSelector {
  const family = familyOfAf(w.family || fallbackAf);
  if (!family) throw new XfrmDecodeError('xfrm_selector', `unknown address family ${w.family}`);
  const max = family === 'ipv4' ? 32 : 128;
  if (w.prefixlenS > max || w.prefixlenD > max) {
    throw new XfrmDecodeError('xfrm_selector', `prefix length ${Math.max(w.prefixlenS, w.prefixlenD)} too long for ${family}`);
  }
  const s: XfrmSelector = {
    src: formatCidr(family, w.saddr, w.prefixlenS),
    dst: formatCidr(family, w.daddr, w.prefixlenD),
  };
  if (w.proto !== 0) s.proto = w.proto;
  if (w.sportMask !== 0) s.srcPort = w.sport;
  if (w.dportMask !== 0) s.dstPort = w.dport;
  if (w.ifindex !== 0) s.ifindex = w.ifindex;
  return s;
}
