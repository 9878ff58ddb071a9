// Sums the static checks (test-results/checks.json, written by checks.sh: one entry per check) and the
// vitest JSON reports of every project into one closing line: "N passed, N failed, N skipped".
import { readFileSync, readdirSync, existsSync } from 'node:fs';
import { join } from 'node:path';

const roots = ['packages', 'tools'].flatMap((d) => (existsSync(d) ? readdirSync(d).map((p) => join(d, p)) : []));
roots.push('bpf');
let passed = 0,
  failed = 0,
  skipped = 0;
const failures = [];
const checksFile = join('test-results', 'checks.json');
if (existsSync(checksFile)) {
  for (const c of JSON.parse(readFileSync(checksFile, 'utf8'))) {
    if (c.status === 'passed') passed += 1;
    else {
      failed += 1;
      failures.push(`check ${c.name} (npm run ${c.name})`);
    }
  }
}
for (const root of roots) {
  const dir = join(root, 'test-results');
  if (!existsSync(dir)) continue;
  for (const f of readdirSync(dir).filter((f) => /^vitest.*\.json$/.test(f))) {
    const report = JSON.parse(readFileSync(join(dir, f), 'utf8'));
    passed += report.numPassedTests ?? 0;
    failed += report.numFailedTests ?? 0;
    skipped += (report.numPendingTests ?? 0) + (report.numTodoTests ?? 0);
    if (report.success === false && (report.numFailedTests ?? 0) === 0) {
      failed += 1; // a suite that failed to load counts as a failure
      failures.push(`${root}/${f}: suite failed to run`);
    }
    for (const suite of report.testResults ?? []) {
      for (const t of suite.assertionResults ?? []) {
        if (t.status === 'failed') failures.push(`${root}: ${t.fullName}`);
      }
    }
  }
}
for (const f of failures) console.log(`FAILED ${f}`);
console.log(`${passed} passed, ${failed} failed, ${skipped} skipped`);
process.exit(failed > 0 ? 1 : 0);
