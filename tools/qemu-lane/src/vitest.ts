import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { KernelLaneError } from './errors.js';
import { workspaceRoot } from './host.js';
import { type VmResult, runInVm } from './vm.js';

export interface RunVitestOptions {
  /** Package directory (holds vitest.config.ts); becomes vitest's --root and the guest cwd. */
  project: string;
  /** Extra vitest arguments / test files. */
  vitestArgs?: readonly string[];
  timeoutMs?: number;
  modules?: readonly string[];
  memoryMiB?: number;
  cpus?: number;
  onOutput?: (text: string) => void;
}

export interface VitestLaneResult {
  /** Exit status of vitest in the guest. */
  exitCode: number;
  /** Where the JSON report was copied: <project>/test-results/vitest-kernel.json. */
  reportPath: string;
  vm: VmResult;
}

const REPORT = 'vitest-kernel.json';

/**
 * Runs `vitest run` for one package inside a VM (one boot) with VEIL_KERNEL_LANE=1, so
 * vitest.base.ts selects the tests/kernel/ suites, and copies the JSON report back to
 * <project>/test-results/vitest-kernel.json. A missing report is an error even if vitest exited 0.
 */
export async function runVitestInVm(opts: RunVitestOptions): Promise<VitestLaneResult> {
  const project = resolve(opts.project);
  if (!existsSync(join(project, 'package.json'))) {
    throw new KernelLaneError('invalid-argument', `--project ${project} is not a package directory (no package.json)`);
  }
  const vitest = join(workspaceRoot(), 'node_modules', 'vitest', 'vitest.mjs');
  if (!existsSync(vitest)) {
    throw new KernelLaneError('missing-host-dependency', `vitest is not installed at ${vitest}; run npm run setup`);
  }
  const vm = await runInVm({
    // The report path depends on the per-VM results share, known only inside runInVm.
    command: [
      '/bin/sh',
      '-c',
      `export VEIL_TEST_REPORT="$VEIL_RESULTS_DIR/${REPORT}"; exec "$@"`,
      'sh',
      process.execPath,
      vitest,
      'run',
      '--root',
      project,
      ...(opts.vitestArgs ?? []),
    ],
    cwd: project,
    collect: [REPORT],
    ...(opts.timeoutMs !== undefined ? { timeoutMs: opts.timeoutMs } : {}),
    ...(opts.modules !== undefined ? { modules: opts.modules } : {}),
    ...(opts.memoryMiB !== undefined ? { memoryMiB: opts.memoryMiB } : {}),
    ...(opts.cpus !== undefined ? { cpus: opts.cpus } : {}),
    ...(opts.onOutput !== undefined ? { onOutput: opts.onOutput } : {}),
  });
  const report = vm.files[REPORT];
  if (!report) {
    throw new KernelLaneError(
      'missing-report',
      `vitest exited ${vm.exitCode} in the guest but wrote no ${REPORT} (did it fail to start?)`,
    );
  }
  const reportPath = join(project, 'test-results', REPORT);
  mkdirSync(join(project, 'test-results'), { recursive: true });
  writeFileSync(reportPath, report);
  return { exitCode: vm.exitCode, reportPath, vm };
}
