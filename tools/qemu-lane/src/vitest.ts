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
  /** The VM runner (tests pass a fake); default runInVm. */
  runVm?: typeof runInVm;
}

export interface VitestLaneResult {
  /** Exit status of vitest in the guest. */
  exitCode: number;
  /** Where the JSON report was copied: <project>/test-results/vitest-kernel.json. */
  reportPath: string;
  vm: VmResult;
  /**
   * Boots it took: 2 when the first guest's vitest was killed by a signal before it wrote any
   * report (see runVitestInVm).
   */
  boots: number;
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
  const boot = (): Promise<VmResult> =>
    (opts.runVm ?? runInVm)({
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
  let vm = await boot();
  let boots = 1;
  // Under software emulation the guest's node has been seen to die of SIGSEGV while vitest was
  // still starting (before any test ran; the same suite passes on the next boot). Killed by a
  // signal with no report written is that, not a test result: boot once more and say so. A crash
  // that repeats still fails, and a suite that ran always counts as it ran.
  if (!vm.files[REPORT] && vm.exitCode >= 128) {
    const line = `[veil-kernel-lane] vitest was killed by signal ${vm.exitCode - 128} in the guest before writing any report (an emulator-level crash, no test ran); booting again once\n`;
    if (opts.onOutput) opts.onOutput(line);
    else process.stderr.write(line);
    vm = await boot();
    boots = 2;
  }
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
  return { exitCode: vm.exitCode, reportPath, vm, boots };
}
