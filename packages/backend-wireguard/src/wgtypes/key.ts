import { createPrivateKey, createPublicKey, randomBytes, timingSafeEqual } from 'node:crypto';
// Errors stay @veil/netlink's NetlinkValidationError, as before the move, so callers that catch it
// keep working.
import { NetlinkValidationError } from '@veil/netlink';

/** Length of every WireGuard key (Curve25519 private/public keys and preshared keys). */
export const WG_KEY_LEN = 32;

// PKCS#8 wrapping of a raw X25519 private key: SEQUENCE { INTEGER 0, SEQUENCE { OID 1.3.101.110 },
// OCTET STRING { OCTET STRING (32 bytes) } }. node:crypto only takes private keys in a container.
const X25519_PKCS8_PREFIX = Buffer.from('302e020100300506032b656e04220420', 'hex');

/**
 * A 32-byte WireGuard key: a Curve25519 private key, a public key or a preshared key.
 * Immutable; `toString()` gives the base64 form `wg` prints (hex is what the UAPI socket uses).
 */
export class Key {
  private readonly raw: Buffer;

  private constructor(raw: Buffer) {
    this.raw = raw;
  }

  /** Wraps 32 raw bytes (copied). */
  static fromBytes(bytes: Uint8Array, field = 'key'): Key {
    if (!(bytes instanceof Uint8Array) || bytes.length !== WG_KEY_LEN) {
      throw new NetlinkValidationError(
        field,
        `must be ${WG_KEY_LEN} bytes`,
        bytes instanceof Uint8Array ? `${bytes.length} bytes` : typeof bytes,
      );
    }
    return new Key(Buffer.from(bytes));
  }

  /** Parses base64 (44 characters, as `wg genkey` prints) or hex (64 characters, as the UAPI uses). */
  static parse(text: string, field = 'key'): Key {
    if (typeof text !== 'string') throw new NetlinkValidationError(field, 'must be a base64 or hex string', typeof text);
    const s = text.trim();
    if (/^[0-9a-fA-F]{64}$/.test(s)) return new Key(Buffer.from(s, 'hex'));
    if (/^[A-Za-z0-9+/]{43}=$/.test(s)) {
      const raw = Buffer.from(s, 'base64');
      // Reject non-canonical encodings (unused low bits set), as wg does.
      if (raw.length === WG_KEY_LEN && raw.toString('base64') === s) return new Key(raw);
    }
    throw new NetlinkValidationError(field, 'must be 32 bytes as base64 (44 chars) or hex (64 chars)', text);
  }

  /** Parses base64 only. */
  static fromBase64(text: string, field = 'key'): Key {
    if (typeof text !== 'string' || text.trim().length !== 44)
      throw new NetlinkValidationError(field, 'must be 44 base64 characters', text);
    return Key.parse(text, field);
  }

  /** Parses hex only. */
  static fromHex(text: string, field = 'key'): Key {
    if (typeof text !== 'string' || text.trim().length !== 64)
      throw new NetlinkValidationError(field, 'must be 64 hex characters', text);
    return Key.parse(text, field);
  }

  /** A new random Curve25519 private key, clamped the way `wg genkey` clamps it. */
  static generatePrivate(): Key {
    const raw = randomBytes(WG_KEY_LEN);
    raw[0] = (raw[0] as number) & 248;
    raw[31] = ((raw[31] as number) & 127) | 64;
    return new Key(raw);
  }

  /** A new random preshared key (`wg genpsk`). */
  static generatePreshared(): Key {
    return new Key(randomBytes(WG_KEY_LEN));
  }

  /** The all-zero key; as a private or preshared key in a configuration it clears the key. */
  static zero(): Key {
    return new Key(Buffer.alloc(WG_KEY_LEN));
  }

  /** Treating this key as a private key, derives its public key (X25519 with the base point, `wg pubkey`). */
  publicKey(): Key {
    const priv = createPrivateKey({ key: Buffer.concat([X25519_PKCS8_PREFIX, this.raw]), format: 'der', type: 'pkcs8' });
    const jwk = createPublicKey(priv).export({ format: 'jwk' });
    return new Key(Buffer.from(jwk.x as string, 'base64url'));
  }

  /** A copy of the 32 bytes. */
  bytes(): Buffer {
    return Buffer.from(this.raw);
  }

  /** Writes the 32 bytes into `target` at `offset` (encoders use it to avoid a copy per key). */
  copyTo(target: Buffer, offset: number): void {
    target.set(this.raw, offset);
  }

  isZero(): boolean {
    return this.raw.every((b) => b === 0);
  }

  /** Constant-time comparison. */
  equals(other: Key): boolean {
    return other instanceof Key && timingSafeEqual(this.raw, other.raw);
  }

  toBase64(): string {
    return this.raw.toString('base64');
  }

  toHex(): string {
    return this.raw.toString('hex');
  }

  /** Base64, like `wg show`. */
  toString(): string {
    return this.toBase64();
  }

  toJSON(): string {
    return this.toBase64();
  }
}
