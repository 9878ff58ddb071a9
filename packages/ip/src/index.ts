/**
 * @veil/ip: the one place Veil parses and formats IP addresses and prefixes.
 *
 * Strict on input (no leading zeros in IPv4 octets, at most one `::`, no IPv6 zone), canonical on
 * output (dotted quad, RFC 5952 IPv6), network-order bytes in between. Every package that reads or
 * writes addresses (netlink, XFRM, BPF map codecs, the reconciler, the backends) goes through here,
 * so two packages can never disagree on what an address is.
 *
 * Errors: the throwing parsers take an optional `fail` factory so each caller raises its own typed
 * error (with its own field path) from the same {@link IpProblem}; without one they throw
 * {@link IpSyntaxError}.
 */

/** IP version. */
export type IpFamily = 4 | 6;

/** A parsed address: family and network-order bytes (4 for IPv4, 16 for IPv6). */
export interface IpAddr {
  readonly family: IpFamily;
  readonly bytes: Buffer;
}

/** A parsed prefix such as 10.0.0.0/24. */
export interface IpPrefix extends IpAddr {
  readonly prefixLen: number;
}

/** Why a text is not an address or prefix; callers build their own message from it. */
export type IpProblem =
  | { readonly code: 'not-a-string' }
  | { readonly code: 'bad-address' }
  | { readonly code: 'missing-prefix-length' }
  | { readonly code: 'bad-prefix-length'; readonly max: number }
  | { readonly code: 'host-bits'; readonly suggestion: string }
  | { readonly code: 'wrong-family'; readonly want: IpFamily };

/** Builds the caller's own error from a problem (e.g. a validation error carrying a field path). */
export type IpFailure = (problem: IpProblem, input: unknown) => Error;

/** The default error of the throwing parsers. */
export class IpSyntaxError extends Error {
  override name = 'IpSyntaxError';
  constructor(
    readonly problem: IpProblem,
    readonly input: unknown,
  ) {
    super(describeIpProblem(problem, input));
  }
}

/** A plain-English sentence for a problem, e.g. `"10.0.0.1/8" has host bits set (did you mean 10.0.0.0/8?)`. */
export function describeIpProblem(problem: IpProblem, input: unknown): string {
  const shown = typeof input === 'string' ? JSON.stringify(input) : String(input);
  switch (problem.code) {
    case 'not-a-string':
      return `expected an IP address or CIDR string, got ${typeof input}`;
    case 'bad-address':
      return `${shown} is not an IPv4 or IPv6 address`;
    case 'missing-prefix-length':
      return `${shown} is not a CIDR (missing /prefix)`;
    case 'bad-prefix-length':
      return `${shown}: prefix length must be 0..${problem.max}`;
    case 'host-bits':
      return `${shown} has host bits set (did you mean ${problem.suggestion}?)`;
    case 'wrong-family':
      return `${shown} is not an IPv${problem.want} address or prefix`;
  }
}

const defaultFailure: IpFailure = (problem, input) => new IpSyntaxError(problem, input);

/** 32 or 128. */
export function addressBits(family: IpFamily): 32 | 128 {
  return family === 4 ? 32 : 128;
}

// ---------------------------------------------------------------------------------------------
// Parsing

/**
 * Writes the 4 bytes of a strict dotted quad at `out[off..off+4)`; false (out untouched beyond
 * scratch) when `text` is not one. The hot path: bulk installs of 10,000+ prefixes come through here.
 */
export function parseIPv4Into(text: string, out: Uint8Array, off = 0): boolean {
  let octet = 0;
  let digits = 0;
  let part = 0;
  const n = text.length;
  if (n < 7 || n > 15) return false;
  for (let i = 0; i <= n; i++) {
    const c = i < n ? text.charCodeAt(i) : 46; // a virtual trailing '.'
    if (c >= 48 && c <= 57) {
      // No leading zeros ("010" is octal to some parsers), at most 3 digits.
      if ((digits === 1 && octet === 0) || digits === 3) return false;
      octet = octet * 10 + (c - 48);
      digits++;
    } else if (c === 46) {
      if (digits === 0 || octet > 255 || part > 3) return false;
      out[off + part++] = octet;
      octet = 0;
      digits = 0;
    } else {
      return false;
    }
  }
  return part === 4;
}

