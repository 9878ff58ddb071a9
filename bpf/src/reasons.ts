/**
 * Every verdict / drop reason the programs count, mirroring `bpf/lib/reasons.h` (enum veil_reason).
 * The index is the key in the `counters` map. tests/reasons.test.ts parses the C header and
 * checks both names and numbers, so the two cannot drift apart.
 */
export const REASONS = [
  'pass-local',
  'pass-unknown',
  'pass-non-ip',
  'redirect-wireguard',
  'mark-ipsec',
  'pass-plaintext-not-ready',
  'drop-not-ready-strict',
  'drop-malformed',
  'frag-needed-sent',
  'tunnel-deliver',
  'tunnel-pass',
  'to-wire-drop-clear',
  'to-wire-node-encrypt',
  'to-wire-pass',
  'to-wire-pass-encrypted',
  'drop-too-big',
  'pass-remote-node',
] as const;

/** A reason's name, e.g. 'redirect-wireguard'. */
export type ReasonName = (typeof REASONS)[number];

/** Number of slots in the `counters` map (VEIL_R_MAX). */
export const REASON_COUNT = REASONS.length;

/** The numeric value of a reason (its `counters` key). */
export function reasonIndex(name: ReasonName): number {
  return REASONS.indexOf(name);
}

/** The name for a numeric reason, or undefined when out of range. */
export function reasonName(index: number): ReasonName | undefined {
  return REASONS[index];
}

/** tc return codes the programs use (linux/pkt_cls.h). */
export const TcAction = {
  OK: 0,
  SHOT: 2,
  REDIRECT: 7,
} as const;
