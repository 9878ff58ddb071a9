/**
 * `node tools/test-utils/dist/bench-report-cli.js reset`          empty the rows file
 * `node tools/test-utils/dist/bench-report-cli.js print [--json F]` print the table; write rows to F
 * The rows file is rowsFile() from ./bench-report.ts ($VEIL_BENCH_ROWS or .veil-cache/bench-rows.jsonl).
 */
import { rmSync, writeFileSync } from 'node:fs';
import { release } from 'node:os';
import { readRows, renderTable, rowsFile } from './bench-report.js';

function main(argv: string[]): number {
  const [cmd, ...rest] = argv;
  const file = rowsFile();
  if (cmd === 'reset') {
    rmSync(file, { force: true });
    return 0;
  }
  if (cmd === 'print') {
    let json: string | undefined;
    for (let i = 0; i < rest.length; i++) {
      if (rest[i] === '--json' && rest[i + 1]) json = rest[++i];
      else {
        process.stderr.write(`bench-report: unknown argument ${rest[i]} (print [--json FILE])\n`);
        return 2;
      }
    }
    const rows = readRows(file);
    process.stdout.write(`\n=== Benchmark summary (${file}) ===\n${renderTable(rows)}\n`);
    if (json) {
      const out = { generatedAt: new Date().toISOString(), hostKernel: release(), node: process.version, rows };
      writeFileSync(json, `${JSON.stringify(out, null, 2)}\n`);
      process.stdout.write(`rows written to ${json}\n`);
    }
    return 0;
  }
  process.stderr.write('usage: bench-report-cli reset | print [--json FILE]\n');
  return 2;
}

process.exitCode = main(process.argv.slice(2));
