/**
 * The shared benchmark reporter: every bench appends rows, `npm run bench` prints one table at the end.
 *
 * In a bench (import from '@veil/test-utils/bench-report'):
 *   recordRatio({ bench: 'routes', metric: '10,000 routes: @veil/netlink vs ip -batch',
 *                 oursMs: 120, baselineMs: 176 });            // value = baseline ÷ ours, target ≥ 1.00×
 *   recordRow({ bench: 'agent', metric: 'RSS at 10,000 nodes', value: 129, unit: 'MB',
 *               target: { op: '<', value: 150 } });          // any figure beside its target
 *   recordSkipped({ bench: 'routes', metric: '… vs vishvananda/netlink', target: { op: '>=', value: 1, unit: '×' },
 *                   reason: 'veil-gobench not built' });      // the row still shows, as SKIPPED
 *   recordReported({ bench: 'agent', metric: 'p50 event→peer', value: 3.1, unit: 'ms' });
 *                                                             // a figure the issue asks to report, without a target
 * Each call appends one JSON line to rowsFile() and prints it as one human line.
 *
 * Where rows go: $VEIL_BENCH_ROWS, else inside the qemu lane $VEIL_RESULTS_DIR/bench-rows.jsonl
 * (`veil-kernel-lane exec` appends that file to the host's $VEIL_BENCH_ROWS), else
 * <repo>/.veil-cache/bench-rows.jsonl. tools/test/bench.sh resets it, runs every bench, then
 * `node tools/test-utils/dist/bench-report-cli.js print --json bench-results.json` prints the table
 * (MET / NOT MET / SKIPPED) and writes the same rows as JSON.
 */
