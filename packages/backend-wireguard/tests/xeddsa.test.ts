import { describe, expect, it } from 'vitest';
import { Key, rotationMessage, xeddsaSign, xeddsaVerify } from '../src/index.js';

describe('XEdDSA with WireGuard keys (a rotation signed with the previous key)', () => {
  it('verifies a signature by the key holder; refuses another key, message, node or a damaged signature', () => {
    for (let i = 0; i < 8; i++) {
      const prev = Key.generatePrivate();
      const next = Key.generatePrivate().publicKey();
      const msg = rotationMessage('node-a', next);
      const sig = xeddsaSign(prev, msg);
      expect(sig).toHaveLength(64);
      expect(xeddsaVerify(prev.publicKey(), msg, sig)).toBe(true);
      expect(xeddsaVerify(Key.generatePrivate().publicKey(), msg, sig)).toBe(false);
      expect(xeddsaVerify(prev.publicKey(), rotationMessage('node-b', next), sig)).toBe(false);
      expect(xeddsaVerify(prev.publicKey(), rotationMessage('node-a', Key.generatePrivate().publicKey()), sig)).toBe(false);
      const bad = Buffer.from(sig);
      bad[5] = (bad[5] as number) ^ 1;
      expect(xeddsaVerify(prev.publicKey(), msg, bad)).toBe(false);
      expect(xeddsaVerify(prev.publicKey(), msg, sig.subarray(0, 63))).toBe(false);
    }
  });
});
