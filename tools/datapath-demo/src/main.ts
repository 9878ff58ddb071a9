/**
 * The interim main job (`npm start`): shows Veil's shared BPF programs making their decisions.
 *
 * 1. Loads the trace build of the programs and runs crafted packets through BPF_PROG_TEST_RUN,
 *    one per decision, and prints what each program did (verdict, reason, redirect target, mark).
 * 2. Builds two "nodes" in network namespaces with a pod behind each and wireguard-go between
 *    them, attaches the production programs with libbpf-ts, and sends real pings (IPv4, IPv6,
 *    and an oversized DF ping that must come back as "Frag needed").
 * 3. Prints the per-node counters, then removes everything it made, also on error or Ctrl-C.
 *
 * Exit status: 0 when every decision and ping came out as expected, 1 otherwise, 2 when the
 * machine cannot run it (not root, tools missing).
 */
import { execFileSync } from 'node:child_process';
import { type CounterRecord, type Datapath, loadDatapath, REASONS } from '@veil/bpf';
import { attachLabDatapath, type LabNode, loadLabDatapath, TwoNodeLab } from '@veil/bpf/testing';
import { fillDemoIpcache, runScenarios, verdictName } from './scenarios.js';

const cleanups: Array<() => void | Promise<void>> = [];
let cleaning: Promise<void> | undefined;

function cleanup(): Promise<void> {
  cleaning ??= (async () => {
    for (const fn of cleanups.reverse()) {
      try {
        await fn();
      } catch (e) {
        console.error(`cleanup: ${(e as Error).message}`);
      }
    }
  })();
  return cleaning;
}

let interrupted: string | undefined;
for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.on(sig, () => {
    if (interrupted) return;
    interrupted = sig;
    console.error(`\n${sig}: cleaning up`);
    void cleanup().then(() => process.exit(130));
  });
}

/** Lets a pending SIGINT/SIGTERM handler run between (synchronous) steps; never resolves once interrupted. */
async function checkpoint(): Promise<void> {
  await new Promise<void>((r) => setImmediate(r));
  if (interrupted) await new Promise<never>(() => {});
}

function have(bin: string): boolean {
  try {
    execFileSync('sh', ['-c', `command -v ${bin}`], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => c.padEnd(widths[i] ?? 0))
      .join('  ')
      .trimEnd();
  return [line(header), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)].join('\n');
}

function counterRows(c: CounterRecord): string[][] {
  return REASONS.filter((r) => c[r].packets > 0n).map((r) => [r, String(c[r].packets), String(c[r].bytes)]);
}

