/**
 * The agent bench's rows for the repository's bench reporter (@veil/test-utils/bench-report):
 * kept apart from sync.ts (which runs the bench when loaded) so a unit test can check them.
 */
import {
  recordReported,
  recordRow,
  recordSkipped,
  type BenchRow as ReportedRow,
  type Target,
} from '@veil/test-utils/bench-report';

/** What one measured phase (the agent, or the bare informer baseline) hands back. */
export interface PhaseResult {
  syncMs: number;
  /** CPU (user+system) of this process during sync / during the burst, ms. */
  syncCpuMs: number;
  updateCpuMs: number;
  /** RSS and heap after sync (after a full GC), MB. */
  rssMb: number;
  heapMb: number;
  /** Peak RSS of the process over its whole life (getrusage maxrss), MB. */
  peakRssMb: number;
  latencies: number[];
  delivered: number;
  updateWallMs: number;
  /** Latencies of the steady phase. */
  steadyLatencies: number[];
  steadyCpuMs: number;
}

/** The p-th percentile of an ascending array (NaN when empty). */
export function pct(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] as number;
}

/** One figure of the agent bench: judged against `target`, or only reported (target null). */
export interface AgentRow {
  metric: string;
  value: number;
  unit: string;
  /** The same figure for the bare informer in the same run, if there is one. */
  baseline: number | null;
  target: Target | null;
  detail?: string;
}

export const AGENT_BENCH = 'agent-sync';

/** The rows of one run; `label` names the V8 flags. Targets: issue 15 (10,000 nodes). */
export function agentBenchRows(
  label: string,
  nodes: number,
  updates: number,
  rate: number,
  agent: PhaseResult,
  base: PhaseResult,
): AgentRow[] {
  const sorted = (xs: readonly number[]): number[] => [...xs].sort((x, y) => x - y);
  const as = sorted(agent.latencies);
  const bs = sorted(base.latencies);
  const ass = sorted(agent.steadyLatencies);
  const bss = sorted(base.steadyLatencies);
  const n = `${nodes} nodes [${label}]`;
  const cpuA = (agent.updateCpuMs * 1000) / updates;
  const cpuB = (base.updateCpuMs * 1000) / updates;
  const delivered = (r: PhaseResult, what: string): string => `${r.delivered}/${updates} ${what} delivered`;
  return [
    { metric: `${n}: initial sync`, value: agent.syncMs, unit: 'ms', baseline: base.syncMs, target: { op: '<', value: 2000 } },
    { metric: `${n}: RSS after sync`, value: agent.rssMb, unit: 'MB', baseline: base.rssMb, target: { op: '<', value: 150 } },
    { metric: `${n}: peak RSS`, value: agent.peakRssMb, unit: 'MB', baseline: base.peakRssMb, target: { op: '<', value: 150 } },
    {
      metric: `${n}: p99 event→peer, ${updates}-update burst`,
      value: pct(as, 99),
      unit: 'ms',
      baseline: pct(bs, 99),
      target: { op: '<', value: 20 },
      detail: delivered(agent, 'updates'),
    },
    {
      metric: `${n}: p50 event→peer, ${updates}-update burst`,
      value: pct(as, 50),
      unit: 'ms',
      baseline: pct(bs, 50),
      target: null,
    },
    {
      metric: `${n}: CPU per update (burst) ÷ plain informer's`,
      value: cpuB > 0 ? cpuA / cpuB : NaN,
      unit: '×',
      baseline: null,
      target: { op: '<=', value: 1.2 },
      detail: `agent ${cpuA.toFixed(1)} µs/update, informer ${cpuB.toFixed(1)} µs/update`,
    },
    {
      metric: `${n}: p99 event→peer, steady ${rate}/s`,
      value: pct(ass, 99),
      unit: 'ms',
      baseline: pct(bss, 99),
      target: null,
      detail: `${agent.steadyLatencies.length} updates`,
    },
  ];
}

/** Hands the rows to the bench reporter (one table for `npm run bench`); the baseline goes in the detail. */
export function recordAgentRows(rows: readonly AgentRow[], file?: string): ReportedRow[] {
  return rows.map((r) => {
    const base = r.baseline === null || Number.isNaN(r.baseline) ? '' : `informer ${r.baseline.toFixed(2)} ${r.unit}`;
    const detail = [base, r.detail ?? ''].filter((x) => x).join('; ');
    const input = { bench: AGENT_BENCH, metric: r.metric, value: r.value, unit: r.unit, ...(detail ? { detail } : {}) };
    // No sample (no update delivered, no CPU measured): the row still shows, saying so.
    if (!Number.isFinite(r.value))
      return recordSkipped(
        {
          bench: AGENT_BENCH,
          metric: r.metric,
          unit: r.unit,
          target: r.target,
          reason: `not measured${detail ? ` (${detail})` : ''}`,
        },
        file,
      );
    return r.target === null ? recordReported(input, file) : recordRow({ ...input, target: r.target }, file);
  });
}