function hexGroups(part: string, into: number[]): boolean {
  if (part === '') return true;
  let value = 0;
  let digits = 0;
  for (let i = 0; i <= part.length; i++) {
    const c = i < part.length ? part.charCodeAt(i) : 58; // a virtual trailing ':'
    if (c === 58) {
      if (digits === 0) return false;
      into.push(value);
      value = 0;
      digits = 0;
      continue;
    }
    const d = c >= 48 && c <= 57 ? c - 48 : c >= 97 && c <= 102 ? c - 87 : c >= 65 && c <= 70 ? c - 55 : -1;
    if (d < 0 || ++digits > 4) return false;
    value = (value << 4) | d;
  }
  return true;
}

/** Writes the 16 bytes of IPv6 text (`::` and a dotted IPv4 tail allowed, no zone) at `out[off..off+16)`. */
export function parseIPv6Into(text: string, out: Uint8Array, off = 0): boolean {
  if (text.length < 2 || text.length > 45 || !text.includes(':')) return false;
  let body = text;
  const tail: number[] = [];
  if (text.includes('.')) {
    const lastColon = text.lastIndexOf(':');
    const v4 = new Uint8Array(4);
    if (!parseIPv4Into(text.slice(lastColon + 1), v4)) return false;
    tail.push(((v4[0] as number) << 8) | (v4[1] as number), ((v4[2] as number) << 8) | (v4[3] as number));
    const head = text.slice(0, lastColon + 1);
    // "::ffff:1.2.3.4" → "::ffff"; "::1.2.3.4" → "::"
    body = head.endsWith('::') ? head : head.slice(0, -1);
  }
  const dbl = body.indexOf('::');
  if (dbl !== body.lastIndexOf('::')) return false;
  const groups: number[] = [];
  if (dbl >= 0) {
    const head: number[] = [];
    const rest: number[] = [];
    if (!hexGroups(body.slice(0, dbl), head) || !hexGroups(body.slice(dbl + 2), rest)) return false;
    const fill = 8 - head.length - rest.length - tail.length;
    if (fill < 1) return false;
    groups.push(...head, ...new Array<number>(fill).fill(0), ...rest, ...tail);
  } else {
    if (!hexGroups(body, groups)) return false;
    groups.push(...tail);
  }
  if (groups.length !== 8) return false;
  for (let i = 0; i < 8; i++) {
    const g = groups[i] as number;
    out[off + i * 2] = g >> 8;
    out[off + i * 2 + 1] = g & 0xff;
  }
  return true;
}

/** Parses an address literal; undefined when it is not one. */
export function tryParseIp(text: string): IpAddr | undefined {
  const v4 = Buffer.allocUnsafe(4);
  if (parseIPv4Into(text, v4)) return { family: 4, bytes: v4 };
  const v6 = Buffer.allocUnsafe(16);
  if (parseIPv6Into(text, v6)) return { family: 6, bytes: v6 };
  return undefined;
}

/** The family of an address literal, or undefined when `text` is not one. */
export function ipFamily(text: unknown): IpFamily | undefined {
  return typeof text === 'string' ? tryParseIp(text)?.family : undefined;
}

/** True for an IPv4 or IPv6 address literal (no prefix, no zone). */
export function isIp(text: unknown): text is string {
  return ipFamily(text) !== undefined;
}

/** Parses an address literal or throws (through `fail`, default {@link IpSyntaxError}). */
export function parseIp(text: unknown, fail: IpFailure = defaultFailure): IpAddr {
  if (typeof text !== 'string') throw fail({ code: 'not-a-string' }, text);
  const ip = tryParseIp(text);
  if (!ip) throw fail({ code: 'bad-address' }, text);
  return ip;
}

