import { createHash, randomBytes } from 'node:crypto';
import type { AeadAlgorithmName, AuthAlgorithmName, CryptAlgorithmName } from 'node-xfrm-bindings';
import { IpsecConfigError, IpsecKeyFileError } from './errors.js';

/** Key indexes (the SPI generation carried in bits 12..15 of the mark) run 1..15 and wrap. */
export const MIN_KEY_INDEX = 1;
export const MAX_KEY_INDEX = 15;

/** The transform a key line selects. */
export type IpsecAlgorithm =
  | { readonly kind: 'aead'; readonly name: AeadAlgorithmName; readonly keyBytes: number; readonly icvBits: number }
  | {
      readonly kind: 'auth-enc';
      readonly auth: AuthAlgorithmName;
      readonly authKeyBytes: number;
      readonly enc: CryptAlgorithmName;
      readonly encKeyBytes: number;
    };

/** One parsed key line. `material` is secret: never log it. */
export interface IpsecKey {
  /** Key index 1..15 (Cilium's "SPI" field). */
  readonly spi: number;
  /** The line carried `+` (Cilium: per-tunnel keys). Veil always derives per-pair keys; kept for status. */
  readonly perTunnel: boolean;
  readonly algorithm: IpsecAlgorithm;
  /** AEAD key with its 4 salt bytes, or the auth key followed by the encryption key. */
  readonly material: Buffer;
  /** 1-based line in the file. */
  readonly line: number;
  /** First 16 hex digits of SHA-256(material): tells keys apart in status without revealing them. */
  readonly fingerprint: string;
}

interface AeadSpec {
  /** Accepted key lengths in bytes, salt included. */
  readonly keyBytes: readonly number[];
  readonly icvBits: readonly number[];
  readonly what: string;
}
// rfc4106: AES-128 or AES-256 key + 4-byte salt (FIPS-approved sizes; Cilium's keygen uses 20 bytes).
// rfc7539esp: 256-bit key + 4-byte salt; the kernel implements only the 16-byte tag.
const AEAD: Readonly<Record<string, AeadSpec>> = {
  'rfc4106(gcm(aes))': {
    keyBytes: [20, 36],
    icvBits: [64, 96, 128],
    what: '16 or 32 key bytes + 4 salt bytes (40 or 72 hex digits)',
  },
  'rfc7539esp(chacha20,poly1305)': { keyBytes: [36], icvBits: [128], what: '32 key bytes + 4 salt bytes (72 hex digits)' },
};
const AUTH: Readonly<Record<string, number>> = { 'hmac(sha256)': 32, 'hmac(sha384)': 48, 'hmac(sha512)': 64 };
const ENC: Readonly<Record<string, readonly number[]>> = { 'cbc(aes)': [16, 24, 32] };

function parseHex(path: string, line: number, field: string, text: string): Buffer {
  const hex = text.startsWith('0x') || text.startsWith('0X') ? text.slice(2) : text;
  if (hex.length === 0 || hex.length % 2 !== 0 || !/^[0-9a-fA-F]+$/.test(hex)) {
    throw new IpsecKeyFileError(path, line, field, 'must be an even number of hex digits (optionally prefixed 0x)');
  }
  return Buffer.from(hex, 'hex');
}

function fingerprint(material: Buffer): string {
  return createHash('sha256').update(material).digest('hex').slice(0, 16);
}

