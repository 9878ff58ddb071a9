/**
 * The Go side of the library benchmarks: tools/go-bench (veil-gobench), built by
 * tools/go-bench/build.sh (run by tools/setup/install.sh) and linked at tools/go-bench/bin/.
 */
import { accessSync, constants } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { execFileSync } from 'node:child_process';

const REPO_ROOT = fileURLToPath(new URL('../../../', import.meta.url));

/** One run's result line (the library call alone, timed inside the Go process). */
export interface GoBenchResult {
  tool: string;
  op: string;
  ms: number;
  count: number;
  mode?: string;
}

/** $VEIL_GOBENCH, else tools/go-bench/bin/veil-gobench; undefined when not built. */
export function goBenchBinary(): string | undefined {
  const p = process.env.VEIL_GOBENCH || join(REPO_ROOT, 'tools/go-bench/bin/veil-gobench');
  try {
    accessSync(p, constants.X_OK);
    return p;
  } catch {
    return undefined;
  }
}

/** Why the library rows are skipped when the harness is missing. */
export const GO_BENCH_MISSING = 'veil-gobench is not built (bash tools/go-bench/build.sh; needs go and the module proxy)';

/** Parses the harness's stdout: its last non-empty line is one JSON result. */
export function parseGoBenchOutput(stdout: string): GoBenchResult {
  const last = stdout.trim().split('\n').at(-1) ?? '';
  let r: Partial<GoBenchResult>;
  try {
    r = JSON.parse(last) as Partial<GoBenchResult>;
  } catch {
    throw new Error(`veil-gobench printed no JSON result: ${JSON.stringify(stdout.slice(-200))}`);
  }
  if (typeof r.ms !== 'number' || !Number.isFinite(r.ms) || typeof r.count !== 'number' || typeof r.tool !== 'string')
    throw new Error(`veil-gobench result lacks tool/ms/count: ${last}`);
  return r as GoBenchResult;
}

/**
 * Runs veil-gobench with `args` (optionally prefixed, e.g. ['ip', 'netns', 'exec', ns]) and returns
 * its result; a failed run throws with its stderr.
 */
export function runGoBench(args: readonly string[], opts: { prefix?: readonly string[]; binary?: string } = {}): GoBenchResult {
  const bin = opts.binary ?? goBenchBinary();
  if (!bin) throw new Error(GO_BENCH_MISSING);
  const [cmd, ...pre] = [...(opts.prefix ?? []), bin];
  const out = execFileSync(cmd, [...pre, ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], maxBuffer: 16 << 20 });
  return parseGoBenchOutput(out);
}
