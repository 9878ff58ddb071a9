import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { readRows } from '@veil/test-utils/bench-report';
import { AGENT_BENCH, agentBenchRows, recordAgentRows, type PhaseResult } from '../bench/rows.js';

const phase = (over: Partial<PhaseResult>): PhaseResult => ({
  syncMs: 900,
  syncCpuMs: 800,
  updateCpuMs: 1000,
  rssMb: 120,
  heapMb: 60,
  peakRssMb: 140,
  latencies: Array.from({ length: 100 }, (_, i) => i + 1),
  delivered: 100,
  updateWallMs: 500,
  steadyLatencies: Array.from({ length: 100 }, () => 2),
  steadyCpuMs: 50,
  ...over,
});

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
  vi.restoreAllMocks();
});

describe('agent bench rows', () => {
  it('reaches the bench reporter: every issue-15 target judged, p50 and the steady p99 reported', () => {
    vi.spyOn(process.stdout, 'write').mockImplementation(() => true);
    const d = mkdtempSync(join(tmpdir(), 'agent-bench-rows-'));
    dirs.push(d);
    const f = join(d, 'rows.jsonl');
    const agent = phase({ updateCpuMs: 1300, peakRssMb: 160 });
    const base = phase({ syncMs: 700, updateCpuMs: 1000 });
    recordAgentRows(agentBenchRows('no V8 flags', 10000, 100, 100, agent, base), f);
    const rows = readRows(f);
    expect(rows.every((r) => r.bench === AGENT_BENCH)).toBe(true);
    const by = (m: RegExp) => rows.find((r) => m.test(r.metric))!;
    expect(by(/initial sync/)).toMatchObject({ value: 900, status: 'MET', target: { op: '<', value: 2000 } });
    expect(by(/initial sync/).detail).toContain('informer 700.00 ms');
    expect(by(/RSS after sync/).status).toBe('MET');
    expect(by(/peak RSS/).status).toBe('NOT MET');
    expect(by(/p99 event→peer, 100-update burst/)).toMatchObject({ value: 100, status: 'NOT MET' });
    expect(by(/CPU per update/)).toMatchObject({ unit: '×', status: 'NOT MET' });
    expect(by(/CPU per update/).value).toBeCloseTo(1.3, 5);
    expect(by(/p50 event→peer/)).toMatchObject({ status: 'REPORTED', target: null, value: 51 });
    expect(by(/steady 100\/s/)).toMatchObject({ status: 'REPORTED', value: 2 });
    expect(rows.map((r) => r.metric).every((m) => m.startsWith('10000 nodes [no V8 flags]: '))).toBe(true);
  });

  it('shows a figure with no sample as SKIPPED instead of failing the bench', () => {
    vi.spyOn(process.stdout, 'write').mockImplementation(() => true);
    const d = mkdtempSync(join(tmpdir(), 'agent-bench-rows-'));
    dirs.push(d);
    const f = join(d, 'rows.jsonl');
    recordAgentRows(agentBenchRows('x', 10, 10, 100, phase({ steadyLatencies: [] }), phase({ updateCpuMs: 0 })), f);
    const rows = readRows(f);
    expect(rows.find((r) => /steady/.test(r.metric))).toMatchObject({ status: 'SKIPPED', value: null });
    expect(rows.find((r) => /CPU per update/.test(r.metric))).toMatchObject({ status: 'SKIPPED' });
  });
});
