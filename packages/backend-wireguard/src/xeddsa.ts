import { createHash, createPublicKey, randomBytes, verify } from 'node:crypto';
import { Key } from './wgtypes/key.js';

/*
 * XEdDSA (Signal's specification, https://signal.org/docs/specifications/xeddsa/): Ed25519
 * signatures made with an X25519 (WireGuard) private key and checked against the X25519 public key.
 * A node signs its new key with its previous one when it rotates, so its peers can tell a rotation
 * from a key someone else wrote on the Node object without waiting for a handshake (issue 12).
 * Signing is rare (one per rotation) and uses plain BigInt arithmetic; verification is node's own
 * Ed25519 on the converted public key.
 */

const P = 2n ** 255n - 19n;
const Q = 2n ** 252n + 27742317777372353535851937790883648493n;
const mod = (a: bigint, m = P): bigint => ((a % m) + m) % m;

function pow(b: bigint, e: bigint): bigint {
  let r = 1n;
  let x = mod(b);
  while (e > 0n) {
    if (e & 1n) r = (r * x) % P;
    x = (x * x) % P;
    e >>= 1n;
  }
  return r;
}
const inv = (a: bigint): bigint => pow(a, P - 2n);
const D = mod(-121665n * inv(121666n));

/** Extended twisted Edwards coordinates (X:Y:Z:T), x = X/Z, y = Y/Z, xy = T/Z. */
type Point = [bigint, bigint, bigint, bigint];
const BASE_Y = mod(4n * inv(5n));
const BASE_X = ((): bigint => {
  // x² = (y² − 1) / (d·y² + 1); the base point's x is the even root.
  const y2 = (BASE_Y * BASE_Y) % P;
  const x2 = mod((y2 - 1n) * inv(D * y2 + 1n));
  let x = pow(x2, (P + 3n) / 8n);
  if (mod(x * x - x2) !== 0n) x = (x * pow(2n, (P - 1n) / 4n)) % P;
  return x % 2n === 0n ? x : P - x;
})();
const BASE: Point = [BASE_X, BASE_Y, 1n, (BASE_X * BASE_Y) % P];

function add(p: Point, q: Point): Point {
  const [x1, y1, z1, t1] = p;
  const [x2, y2, z2, t2] = q;
  const a = mod((y1 - x1) * (y2 - x2));
  const b = mod((y1 + x1) * (y2 + x2));
  const c = mod(2n * D * t1 * t2);
  const d = mod(2n * z1 * z2);
  const e = b - a;
  const f = d - c;
  const g = d + c;
  const h = b + a;
  return [mod(e * f), mod(g * h), mod(f * g), mod(e * h)];
}

function mul(k: bigint, p: Point): Point {
  let r: Point = [0n, 1n, 1n, 0n];
  let x = p;
  while (k > 0n) {
    if (k & 1n) r = add(r, x);
    x = add(x, x);
    k >>= 1n;
  }
  return r;
}

const le = (b: Uint8Array): bigint => BigInt(`0x${Buffer.from(b).reverse().toString('hex') || '0'}`);
function toLe(n: bigint, len = 32): Buffer {
  return Buffer.from(n.toString(16).padStart(len * 2, '0'), 'hex').reverse();
}

/** Encodes a point (y, with the sign of x in the top bit). */
function encode(p: Point): { bytes: Buffer; sign: number } {
  const zi = inv(p[2]);
  const x = (p[0] * zi) % P;
  const y = (p[1] * zi) % P;
  const bytes = toLe(y);
  const sign = Number(x & 1n);
  bytes[31] = (bytes[31] as number) | (sign << 7);
  return { bytes, sign };
}

const sha512 = (...parts: Uint8Array[]): bigint => {
  const h = createHash('sha512');
  for (const p of parts) h.update(p);
  return mod(le(h.digest()), Q);
};

/** Signs `message` with a WireGuard private key (XEdDSA). Returns the 64-byte signature. */
export function xeddsaSign(privateKey: Key, message: Uint8Array): Buffer {
  const kb = Buffer.from(privateKey.bytes());
  kb[0] = (kb[0] as number) & 248; // X25519 clamping: the scalar the public key was made with
  kb[31] = ((kb[31] as number) & 127) | 64;
  const k = le(kb);
  const e = encode(mul(k, BASE));
  // calculate_key_pair: the Edwards public key with sign bit 0, and the matching private scalar.
  const a = e.sign === 1 ? mod(-k, Q) : mod(k, Q);
  const A = Buffer.from(e.bytes);
  A[31] = (A[31] as number) & 127;
  const aBytes = toLe(a);
  const hash1Prefix = Buffer.alloc(32, 0xff);
  hash1Prefix[0] = 0xfe;
  const r = sha512(hash1Prefix, aBytes, message, randomBytes(64));
  const R = encode(mul(r, BASE)).bytes;
  const h = sha512(R, A, message);
  const s = mod(r + h * a, Q);
  return Buffer.concat([R, toLe(s)]);
}

/** Whether `signature` is an XEdDSA signature of `message` by the holder of `publicKey`. */
export function xeddsaVerify(publicKey: Key, message: Uint8Array, signature: Uint8Array): boolean {
  if (signature.length !== 64) return false;
  const u = le(publicKey.bytes()) & ((1n << 255n) - 1n);
  if (u >= P || mod(u + 1n) === 0n) return false;
  // The birational map Montgomery u → Edwards y, sign bit 0 (as the signer chose its scalar).
  const y = mod((u - 1n) * inv(u + 1n));
  const ed = toLe(y);
  try {
    const key = createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: ed.toString('base64url') }, format: 'jwk' });
    return verify(null, message, key, signature);
  } catch {
    return false; // y is not on the curve
  }
}