import { appendFileSync, existsSync, mkdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** How a value compares with its target. */
export type TargetOp = '>=' | '>' | '<=' | '<';

export interface Target {
  op: TargetOp;
  value: number;
  /** Shown after the number: '×', 'ms', 'MB', … (defaults to the row's unit). */
  unit?: string;
}

/** One row as bench code hands it in. */
export interface BenchRowInput {
  /** Which benchmark (usually the package or bench file): 'routes', 'xfrm-policies', 'agent-scale'. */
  bench: string;
  /** What was measured, including the baseline for a ratio: '10,000 routes: @veil/netlink vs ip -batch'. */
  metric: string;
  value: number;
  unit: string;
  target: Target;
  /** 'host' or 'kernel' (qemu lane); defaults from VEIL_KERNEL_LANE. */
  lane?: 'host' | 'kernel';
  /** Free text: the raw medians, the sample count, what bounds a miss. */
  detail?: string;
}

export type RowStatus = 'MET' | 'NOT MET' | 'SKIPPED' | 'REPORTED';

/** One row as stored (one JSON line) and as written to bench-results.json. */
export interface BenchRow {
  bench: string;
  metric: string;
  /** null when skipped. */
  value: number | null;
  unit: string;
  /** null for a REPORTED row (a figure shown without a target). */
  target: Target | null;
  lane: 'host' | 'kernel';
  status: RowStatus;
  detail?: string;
  at: string;
}

/** A row that cannot be recorded (names the field). */
export class BenchRowError extends Error {
  override name = 'BenchRowError';
  constructor(
    readonly field: string,
    message: string,
  ) {
    super(`bench row: ${field}: ${message}`);
  }
}

const REPO_ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const OPS: readonly TargetOp[] = ['>=', '>', '<=', '<'];

/** The file rows are appended to (see the module comment). */
export function rowsFile(env: NodeJS.ProcessEnv = process.env): string {
  if (env.VEIL_BENCH_ROWS) return env.VEIL_BENCH_ROWS;
  if (env.VEIL_KERNEL_LANE === '1' && env.VEIL_RESULTS_DIR) return join(env.VEIL_RESULTS_DIR, KERNEL_LANE_ROWS);
  return join(REPO_ROOT, '.veil-cache', 'bench-rows.jsonl');
}

/** The file name the qemu lane collects from its results share. */
export const KERNEL_LANE_ROWS = 'bench-rows.jsonl';

/** Whether `value` meets `target`. */
export function meets(value: number, target: Target): boolean {
  switch (target.op) {
    case '>=':
      return value >= target.value;
    case '>':
      return value > target.value;
    case '<=':
      return value <= target.value;
    case '<':
      return value < target.value;
  }
}

function check(input: { bench: string; metric: string; target: Target; unit?: string }): void {
  if (typeof input.bench !== 'string' || !input.bench.trim()) throw new BenchRowError('bench', 'must be a non-empty string');
  if (typeof input.metric !== 'string' || !input.metric.trim()) throw new BenchRowError('metric', 'must be a non-empty string');
  if (!input.target || !OPS.includes(input.target.op))
    throw new BenchRowError('target.op', `must be one of ${OPS.join(' ')}, not ${JSON.stringify(input.target?.op)}`);
  if (!Number.isFinite(input.target.value)) throw new BenchRowError('target.value', 'must be a finite number');
}

function laneOf(lane: 'host' | 'kernel' | undefined): 'host' | 'kernel' {
  return lane ?? (process.env.VEIL_KERNEL_LANE === '1' ? 'kernel' : 'host');
}

/** Builds a stored row (validated) without writing it. */
export function makeRow(input: BenchRowInput): BenchRow {
  check(input);
  if (typeof input.value !== 'number' || !Number.isFinite(input.value))
    throw new BenchRowError('value', `must be a finite number, not ${String(input.value)}`);
  return {
    bench: input.bench,
    metric: input.metric,
    value: input.value,
    unit: input.unit,
    target: input.target,
    lane: laneOf(input.lane),
    status: meets(input.value, input.target) ? 'MET' : 'NOT MET',
    ...(input.detail ? { detail: input.detail } : {}),
    at: new Date().toISOString(),
  };
}

function append(row: BenchRow, file: string): BenchRow {
  mkdirSync(dirname(file), { recursive: true });
  appendFileSync(file, `${JSON.stringify(row)}\n`);
  process.stdout.write(`[bench-row] ${formatLine(row)}\n`);
  return row;
}

/** Records any figure beside its target. */
export function recordRow(input: BenchRowInput, file = rowsFile()): BenchRow {
  return append(makeRow(input), file);
}

export interface RatioInput {
  bench: string;
  /** Say both sides: '5,000 peers: WgClient vs wgctrl-go'. */
  metric: string;
  /** Veil's time (lower is better), any unit as long as both sides share it. */
  oursMs: number;
  baselineMs: number;
  /** Default ≥ 1.00. */
  target?: number;
  lane?: 'host' | 'kernel';
  detail?: string;
}

/** Records baseline ÷ ours (so ≥ 1.00× means Veil is at least as fast), target ≥ 1.00× by default. */
export function recordRatio(input: RatioInput, file = rowsFile()): BenchRow {
  for (const f of ['oursMs', 'baselineMs'] as const) {
    if (!Number.isFinite(input[f]) || input[f] <= 0)
      throw new BenchRowError(f, `must be a positive time, not ${String(input[f])}`);
  }
  const detail = `ours ${input.oursMs.toFixed(1)} ms, baseline ${input.baselineMs.toFixed(1)} ms${input.detail ? `; ${input.detail}` : ''}`;
  return recordRow(
    {
      bench: input.bench,
      metric: input.metric,
      value: input.baselineMs / input.oursMs,
      unit: '×',
      target: { op: '>=', value: input.target ?? 1 },
      detail,
      ...(input.lane ? { lane: input.lane } : {}),
    },
    file,
  );
}

/** Records a row that could not be measured (its baseline is missing, …): shown as SKIPPED with the reason. */
export function recordSkipped(
  /** target null: a figure that is only reported (see recordReported) could not be measured. */
  input: { bench: string; metric: string; target: Target | null; unit?: string; reason: string; lane?: 'host' | 'kernel' },
  file = rowsFile(),
): BenchRow {
  if (input.target === null) check({ ...input, target: { op: '>=', value: 0 } });
  else check({ ...input, target: input.target });
  if (!input.reason?.trim()) throw new BenchRowError('reason', 'a skipped row must say why');
  return append(
    {
      bench: input.bench,
      metric: input.metric,
      value: null,
      unit: input.unit ?? input.target?.unit ?? '',
      target: input.target,
      lane: laneOf(input.lane),
      status: 'SKIPPED',
      detail: input.reason,
      at: new Date().toISOString(),
    },
    file,
  );
}

/** Records a figure that is only reported (no target): shown as REPORTED beside the judged rows. */
export function recordReported(input: Omit<BenchRowInput, 'target'>, file = rowsFile()): BenchRow {
  if (typeof input.bench !== 'string' || !input.bench.trim()) throw new BenchRowError('bench', 'must be a non-empty string');
  if (typeof input.metric !== 'string' || !input.metric.trim()) throw new BenchRowError('metric', 'must be a non-empty string');
  if (typeof input.value !== 'number' || !Number.isFinite(input.value))
    throw new BenchRowError('value', `must be a finite number, not ${String(input.value)}`);
  return append(
    {
      bench: input.bench,
      metric: input.metric,
      value: input.value,
      unit: input.unit,
      target: null,
      lane: laneOf(input.lane),
      status: 'REPORTED',
      ...(input.detail ? { detail: input.detail } : {}),
      at: new Date().toISOString(),
    },
    file,
  );
}

/** Reads every row of a rows file; a line that is not a row is an error naming the line. */
export function readRows(file = rowsFile()): BenchRow[] {
  if (!existsSync(file)) return [];
  return readFileSync(file, 'utf8')
    .split('\n')
    .map((l, i) => [l.trim(), i + 1] as const)
    .filter(([l]) => l.length > 0)
    .map(([l, n]) => {
      let row: BenchRow;
      try {
        row = JSON.parse(l) as BenchRow;
      } catch {
        throw new BenchRowError(`line ${n}`, `${file}: not JSON`);
      }
      if (
        typeof row?.bench !== 'string' ||
        typeof row.metric !== 'string' ||
        (!row.target && !(row.target === null && (row.status === 'REPORTED' || row.status === 'SKIPPED'))) ||
        !row.status
      )
        throw new BenchRowError(`line ${n}`, `${file}: not a bench row`);
      return row;
    });
}

function num(v: number, unit: string): string {
  const digits = unit === '×' ? 2 : Math.abs(v) >= 100 ? 0 : Math.abs(v) >= 10 ? 1 : 2;
  return `${v.toFixed(digits)}${unit === '×' ? '×' : ` ${unit}`}`.trim();
}

/** '1.12×', '≥ 1.00×'. */
export function formatValue(row: Pick<BenchRow, 'value' | 'unit'>): string {
  return row.value === null ? '-' : num(row.value, row.unit);
}
export function formatTarget(t: Target | null, unit: string): string {
  if (t === null) return '-';
  const sym = { '>=': '≥', '>': '>', '<=': '≤', '<': '<' }[t.op];
  return `${sym} ${num(t.value, t.unit ?? unit)}`;
}

function formatLine(r: BenchRow): string {
  return `${r.bench} [${r.lane}] ${r.metric}: ${formatValue(r)} (target ${formatTarget(r.target, r.unit)}) ${r.status}${r.detail ? ` (${r.detail})` : ''}`;
}

/** The one table `npm run bench` ends with. */
export function renderTable(rows: readonly BenchRow[]): string {
  const head = ['bench', 'lane', 'measure', 'value', 'target', 'status'];
  const body = rows.map((r) => [r.bench, r.lane, r.metric, formatValue(r), formatTarget(r.target, r.unit), r.status]);
  const width = head.map((h, i) => Math.max(h.length, ...body.map((b) => [...b[i]!].length)));
  const line = (cells: string[]): string =>
    cells
      .map((c, i) => c + ' '.repeat(width[i]! - [...c].length))
      .join('  ')
      .trimEnd();
  const met = rows.filter((r) => r.status === 'MET').length;
  const notMet = rows.filter((r) => r.status === 'NOT MET').length;
  const skipped = rows.filter((r) => r.status === 'SKIPPED').length;
  const reported = rows.filter((r) => r.status === 'REPORTED').length;
  return [
    line(head),
    line(width.map((w) => '-'.repeat(w))),
    ...body.map(line),
    '',
    `${rows.length} rows: ${met} MET, ${notMet} NOT MET, ${skipped} SKIPPED${reported ? `, ${reported} REPORTED (no target)` : ''}`,
  ].join('\n');
}
