import { describe, expect, it } from 'vitest';
import { IpsecConfigError, IpsecKeyFileError } from '../src/errors.js';
import { keygen, nextKeyIndex, parseKeyFile, parseKeyLine } from '../src/keyfile.js';

const GCM128 = 'a'.repeat(40);
const GCM256 = 'b'.repeat(72);
const CHACHA = 'c'.repeat(72);

function refusal(text: string): IpsecKeyFileError {
  try {
    parseKeyFile(text, '/etc/veil/ipsec/keys');
  } catch (e) {
    expect(e).toBeInstanceOf(IpsecKeyFileError);
    return e as IpsecKeyFileError;
  }
  throw new Error(`accepted: ${text}`);
}

describe('parseKeyFile: accepted forms', () => {
  it('AEAD rfc4106(gcm(aes)) 128-bit with + and SPI', () => {
    const k = parseKeyFile(`3+ rfc4106(gcm(aes)) ${GCM128} 128\n`);
    expect(k.spi).toBe(3);
    expect(k.perTunnel).toBe(true);
    expect(k.algorithm).toEqual({ kind: 'aead', name: 'rfc4106(gcm(aes))', keyBytes: 20, icvBits: 128 });
    expect(k.material).toEqual(Buffer.from(GCM128, 'hex'));
    expect(k.line).toBe(1);
    expect(k.fingerprint).toMatch(/^[0-9a-f]{16}$/);
  });
  it('AEAD gcm 256-bit, 0x prefix, ICV 64 and 96, no +', () => {
    for (const icv of [64, 96, 128]) {
      const k = parseKeyFile(`15 rfc4106(gcm(aes)) 0x${GCM256} ${icv}`);
      expect(k.spi).toBe(15);
      expect(k.perTunnel).toBe(false);
      expect(k.algorithm).toEqual({ kind: 'aead', name: 'rfc4106(gcm(aes))', keyBytes: 36, icvBits: icv });
    }
  });
  it('AEAD rfc7539esp(chacha20,poly1305)', () => {
    const k = parseKeyFile(`1+ rfc7539esp(chacha20,poly1305) ${CHACHA} 128`);
    expect(k.algorithm).toEqual({ kind: 'aead', name: 'rfc7539esp(chacha20,poly1305)', keyBytes: 36, icvBits: 128 });
  });
  it('the SPI is optional (defaults to 1, as in Cilium)', () => {
    const k = parseKeyFile(`rfc4106(gcm(aes)) ${GCM128} 128`);
    expect(k.spi).toBe(1);
    expect(k.perTunnel).toBe(false);
  });
  it('auth + enc form: hmac(sha256|sha384|sha512) with cbc(aes) 128/192/256', () => {
    for (const [auth, bytes] of [
      ['hmac(sha256)', 32],
      ['hmac(sha384)', 48],
      ['hmac(sha512)', 64],
    ] as const) {
      for (const encBytes of [16, 24, 32]) {
        const k = parseKeyFile(`2+ ${auth} ${'1'.repeat(bytes * 2)} cbc(aes) ${'2'.repeat(encBytes * 2)}`);
        expect(k.algorithm).toEqual({ kind: 'auth-enc', auth, authKeyBytes: bytes, enc: 'cbc(aes)', encKeyBytes: encBytes });
        expect(k.material.length).toBe(bytes + encBytes);
      }
    }
  });
  it('comments, blank lines and surrounding whitespace are ignored; line numbers count them', () => {
    const k = parseKeyFile(`# rotated 2026-01-01\n\n   4+   rfc4106(gcm(aes))\t${GCM128}   128  \n\n`);
    expect(k.spi).toBe(4);
    expect(k.line).toBe(3);
  });
  it('fingerprints differ by material, never contain it', () => {
    const a = parseKeyLine(`1 rfc4106(gcm(aes)) ${GCM128} 128`);
    const b = parseKeyLine(`1 rfc4106(gcm(aes)) ${'d'.repeat(40)} 128`);
    expect(a.fingerprint).not.toBe(b.fingerprint);
    expect(GCM128).not.toContain(a.fingerprint);
  });
});

