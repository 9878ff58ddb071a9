// Installs and removes 10,000 XFRM policies in a namespace this bench creates, through
// node-xfrm-bindings, `ip -batch` and vishvananda/netlink (tools/go-bench, the library Cilium
// uses; its socket is opened before its clock starts), in the same run, and records the ratios
// (baseline time ÷ binding time, target ≥ 1.00×) in the bench report.
//   npm run bench -w node-xfrm-bindings   (needs root)
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { recordRatio, recordSkipped } from '@veil/test-utils/bench-report';
import { GO_BENCH_MISSING, goBenchBinary, runGoBench } from '@veil/test-utils/go-bench';
import { XfrmClient, type XfrmPolicy, type XfrmPolicyId } from '../src/index.js';

const N = Number(process.env.XFRM_BENCH_N ?? 10_000);
const ROUNDS = Number(process.env.XFRM_BENCH_ROUNDS ?? 3);

function policyAt(i: number): XfrmPolicy {
  const hi = (i >> 8) & 0xff;
  const lo = i & 0xff;
  return {
    selector: { src: `10.${hi}.${lo}.0/24`, dst: `10.128.${hi}.${lo}/32` },
    dir: 'out',
    priority: 100,
    templates: [{ src: '192.0.2.1', dst: '192.0.2.2', proto: 'esp', mode: 'tunnel', reqid: 1 }],
  };
}