/** How {@link parsePrefix} treats its input. */
export interface PrefixOptions {
  /** A bare address means a host prefix (/32, /128). Default true; false refuses it. */
  readonly allowBare?: boolean;
  /**
   * What to do with bits set past the prefix length: `keep` them (the kernel masks where it should),
   * `clear` them (canonical form), or `reject` the input naming the masked form. Default `keep`.
   */
  readonly hostBits?: 'keep' | 'clear' | 'reject';
  /** Accept only this family. */
  readonly family?: IpFamily;
}

/** Parses `addr/len` (or a bare address) or throws (through `fail`, default {@link IpSyntaxError}). */
export function parsePrefix(text: unknown, options: PrefixOptions = {}, fail: IpFailure = defaultFailure): IpPrefix {
  if (typeof text !== 'string') throw fail({ code: 'not-a-string' }, text);
  const slash = text.indexOf('/');
  if (slash < 0 && options.allowBare === false) throw fail({ code: 'missing-prefix-length' }, text);
  const ip = tryParseIp(slash < 0 ? text : text.slice(0, slash));
  if (!ip) throw fail({ code: 'bad-address' }, text);
  if (options.family !== undefined && ip.family !== options.family)
    throw fail({ code: 'wrong-family', want: options.family }, text);
  const max = addressBits(ip.family);
  let prefixLen: number = max;
  if (slash >= 0) {
    const lenText = text.slice(slash + 1);
    prefixLen = parsePrefixLength(lenText);
    if (prefixLen < 0 || prefixLen > max) throw fail({ code: 'bad-prefix-length', max }, text);
  }
  const hostBits = options.hostBits ?? 'keep';
  if (hostBits !== 'keep' && hasHostBits(ip.bytes, prefixLen)) {
    const masked = maskBytes(ip.bytes, prefixLen);
    if (hostBits === 'reject') throw fail({ code: 'host-bits', suggestion: `${formatIp(masked)}/${prefixLen}` }, text);
    return { family: ip.family, bytes: masked, prefixLen };
  }
  return { family: ip.family, bytes: ip.bytes, prefixLen };
}

/** Parses `addr/len` (or a bare address); undefined when malformed. Same options as {@link parsePrefix}. */
export function tryParsePrefix(text: string, options: PrefixOptions = {}): IpPrefix | undefined {
  try {
    return parsePrefix(text, options, returnNothing);
  } catch (err) {
    if (err === NOTHING) return undefined;
    throw err;
  }
}
const NOTHING = new Error('not a prefix');
const returnNothing: IpFailure = () => NOTHING;

/**
 * The prefix length after the `/`: a decimal of 1..3 digits without leading zeros ("0".."999");
 * -1 otherwise. The caller checks it against {@link addressBits}. Allocation-free, for callers
 * that parse straight into their own buffers (with {@link parseIPv4Into}).
 */
export function parsePrefixLength(text: string): number {
  if (text.length < 1 || text.length > 3 || (text.length > 1 && text.charCodeAt(0) === 48)) return -1;
  let n = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c < 48 || c > 57) return -1;
    n = n * 10 + (c - 48);
  }
  return n;
}

// ---------------------------------------------------------------------------------------------
// Formatting

/** Formats 4 bytes as a dotted quad. */
export function formatIPv4(b: Uint8Array, off = 0): string {
  return `${b[off]}.${b[off + 1]}.${b[off + 2]}.${b[off + 3]}`;
}