/** Parses one non-empty, non-comment line. */
export function parseKeyLine(text: string, line = 1, path = '<key>'): IpsecKey {
  const tok = text.trim().split(/\s+/);
  let spi = MIN_KEY_INDEX;
  let perTunnel = false;
  // Cilium: the SPI is optional; a leading number (with an optional '+') is the SPI.
  const m = /^(\d+)(\+?)$/.exec(tok[0] ?? '');
  if (m) {
    spi = Number(m[1]);
    perTunnel = m[2] === '+';
    tok.shift();
    if (!Number.isInteger(spi) || spi < MIN_KEY_INDEX || spi > MAX_KEY_INDEX) {
      throw new IpsecKeyFileError(path, line, 'spi', `must be ${MIN_KEY_INDEX}..${MAX_KEY_INDEX} (got ${m[1]})`);
    }
  } else if (/^[\d+-]/.test(tok[0] ?? '')) {
    throw new IpsecKeyFileError(
      path,
      line,
      'spi',
      `must be a number ${MIN_KEY_INDEX}..${MAX_KEY_INDEX}, optionally followed by '+'`,
    );
  }
  const algo = tok[0] ?? '';
  const aead = Object.hasOwn(AEAD, algo) ? AEAD[algo] : undefined;
  if (aead) {
    if (tok.length !== 3) {
      throw new IpsecKeyFileError(
        path,
        line,
        'line',
        `an AEAD line is '[spi][+] ${algo} <key-hex> <icv-bits>' (got ${tok.length} fields after the SPI)`,
      );
    }
    const key = parseHex(path, line, 'aead-key', tok[1]!);
    if (!aead.keyBytes.includes(key.length)) {
      throw new IpsecKeyFileError(path, line, 'aead-key', `${algo} needs ${aead.what}; got ${key.length} bytes`);
    }
    const icvText = tok[2]!;
    const icv = /^\d+$/.test(icvText) ? Number(icvText) : NaN;
    if (!aead.icvBits.includes(icv)) {
      throw new IpsecKeyFileError(path, line, 'icv-bits', `${algo} supports ${aead.icvBits.join(', ')} (got ${icvText})`);
    }
    return {
      spi,
      perTunnel,
      algorithm: { kind: 'aead', name: algo as AeadAlgorithmName, keyBytes: key.length, icvBits: icv },
      material: key,
      line,
      fingerprint: fingerprint(key),
    };
  }
  const authBytes = Object.hasOwn(AUTH, algo) ? AUTH[algo] : undefined;
  if (authBytes !== undefined) {
    if (tok.length !== 4) {
      throw new IpsecKeyFileError(
        path,
        line,
        'line',
        `an auth+enc line is '[spi][+] ${algo} <auth-key-hex> <enc-algo> <enc-key-hex>' (got ${tok.length} fields after the SPI)`,
      );
    }
    const authKey = parseHex(path, line, 'auth-key', tok[1]!);
    if (authKey.length !== authBytes)
      throw new IpsecKeyFileError(path, line, 'auth-key', `${algo} needs ${authBytes} bytes; got ${authKey.length}`);
    const enc = tok[2]!;
    const encSizes = Object.hasOwn(ENC, enc) ? ENC[enc] : undefined;
    if (!encSizes)
      throw new IpsecKeyFileError(
        path,
        line,
        'enc-algo',
        `unsupported ${JSON.stringify(enc)}; use one of ${Object.keys(ENC).join(', ')}`,
      );
    const encKey = parseHex(path, line, 'enc-key', tok[3]!);
    if (!encSizes.includes(encKey.length))
      throw new IpsecKeyFileError(path, line, 'enc-key', `${enc} needs ${encSizes.join('/')} bytes; got ${encKey.length}`);
    const material = Buffer.concat([authKey, encKey]);
    return {
      spi,
      perTunnel,
      algorithm: {
        kind: 'auth-enc',
        auth: algo as AuthAlgorithmName,
        authKeyBytes: authKey.length,
        enc: enc as CryptAlgorithmName,
        encKeyBytes: encKey.length,
      },
      material,
      line,
      fingerprint: fingerprint(material),
    };
  }
  const known = [...Object.keys(AEAD), ...Object.keys(AUTH)].join(', ');
  throw new IpsecKeyFileError(path, line, 'algorithm', `unsupported ${JSON.stringify(algo)}; use one of ${known}`);
}

/**
 * Parses a key file in Cilium's format: one key line, `[spi][+] aead-algo aead-key icv-bits` or
 * `[spi][+] auth-algo auth-key enc-algo enc-key`. Blank lines and `#` comments are ignored.
 * A rotation replaces the line with the next SPI; two key lines are refused (which one is meant
 * would be a guess).
 */
export function parseKeyFile(text: string, path = '<key>'): IpsecKey {
  let found: IpsecKey | undefined;
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const raw = lines[i]!.trim();
    if (raw === '' || raw.startsWith('#')) continue;
    const key = parseKeyLine(raw, i + 1, path);
    if (found)
      throw new IpsecKeyFileError(path, i + 1, 'line', `a second key line (the first is line ${found.line}); keep exactly one`);
    found = key;
  }
  if (!found) throw new IpsecKeyFileError(path, 0, 'file', 'no key line');
  return found;
}

/** The key index after `spi`: 1..15, wrapping. */
export function nextKeyIndex(spi: number): number {
  return spi >= MAX_KEY_INDEX ? MIN_KEY_INDEX : spi + 1;
}

export type KeygenAlgorithm = 'gcm-128' | 'gcm-256' | 'chacha20-poly1305';

/**
 * A fresh key line for a Secret: `veil ipsec keygen` prints it. Default: index 1,
 * `rfc4106(gcm(aes))` with a 128-bit key + salt, 128-bit ICV, per-tunnel (`+`).
 */
export function keygen(opts: { spi?: number; algorithm?: KeygenAlgorithm } = {}): string {
  const spi = opts.spi ?? MIN_KEY_INDEX;
  if (!Number.isInteger(spi) || spi < MIN_KEY_INDEX || spi > MAX_KEY_INDEX) {
    throw new IpsecConfigError('spi', `must be ${MIN_KEY_INDEX}..${MAX_KEY_INDEX} (got ${String(spi)})`);
  }
  const algorithm = opts.algorithm ?? 'gcm-128';
  switch (algorithm) {
    case 'gcm-128':
      return `${spi}+ rfc4106(gcm(aes)) ${randomBytes(20).toString('hex')} 128`;
    case 'gcm-256':
      return `${spi}+ rfc4106(gcm(aes)) ${randomBytes(36).toString('hex')} 128`;
    case 'chacha20-poly1305':
      return `${spi}+ rfc7539esp(chacha20,poly1305) ${randomBytes(36).toString('hex')} 128`;
    default:
      throw new IpsecConfigError('algorithm', `must be gcm-128, gcm-256 or chacha20-poly1305 (got ${String(algorithm)})`);
  }
}
