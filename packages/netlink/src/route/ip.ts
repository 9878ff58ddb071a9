import {
  type IpAddr,
  type IpFailure,
  type IpFamily,
  type IpPrefix,
  formatIp as formatAddress,
  maskBytes,
  parseIp as parseAddress,
  parsePrefix as parseAddressPrefix,
} from '@veil/ip';
import { NetlinkDecodeError, NetlinkValidationError } from '../errors.js';
import { AF_INET, AF_INET6 } from './constants.js';

// Addresses are parsed and formatted by @veil/ip; this file maps them to netlink's AF_* numbers
// and raises netlink's own NetlinkValidationError naming the request field.
export type { IpAddr, IpFamily, IpPrefix } from '@veil/ip';

export function afOf(family: IpFamily): number {
  return family === 4 ? AF_INET : AF_INET6;
}

export function familyOfAf(af: number): IpFamily | undefined {
  return af === AF_INET ? 4 : af === AF_INET6 ? 6 : undefined;
}

/** Parses an IPv4/IPv6 address literal. `field` names the argument in errors. */
export function parseIp(text: unknown, field: string): IpAddr {
  return parseAddress(text, (problem, input) =>
    problem.code === 'not-a-string'
      ? new NetlinkValidationError(field, 'must be an IP address string', input)
      : new NetlinkValidationError(field, 'is not an IPv4 or IPv6 address', input),
  );
}

/**
 * Parses "addr/len" (or a bare address, meaning a host prefix). Host bits are kept: the kernel
 * masks where it should. `field` names the argument.
 */
export function parsePrefix(text: unknown, field: string): IpPrefix {
  return parseAddressPrefix(text, {}, prefixFailure(field));
}

function prefixFailure(field: string): IpFailure {
  return (problem, input) => {
    switch (problem.code) {
      case 'not-a-string':
        return new NetlinkValidationError(field, 'must be a CIDR string like 10.0.0.1/24', input);
      case 'bad-prefix-length':
        return new NetlinkValidationError(field, `prefix length must be 0..${problem.max}`, input);
      default: {
        // The address part is what is wrong: show it alone.
        const text = String(input);
        const slash = text.indexOf('/');
        return new NetlinkValidationError(field, 'is not an IPv4 or IPv6 address', slash < 0 ? text : text.slice(0, slash));
      }
    }
  };
}

/** Formats network-order bytes (4 or 16) as text; IPv6 in RFC 5952 form. */
export function formatIp(bytes: Buffer): string {
  if (bytes.length !== 4 && bytes.length !== 16) throw new NetlinkDecodeError(`address of ${bytes.length} bytes`, 0);
  return formatAddress(bytes);
}

/** Zeroes the host bits of a prefix (for comparisons and route keys). */
export function networkOf(p: IpPrefix): Buffer {
  return maskBytes(p.bytes, p.prefixLen);
}
