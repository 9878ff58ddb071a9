import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The compiled object is missing: `make -C bpf` (or `npm run build -w @veil/bpf`) has not run. */
export class BpfObjectMissingError extends Error {
  override name = 'BpfObjectMissingError';
  constructor(readonly path: string) {
    super(`${path} does not exist: build it with \`npm run build -w @veil/bpf\` (runs make in bpf/)`);
  }
}

let root: string | undefined;

// The package root is the nearest ancestor whose package.json is @veil/bpf's; this module runs
// from src/ (vitest), dist/ (consumers) and dist-bench/src/ (benchmarks).
function packageRoot(): string {
  if (root) return root;
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const pkg = join(dir, 'package.json');
    if (existsSync(pkg) && (JSON.parse(readFileSync(pkg, 'utf8')) as { name?: string }).name === '@veil/bpf') {
      root = dir;
      return dir;
    }
    const up = dirname(dir);
    if (up === dir) throw new Error(`@veil/bpf: no package.json above ${fileURLToPath(import.meta.url)}`);
    dir = up;
  }
}

function objPath(file: string): string {
  return join(packageRoot(), 'obj', file);
}

function existing(path: string): string {
  if (!existsSync(path)) throw new BpfObjectMissingError(path);
  return path;
}

/** Absolute path of `obj/veil.bpf.o` (production object: all programs, shared maps). */
export function objectPath(): string {
  return existing(objPath('veil.bpf.o'));
}

/** Absolute path of `obj/veil_trace.bpf.o` (built with -DENABLE_TRACE: adds the `trace` map). */
export function traceObjectPath(): string {
  return existing(objPath('veil_trace.bpf.o'));
}

/** Benchmark baselines: `passthrough` (returns TC_ACT_OK) and `lpm_redirect` (bare LPM + redirect). */
export function benchObjectPath(which: 'passthrough' | 'lpm_redirect'): string {
  return existing(objPath(`bench_${which}.bpf.o`));
}

/** Program names inside the objects (function names; all in section "tc"). */
export const PROGRAMS = {
  fromPod: 'veil_from_pod',
  fromTunnel: 'veil_from_tunnel',
  toWire: 'veil_to_wire',
} as const;
