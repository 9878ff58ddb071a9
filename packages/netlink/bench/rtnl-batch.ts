/**
 * Adds N blackhole routes (default 10,000) to a fresh netns per run, side by side in one run:
 *   - ip -batch                  (baseline: one process, one request + ACK per line)
 *   - vishvananda/netlink        (baseline: RouteAdd per route, as Cilium does; tools/go-bench)
 *   - @veil/netlink requestMany  (messages packed into shared datagrams)
 *   - @veil/netlink addRoute() x N pipelined (shown, not a report row)
 * Library sides open their socket before the clock (the Go harness does the same); ip -batch is
 * timed as a whole process, as it is used. Rounds alternate the order; medians; rows go to the
 * bench report (ratio = baseline time ÷ Veil time, target ≥ 1.00×). Needs root.
 * Usage: node dist-bench/bench/rtnl-batch.js [N]
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { recordRatio, recordSkipped } from '@veil/test-utils/bench-report';
import { GO_BENCH_MISSING, goBenchBinary, runGoBench } from '@veil/test-utils/go-bench';
import { AF_INET, NetlinkSocket, addRoute, attr, listRoutes, parseIp } from '../src/index.js';
import { NLM_F_CREATE, NLM_F_EXCL } from '../src/constants.js';
import { RTA_DST, RTA_TABLE, RTM_NEWROUTE, RTN_BLACKHOLE, RTPROT_BOOT } from '../src/route/constants.js';
import { encodeRtmsg } from '../src/route/route.js';

const N = Number(process.argv[2] ?? 10_000);
const ROUNDS = Number(process.env.RTNL_BENCH_ROUNDS ?? 5);
const TABLE = 4242;

const dst = (i: number) => `10.${100 + (i >> 16)}.${(i >> 8) & 255}.${i & 255}`;

function median(a: number[]): number {
  const s = [...a].sort((x, y) => x - y);
  return s[Math.floor(s.length / 2)]!;
}

/** Runs `run` against a fresh netns, checks the N routes are there, and returns its time (ms). */
async function inFreshNetns(label: string, run: (ns: string) => Promise<number>): Promise<number> {
  const ns = `veilbench-nl-${randomBytes(3).toString('hex')}`;
  execFileSync('ip', ['netns', 'add', ns]);
  try {
    const ms = await run(ns);
    const sock = NetlinkSocket.open('ROUTE', { netns: ns });
    const count = (await listRoutes(sock, { table: TABLE })).length;
    sock.close();
    if (count !== N) throw new Error(`${label}: ${count} routes, expected ${N}`);
    return ms;
  } finally {
    execFileSync('ip', ['netns', 'del', ns]);
  }
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'rtnl-bench-'));
  const cidrs = Array.from({ length: N }, (_, i) => `${dst(i)}/32`);
  const cidrFile = join(dir, 'routes.txt');
  writeFileSync(cidrFile, `${cidrs.join('\n')}\n`);
  const batch = `${cidrs.map((c) => `route add blackhole ${c} table ${TABLE}`).join('\n')}\n`;
  const haveGo = goBenchBinary() !== undefined;

  const sides: Record<string, (ns: string) => Promise<number>> = {
    'ip -batch': async (ns) => {
      const t0 = performance.now();
      execFileSync('ip', ['-n', ns, '-batch', '-'], { input: batch });
      return performance.now() - t0;
    },
    requestMany: async (ns) => {
      const sock = NetlinkSocket.open('ROUTE', { netns: ns, maxInFlight: 256, rcvbuf: 4 << 20, rcvbufForce: true });
      const t0 = performance.now();
      const reqs = cidrs.map((c) => ({
        type: RTM_NEWROUTE,
        flags: NLM_F_CREATE | NLM_F_EXCL,
        payload: [
          encodeRtmsg({ family: AF_INET, dstLen: 32, table: 0, protocol: RTPROT_BOOT, type: RTN_BLACKHOLE }),
          attr.binary(RTA_DST, parseIp(c.slice(0, -3), 'dst').bytes),
          attr.u32(RTA_TABLE, TABLE),
        ],
      }));
      const res = await sock.requestMany(reqs);
      const ms = performance.now() - t0;
      sock.close();
      if (res.some((r) => r.status === 'rejected')) throw new Error('requestMany: some requests failed');
      return ms;
    },
    'addRoute() x N': async (ns) => {
      const sock = NetlinkSocket.open('ROUTE', { netns: ns });
      const t0 = performance.now();
      await Promise.all(cidrs.map((c) => addRoute(sock, { dst: c, type: 'blackhole', table: TABLE })));
      const ms = performance.now() - t0;
      sock.close();
      return ms;
    },
  };
  if (haveGo) {
    sides['vishvananda/netlink'] = async (ns) =>
      runGoBench(['routes', '--file', cidrFile, '--table', String(TABLE), '--netns', ns]).ms;
  }

  const times: Record<string, number[]> = Object.fromEntries(Object.keys(sides).map((k) => [k, []]));
  try {
    // Warm-up, not measured: JIT of the encoder and the socket path (as in a long-running agent).
    await inFreshNetns('warm-up', sides.requestMany!);
    for (let r = 0; r < ROUNDS; r++) {
      const order = Object.keys(sides);
      if (r % 2) order.reverse();
      for (const k of order) times[k]!.push(await inFreshNetns(k, sides[k]!));
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }

  const m = Object.fromEntries(Object.entries(times).map(([k, v]) => [k, median(v)]));
  console.log(`rtnl-batch: ${N} blackhole routes into an empty table, median of ${ROUNDS} rounds`);
  for (const [k, v] of Object.entries(times)) {
    console.log(`  ${k.padEnd(20)} ${m[k]!.toFixed(0).padStart(6)} ms   (${v.map((x) => x.toFixed(0)).join('/')})`);
  }
  const n = N.toLocaleString('en-US');
  recordRatio({
    bench: 'routes',
    metric: `${n} routes: @veil/netlink requestMany vs ip -batch`,
    oursMs: m.requestMany!,
    baselineMs: m['ip -batch']!,
    detail: `median of ${ROUNDS}`,
  });
  const metric = `${n} routes: @veil/netlink requestMany vs vishvananda/netlink`;
  if (haveGo) {
    recordRatio({
      bench: 'routes',
      metric,
      oursMs: m.requestMany!,
      baselineMs: m['vishvananda/netlink']!,
      detail: `median of ${ROUNDS}`,
    });
  } else {
    recordSkipped({ bench: 'routes', metric, target: { op: '>=', value: 1, unit: '×' }, reason: GO_BENCH_MISSING });
  }
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
