import { ArgumentError } from './errors.js';

/** Parses dotted-quad IPv4 text into 4 network-order bytes; undefined when malformed. */
export function parseIPv4(s: string): Buffer | undefined {
  const out = Buffer.alloc(4);
  let part = 0;
  let n = 0;
  let digits = 0;
  for (let i = 0; i <= s.length; i++) {
    const c = i < s.length ? s.charCodeAt(i) : 46; // treat the end as a final '.'
    if (c === 46) {
      if (digits === 0 || part > 3) return undefined;
      out[part++] = n;
      n = 0;
      digits = 0;
    } else if (c >= 48 && c <= 57) {
      // No leading zeros (ambiguous octal), at most 3 digits, ≤ 255.
      if (digits > 0 && n === 0) return undefined;
      n = n * 10 + (c - 48);
      if (++digits > 3 || n > 255) return undefined;
    } else {
      return undefined;
    }
  }
  return part === 4 ? out : undefined;
}

/** Parses IPv6 text (with "::" and an optional dotted IPv4 tail) into 16 bytes; undefined when malformed. */
export function parseIPv6(s: string): Buffer | undefined {
  if (s.length === 0 || s.length > 45) return undefined;
  let text = s;
  const tail: number[] = [];
  const lastColon = text.lastIndexOf(':');
  if (text.includes('.')) {
    const v4 = lastColon < 0 ? undefined : parseIPv4(text.slice(lastColon + 1));
    if (!v4) return undefined;
    tail.push(v4.readUInt16BE(0), v4.readUInt16BE(2));
    const head = text.slice(0, lastColon + 1);
    // "::ffff:1.2.3.4" → "::ffff" ; "::1.2.3.4" → "::"
    text = head.endsWith('::') ? head : head.slice(0, -1);
  }
  const dbl = text.indexOf('::');
  if (dbl !== text.lastIndexOf('::')) return undefined;
  const groupsOf = (part: string): number[] | undefined => {
    if (part === '') return [];
    const out: number[] = [];
    for (const g of part.split(':')) {
      if (!/^[0-9a-fA-F]{1,4}$/.test(g)) return undefined;
      out.push(parseInt(g, 16));
    }
    return out;
  };
  let groups: number[];
  if (dbl >= 0) {
    const head = groupsOf(text.slice(0, dbl));
    const rest = groupsOf(text.slice(dbl + 2));
    if (!head || !rest) return undefined;
    const fill = 8 - head.length - rest.length - tail.length;
    if (fill < 1) return undefined;
    groups = [...head, ...new Array<number>(fill).fill(0), ...rest, ...tail];
  } else {
    const all = groupsOf(text);
    if (!all) return undefined;
    groups = [...all, ...tail];
  }
  if (groups.length !== 8) return undefined;
  const out = Buffer.alloc(16);
  groups.forEach((g, i) => out.writeUInt16BE(g, i * 2));
  return out;
}

/** Formats 4 bytes as dotted quad. */
export function formatIPv4(b: Buffer, off = 0): string {
  return `${b[off]}.${b[off + 1]}.${b[off + 2]}.${b[off + 3]}`;
}

/** Formats 16 bytes as RFC 5952 text (lowercase, longest run of ≥2 zero groups as "::"). */
export function formatIPv6(b: Buffer, off = 0): string {
  const g: number[] = [];
  for (let i = 0; i < 8; i++) g.push(b.readUInt16BE(off + i * 2));
  let bestStart = -1;
  let bestLen = 0;
  for (let i = 0; i < 8; ) {
    if (g[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && g[j] === 0) j++;
    if (j - i > bestLen) {
      bestStart = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = (xs: number[]) => xs.map((x) => x.toString(16)).join(':');
  if (bestLen < 2) return hex(g);
  return `${hex(g.slice(0, bestStart))}::${hex(g.slice(bestStart + bestLen))}`;
}

/** An IP prefix: address text plus prefix length in bits. */
export interface IpPrefix {
  addr: string;
  prefixLen: number;
}

/**
 * Parses "10.0.0.0/24", "fd00::/64", or a bare address (a host prefix /32 or /128).
 * `family` restricts the accepted family. Throws ArgumentError naming `field`.
 */
export function parsePrefix(s: string, family?: 4 | 6, field = 'prefix'): IpPrefix {
  if (typeof s !== 'string') throw new ArgumentError(field, `needs a string like "10.0.0.0/24", got ${typeof s}`);
  const slash = s.indexOf('/');
  const addr = slash >= 0 ? s.slice(0, slash) : s;
  const fam = parseIPv4(addr) ? 4 : parseIPv6(addr) ? 6 : undefined;
  if (fam === undefined) throw new ArgumentError(field, `'${s}' is not an IP address or prefix`);
  if (family !== undefined && fam !== family) throw new ArgumentError(field, `'${s}' is not an IPv${family} prefix`);
  const bits = fam === 4 ? 32 : 128;
  let prefixLen = bits;
  if (slash >= 0) {
    const p = s.slice(slash + 1);
    if (!/^(0|[1-9][0-9]{0,2})$/.test(p) || Number(p) > bits) {
      throw new ArgumentError(field, `'${s}' has a bad prefix length (0..${bits})`);
    }
    prefixLen = Number(p);
  }
  return { addr, prefixLen };
}

/** Zeroes every bit past `prefixLen` in `b[off, off+len)`. */
export function maskBits(b: Buffer, off: number, len: number, prefixLen: number): void {
  for (let i = 0; i < len; i++) {
    const keep = Math.max(0, Math.min(8, prefixLen - i * 8));
    b[off + i] = (b[off + i] as number) & ((0xff00 >> keep) & 0xff);
  }
}
