#!/usr/bin/env bash
# Runs the static checks (lint, format, typecheck, architecture: tools/test/checks.sh), then every
# project's test target (host lane, then the kernel lane under qemu), then prints one summary line over
# the checks and all vitest reports. Exit status is non-zero if any check or suite failed.
set -uo pipefail
cd "$(dirname "$0")/../.."
rm -f packages/*/test-results/vitest*.json bpf/test-results/vitest*.json tools/*/test-results/vitest*.json test-results/checks.json
status=0
# A failed check does not stop the suites: the summary counts each check as one passed/failed entry.
bash tools/test/checks.sh || status=$?
NX_DAEMON=false npx nx run-many -t test --parallel=1 --outputStyle=stream --skip-nx-cache || status=$?
# Projects with a kernel-lane suite expose a `test:kernel` target; the runner boots one VM per project.
NX_DAEMON=false npx nx run-many -t test:kernel --parallel=1 --outputStyle=stream --skip-nx-cache || status=$?
node tools/test/summary.mjs || status=$?
exit $status
