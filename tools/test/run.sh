#!/usr/bin/env bash
# Runs every project's test target (host lane, then the kernel lane under qemu), then prints one
# summary line over all vitest reports. Exit status is non-zero if any suite failed.
set -uo pipefail
cd "$(dirname "$0")/../.."
rm -f packages/*/test-results/vitest*.json bpf/test-results/vitest*.json tools/*/test-results/vitest*.json
status=0
NX_DAEMON=false npx nx run-many -t test --parallel=1 --outputStyle=stream --skip-nx-cache || status=$?
# Projects with a kernel-lane suite expose a `test:kernel` target; the runner boots one VM per project.
NX_DAEMON=false npx nx run-many -t test:kernel --parallel=1 --outputStyle=stream --skip-nx-cache || status=$?
node tools/test/summary.mjs || status=$?
exit $status
