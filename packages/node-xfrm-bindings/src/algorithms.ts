import { XfrmValidationError } from './errors.js';

/** AEAD algorithms (XFRMA_ALG_AEAD), named as the kernel crypto API names them. */
export type AeadAlgorithmName = 'rfc4106(gcm(aes))' | 'rfc7539esp(chacha20,poly1305)';
/** Authentication algorithms (XFRMA_ALG_AUTH_TRUNC). */
export type AuthAlgorithmName = 'hmac(sha256)' | 'hmac(sha384)' | 'hmac(sha512)';
/** Encryption algorithms (XFRMA_ALG_CRYPT). */
export type CryptAlgorithmName = 'cbc(aes)';

/** An AEAD transform: `ip xfrm state ... aead NAME KEY ICV_BITS`. */
export interface XfrmAead {
  name: AeadAlgorithmName;
  /** Cipher key followed by the 4-byte salt (RFC 4106 / RFC 7634). */
  key: Uint8Array;
  /** ICV (tag) length in bits: 64, 96 or 128 for GCM; 128 for ChaCha20-Poly1305. */
  icvLen: number;
}

/** An authentication transform: `ip xfrm state ... auth-trunc NAME KEY TRUNC_BITS`. */
export interface XfrmAuth {
  name: AuthAlgorithmName;
  key: Uint8Array;
  /** Truncated ICV length in bits (multiple of 8, 96 up to the hash size). Default: half the hash size (RFC 4868). */
  truncLen?: number;
}

/** An encryption transform: `ip xfrm state ... enc NAME KEY`. */
export interface XfrmCrypt {
  name: CryptAlgorithmName;
  key: Uint8Array;
}

interface AeadSpec {
  keyBytes: readonly number[];
  icvBits: readonly number[];
}
const AEAD: Record<AeadAlgorithmName, AeadSpec> = {
  // AES-128/192/256 key + 4-byte salt.
  'rfc4106(gcm(aes))': { keyBytes: [20, 28, 36], icvBits: [64, 96, 128] },
  // 256-bit key + 4-byte salt; the kernel only implements the 16-byte tag.
  'rfc7539esp(chacha20,poly1305)': { keyBytes: [36], icvBits: [128] },
};
const AUTH: Record<AuthAlgorithmName, { keyBytes: number; hashBits: number }> = {
  'hmac(sha256)': { keyBytes: 32, hashBits: 256 },
  'hmac(sha384)': { keyBytes: 48, hashBits: 384 },
  'hmac(sha512)': { keyBytes: 64, hashBits: 512 },
};
const CRYPT: Record<CryptAlgorithmName, { keyBytes: readonly number[] }> = {
  'cbc(aes)': { keyBytes: [16, 24, 32] },
};

export const AEAD_ALGORITHMS = Object.keys(AEAD) as AeadAlgorithmName[];
export const AUTH_ALGORITHMS = Object.keys(AUTH) as AuthAlgorithmName[];
export const CRYPT_ALGORITHMS = Object.keys(CRYPT) as CryptAlgorithmName[];

function checkKey(field: string, key: unknown): Uint8Array {
  if (!(key instanceof Uint8Array)) throw new XfrmValidationError(field, 'must be a Uint8Array (or Buffer)');
  return key;
}

function checkObject(field: string, v: unknown): Record<string, unknown> {
  if (typeof v !== 'object' || v === null) throw new XfrmValidationError(field, 'must be an object');
  return v as Record<string, unknown>;
}

export function validateAead(field: string, a: unknown): XfrmAead {
  const o = checkObject(field, a);
  const spec = AEAD[o.name as AeadAlgorithmName];
  if (typeof o.name !== 'string' || !Object.hasOwn(AEAD, o.name) || !spec) {
    throw new XfrmValidationError(
      `${field}.name`,
      `unsupported AEAD ${JSON.stringify(o.name)}; use one of ${AEAD_ALGORITHMS.join(', ')}`,
    );
  }
  const key = checkKey(`${field}.key`, o.key);
  if (!spec.keyBytes.includes(key.byteLength)) {
    throw new XfrmValidationError(
      `${field}.key`,
      `${o.name} needs ${spec.keyBytes.join(' or ')} bytes (key + 4-byte salt), got ${key.byteLength}`,
    );
  }
  if (!spec.icvBits.includes(o.icvLen as number)) {
    throw new XfrmValidationError(
      `${field}.icvLen`,
      `${o.name} ICV length must be ${spec.icvBits.join(', ')} bits, got ${String(o.icvLen)}`,
    );
  }
  return { name: o.name as AeadAlgorithmName, key, icvLen: o.icvLen as number };
}

/** Returns the auth transform with `truncLen` filled in. */
export function validateAuth(field: string, a: unknown): Required<XfrmAuth> {
  const o = checkObject(field, a);
  const spec = AUTH[o.name as AuthAlgorithmName];
  if (typeof o.name !== 'string' || !Object.hasOwn(AUTH, o.name) || !spec) {
    throw new XfrmValidationError(
      `${field}.name`,
      `unsupported auth algorithm ${JSON.stringify(o.name)}; use one of ${AUTH_ALGORITHMS.join(', ')}`,
    );
  }
  const key = checkKey(`${field}.key`, o.key);
  if (key.byteLength !== spec.keyBytes) {
    throw new XfrmValidationError(`${field}.key`, `${o.name} needs a ${spec.keyBytes}-byte key, got ${key.byteLength}`);
  }
  const truncLen = o.truncLen === undefined ? spec.hashBits / 2 : o.truncLen;
  if (
    typeof truncLen !== 'number' ||
    !Number.isInteger(truncLen) ||
    truncLen % 8 !== 0 ||
    truncLen < 96 ||
    truncLen > spec.hashBits
  ) {
    throw new XfrmValidationError(
      `${field}.truncLen`,
      `must be a multiple of 8 between 96 and ${spec.hashBits} bits, got ${typeof truncLen === 'number' ? truncLen : typeof truncLen}`,
    );
  }
  return { name: o.name as AuthAlgorithmName, key, truncLen };
}

export function validateCrypt(field: string, a: unknown): XfrmCrypt {
  const o = checkObject(field, a);
  const spec = CRYPT[o.name as CryptAlgorithmName];
  if (typeof o.name !== 'string' || !Object.hasOwn(CRYPT, o.name) || !spec) {
    throw new XfrmValidationError(
      `${field}.name`,
      `unsupported cipher ${JSON.stringify(o.name)}; use one of ${CRYPT_ALGORITHMS.join(', ')}`,
    );
  }
  const key = checkKey(`${field}.key`, o.key);
  if (!spec.keyBytes.includes(key.byteLength)) {
    throw new XfrmValidationError(`${field}.key`, `${o.name} needs ${spec.keyBytes.join(', ')} bytes, got ${key.byteLength}`);
  }
  return { name: o.name as CryptAlgorithmName, key };
}
