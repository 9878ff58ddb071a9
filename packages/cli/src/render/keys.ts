import type { KeyRotationResponse } from '@veil/agent-core/status-api';
import type { Palette } from './color.js';

/** `veil keys rotate -o json`. */
export interface KeyRotation {
  readonly kind: 'KeyRotation';
  readonly backend: string;
  readonly previousFingerprint: string | null;
  readonly fingerprint: string;
  readonly keyIndex: number | null;
  readonly published: boolean;
  readonly publishError: string | null;
}

export function keyRotation(r: KeyRotationResponse): KeyRotation {
  return {
    kind: 'KeyRotation',
    backend: r.backend,
    previousFingerprint: r.previousFingerprint,
    fingerprint: r.fingerprint,
    keyIndex: r.keyIndex,
    published: r.published,
    publishError: r.publishError,
  };
}

export function renderKeyRotation(r: KeyRotation, c: Palette): string {
  let out = `Rotated the ${r.backend} node key: ${c.bold(r.fingerprint)}`;
  if (r.previousFingerprint !== null) out += ` (was ${r.previousFingerprint})`;
  if (r.keyIndex !== null) out += `, key index ${r.keyIndex}`;
  out += '\n';
  out += r.published
    ? 'Published the new public key; peers switch over as they see it.\n'
    : c.yellow(`Publishing the new public key failed (${r.publishError ?? 'unknown error'}); the agent keeps retrying.\n`);
  return out;
}
