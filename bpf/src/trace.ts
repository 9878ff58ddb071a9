import { type Codec, i32, struct, u32, u64 } from 'libbpf-ts';
import { REASONS, type ReasonName, reasonName } from './reasons.js';
import { fieldAt, type StructLayout, structLayout } from './struct-layout.js';

/** How a traced decision left the program (VEIL_TRACE_*). */
export type TraceKind = 'none' | 'redirect' | 'redirect-neigh';
const KINDS: readonly TraceKind[] = ['none', 'redirect', 'redirect-neigh'];

/** The last decision recorded by the trace object (obj/veil_trace.bpf.o). */
export interface TraceRecord {
  /** Per-CPU sequence number of the decision (0 = never written on that CPU). */
  seq: bigint;
  reason: ReasonName | `unknown-${number}`;
  /** TC_ACT_* the program returned. */
  verdict: number;
  kind: TraceKind;
  /** Redirect target ifindex (0 without redirect). */
  ifindex: number;
  /** Flags given to bpf_redirect (BPF_F_INGRESS = 1). */
  redirectFlags: number;
  /** skb->mark when the program returned. */
  mark: number;
}

/**
 * ```c
 * struct veil_trace {         // 32 bytes, trace[0] per CPU (ENABLE_TRACE builds only)
 *   __u64 seq;                // 0
 *   __u32 reason;             // 8: enum veil_reason
 *   __s32 verdict;            // 12: TC_ACT_*
 *   __u32 kind;               // 16: VEIL_TRACE_NONE / _REDIRECT / _REDIRECT_NEIGH
 *   __u32 ifindex;            // 20
 *   __u32 redirect_flags;     // 24
 *   __u32 mark;               // 28
 * };
 * ```
 * Only obj/veil_trace.bpf.o carries this struct in its BTF.
 */
export const traceLayout: StructLayout<'seq' | 'reason' | 'verdict' | 'kind' | 'ifindex' | 'redirect_flags' | 'mark'> =
  structLayout('veil_trace', 32, {
    seq: [0, 8],
    reason: [8, 4],
    verdict: [12, 4],
    kind: [16, 4],
    ifindex: [20, 4],
    redirect_flags: [24, 4],
    mark: [28, 4],
  });

const raw = struct(traceLayout.size, {
  seq: fieldAt(traceLayout, 'seq', u64),
  reason: fieldAt(traceLayout, 'reason', u32),
  verdict: fieldAt(traceLayout, 'verdict', i32),
  kind: fieldAt(traceLayout, 'kind', u32),
  ifindex: fieldAt(traceLayout, 'ifindex', u32),
  redirectFlags: fieldAt(traceLayout, 'redirect_flags', u32),
  mark: fieldAt(traceLayout, 'mark', u32),
});

/** The `trace` map value (struct veil_trace above). */
export const traceValue: Codec<TraceRecord> = {
  size: traceLayout.size,
  encode(v, buf, off) {
    raw.encode(
      {
        seq: v.seq,
        reason: Math.max(0, (REASONS as readonly string[]).indexOf(v.reason)),
        verdict: v.verdict,
        kind: Math.max(0, KINDS.indexOf(v.kind)),
        ifindex: v.ifindex,
        redirectFlags: v.redirectFlags,
        mark: v.mark,
      },
      buf,
      off,
    );
  },
  decode(buf, off) {
    const r = raw.decode(buf, off);
    return {
      seq: r.seq,
      reason: reasonName(r.reason) ?? `unknown-${r.reason}`,
      verdict: r.verdict,
      kind: KINDS[r.kind] ?? 'none',
      ifindex: r.ifindex,
      redirectFlags: r.redirectFlags,
      mark: r.mark,
    };
  },
};
