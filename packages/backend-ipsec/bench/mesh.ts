// Benchmark: programming a full mesh of N peers (default 1,000) the way the backend does it
// (dump the kernel's SAD/SPD, planDiff against the desired set, applyPlan over netlink through
// node-xfrm-bindings) vs `ip -batch` adding the same objects, in the same run, each side into a
// fresh network namespace of its own.
//
//   npm run bench -w @veil/backend-ipsec          host kernel: policies only (it has no ESP)
//   npm run bench:kernel -w @veil/backend-ipsec   qemu lane (Debian 6.1 with ESP): states + policies
//
// Also beside vishvananda/netlink (tools/go-bench, the library Cilium uses: XfrmPolicyAdd and
// XfrmStateAdd per object, in the same fail-closed order; its socket is opened and its input
// decoded before its clock starts).
// Reports medians and the ratios ip-batch / veil and netlink-go / veil (>= 1.00: Veil is at least
// as fast), and records them in the bench report.
// Not a test: nothing here runs under `npm test`.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { XfrmClient, type XfrmPolicy, type XfrmState } from 'node-xfrm-bindings';
import { recordRatio, recordSkipped } from '@veil/test-utils/bench-report';
import { GO_BENCH_MISSING, goBenchBinary, runGoBench } from '@veil/test-utils/go-bench';
import { keygen, parseKeyLine } from '../src/keyfile.js';
import { basePolicies, peerObjects, type LocalNode, type RemoteNode, type XfrmObjects } from '../src/model.js';
import { applyPlan, dumpXfrm, planDiff, planSize } from '../src/xfrm-sync.js';

const PEERS = Number(process.env.IPSEC_BENCH_PEERS ?? 1000);
const ROUNDS = Number(process.env.IPSEC_BENCH_ROUNDS ?? 7);
// `states`: states and policies (needs ESP); `policies`: policies only (the host kernel).
const WHAT = process.argv.includes('--states') ? 'states+policies' : 'policies';
const NS_PREFIX = `veilbench-ipsec-${process.pid}`;

function ipv4(i: number): string {
  return `100.${64 + (i >> 16)}.${(i >> 8) & 0xff}.${i & 0xff}`;
}

/** Node 1's view of a mesh with nodes 2..N+1: base policies, and per peer OUT+IN state and OUT policy. */
function mesh(): XfrmObjects {
  const key = parseKeyLine(keygen({ spi: 3 }));
  const local: LocalNode = { nodeId: 1, ipv4: ipv4(1), bootId: '0b1d6a3e-5d7c-4c2a-9f0e-3a1b2c3d4e5f', epoch: 0 };
  const states: XfrmState[] = [];
  const policies: XfrmPolicy[] = basePolicies();
  for (let i = 0; i < PEERS; i++) {
    const peer: RemoteNode = {
      name: `n${i + 2}`,
      nodeId: i + 2,
      ipv4: ipv4(i + 2),
      bootId: '7c9e6679-7425-40de-944b-e07fc1f90ae7',
      epoch: 0,
    };
    const o = peerObjects(local, peer, [key]);
    states.push(...o.states);
    policies.push(...o.policies);
  }
  return WHAT === 'policies' ? { states: [], policies } : { states, policies };
}

const hex = (n: number): string => `0x${(n >>> 0).toString(16)}`;
const bytes = (b: Uint8Array): string => `0x${Buffer.from(b).toString('hex')}`;
const markArgs = (m: { value: number; mask?: number } | undefined): string =>
  m ? ` mark ${hex(m.value)} mask ${hex(m.mask ?? 0xffffffff)}` : '';

/** The same state as an `ip xfrm state add` batch line (AEAD, as the mesh uses). */
function stateLine(s: XfrmState): string {
  if (!s.aead) throw new Error('the benchmark mesh uses AEAD keys only');
  return (
    `xfrm state add src ${s.src} dst ${s.dst} proto esp spi ${hex(s.spi)} reqid ${hex(s.reqid ?? 0)} mode ${s.mode}` +
    `${s.esn ? ' flag esn' : ''} replay-window ${s.replayWindow ?? 0}` +
    ` aead ${s.aead.name} ${bytes(s.aead.key)} ${s.aead.icvLen}${markArgs(s.mark)}`
  );
}

/** The same policy as an `ip xfrm policy add` batch line. */
function policyLine(p: XfrmPolicy): string {
  let line = `xfrm policy add src ${p.selector.src} dst ${p.selector.dst} dir ${p.dir} priority ${p.priority ?? 0}`;
  if (p.action === 'block') line += ' action block';
  line += markArgs(p.mark);
  for (const t of p.templates ?? []) {
    line += ` tmpl src ${t.src} dst ${t.dst} proto ${t.proto} reqid ${hex(t.reqid ?? 0)} mode ${t.mode}${t.optional ? ' level use' : ''}`;
  }
  return line;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? (s[m] as number) : ((s[m - 1] as number) + (s[m] as number)) / 2;
}

let nsCount = 0;
function freshNs(): string {
  const ns = `${NS_PREFIX}-${nsCount++}`;
  execFileSync('ip', ['netns', 'add', ns]);
  return ns;
}

async function counts(ns: string): Promise<{ states: number; policies: number }> {
  const x = XfrmClient.open({ netns: ns });
  try {
    const d = await dumpXfrm(x);
    return { states: d.states.length, policies: d.policies.length };
  } finally {
    x.close();
  }
}

