import { appendFileSync } from 'node:fs';
import { KernelLaneError } from './errors.js';
import { DEFAULT_MODULES, runInVm } from './vm.js';
import { runVitestInVm } from './vitest.js';

const USAGE = `usage:
  veil-kernel-lane run --project <pkg dir> [--timeout <s>] [--modules a,b,c] [vitest args/files...]
      Boots one VM and runs the package's tests/kernel/ suites with vitest inside.
  veil-kernel-lane exec [--timeout <s>] [--modules a,b,c] [--cwd <dir>] -- <cmd> [args...]
      Boots one VM and runs an arbitrary command inside (e.g. a benchmark). Rows a benchmark
      records (@veil/test-utils/bench-report) are appended to the host's $VEIL_BENCH_ROWS.
Common options: --memory <MiB> (default 512), --cpus <n> (default 2).
Default modules: ${DEFAULT_MODULES.join(' ')}`;

/** Where a benchmark in the guest writes its report rows (the bench-report module's kernel-lane file). */
const BENCH_ROWS = 'bench-rows.jsonl';

interface Parsed {
  project?: string;
  cwd?: string;
  timeoutMs: number;
  memoryMiB?: number;
  cpus?: number;
  modules?: string[];
  rest: string[];
}

function fail(msg: string): never {
  process.stderr.write(`veil-kernel-lane: ${msg}\n${USAGE}\n`);
  process.exit(2);
}

function positiveNumber(flag: string, v: string | undefined): number {
  const n = Number(v);
  if (v === undefined || !Number.isFinite(n) || n <= 0) fail(`${flag} needs a positive number, got ${v ?? 'nothing'}`);
  return n;
}

function parse(argv: string[], stopAtDashDash: boolean): Parsed {
  const p: Parsed = { timeoutMs: 900_000, rest: [] };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i] as string;
    const next = (): string | undefined => argv[++i];
    if (a === '--') {
      p.rest.push(...argv.slice(i + 1));
      break;
    } else if (a === '--project') p.project = next() ?? fail('--project needs a directory');
    else if (a === '--cwd') p.cwd = next() ?? fail('--cwd needs a directory');
    else if (a === '--timeout') p.timeoutMs = positiveNumber('--timeout', next()) * 1000;
    else if (a === '--memory') p.memoryMiB = positiveNumber('--memory', next());
    else if (a === '--cpus') p.cpus = positiveNumber('--cpus', next());
    else if (a === '--modules') p.modules = (next() ?? '').split(',').filter(Boolean);
    else if (stopAtDashDash) fail(`unexpected argument ${a} (put the command after --)`);
    else p.rest.push(a);
  }
  return p;
}

function note(msg: string): void {
  process.stderr.write(`[veil-kernel-lane] ${msg}\n`);
}

async function main(): Promise<number> {
  const [sub, ...argv] = process.argv.slice(2);
  const write = (t: string): void => {
    process.stdout.write(t);
  };
  if (sub === 'run') {
    const p = parse(argv, false);
    if (!p.project) fail('run needs --project <pkg dir>');
    note(`booting a VM for ${p.project}`);
    const r = await runVitestInVm({
      project: p.project,
      vitestArgs: p.rest,
      timeoutMs: p.timeoutMs,
      onOutput: write,
      ...(p.modules ? { modules: p.modules } : {}),
      ...(p.memoryMiB ? { memoryMiB: p.memoryMiB } : {}),
      ...(p.cpus ? { cpus: p.cpus } : {}),
    });
    if (r.vm.missingModules.length)
      note(`modules not available in kernel ${r.vm.kernelVersion}: ${r.vm.missingModules.join(', ')}`);
    note(
      `kernel ${r.vm.kernelVersion}: boot ${(r.vm.bootMs / 1000).toFixed(1)} s, total ${(r.vm.totalMs / 1000).toFixed(1)} s; report ${r.reportPath}; vitest exit ${r.exitCode}`,
    );
    return r.exitCode;
  }
  if (sub === 'exec') {
    const p = parse(argv, true);
    if (p.rest.length === 0) fail('exec needs a command after --');
    const r = await runInVm({
      command: p.rest,
      timeoutMs: p.timeoutMs,
      onOutput: write,
      collect: [BENCH_ROWS],
      ...(p.cwd ? { cwd: p.cwd } : {}),
      ...(p.modules ? { modules: p.modules } : {}),
      ...(p.memoryMiB ? { memoryMiB: p.memoryMiB } : {}),
      ...(p.cpus ? { cpus: p.cpus } : {}),
    });
    if (r.missingModules.length) note(`modules not available in kernel ${r.kernelVersion}: ${r.missingModules.join(', ')}`);
    const rows = r.files[BENCH_ROWS];
    if (rows && process.env.VEIL_BENCH_ROWS) appendFileSync(process.env.VEIL_BENCH_ROWS, rows);
    note(
      `kernel ${r.kernelVersion}: boot ${(r.bootMs / 1000).toFixed(1)} s, total ${(r.totalMs / 1000).toFixed(1)} s; exit ${r.exitCode}`,
    );
    return r.exitCode;
  }
  if (sub === '--help' || sub === '-h' || sub === 'help') {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  fail(sub ? `unknown command ${sub}` : 'missing command');
}

main().then(
  (code) => process.exit(code),
  (e: unknown) => {
    if (e instanceof KernelLaneError) {
      process.stderr.write(`veil-kernel-lane: ${e.code}: ${e.message}\n`);
    } else {
      process.stderr.write(`veil-kernel-lane: unexpected error: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
    }
    process.exit(1);
  },
);