function ipAddLine(p: XfrmPolicy): string {
  const t = p.templates![0]!;
  return `xfrm policy add src ${p.selector.src} dst ${p.selector.dst} dir ${p.dir} priority ${p.priority} tmpl src ${t.src} dst ${t.dst} proto esp reqid ${t.reqid} mode tunnel`;
}
function ipDelLine(p: XfrmPolicy): string {
  return `xfrm policy delete src ${p.selector.src} dst ${p.selector.dst} dir ${p.dir}`;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

async function main(): Promise<void> {
  if (process.getuid?.() !== 0) throw new Error('the XFRM bench needs root (it creates a network namespace)');
  const ns = `veiltest-xfbench-${randomBytes(3).toString('hex')}`;
  const dir = mkdtempSync(join(tmpdir(), 'xfrm-bench-'));
  execFileSync('ip', ['netns', 'add', ns]);
  const xfrm = XfrmClient.open({ netns: ns });
  try {
    const policies = Array.from({ length: N }, (_, i) => policyAt(i));
    const ids: XfrmPolicyId[] = policies.map((p) => ({ selector: p.selector, dir: p.dir }));
    const addFile = join(dir, 'add.batch');
    const delFile = join(dir, 'del.batch');
    writeFileSync(addFile, policies.map(ipAddLine).join('\n') + '\n');
    writeFileSync(delFile, policies.map(ipDelLine).join('\n') + '\n');
    const goFile = join(dir, 'policies.json');
    writeFileSync(goFile, JSON.stringify({ states: [], policies }));
    const haveGo = goBenchBinary() !== undefined;

    const count = async (): Promise<number> => (await xfrm.getSpdInfo()).outCount;
    const res = {
      ipAdd: [] as number[],
      ipDel: [] as number[],
      nlAdd: [] as number[],
      nlDel: [] as number[],
      nlDelSel: [] as number[],
      goAdd: [] as number[],
      goDel: [] as number[],
    };

    // Warm-up (JIT, kernel hash resize) with one small pass of each.
    await xfrm.addPolicies(policies.slice(0, 500));
    await xfrm.deletePolicies(ids.slice(0, 500));

    for (let r = 0; r < ROUNDS; r++) {
      let t = process.hrtime.bigint();
      execFileSync('ip', ['-n', ns, '-batch', addFile]);
      res.ipAdd.push(Number(process.hrtime.bigint() - t) / 1e6);
      if ((await count()) !== N) throw new Error('ip -batch did not install every policy');
      t = process.hrtime.bigint();
      execFileSync('ip', ['-n', ns, '-batch', delFile]);
      res.ipDel.push(Number(process.hrtime.bigint() - t) / 1e6);
      if ((await count()) !== 0) throw new Error('ip -batch did not remove every policy');

      t = process.hrtime.bigint();
      await xfrm.addPolicies(policies);
      res.nlAdd.push(Number(process.hrtime.bigint() - t) / 1e6);
      if ((await count()) !== N) throw new Error('the binding did not install every policy');
      t = process.hrtime.bigint();
      await xfrm.deletePolicies(ids);
      res.nlDel.push(Number(process.hrtime.bigint() - t) / 1e6);
      if ((await count()) !== 0) throw new Error('the binding did not remove every policy');

      // Same method as ip -batch: one delete by selector per policy (no index resolution).
      await xfrm.addPolicies(policies);
      t = process.hrtime.bigint();
      await xfrm.deletePolicies(ids, { resolveIndexes: false });
      res.nlDelSel.push(Number(process.hrtime.bigint() - t) / 1e6);
      if ((await count()) !== 0) throw new Error('the binding did not remove every policy (by selector)');

      if (haveGo) {
        res.goAdd.push(runGoBench(['xfrm', '--op', 'add', '--file', goFile, '--netns', ns]).ms);
        if ((await count()) !== N) throw new Error('vishvananda/netlink did not install every policy');
        res.goDel.push(runGoBench(['xfrm', '--op', 'del', '--file', goFile, '--netns', ns]).ms);
        if ((await count()) !== 0) throw new Error('vishvananda/netlink did not remove every policy');
      }
    }

    const ip = median(res.ipAdd) + median(res.ipDel);
    const nl = median(res.nlAdd) + median(res.nlDel);
    const f = (x: number): string => `${x.toFixed(0)} ms`;
    console.log(`XFRM policies: ${N} installed then removed, median of ${ROUNDS} rounds, netns ${ns}`);
    console.log(`  ip -batch          add ${f(median(res.ipAdd))}  delete ${f(median(res.ipDel))}  total ${f(ip)}`);
    console.log(
      `  node-xfrm-bindings add ${f(median(res.nlAdd))}  delete ${f(median(res.nlDel))}  total ${f(nl)}  (deletes resolved to indexes by one dump)`,
    );
    const nlSel = median(res.nlAdd) + median(res.nlDelSel);
    console.log(`  binding, selector deletes like ip   delete ${f(median(res.nlDelSel))}  total ${f(nlSel)}`);
    console.log(
      `  ratio (ip -batch time / binding time): ${(ip / nl).toFixed(2)}x  (>= 1.00 means the binding is at least as fast)`,
    );
    console.log(
      `    add only: ${(median(res.ipAdd) / median(res.nlAdd)).toFixed(2)}x; with selector deletes (same kernel work as ip): ${(ip / nlSel).toFixed(2)}x`,
    );
    const n = N.toLocaleString('en-US');
    const med = `median of ${ROUNDS}`;
    recordRatio({
      bench: 'xfrm-policies',
      metric: `${n} policies add: node-xfrm-bindings vs ip -batch`,
      oursMs: median(res.nlAdd),
      baselineMs: median(res.ipAdd),
      detail: med,
    });
    recordRatio({
      bench: 'xfrm-policies',
      metric: `${n} policies add+delete: node-xfrm-bindings vs ip -batch`,
      oursMs: nl,
      baselineMs: ip,
      detail: med,
    });
    for (const [what, ours, goTimes] of [
      ['add', median(res.nlAdd), res.goAdd],
      ['add+delete', nl, res.goAdd.map((a, i) => a + res.goDel[i]!)],
    ] as const) {
      const metric = `${n} policies ${what}: node-xfrm-bindings vs vishvananda/netlink`;
      if (haveGo) {
        console.log(`  vishvananda/netlink ${what} ${f(median(goTimes))}`);
        recordRatio({ bench: 'xfrm-policies', metric, oursMs: ours, baselineMs: median(goTimes), detail: med });
      } else
        recordSkipped({ bench: 'xfrm-policies', metric, target: { op: '>=', value: 1, unit: '×' }, reason: GO_BENCH_MISSING });
    }
    console.log(
      JSON.stringify({
        bench: 'xfrm-policies',
        n: N,
        rounds: ROUNDS,
        ipBatchMs: ip,
        bindingMs: nl,
        ratio: ip / nl,
        bindingSelectorDeleteMs: nlSel,
        ratioSelectorDelete: ip / nlSel,
        raw: res,
      }),
    );
  } finally {
    xfrm.close();
    rmSync(dir, { recursive: true, force: true });
    execFileSync('ip', ['netns', 'del', ns]);
  }
}

main().catch((e: unknown) => {
  console.error(e);
  process.exitCode = 1;
});