async function main(): Promise<void> {
  const desired = mesh();
  const dir = mkdtempSync(join(process.env.VEIL_RESULTS_DIR ?? tmpdir(), 'ipsecbench-'));
  const batch = join(dir, 'mesh.batch');
  // Fail-closed order, as applyPlan writes: BLOCK policy, states, then the other policies.
  const block = desired.policies.filter((p) => p.action === 'block');
  const rest = desired.policies.filter((p) => p.action !== 'block');
  writeFileSync(batch, [...block.map(policyLine), ...desired.states.map(stateLine), ...rest.map(policyLine)].join('\n') + '\n', {
    mode: 0o600,
  });
  const want = { states: desired.states.length, policies: desired.policies.length };
  // The same objects for veil-gobench (key bytes as hex).
  const goFile = join(dir, 'mesh.json');
  writeFileSync(
    goFile,
    // The replacer reads the raw value: a Buffer's toJSON() has already run on `v`.
    JSON.stringify(desired, function (this: Record<string, unknown>, k: string, v: unknown) {
      const raw = this[k];
      return raw instanceof Uint8Array ? Buffer.from(raw).toString('hex') : v;
    }),
    { mode: 0o600 },
  );
  const haveGo = goBenchBinary() !== undefined;
  const go: number[] = [];
  const kernel = execFileSync('uname', ['-r'], { encoding: 'utf8' }).trim();
  console.log(
    `IPsec mesh benchmark: ${PEERS} peers, ${want.states} states + ${want.policies} policies, ${ROUNDS} rounds, kernel ${kernel}`,
  );
  const veil: number[] = [];
  const ipb: number[] = [];
  let writes = 0;
  const used: string[] = [];
  try {
    // Warm-up, not measured, both sides with the whole mesh: the encoder's and planDiff's JIT (as
    // in a long-running agent), the ip binary in the page cache, and the cipher's first
    // allocation (about 2.7 s for the first GCM state under TCG).
    {
      const ns = freshNs();
      used.push(ns);
      const x = XfrmClient.open({ netns: ns });
      await applyPlan(
        x,
        planDiff(desired, await dumpXfrm(x), () => true),
      );
      x.close();
      const ns2 = freshNs();
      used.push(ns2);
      execFileSync('ip', ['-n', ns2, '-batch', batch]);
      for (const n of used.splice(0)) execFileSync('ip', ['netns', 'del', n]);
    }
    for (let r = 0; r < ROUNDS; r++) {
      // Alternate the order so drift on the shared machine hits both sides alike.
      const sides = haveGo ? ['veil', 'ip', 'go'] : ['veil', 'ip'];
      for (const side of r % 2 ? sides.reverse() : sides) {
        const ns = freshNs();
        used.push(ns);
        const x = side === 'veil' ? XfrmClient.open({ netns: ns }) : undefined;
        let goMs = 0;
        const t0 = performance.now();
        if (side === 'go') {
          goMs = runGoBench(['xfrm', '--op', 'add', '--file', goFile, '--netns', ns]).ms;
        } else if (x) {
          // What the backend does on init/repair: dump, diff, write the difference.
          const plan = planDiff(desired, await dumpXfrm(x), () => true);
          writes = planSize(plan);
          await applyPlan(x, plan);
        } else {
          execFileSync('ip', ['-n', ns, '-batch', batch]);
        }
        const ms = performance.now() - t0;
        x?.close();
        if (side === 'go') go.push(goMs);
        else (side === 'veil' ? veil : ipb).push(ms);
        const got = await counts(ns);
        if (got.states !== want.states || got.policies !== want.policies) {
          throw new Error(
            `${side}: netns ${ns} has ${got.states} states / ${got.policies} policies, expected ${want.states} / ${want.policies}`,
          );
        }
        execFileSync('ip', ['netns', 'del', ns]);
        used.pop();
      }
    }
  } finally {
    for (const ns of used) execFileSync('ip', ['netns', 'del', ns]);
    rmSync(dir, { recursive: true, force: true });
  }
  const fmt = (xs: number[]): string => xs.map((x) => x.toFixed(0)).join('/');
  const v = median(veil);
  const b = median(ipb);
  console.log(`  veil (dump + planDiff + applyPlan, ${writes} writes): ${fmt(veil)} ms; ip -batch: ${fmt(ipb)} ms`);
  const nn = PEERS.toLocaleString('en-US');
  const detail = `median of ${ROUNDS}; Veil side = dump + planDiff + applyPlan; kernel ${execFileSync('uname', ['-r'], { encoding: 'utf8' }).trim()}`;
  recordRatio({
    bench: 'ipsec-mesh',
    metric: `${nn}-peer mesh, ${WHAT}: backend-ipsec vs ip -batch`,
    oursMs: v,
    baselineMs: b,
    detail,
  });
  const goMetric = `${nn}-peer mesh, ${WHAT}: backend-ipsec vs vishvananda/netlink`;
  if (haveGo) {
    const g = median(go);
    console.log(`  vishvananda/netlink: ${fmt(go)} ms, median ${g.toFixed(0)} ms: ratio netlink-go/veil = ${(g / v).toFixed(2)}`);
    recordRatio({ bench: 'ipsec-mesh', metric: goMetric, oursMs: v, baselineMs: g, detail });
  } else {
    recordSkipped({ bench: 'ipsec-mesh', metric: goMetric, target: { op: '>=', value: 1, unit: '×' }, reason: GO_BENCH_MISSING });
  }
  console.log(
    `  ${WHAT}: veil median ${v.toFixed(0)} ms, ip -batch median ${b.toFixed(0)} ms: ratio ip-batch/veil = ${(b / v).toFixed(2)} (>= 1.00 means at least as fast as ip -batch)`,
  );
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
