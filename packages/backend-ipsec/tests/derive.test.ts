import { describe, expect, it } from 'vitest';
import { bootIdProblem, deriveDirectionalKey, xfrmTransform } from '../src/derive.js';
import { IpsecConfigError } from '../src/errors.js';
import { parseKeyLine } from '../src/keyfile.js';

const A = { ip: '192.168.10.1', bootId: '0b1e5c1d-3f0a-4c7e-9d2b-6a5f4e3d2c1b', epoch: 0 };
const B = { ip: '192.168.10.2', bootId: 'f7e6d5c4-b3a2-4190-8877-665544332211', epoch: 0 };
const A6 = { ip: 'fd00:10::1', bootId: A.bootId, epoch: 0 };
const B6 = { ip: 'fd00:10::2', bootId: B.bootId, epoch: 0 };
const gcm = parseKeyLine('3+ rfc4106(gcm(aes)) 000102030405060708090a0b0c0d0e0f10111213 128');
const chacha = parseKeyLine(
  `4+ rfc7539esp(chacha20,poly1305) ${Buffer.from(Array.from({ length: 36 }, (_, i) => i + 0x40)).toString('hex')} 128`,
);
const hmacCbc = parseKeyLine(`5 hmac(sha256) ${'11'.repeat(32)} cbc(aes) ${'22'.repeat(16)}`);

describe('per-node-pair key derivation (HKDF-SHA256)', () => {
  // Computed once and checked in; the first was cross-checked with an independent HKDF
  // (Python hmac/hashlib, RFC 5869) over the same salt and info layout.
  it('fixed test vectors', () => {
    expect(deriveDirectionalKey(gcm, A, B).toString('hex')).toBe('d8826cb90ae3c3399af75f8582c26a9921a85daa');
    expect(deriveDirectionalKey(gcm, B, A).toString('hex')).toBe('61aa56fc78d42e1ce9431d26e8a5977b57942a98');
    expect(deriveDirectionalKey(chacha, A6, B6).toString('hex')).toBe(
      '4ee5c6ce3664488d9977b2de6c9a0047a9b72002086ebbfebe0bfb240b25c9df21ebe9c9',
    );
    expect(deriveDirectionalKey(hmacCbc, A, B).toString('hex')).toBe(
      '7af94dc73ade2ae4b327b28e4514959dee0f9710daa70c36e4e81f35fdfda53b87785b8148698aef52b6ef7fb333bdc5',
    );
  });
  it('output length equals the global material (key + salt, or auth + enc)', () => {
    expect(deriveDirectionalKey(gcm, A, B)).toHaveLength(20);
    expect(deriveDirectionalKey(chacha, A6, B6)).toHaveLength(36);
    expect(deriveDirectionalKey(hmacCbc, A, B)).toHaveLength(48);
  });
  it('direction asymmetry: A→B differs from B→A', () => {
    for (const k of [gcm, chacha, hmacCbc])
      expect(deriveDirectionalKey(k, A, B).equals(deriveDirectionalKey(k, B, A))).toBe(false);
  });
  it('a reboot (new boot ID) of either node changes both directions', () => {
    const rebootedB = { ...B, bootId: '11111111-2222-4333-8444-555555555555' };
    expect(deriveDirectionalKey(gcm, A, rebootedB).equals(deriveDirectionalKey(gcm, A, B))).toBe(false);
    expect(deriveDirectionalKey(gcm, rebootedB, A).equals(deriveDirectionalKey(gcm, B, A))).toBe(false);
  });
  it('a new key epoch of either node changes both directions', () => {
    const bumped = { ...A, epoch: 1 };
    expect(deriveDirectionalKey(gcm, bumped, B).equals(deriveDirectionalKey(gcm, A, B))).toBe(false);
    expect(deriveDirectionalKey(gcm, B, bumped).equals(deriveDirectionalKey(gcm, B, A))).toBe(false);
    expect(() => deriveDirectionalKey(gcm, { ...A, epoch: -1 }, B)).toThrow(/from\.epoch/);
    expect(() => deriveDirectionalKey(gcm, A, { ...B, epoch: 2 ** 32 })).toThrow(/to\.epoch/);
  });
  it('another pair, key index or global key gives another key; the same inputs the same key', () => {
    const C = { ip: '192.168.10.3', bootId: B.bootId, epoch: 0 };
    expect(deriveDirectionalKey(gcm, A, C).equals(deriveDirectionalKey(gcm, A, B))).toBe(false);
    const gcm4 = parseKeyLine('4+ rfc4106(gcm(aes)) 000102030405060708090a0b0c0d0e0f10111213 128');
    expect(deriveDirectionalKey(gcm4, A, B).equals(deriveDirectionalKey(gcm, A, B))).toBe(false);
    const other = parseKeyLine('3+ rfc4106(gcm(aes)) 000102030405060708090a0b0c0d0e0f10111214 128');
    expect(deriveDirectionalKey(other, A, B).equals(deriveDirectionalKey(gcm, A, B))).toBe(false);
    expect(deriveDirectionalKey(gcm, A, B).equals(deriveDirectionalKey(gcm, { ...A }, { ...B }))).toBe(true);
  });
  it('refuses mixed families, the same address twice and malformed boot IDs', () => {
    expect(() => deriveDirectionalKey(gcm, A, B6)).toThrow(IpsecConfigError);
    expect(() => deriveDirectionalKey(gcm, A, { ...B, ip: A.ip })).toThrow(IpsecConfigError);
    expect(() => deriveDirectionalKey(gcm, A, { ...B, bootId: 'not-a-uuid' })).toThrow(/to\.bootId/);
    expect(() => deriveDirectionalKey(gcm, { ...A, ip: '10.0.0.300' }, B)).toThrow(/from\.ip/);
    expect(bootIdProblem(A.bootId)).toBeUndefined();
    expect(bootIdProblem(A.bootId.toUpperCase())).toMatch(/UUID/);
  });
  it('xfrmTransform: AEAD keeps key+salt and ICV; auth+enc splits and truncates to half the hash', () => {
    const d = deriveDirectionalKey(hmacCbc, A, B);
    const t = xfrmTransform(hmacCbc, d);
    expect('auth' in t && t.auth.key).toEqual(d.subarray(0, 32));
    expect('crypt' in t && t.crypt.key).toEqual(d.subarray(32));
    expect('auth' in t && t.auth.truncLen).toBe(128);
    const g = xfrmTransform(gcm, deriveDirectionalKey(gcm, A, B));
    expect('aead' in g && g.aead).toMatchObject({ name: 'rfc4106(gcm(aes))', icvLen: 128 });
  });
});