/** Formats 16 bytes as RFC 5952 text: lowercase, the longest run (≥ 2) of zero groups as `::`. */
export function formatIPv6(b: Uint8Array, off = 0): string {
  const g: number[] = [];
  for (let i = 0; i < 8; i++) g.push(((b[off + i * 2] as number) << 8) | (b[off + i * 2 + 1] as number));
  let best = -1;
  let bestLen = 1;
  for (let i = 0; i < 8;) {
    if (g[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && g[j] === 0) j++;
    if (j - i > bestLen) {
      best = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = (xs: number[]) => xs.map((x) => x.toString(16)).join(':');
  if (best < 0) return hex(g);
  return `${hex(g.slice(0, best))}::${hex(g.slice(best + bestLen))}`;
}

/** Formats network-order bytes (4 or 16) as address text. */
export function formatIp(bytes: Uint8Array): string {
  if (bytes.length === 4) return formatIPv4(bytes);
  if (bytes.length === 16) return formatIPv6(bytes);
  throw new RangeError(`an IP address has 4 or 16 bytes, not ${bytes.length}`);
}

/** `addr/len` text of a prefix (host bits as they are; see {@link canonicalCidr}). */
export function formatPrefix(p: { readonly bytes: Uint8Array; readonly prefixLen: number }): string {
  return `${formatIp(p.bytes)}/${p.prefixLen}`;
}

/**
 * Canonical text of an address or prefix: host bits cleared, IPv6 in RFC 5952 form, a bare address
 * becomes a host prefix. Both sides of every desired-vs-kernel comparison go through this.
 */
export function canonicalCidr(text: unknown, fail: IpFailure = defaultFailure): string {
  return formatPrefix(parsePrefix(text, { hostBits: 'clear' }, fail));
}

/** Canonical text of an address literal (RFC 5952 for IPv6). */
export function canonicalIp(text: unknown, fail: IpFailure = defaultFailure): string {
  return formatIp(parseIp(text, fail).bytes);
}

// ---------------------------------------------------------------------------------------------
// Masks and numeric views

/** Zeroes every bit past `prefixLen` in `b[off, off+len)`, in place. */
export function maskInPlace(b: Uint8Array, prefixLen: number, off = 0, len = b.length - off): void {
  for (let i = 0; i < len; i++) {
    const keep = Math.max(0, Math.min(8, prefixLen - i * 8));
    b[off + i] = (b[off + i] as number) & ((0xff00 >> keep) & 0xff);
  }
}

/** A copy of `bytes` with every bit past `prefixLen` cleared (the network address). */
export function maskBytes(bytes: Uint8Array, prefixLen: number): Buffer {
  const out = Buffer.from(bytes);
  maskInPlace(out, prefixLen);
  return out;
}

/** True when any bit past `prefixLen` is set. */
export function hasHostBits(bytes: Uint8Array, prefixLen: number): boolean {
  for (let i = 0; i < bytes.length; i++) {
    const keep = prefixLen - i * 8;
    if (keep >= 8) continue;
    const b = bytes[i] as number;
    if (keep <= 0 ? b !== 0 : (b & (0xff >> keep)) !== 0) return true;
  }
  return false;
}

/** The address as an unsigned integer (for range arithmetic such as overlap checks). */
export function ipToBigInt(bytes: Uint8Array): bigint {
  let v = 0n;
  for (const b of bytes) v = (v << 8n) | BigInt(b);
  return v;
}

/** Inverse of {@link ipToBigInt}. */
export function bigIntToIp(family: IpFamily, value: bigint): Buffer {
  const n = family === 4 ? 4 : 16;
  const out = Buffer.alloc(n);
  let v = value;
  for (let i = n - 1; i >= 0; i--) {
    out[i] = Number(v & 0xffn);
    v >>= 8n;
  }
  return out;
}

/** True when `outer` contains `inner` (same family, shorter-or-equal prefix, same network bits). */
export function prefixContains(outer: IpPrefix, inner: IpPrefix): boolean {
  if (outer.family !== inner.family || outer.prefixLen > inner.prefixLen) return false;
  const a = maskBytes(outer.bytes, outer.prefixLen);
  const b = maskBytes(inner.bytes, outer.prefixLen);
  return a.equals(b);
}

/** True when two prefixes share any address. */
export function prefixesOverlap(a: IpPrefix, b: IpPrefix): boolean {
  return prefixContains(a, b) || prefixContains(b, a);
}
