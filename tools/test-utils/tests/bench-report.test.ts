import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import {
  BenchRowError,
  KERNEL_LANE_ROWS,
  meets,
  readRows,
  recordRatio,
  recordReported,
  recordRow,
  recordSkipped,
  renderTable,
  rowsFile,
} from '../src/bench-report.js';

const dirs: string[] = [];
function tmpFile(): string {
  const d = mkdtempSync(join(tmpdir(), 'bench-report-'));
  dirs.push(d);
  return join(d, 'sub', 'rows.jsonl');
}
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
  vi.restoreAllMocks();
});

describe('bench reporter', () => {
  it('appends ratio, figure and skipped rows to one file and reads them back in order', () => {
    vi.spyOn(process.stdout, 'write').mockImplementation(() => true);
    const f = tmpFile();
    recordRatio({ bench: 'routes', metric: '10,000 routes: @veil/netlink vs ip -batch', oursMs: 160, baselineMs: 176 }, f);
    recordRatio(
      { bench: 'routes', metric: '10,000 routes: @veil/netlink vs vishvananda/netlink', oursMs: 200, baselineMs: 150 },
      f,
    );
    recordRow({ bench: 'agent', metric: 'RSS at 10,000 nodes', value: 162, unit: 'MB', target: { op: '<', value: 150 } }, f);
    recordSkipped(
      {
        bench: 'bpf-maps',
        metric: 'vs cilium/ebpf',
        target: { op: '>=', value: 1, unit: '×' },
        reason: 'veil-gobench not built',
      },
      f,
    );
    const rows = readRows(f);
    expect(rows.map((r) => [r.bench, r.status])).toEqual([
      ['routes', 'MET'],
      ['routes', 'NOT MET'],
      ['agent', 'NOT MET'],
      ['bpf-maps', 'SKIPPED'],
    ]);
    expect(rows[0]!.value).toBeCloseTo(1.1, 5);
    expect(rows[0]!.detail).toContain('ours 160.0 ms, baseline 176.0 ms');
    expect(rows[1]!.value).toBeCloseTo(0.75, 5);
    expect(rows[3]!.value).toBeNull();
    expect(rows[3]!.detail).toBe('veil-gobench not built');
  });

  it('prints one table with every row beside its target and a count of each status', () => {
    vi.spyOn(process.stdout, 'write').mockImplementation(() => true);
    const f = tmpFile();
    recordRatio({ bench: 'xfrm', metric: 'add vs ip -batch', oursMs: 50, baselineMs: 85 }, f);
    recordRow({ bench: 'agent', metric: 'p99 event→peer', value: 39, unit: 'ms', target: { op: '<', value: 20 } }, f);
    recordSkipped({ bench: 'wg', metric: 'vs wgctrl-go', target: { op: '>=', value: 1, unit: '×' }, reason: 'no go' }, f);
    const table = renderTable(readRows(f)).split('\n');
    expect(table[0]).toMatch(/^bench\s+lane\s+measure\s+value\s+target\s+status$/);
    expect(table.find((l) => l.startsWith('xfrm'))).toMatch(/add vs ip -batch\s+1\.70×\s+≥ 1\.00×\s+MET$/);
    expect(table.find((l) => l.startsWith('agent'))).toMatch(/39\.0 ms\s+< 20\.0 ms\s+NOT MET$/);
    expect(table.find((l) => l.startsWith('wg'))).toMatch(/-\s+≥ 1\.00×\s+SKIPPED$/);
    expect(table.at(-1)).toBe('3 rows: 1 MET, 1 NOT MET, 1 SKIPPED');
  });

  it('shows a reported figure without a target as REPORTED, and reads it back', () => {
    vi.spyOn(process.stdout, 'write').mockImplementation(() => true);
    const f = tmpFile();
    recordRatio({ bench: 'xfrm', metric: 'add vs ip -batch', oursMs: 50, baselineMs: 85 }, f);
    recordReported({ bench: 'tput', metric: 'pod→pod ÷ underlay', value: 0.31, unit: '×', detail: '2.1 of 6.8 Gbit/s' }, f);
    const rows = readRows(f);
    expect(rows[1]).toMatchObject({ status: 'REPORTED', target: null, value: 0.31, detail: '2.1 of 6.8 Gbit/s' });
    const table = renderTable(rows).split('\n');
    expect(table.find((l) => l.startsWith('tput'))).toMatch(/pod→pod ÷ underlay\s+0\.31×\s+-\s+REPORTED$/);
    expect(table.at(-1)).toBe('2 rows: 1 MET, 0 NOT MET, 0 SKIPPED, 1 REPORTED (no target)');
    expect(() => recordReported({ bench: 't', metric: 'm', value: Number.NaN, unit: 'ms' }, f)).toThrow(BenchRowError);
    // A reported figure that could not be measured still shows, SKIPPED, with no target.
    recordSkipped({ bench: 'rot', metric: 'reclaim ÷ floor', unit: '×', target: null, reason: 'no VM' }, f);
    expect(
      renderTable(readRows(f))
        .split('\n')
        .find((l) => l.startsWith('rot')),
    ).toMatch(/-\s+-\s+SKIPPED$/);
  });

  it('compares with each target operator at the boundary', () => {
    expect(meets(1, { op: '>=', value: 1 })).toBe(true);
    expect(meets(1, { op: '>', value: 1 })).toBe(false);
    expect(meets(1.1, { op: '<=', value: 1.1 })).toBe(true);
    expect(meets(150, { op: '<', value: 150 })).toBe(false);
  });

  it('refuses bad rows with an error naming the field and writes nothing', () => {
    const f = tmpFile();
    const bad = (fn: () => unknown, field: string): void => {
      try {
        fn();
        expect.unreachable(`no error for ${field}`);
      } catch (e) {
        expect(e).toBeInstanceOf(BenchRowError);
        expect((e as BenchRowError).field).toBe(field);
      }
    };
    bad(() => recordRatio({ bench: 'b', metric: 'm', oursMs: 0, baselineMs: 1 }, f), 'oursMs');
    bad(() => recordRatio({ bench: 'b', metric: 'm', oursMs: 1, baselineMs: Number.NaN }, f), 'baselineMs');
    bad(() => recordRow({ bench: '', metric: 'm', value: 1, unit: 'x', target: { op: '>=', value: 1 } }, f), 'bench');
    bad(() => recordRow({ bench: 'b', metric: 'm', value: Infinity, unit: 'x', target: { op: '>=', value: 1 } }, f), 'value');
    bad(() => recordRow({ bench: 'b', metric: 'm', value: 1, unit: 'x', target: { op: '=' as '>=', value: 1 } }, f), 'target.op');
    bad(() => recordSkipped({ bench: 'b', metric: 'm', target: { op: '<', value: 1 }, reason: ' ' }, f), 'reason');
    expect(readRows(f)).toEqual([]);
  });

  it('names the line of a rows file that is not a row', () => {
    const f = tmpFile();
    vi.spyOn(process.stdout, 'write').mockImplementation(() => true);
    recordRatio({ bench: 'b', metric: 'm', oursMs: 1, baselineMs: 1 }, f);
    writeFileSync(f, `${readFileSync(f, 'utf8')}{"not":"a row"}\n`);
    expect(() => readRows(f)).toThrow(/line 2: .* not a bench row/);
  });

  it('writes to $VEIL_BENCH_ROWS, else the results share inside the qemu lane, else .veil-cache', () => {
    expect(rowsFile({ VEIL_BENCH_ROWS: '/x/rows.jsonl', VEIL_KERNEL_LANE: '1', VEIL_RESULTS_DIR: '/r' })).toBe('/x/rows.jsonl');
    expect(rowsFile({ VEIL_KERNEL_LANE: '1', VEIL_RESULTS_DIR: '/r' })).toBe(join('/r', KERNEL_LANE_ROWS));
    expect(rowsFile({})).toMatch(/\/\.veil-cache\/bench-rows\.jsonl$/);
  });
});
