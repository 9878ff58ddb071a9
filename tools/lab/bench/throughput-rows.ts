/**
 * The throughput bench's rows for the repository's bench reporter (@veil/test-utils/bench-report),
 * and the one `veil lab up` failure the bench may accept: kept apart from throughput.ts (which
 * runs the bench when loaded) so a unit test can check them.
 */
import { recordReported, recordRow, recordSkipped, type BenchRow } from '@veil/test-utils/bench-report';

export const THROUGHPUT_BENCH = 'lab-throughput';
/** BPF steering ÷ plain routing into the same WireGuard device. */
export const TARGET_RATIO = 0.95;
/** The built daemon against Debian's, BPF steering, same run. */
export const TARGET_SPEEDUP = 4;

export type DaemonLabel = 'debian' | 'built';

/** What one daemon's lab measured (Gbit/s of the valid rounds). */
export interface DaemonFigures {
  label: DaemonLabel;
  bpf: number[];
  plain: number[];
  underlay: number[];
}

export function median(xs: readonly number[]): number {
  const s = [...xs].sort((x, y) => x - y);
  if (s.length === 0) return NaN;
  const m = s.length >> 1;
  return s.length % 2 ? (s[m] as number) : ((s[m - 1] as number) + (s[m] as number)) / 2;
}

const ratioMetric = (l: DaemonLabel): string => `pod→pod BPF steering ÷ plain routing (${l} wireguard-go)`;
const underlayMetric = (l: DaemonLabel): string => `pod→pod ÷ underlay (${l} wireguard-go, BPF steering)`;
const SPEEDUP_METRIC = "pod→pod built wireguard-go ÷ Debian's (BPF steering)";
const gb = (x: number): string => `${x.toFixed(3)} Gbit/s`;

/**
 * Records every row of the run: per daemon measured, its BPF/plain ratio and its fraction of the
 * underlay (reported); built ÷ Debian when both were. A daemon in `failed` (label → why) gets its
 * rows as SKIPPED with the reason, so the table always has every row.
 */
export function recordThroughputRows(
  results: readonly DaemonFigures[],
  failed: ReadonlyMap<DaemonLabel, string>,
  file?: string,
): BenchRow[] {
  const rows: BenchRow[] = [];
  const ratioTarget = { op: '>=' as const, value: TARGET_RATIO, unit: '×' };
  for (const r of results) {
    const b = median(r.bpf);
    const p = median(r.plain);
    const u = median(r.underlay);
    rows.push(
      Number.isFinite(b / p)
        ? recordRow(
            {
              bench: THROUGHPUT_BENCH,
              metric: ratioMetric(r.label),
              value: b / p,
              unit: '×',
              target: ratioTarget,
              detail: `BPF ${gb(b)}, plain ${gb(p)} (medians of ${r.bpf.length}/${r.plain.length} rounds)`,
            },
            file,
          )
        : recordSkipped(
            { bench: THROUGHPUT_BENCH, metric: ratioMetric(r.label), target: ratioTarget, reason: 'no valid round' },
            file,
          ),
    );
    if (Number.isFinite(b / u))
      rows.push(
        recordReported(
          {
            bench: THROUGHPUT_BENCH,
            metric: underlayMetric(r.label),
            value: b / u,
            unit: '×',
            detail: `${gb(b)} of the underlay's ${gb(u)}`,
          },
          file,
        ),
      );
  }
  for (const [label, why] of failed) {
    rows.push(recordSkipped({ bench: THROUGHPUT_BENCH, metric: ratioMetric(label), target: ratioTarget, reason: why }, file));
  }
  const deb = results.find((r) => r.label === 'debian');
  const built = results.find((r) => r.label === 'built');
  const speedupTarget = { op: '>=' as const, value: TARGET_SPEEDUP, unit: '×' };
  const speedup = deb && built ? median(built.bpf) / median(deb.bpf) : NaN;
  if (deb && built && Number.isFinite(speedup))
    rows.push(
      recordRow(
        {
          bench: THROUGHPUT_BENCH,
          metric: SPEEDUP_METRIC,
          value: speedup,
          unit: '×',
          target: speedupTarget,
          detail: `built ${gb(median(built.bpf))}, Debian's ${gb(median(deb.bpf))}`,
        },
        file,
      ),
    );
  else {
    const why = [...failed].map(([l, w]) => `${l}: ${w}`).join('; ') || 'a daemon was not measured';
    rows.push(recordSkipped({ bench: THROUGHPUT_BENCH, metric: SPEEDUP_METRIC, target: speedupTarget, reason: why }, file));
  }
  return rows;
}

/** `veil lab up`'s failure line for UDP on the tunnel port that does not parse as WireGuard. */
const NOT_WIREGUARD = /packets on the tunnel port are not WireGuard messages between node addresses$/;

/**
 * Whether the bench may use a lab whose `veil lab up --keep --json` failed. Only for the built
 * wireguard-go, and only when every failure is the capture's "not WireGuard" count: that daemon
 * sends UDP GSO batches, which the capture on the veth underlay sees as one datagram holding
 * several WireGuard messages (segmented only on a real NIC). Every other check of `lab up`
 * (pings, TCP, no cleartext pod packet, no probe marker, encrypted packets seen) must have passed,
 * and each round still checks the underlay for pod addresses in clear.
 */
export function acceptLabUp(label: DaemonLabel, stdout: string): { ok: boolean; why: string } {
  if (label !== 'built') return { ok: false, why: "only the built daemon's GSO batches are accepted" };
  let s: { ok?: boolean; failures?: unknown; kept?: boolean; capture?: { encryptedPackets?: number } };
  try {
    s = JSON.parse(stdout) as typeof s;
  } catch {
    return { ok: false, why: 'no JSON summary from lab up' };
  }
  const failures = Array.isArray(s.failures) ? s.failures.map(String) : [];
  if (s.kept !== true) return { ok: false, why: 'the lab was not kept' };
  if (failures.length === 0) return { ok: false, why: 'no failure listed' };
  const other = failures.filter((f) => !NOT_WIREGUARD.test(f));
  if (other.length > 0) return { ok: false, why: other.join('; ') };
  if (!(Number(s.capture?.encryptedPackets) > 0)) return { ok: false, why: 'no encrypted packets seen' };
  return { ok: true, why: failures.join('; ') };
}
