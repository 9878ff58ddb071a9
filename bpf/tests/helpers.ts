import { SkBuff, type SkBuffInput, type Program } from 'libbpf-ts';
import { type Datapath, type ReasonName, REASONS, type TraceRecord } from '../src/index.js';

export interface RunOutcome {
  retval: number;
  mark: number;
  data: Buffer;
  trace: TraceRecord | undefined;
  /** Counter deltas (packets) by reason, only the non-zero ones. */
  counted: Partial<Record<ReasonName, { packets: bigint; bytes: bigint }>>;
}

/** Runs `frame` through `prog` once (optionally with ctx fields) and gathers everything observable. */
export function runOnce(dp: Datapath, prog: Program, frame: Buffer, ctx: SkBuffInput = {}): RunOutcome {
  dp.resetCounters();
  dp.resetTrace();
  const r = prog.run({ data: frame, ctx: SkBuff.encode(ctx) });
  const counters = dp.readCounters();
  const counted: RunOutcome['counted'] = {};
  for (const name of REASONS) {
    if (counters[name].packets !== 0n) counted[name] = counters[name];
  }
  return {
    retval: r.retval,
    mark: r.ctx ? SkBuff.decode(r.ctx).mark : 0,
    data: r.data,
    trace: dp.lastTrace(),
    counted,
  };
}

/** The one reason a single packet was counted under, with its byte count. */
export function onlyReason(o: RunOutcome): { reason: string; packets: bigint; bytes: bigint } {
  const entries = Object.entries(o.counted);
  if (entries.length !== 1) throw new Error(`expected exactly one counted reason, got ${JSON.stringify(Object.keys(o.counted))}`);
  const [reason, c] = entries[0] as [string, { packets: bigint; bytes: bigint }];
  return { reason, packets: c.packets, bytes: c.bytes };
}