async function main(): Promise<number> {
  if (process.getuid?.() !== 0) {
    console.error('datapath-demo needs root: it creates network namespaces and loads BPF programs.');
    return 2;
  }
  let failures = 0;

  // ---- 1. Every decision, through BPF_PROG_TEST_RUN on the trace build ----
  const traced = loadDatapath({ trace: true, ipcacheMaxEntries: 1024 });
  cleanups.push(() => traced.close());
  fillDemoIpcache(traced);
  const results = runScenarios(traced);
  console.log('Veil datapath decisions (BPF_PROG_TEST_RUN, obj/veil_trace.bpf.o; wg ifindex 42, pod veth 77, MTU 1420)\n');
  console.log(
    table(
      ['', 'program', 'packet', 'verdict', 'reason', 'redirect', 'mark', 'detail'],
      results.map((r) => [
        r.ok ? '✓' : '✗',
        r.scenario.program,
        r.scenario.name,
        verdictName(r.verdict),
        r.reason,
        r.redirect,
        r.mark ? `0x${r.mark.toString(16).padStart(8, '0')}` : '',
        r.note || (r.ok ? '' : `expected ${r.scenario.expect.reason}`),
      ]),
    ),
  );
  failures += results.filter((r) => !r.ok).length;
  traced.close();
  await checkpoint();

  // ---- 2. Real packets between two namespaced nodes over wireguard-go ----
  const missing = ['wireguard-go', 'wg', 'ping'].filter((b) => !have(b));
  if (missing.length) {
    console.error(`\ncannot run the live part: ${missing.join(', ')} not installed`);
    return 2;
  }
  console.log('\nBuilding two nodes in network namespaces (pod ⇄ veth ⇄ node ⇄ wireguard-go ⇄ underlay ⇄ …) …');
  await checkpoint();
  const lab = await TwoNodeLab.create({ prefix: 'veildemo' });
  cleanups.push(() => lab.destroy());
  const dps = new Map<LabNode, Datapath>();
  for (const [n, peer, peerId] of [
    [lab.a, lab.b, 2],
    [lab.b, lab.a, 1],
  ] as const) {
    const dp = loadLabDatapath(n, peer, peerId, 1024);
    cleanups.push(() => dp.close());
    dps.set(n, dp);
    for (const link of attachLabDatapath(n, dp)) {
      cleanups.push(() => {
        link.detach();
      });
    }
    console.log(
      `  node ${n.id}: netns ${n.netns}, pod ${n.pod4} / ${n.pod6}, wg ${n.wgDev} (ifindex ${n.wgIfindex}), ` +
        `from-pod on ${n.hostVeth}, from-tunnel on ${n.wgDev}, to-wire on ${n.underlayDev}`,
    );
  }

  const pings: Array<{ what: string; ns: string; args: string[]; want: RegExp }> = [
    {
      what: `IPv4 ping pod-a → pod-b (${lab.b.pod4})`,
      ns: lab.a.podNetns,
      args: ['-c', '3', '-i', '0.2', '-W', '3', lab.b.pod4],
      want: /3 received/,
    },
    {
      what: `IPv6 ping pod-b → pod-a (${lab.a.pod6})`,
      ns: lab.b.podNetns,
      args: ['-6', '-c', '3', '-i', '0.2', '-W', '3', lab.a.pod6],
      want: /3 received/,
    },
    {
      what: 'IPv4 ping -M do -s 1472 (1500 B > MTU 1420)',
      ns: lab.a.podNetns,
      args: ['-M', 'do', '-c', '2', '-i', '0.2', '-W', '2', '-s', '1472', lab.b.pod4],
      want: /Frag needed|message too long/i,
    },
    {
      what: 'IPv4 ping -M do -s 1392 (exactly 1420 B)',
      ns: lab.a.podNetns,
      args: ['-M', 'do', '-c', '1', '-W', '3', '-s', '1392', lab.b.pod4],
      want: /1 received/,
    },
  ];
  console.log('');
  const rows: string[][] = [];
  for (const p of pings) {
    await checkpoint();
    const r = lab.tryExec(p.ns, 'ping', p.args, 20_000);
    const ok = p.want.test(r.out);
    if (!ok) failures++;
    const summary =
      /Frag needed[^\n]*/.exec(r.out)?.[0] ??
      /message too long[^\n]*/.exec(r.out)?.[0] ??
      /\d+ packets transmitted[^\n]*/.exec(r.out)?.[0] ??
      r.out.trim().split('\n').pop() ??
      '';
    rows.push([ok ? '✓' : '✗', p.what, summary.trim()]);
  }
  console.log(table(['', 'real traffic', 'result'], rows));
  await checkpoint();
  const learned = lab.tryExec(lab.a.podNetns, 'ip', ['route', 'get', lab.b.pod4]).out.match(/mtu \d+/)?.[0];
  console.log(`\npod-a's route cache for ${lab.b.pod4} after the ICMP: ${learned ?? '(no PMTU entry)'}`);
  if (learned !== 'mtu 1420') failures++;
  await checkpoint();
  const wg = lab.exec(lab.a.netns, 'wg', ['show', lab.a.wgDev, 'transfer']).trim();
  console.log(`wireguard-go on node a, bytes rx/tx with its peer: ${wg.split('\t').slice(1).join(' / ')}`);

  for (const n of [lab.a, lab.b]) {
    console.log(`\ncounters, node ${n.id} (summed over CPUs)`);
    console.log(table(['reason', 'packets', 'bytes'], counterRows((dps.get(n) as Datapath).readCounters())));
  }

  console.log(failures === 0 ? '\nAll decisions as expected.' : `\n${failures} check(s) did not come out as expected.`);
  return failures === 0 ? 0 : 1;
}

main()
  .then(async (code) => {
    await cleanup();
    process.exit(code);
  })
  .catch(async (e: unknown) => {
    console.error(e instanceof Error ? (e.stack ?? e.message) : e);
    await cleanup();
    process.exit(1);
  });
