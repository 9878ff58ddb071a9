#!/usr/bin/env bash
# `npm run bench`: every project's bench and bench:kernel target, then ONE table of every row
# (each ratio or figure beside its target, MET / NOT MET / SKIPPED) and the same rows as JSON in
# bench-results.json. Benches append rows through @veil/test-utils/bench-report; a failed bench
# does not hide the table of the others, but the exit status says it failed.
set -uo pipefail
cd "$(dirname "$0")/../.."
export VEIL_BENCH_ROWS="$PWD/.veil-cache/bench-rows.jsonl"
report=tools/test-utils/dist/bench-report-cli.js
node "$report" reset || exit 1
status=0
NX_DAEMON=false npx nx run-many -t bench bench:kernel --parallel=1 --outputStyle=stream "$@" || status=$?
node "$report" print --json bench-results.json || status=$?
exit $status
