import { defineConfig } from 'vitest/config';

// The kernel lane (tools/qemu-lane) runs suites under tests/kernel/ inside a VM whose kernel has
// WireGuard and ESP. On the host those suites are excluded; inside the VM only they run.
const kernelLane = process.env.VEIL_KERNEL_LANE === '1';
// The VM's root is a read-only share with a tmpfs overlay, so the lane passes an absolute report
// path on its writable results share.
const report = process.env.VEIL_TEST_REPORT ?? `test-results/vitest${kernelLane ? '-kernel' : ''}.json`;

/**
 * Shared vitest settings, merged by every package's vitest.config.ts.
 * Forks, not threads: native addons and setns() are per-process concerns, and a
 * crash in a binding must take down one worker, not the runner.
 */
export default defineConfig({
  test: {
    pool: 'forks',
    include: kernelLane ? ['tests/kernel/**/*.test.ts'] : ['tests/**/*.test.ts'],
    exclude: kernelLane ? ['**/node_modules/**'] : ['**/node_modules/**', 'tests/kernel/**'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // Privileged suites share one kernel; running files one at a time keeps
    // namespace/link churn and BPF_PROG_TEST_RUN timings predictable on 2 cores.
    fileParallelism: false,
    reporters: ['default', ['json', { outputFile: report }]],
  },
});
