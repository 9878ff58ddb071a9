import { hkdfSync } from 'node:crypto';
import { describeIpProblem, parseIp } from '@veil/ip';
import type { XfrmAead, XfrmAuth, XfrmCrypt } from 'node-xfrm-bindings';
import { IpsecConfigError } from './errors.js';
import type { IpsecKey } from './keyfile.js';

/** One end of a node pair: its tunnel (underlay) address and its boot ID. */
export interface PairEndpoint {
  readonly ip: string;
  /** `/proc/sys/kernel/random/boot_id`, a UUID; changes on every reboot. */
  readonly bootId: string;
  /**
   * The node's key epoch (u32): bumped when the node must re-create an outbound SA whose peer has
   * already seen sequence numbers from it (a state deleted behind the agent's back), so the new SA
   * never restarts its sequence numbers under a key the peer's replay window has seen.
   */
  readonly epoch: number;
}

/** HKDF salt: fixed, names the scheme and its version (a new scheme gets a new salt). */
export const DERIVATION_SALT = Buffer.from('veil.io/ipsec per-node-pair key v1');

const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** Reason a boot ID is malformed, or undefined (used for the peer annotation too). */
export function bootIdProblem(v: string): string | undefined {
  return UUID_RE.test(v) ? undefined : 'must be a lower-case UUID (/proc/sys/kernel/random/boot_id)';
}

function bootIdBytes(field: string, v: string): Buffer {
  const p = bootIdProblem(v);
  if (p) throw new IpsecConfigError(field, p);
  return Buffer.from(v.replaceAll('-', ''), 'hex');
}

function epochBytes(field: string, v: number): Buffer {
  if (!Number.isInteger(v) || v < 0 || v > 0xffffffff)
    throw new IpsecConfigError(field, `must be an integer 0..4294967295, got ${String(v)}`);
  const b = Buffer.alloc(4);
  b.writeUInt32BE(v);
  return b;
}

function ipBytes(field: string, v: string): { family: 4 | 6; bytes: Buffer } {
  return parseIp(
    v,
    (problem, input) => new IpsecConfigError(field, `must be an IP address (${describeIpProblem(problem, input)})`),
  );
}

/**
 * The key for traffic `from` → `to` under the global `key`: HKDF-SHA256 with the global key
 * material as input keying material and, as info, the key index, the algorithm, both tunnel
 * addresses, both boot IDs and both key epochs in direction order. So every node pair, each direction, each key
 * index and each boot of either node gets its own key: sequence numbers that restart at 1 after
 * a reboot never reuse a nonce under the same key (GHSA-pwqm-x5x6-5586).
 * Output length equals the global material's (AEAD key + salt, or auth key + encryption key).
 */
export function deriveDirectionalKey(key: IpsecKey, from: PairEndpoint, to: PairEndpoint): Buffer {
  const a = ipBytes('from.ip', from.ip);
  const b = ipBytes('to.ip', to.ip);
  if (a.family !== b.family) throw new IpsecConfigError('to.ip', `family ${b.family} differs from from.ip's ${a.family}`);
  if (a.bytes.equals(b.bytes)) throw new IpsecConfigError('to.ip', 'equals from.ip (a node does not tunnel to itself)');
  const algo =
    key.algorithm.kind === 'aead'
      ? `${key.algorithm.name}/${key.algorithm.icvBits}`
      : `${key.algorithm.auth}+${key.algorithm.enc}`;
  const info = Buffer.concat([
    Buffer.from('veil-ipsec\0'),
    Buffer.from([key.spi, a.family]),
    Buffer.from(`${algo}\0`),
    a.bytes,
    b.bytes,
    bootIdBytes('from.bootId', from.bootId),
    bootIdBytes('to.bootId', to.bootId),
    epochBytes('from.epoch', from.epoch),
    epochBytes('to.epoch', to.epoch),
  ]);
  return Buffer.from(hkdfSync('sha256', key.material, DERIVATION_SALT, info, key.material.length));
}

/** The XFRM transform fields for a state carrying `derived` (output of {@link deriveDirectionalKey}). */
export function xfrmTransform(key: IpsecKey, derived: Buffer): { aead: XfrmAead } | { auth: XfrmAuth; crypt: XfrmCrypt } {
  const alg = key.algorithm;
  if (alg.kind === 'aead') return { aead: { name: alg.name, key: derived, icvLen: alg.icvBits } };
  const hashBits = alg.authKeyBytes * 8;
  return {
    // RFC 4868: HMAC-SHA-2 truncated to half the hash.
    auth: { name: alg.auth, key: derived.subarray(0, alg.authKeyBytes), truncLen: hashBits / 2 },
    crypt: { name: alg.enc, key: derived.subarray(alg.authKeyBytes) },
  };
}