describe('parseKeyFile: refused forms name the line and the field', () => {
  const cases: [string, string, number, string][] = [
    ['empty file', '', 0, 'file'],
    ['only comments', '# nothing\n\n', 0, 'file'],
    ['SPI 0', `0+ rfc4106(gcm(aes)) ${GCM128} 128`, 1, 'spi'],
    ['SPI 16', `16 rfc4106(gcm(aes)) ${GCM128} 128`, 1, 'spi'],
    ['negative SPI', `-1 rfc4106(gcm(aes)) ${GCM128} 128`, 1, 'spi'],
    ['SPI with junk', `3x rfc4106(gcm(aes)) ${GCM128} 128`, 1, 'spi'],
    ['unknown algorithm', `3 gcm(aes) ${GCM128} 128`, 1, 'algorithm'],
    ['cipher_null', `3 digest_null "" cipher_null ""`, 1, 'algorithm'],
    ['AES-192 GCM', `3 rfc4106(gcm(aes)) ${'a'.repeat(56)} 128`, 1, 'aead-key'],
    ['GCM key without salt', `3 rfc4106(gcm(aes)) ${'a'.repeat(32)} 128`, 1, 'aead-key'],
    ['odd hex', `3 rfc4106(gcm(aes)) ${'a'.repeat(39)} 128`, 1, 'aead-key'],
    ['non-hex key', `3 rfc4106(gcm(aes)) ${'g'.repeat(40)} 128`, 1, 'aead-key'],
    ['bare 0x key', `3 rfc4106(gcm(aes)) 0x 128`, 1, 'aead-key'],
    ['GCM ICV 32', `3 rfc4106(gcm(aes)) ${GCM128} 32`, 1, 'icv-bits'],
    ['ICV not a number', `3 rfc4106(gcm(aes)) ${GCM128} big`, 1, 'icv-bits'],
    ['ChaCha ICV 96', `3 rfc7539esp(chacha20,poly1305) ${CHACHA} 96`, 1, 'icv-bits'],
    ['ChaCha 128-bit key', `3 rfc7539esp(chacha20,poly1305) ${GCM128} 128`, 1, 'aead-key'],
    ['AEAD missing ICV', `3 rfc4106(gcm(aes)) ${GCM128}`, 1, 'line'],
    ['AEAD extra field', `3 rfc4106(gcm(aes)) ${GCM128} 128 10.0.0.1`, 1, 'line'],
    ['auth key length', `3 hmac(sha256) ${'1'.repeat(40)} cbc(aes) ${'2'.repeat(32)}`, 1, 'auth-key'],
    ['auth non-hex', `3 hmac(sha256) ${'z'.repeat(64)} cbc(aes) ${'2'.repeat(32)}`, 1, 'auth-key'],
    ['enc algorithm', `3 hmac(sha256) ${'1'.repeat(64)} cbc(des) ${'2'.repeat(32)}`, 1, 'enc-algo'],
    ['enc key length', `3 hmac(sha256) ${'1'.repeat(64)} cbc(aes) ${'2'.repeat(30)}`, 1, 'enc-key'],
    ['auth+enc missing field', `3 hmac(sha256) ${'1'.repeat(64)} cbc(aes)`, 1, 'line'],
    ['two key lines', `3 rfc4106(gcm(aes)) ${GCM128} 128\n# c\n4 rfc4106(gcm(aes)) ${GCM128} 128`, 3, 'line'],
    ['bad second line after a good one', `\n3 rfc4106(gcm(aes)) ${GCM128} 128\nnonsense`, 3, 'algorithm'],
  ];
  for (const [what, text, line, field] of cases) {
    it(`${what} → line ${line}, ${field}`, () => {
      const e = refusal(text);
      expect(e.line).toBe(line);
      expect(e.field).toBe(field);
      expect(e.path).toBe('/etc/veil/ipsec/keys');
      expect(e.message).toContain(field);
      if (line > 0) expect(e.message).toContain(`line ${line}`);
    });
  }
  it('never puts key bytes in the message', () => {
    const e = refusal(`3 rfc4106(gcm(aes)) ${'ab'.repeat(28)} 128`);
    expect(e.message).not.toContain('abab');
  });
});

describe('keygen', () => {
  it('produces lines the parser accepts, with fresh keys', () => {
    for (const algorithm of ['gcm-128', 'gcm-256', 'chacha20-poly1305'] as const) {
      const a = keygen({ spi: 7, algorithm });
      const b = keygen({ spi: 7, algorithm });
      expect(a).not.toBe(b);
      const k = parseKeyFile(a);
      expect(k.spi).toBe(7);
      expect(k.perTunnel).toBe(true);
      expect(k.algorithm.kind).toBe('aead');
    }
    const d = parseKeyFile(keygen());
    expect(d.spi).toBe(1);
    expect(d.algorithm).toEqual({ kind: 'aead', name: 'rfc4106(gcm(aes))', keyBytes: 20, icvBits: 128 });
  });
  it('refuses an SPI outside 1..15 and an unknown algorithm', () => {
    expect(() => keygen({ spi: 0 })).toThrow(IpsecConfigError);
    expect(() => keygen({ spi: 16 })).toThrow(IpsecConfigError);
    expect(() => keygen({ algorithm: 'des' as never })).toThrow(IpsecConfigError);
  });
  it('nextKeyIndex wraps 15 → 1', () => {
    expect(nextKeyIndex(1)).toBe(2);
    expect(nextKeyIndex(14)).toBe(15);
    expect(nextKeyIndex(15)).toBe(1);
  });
});
