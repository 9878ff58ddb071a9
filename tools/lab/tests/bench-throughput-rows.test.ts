import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { readRows } from '@veil/test-utils/bench-report';
import { THROUGHPUT_BENCH, acceptLabUp, recordThroughputRows } from '../bench/throughput-rows.js';

const dirs: string[] = [];
function rowsFile(): string {
  const d = mkdtempSync(join(tmpdir(), 'tput-rows-'));
  dirs.push(d);
  return join(d, 'rows.jsonl');
}
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
  vi.restoreAllMocks();
});

const NOT_WG = '12 packets on the tunnel port are not WireGuard messages between node addresses';
const summary = (over: object): string =>
  JSON.stringify({ ok: false, kept: true, failures: [NOT_WG], capture: { encryptedPackets: 40 }, ...over });

describe('throughput bench rows', () => {
  it('reach the bench reporter: BPF÷plain per daemon, fraction of the underlay (reported), built÷Debian', () => {
    vi.spyOn(process.stdout, 'write').mockImplementation(() => true);
    const f = rowsFile();
    recordThroughputRows(
      [
        { label: 'debian', bpf: [0.5, 0.6, 0.4], plain: [0.5, 0.5, 0.5], underlay: [10] },
        { label: 'built', bpf: [2.4, 2.2, 2.3], plain: [2.5, 2.5, 2.5], underlay: [9] },
      ],
      new Map(),
      f,
    );
    const rows = readRows(f);
    expect(rows.every((r) => r.bench === THROUGHPUT_BENCH)).toBe(true);
    expect(rows.map((r) => [r.metric, r.status])).toEqual([
      ['pod→pod BPF steering ÷ plain routing (debian wireguard-go)', 'MET'],
      ['pod→pod ÷ underlay (debian wireguard-go, BPF steering)', 'REPORTED'],
      ['pod→pod BPF steering ÷ plain routing (built wireguard-go)', 'NOT MET'],
      ['pod→pod ÷ underlay (built wireguard-go, BPF steering)', 'REPORTED'],
      ["pod→pod built wireguard-go ÷ Debian's (BPF steering)", 'MET'],
    ]);
    expect(rows[2]!.value).toBeCloseTo(2.3 / 2.5, 6);
    expect(rows[3]!.value).toBeCloseTo(2.3 / 9, 6);
    expect(rows[4]!.value).toBeCloseTo(2.3 / 0.5, 6);
  });

  it('shows a daemon whose lab failed as SKIPPED with the reason, and the speed-up row too', () => {
    vi.spyOn(process.stdout, 'write').mockImplementation(() => true);
    const f = rowsFile();
    recordThroughputRows(
      [{ label: 'debian', bpf: [0.5], plain: [0.5], underlay: [10] }],
      new Map([['built', 'lab up: exited 1']]),
      f,
    );
    const rows = readRows(f);
    expect(rows.filter((r) => r.status === 'SKIPPED').map((r) => [r.metric, r.detail])).toEqual([
      ['pod→pod BPF steering ÷ plain routing (built wireguard-go)', 'lab up: exited 1'],
      ["pod→pod built wireguard-go ÷ Debian's (BPF steering)", 'built: lab up: exited 1'],
    ]);
  });

  it("accepts a failed lab up only for the built daemon and only when the capture's not-WireGuard count is all that failed", () => {
    expect(acceptLabUp('built', summary({}))).toEqual({ ok: true, why: NOT_WG });
    expect(acceptLabUp('debian', summary({})).ok).toBe(false);
    expect(acceptLabUp('built', summary({ failures: [NOT_WG, '3 cleartext pod packets (300 bytes) on the underlay'] }))).toEqual({
      ok: false,
      why: '3 cleartext pod packets (300 bytes) on the underlay',
    });
    expect(acceptLabUp('built', summary({ kept: false })).ok).toBe(false);
    expect(acceptLabUp('built', summary({ capture: { encryptedPackets: 0 } })).ok).toBe(false);
    expect(acceptLabUp('built', summary({ failures: [] })).ok).toBe(false);
    expect(acceptLabUp('built', 'not json').ok).toBe(false);
  });
});
