// LPM trie update throughput from TypeScript vs `bpftool batch file`, same run, same map type.
// Run: npm run bench -w libbpf-ts (needs root, a built package, and bpftool).
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
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

function timeIt(m: Lpm, fn: () => void): number {
  clear(m);
  (globalThis as { gc?: () => void }).gc?.();
  const t0 = process.hrtime.bigint();
  fn();
  const ns = Number(process.hrtime.bigint() - t0);
  const n = count(m);
  if (n !== N) throw new Error(`expected ${N} entries after the run, found ${n}`);
  if (m.lookup(lastHost) !== N - 1) throw new Error('last prefix has the wrong value');
  return N / (ns / 1e9);
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

    const batched = m.supportsBatch('update');
    const methods: [string, () => void][] = [
      ['bpftool batch file (baseline)', () => execFileSync('bpftool', ['batch', 'file', batchFile], { stdio: 'ignore' })],
      [
        'update() loop, {prefixLen,data} keys',
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
        'updateBatch()',
        () => {
          m.updateBatch(entries);
        },
      ]);

    const rates = new Map<string, number[]>(methods.map(([name]) => [name, []]));
    // Interleave rounds so background noise hits every method alike.
    for (let r = 0; r < ROUNDS; r++) {
      for (const [name, fn] of methods) rates.get(name)?.push(timeIt(m, fn));
    }
    const base = median(rates.get(methods[0]![0]) ?? []);
    const rows = methods.map(([name]) => {
      const rate = median(rates.get(name) ?? []);
      return {
        method: name,
        'entries/s': Math.round(rate).toLocaleString('en-US'),
        'vs bpftool': `${(rate / base).toFixed(2)}x`,
      };
    });
    console.log(
      `LPM trie (lpm_trie, key 8 B, value 4 B): ${N.toLocaleString('en-US')} /24 prefixes into an empty map, median of ${ROUNDS} rounds`,
    );
    console.table(rows);
    clear(m);
    m.unpin(pin);
  } finally {
    obj.close();
    rmSync(batchFile, { force: true });
    unmountBpffs(dir);
    rmdirSync(dir);
  }
}

main();
