// LPM trie updates of 100,000 prefixes from TypeScript (libbpf-ts) vs cilium/ebpf (tools/go-bench,
// the library Cilium uses) into the same pinned map, same run: BatchUpdate vs updateBatch, and a
// per-key Update loop vs update(). `bpftool batch file` is shown too, relabelled: it re-opens the
// pinned map on every line, so it is not a like-for-like baseline. The Go side opens the pinned map
// and decodes its input before its clock starts. Rows (baseline time ÷ ours, target ≥ 1.00×) go to
// the bench report. Run: npm run bench -w libbpf-ts (needs root, a built package, and bpftool).
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { recordRatio, recordSkipped } from '@veil/test-utils/bench-report';
import { GO_BENCH_MISSING, goBenchBinary, runGoBench } from '@veil/test-utils/go-bench';
import { type BpfMap, type LpmKey, ObjectSpec, bytes, lpmKey, mountBpffs, u32, unmountBpffs } from 'libbpf-ts';

const N = 100_000;
const ROUNDS = 5;
const here = dirname(fileURLToPath(import.meta.url));
const objPath = join(here, '..', '..', 'build', 'fixtures', 'maps.bpf.o');

// struct { __u32 prefixlen; __u8 addr[4]; }: libbpf-ts keys are bytes (IP text is @veil/bpf's).
const lpmV4 = lpmKey(bytes(4));
type Lpm = BpfMap<LpmKey<Buffer>, number, LpmKey<Uint8Array>, number>;

/** 100,000 distinct /24s: 10.0.0.0/24, 10.0.1.0/24, … 11.134.159.0/24. */
const prefixes: LpmKey<Buffer>[] = Array.from({ length: N }, (_, i) => ({
  prefixLen: 24,
  data: Buffer.from([10 + (i >> 16), (i >> 8) & 255, i & 255, 0]),
}));
const entries: [LpmKey<Buffer>, number][] = prefixes.map((p, i) => [p, i]);
/** 11.134.159.7/32: inside the last prefix. */
const lastHost: LpmKey<Buffer> = { prefixLen: 32, data: Buffer.from([11, 134, 159, 7]) };

function clear(m: Lpm): void {
  const keys = [...m.keys()];
  if (keys.length === 0) return;
  if (m.supportsBatch('delete')) m.deleteBatch(keys);
  else for (const k of keys) m.delete(k);
}

function count(m: Lpm): number {
  let n = 0;
  for (const _ of m.keys()) n++;
  return n;
}

/** Runs `fn` into the emptied map and returns its time in ms (`fn` may return its own, measured inside Go). */
function timeIt(m: Lpm, fn: () => number | void): number {
  clear(m);
  (globalThis as { gc?: () => void }).gc?.();
  const t0 = process.hrtime.bigint();
  const own = fn();
  const ms = typeof own === 'number' ? own : Number(process.hrtime.bigint() - t0) / 1e6;
  const n = count(m);
  if (n !== N) throw new Error(`expected ${N} entries after the run, found ${n}`);
  if (m.lookup(lastHost) !== N - 1) throw new Error('last prefix has the wrong value');
  return ms;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] as number;
}

function hex(b: Buffer): string {
  return [...b].map((x) => x.toString(16).padStart(2, '0')).join(' ');
}

