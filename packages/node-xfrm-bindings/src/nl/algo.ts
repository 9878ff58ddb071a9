import { XfrmDecodeError } from '../errors.js';
import { u32, viewOf } from './struct.js';

/** alg_name is a fixed char[64], NUL-terminated. */
export const XFRM_ALG_NAME_LEN = 64;

/**
 * struct xfrm_algo (68 bytes + key): XFRMA_ALG_CRYPT (and XFRMA_ALG_AUTH, XFRMA_ALG_COMP).
 *
 *   struct xfrm_algo {
 *       char         alg_name[64];  //  0  64
 *       unsigned int alg_key_len;   // 64   4  in bits
 *       char         alg_key[];     // 68      ceil(alg_key_len / 8) bytes
 *   };                              // sizeof = 68
 */
export interface XfrmAlgoWire {
  name: string;
  key: Uint8Array;
  /** In bits; normally key.byteLength * 8. */
  keyLenBits: number;
}
export const XFRM_ALGO_SIZE = 68;

/**
 * struct xfrm_algo_auth (72 bytes + key): XFRMA_ALG_AUTH_TRUNC.
 *
 *   struct xfrm_algo_auth {
 *       char         alg_name[64];   //  0  64
 *       unsigned int alg_key_len;    // 64   4  in bits
 *       unsigned int alg_trunc_len;  // 68   4  in bits
 *       char         alg_key[];      // 72
 *   };                               // sizeof = 72
 */
export interface XfrmAlgoAuthWire extends XfrmAlgoWire {
  truncLenBits: number;
}
export const XFRM_ALGO_AUTH_SIZE = 72;

/**
 * struct xfrm_algo_aead (72 bytes + key): XFRMA_ALG_AEAD. For rfc4106/rfc7539esp the key
 * includes the 4-byte salt at its end.
 *
 *   struct xfrm_algo_aead {
 *       char         alg_name[64];  //  0  64
 *       unsigned int alg_key_len;   // 64   4  in bits
 *       unsigned int alg_icv_len;   // 68   4  in bits
 *       char         alg_key[];     // 72
 *   };                              // sizeof = 72
 */
export interface XfrmAlgoAeadWire extends XfrmAlgoWire {
  icvLenBits: number;
}
export const XFRM_ALGO_AEAD_SIZE = 72;

const ascii = new TextEncoder();

function writeName(out: Uint8Array, what: string, name: string): void {
  const b = ascii.encode(name);
  // The kernel forces the last byte to NUL, so 63 usable characters.
  if (b.byteLength >= XFRM_ALG_NAME_LEN) throw new RangeError(`${what} name longer than 63 bytes`);
  out.set(b, 0);
}

function readName(bytes: Uint8Array): string {
  const field = bytes.subarray(0, XFRM_ALG_NAME_LEN);
  const nul = field.indexOf(0);
  return Buffer.from(field.subarray(0, nul < 0 ? XFRM_ALG_NAME_LEN : nul)).toString('latin1');
}

function encodeWith(headerSize: number, a: XfrmAlgoWire, extra?: number): Uint8Array {
  const out = new Uint8Array(headerSize + a.key.byteLength);
  writeName(out, 'algorithm', a.name);
  const v = viewOf(out);
  u32.set(v, 64, a.keyLenBits);
  if (extra !== undefined) u32.set(v, 68, extra);
  out.set(a.key, headerSize);
  return out;
}

function decodeWith(
  what: string,
  headerSize: number,
  bytes: Uint8Array,
): { name: string; key: Uint8Array; keyLenBits: number; extra: number } {
  if (bytes.byteLength < headerSize)
    throw new XfrmDecodeError(what, `need at least ${headerSize} bytes, got ${bytes.byteLength}`);
  const v = viewOf(bytes);
  const keyLenBits = u32.get(v, 64);
  const keyBytes = Math.ceil(keyLenBits / 8);
  if (bytes.byteLength < headerSize + keyBytes) {
    throw new XfrmDecodeError(what, `key of ${keyLenBits} bits needs ${headerSize + keyBytes} bytes, got ${bytes.byteLength}`);
  }
  return {
    name: readName(bytes),
    keyLenBits,
    // A plain Uint8Array copy: never a view into (or a Buffer of) the receive buffer.
    key: new Uint8Array(bytes.subarray(headerSize, headerSize + keyBytes)),
    extra: headerSize > 68 ? u32.get(v, 68) : 0,
  };
}

export function encodeXfrmAlgo(a: XfrmAlgoWire): Uint8Array {
  return encodeWith(XFRM_ALGO_SIZE, a);
}
export function decodeXfrmAlgo(bytes: Uint8Array): XfrmAlgoWire {
  const { name, key, keyLenBits } = decodeWith('xfrm_algo', XFRM_ALGO_SIZE, bytes);
  return { name, key, keyLenBits };
}

export function encodeXfrmAlgoAuth(a: XfrmAlgoAuthWire): Uint8Array {
  return encodeWith(XFRM_ALGO_AUTH_SIZE, a, a.truncLenBits);
}
export function decodeXfrmAlgoAuth(bytes: Uint8Array): XfrmAlgoAuthWire {
  const { name, key, keyLenBits, extra } = decodeWith('xfrm_algo_auth', XFRM_ALGO_AUTH_SIZE, bytes);
  return { name, key, keyLenBits, truncLenBits: extra };
}

export function encodeXfrmAlgoAead(a: XfrmAlgoAeadWire): Uint8Array {
  return encodeWith(XFRM_ALGO_AEAD_SIZE, a, a.icvLenBits);
}
export function decodeXfrmAlgoAead(bytes: Uint8Array): XfrmAlgoAeadWire {
  const { name, key, keyLenBits, extra } = decodeWith('xfrm_algo_aead', XFRM_ALGO_AEAD_SIZE, bytes);
  return { name, key, keyLenBits, icvLenBits: extra };
}
