#!/usr/bin/env bash
# The static guard rails (issue 10): lint, format check, typecheck (sources + tests of every package) and
# the architecture rules. Runs all four even when one fails, prints one line per check, and records the
# results in test-results/checks.json for tools/test/summary.mjs. Exit status is non-zero if any failed.
set -uo pipefail
export NX_DAEMON=false
cd "$(dirname "$0")/../.."
mkdir -p test-results
results=()
failed=0
for check in lint format:check typecheck arch; do
  echo "[check] npm run ${check}"
  start=$SECONDS
  if npm run --silent "${check}"; then verdict=passed; else verdict=failed; failed=$((failed + 1)); fi
  results+=("{\"name\":\"${check}\",\"status\":\"${verdict}\",\"seconds\":$((SECONDS - start))}")
done
(IFS=,; echo "[${results[*]}]") > test-results/checks.json
# One clear line per check, together, after the (possibly long) tool output above.
node -e 'for (const c of JSON.parse(require("fs").readFileSync("test-results/checks.json","utf8"))) console.log(`check ${c.name}: ${c.status === "passed" ? "PASS" : "FAIL"} (${c.seconds}s)`)'
exit $((failed > 0))