function main(): void {
  const dir = mkdtempSync(join(tmpdir(), 'lbts-bench-'));
  mountBpffs(dir);
  const obj = ObjectSpec.open(objPath).load();
  const pin = join(dir, 'lpm_v4');
  const batchFile = join(tmpdir(), `lbts-bench-${process.pid}.txt`);
  const keysFile = join(tmpdir(), `lbts-bench-${process.pid}.keys`);
  const valuesFile = join(tmpdir(), `lbts-bench-${process.pid}.values`);
  const haveGo = goBenchBinary() !== undefined;
  try {
    const m: Lpm = obj.map('lpm_v4', lpmV4, u32);
    m.pin(pin);
    // bpftool input: one "map update pinned <path> key hex … value hex …" per entry.
    const kb = Buffer.alloc(lpmV4.size);
    const vb = Buffer.alloc(u32.size);
    const lines = entries.map(([p, v]) => {
      lpmV4.encode(p, kb, 0);
      u32.encode(v, vb, 0);
      return `map update pinned ${pin} key hex ${hex(kb)} value hex ${hex(vb)}`;
    });
    writeFileSync(batchFile, `${lines.join('\n')}\n`);
    // The same entries as raw key and value bytes for the Go side (the codecs' own encoding).
    const keyBytes = Buffer.alloc(N * lpmV4.size);
    const valueBytes = Buffer.alloc(N * u32.size);
    entries.forEach(([p, v], i) => {
      lpmV4.encode(p, keyBytes, i * lpmV4.size);
      u32.encode(v, valueBytes, i * u32.size);
    });
    writeFileSync(keysFile, keyBytes);
    writeFileSync(valuesFile, valueBytes);
    const go = (mode: string) => (): number =>
      runGoBench(['bpf-lpm', '--pin', pin, '--keys', keysFile, '--values', valuesFile, '--mode', mode]).ms;

    const batched = m.supportsBatch('update');
    const BPFTOOL = 'bpftool batch file (re-opens the map per line)';
    const LOOP = 'update() loop, {prefixLen,data} keys';
    const BATCH = 'updateBatch()';
    const methods: [string, () => number | void][] = [
      [BPFTOOL, () => void execFileSync('bpftool', ['batch', 'file', batchFile], { stdio: 'ignore' })],
      [
        LOOP,
        () => {
          for (const [k, v] of entries) m.update(k, v);
        },
      ],
      [
        `updateMany() (${batched ? 'one batch syscall' : 'loop fallback'})`,
        () => {
          m.updateMany(entries);
        },
      ],
    ];
    if (batched)
      methods.push([
        BATCH,
        () => {
          m.updateBatch(entries);
        },
      ]);
    if (haveGo) {
      methods.push(['cilium/ebpf Update() loop', go('loop')]);
      if (batched) methods.push(['cilium/ebpf BatchUpdate()', go('batch')]);
    }

    const times = new Map<string, number[]>(methods.map(([name]) => [name, []]));
    // Interleave rounds so background noise hits every method alike.
    for (let r = 0; r < ROUNDS; r++) {
      for (const [name, fn] of methods) times.get(name)?.push(timeIt(m, fn));
    }
    const med = (name: string): number => median(times.get(name) ?? []);
    const base = med(BPFTOOL);
    const rows = methods.map(([name]) => ({
      method: name,
      ms: med(name).toFixed(1),
      'entries/s': Math.round(N / (med(name) / 1000)).toLocaleString('en-US'),
      'vs bpftool': `${(base / med(name)).toFixed(2)}x`,
    }));
    console.log(
      `LPM trie (lpm_trie, key 8 B, value 4 B): ${N.toLocaleString('en-US')} /24 prefixes into an empty map, median of ${ROUNDS} rounds`,
    );
    console.table(rows);
    const n = N.toLocaleString('en-US');
    const detail = `median of ${ROUNDS}`;
    const target = { op: '>=' as const, value: 1, unit: '×' };
    const pairs: [string, string, string][] = [
      [
        batched ? BATCH : `updateMany() (loop fallback)`,
        'cilium/ebpf BatchUpdate()',
        `${n} LPM prefixes, batch: libbpf-ts updateBatch vs cilium/ebpf BatchUpdate`,
      ],
      [LOOP, 'cilium/ebpf Update() loop', `${n} LPM prefixes, one call per key: libbpf-ts update() vs cilium/ebpf Update()`],
    ];
    for (const [ours, theirs, metric] of pairs) {
      if (times.has(ours) && times.has(theirs))
        recordRatio({ bench: 'bpf-maps', metric, oursMs: med(ours), baselineMs: med(theirs), detail });
      else
        recordSkipped({
          bench: 'bpf-maps',
          metric,
          target,
          reason: haveGo ? 'this kernel has no batch update for LPM tries' : GO_BENCH_MISSING,
        });
    }
    recordRatio({
      bench: 'bpf-maps',
      metric: `${n} LPM prefixes: libbpf-ts ${batched ? 'updateBatch' : 'update() loop'} vs bpftool batch (re-opens the map per line; not like for like)`,
      oursMs: med(batched ? BATCH : LOOP),
      baselineMs: base,
      detail,
    });
    clear(m);
    m.unpin(pin);
  } finally {
    obj.close();
    for (const f of [batchFile, keysFile, valuesFile]) rmSync(f, { force: true });
    unmountBpffs(dir);
    rmdirSync(dir);
  }
}

main();
