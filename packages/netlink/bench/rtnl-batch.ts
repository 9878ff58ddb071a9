/**
 * Adds N routes to a fresh netns three ways and reports each against `ip -batch` measured in
 * the same run (noisy shared machine: ratios, not absolute numbers, are the result).
 *   - ip -batch (baseline)
 *   - request() pipelined (addRoute per route, window = maxInFlight)
 *   - requestMany() (messages packed into shared datagrams)
 * Needs root. Usage: node dist-bench/bench/rtnl-batch.js [N]
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { AF_INET, NetlinkSocket, addRoute, attr, listRoutes, parseIp } from '../src/index.js';
import { NLM_F_CREATE, NLM_F_EXCL } from '../src/constants.js';
import { RTA_DST, RTA_TABLE, RTM_NEWROUTE, RTN_BLACKHOLE, RTPROT_BOOT } from '../src/route/constants.js';
import { encodeRtmsg } from '../src/route/route.js';

const N = Number(process.argv[2] ?? 10_000);

function withNetns<T>(fn: (name: string) => Promise<T>): Promise<T> {
  const name = `veilbench-nl-${randomBytes(3).toString('hex')}`;
  execFileSync('ip', ['netns', 'add', name]);
  return fn(name).finally(() => execFileSync('ip', ['netns', 'del', name]));
}

const dst = (i: number) => `10.${100 + (i >> 16)}.${(i >> 8) & 255}.${i & 255}`;

async function timeIt(label: string, run: (ns: string) => Promise<void>): Promise<number> {
  return withNetns(async (ns) => {
    const t0 = process.hrtime.bigint();
    await run(ns);
    const ms = Number(process.hrtime.bigint() - t0) / 1e6;
    const sock = NetlinkSocket.open('ROUTE', { netns: ns });
    const count = (await listRoutes(sock, { table: 4242 })).length;
    sock.close();
    if (count !== N) throw new Error(`${label}: ${count} routes, expected ${N}`);
    return ms;
  });
}

async function main(): Promise<void> {
  const results: Record<string, number[]> = { 'ip -batch': [], 'request() x N': [], requestMany: [] };
  for (let round = 0; round < 3; round++) {
    results['ip -batch']!.push(
      await timeIt('ip -batch', async (ns) => {
        const lines = Array.from({ length: N }, (_, i) => `route add blackhole ${dst(i)}/32 table 4242`).join('\n');
        execFileSync('ip', ['-n', ns, '-batch', '-'], { input: `${lines}\n` });
      }),
    );
    results['request() x N']!.push(
      await timeIt('request()', async (ns) => {
        const sock = NetlinkSocket.open('ROUTE', { netns: ns });
        const all: Promise<void>[] = [];
        for (let i = 0; i < N; i++) all.push(addRoute(sock, { dst: `${dst(i)}/32`, type: 'blackhole', table: 4242 }));
        await Promise.all(all);
        sock.close();
      }),
    );
    results.requestMany!.push(
      await timeIt('requestMany', async (ns) => {
        const sock = NetlinkSocket.open('ROUTE', { netns: ns, maxInFlight: 256, rcvbuf: 4 << 20, rcvbufForce: true });
        const reqs = Array.from({ length: N }, (_, i) => ({
          type: RTM_NEWROUTE,
          flags: NLM_F_CREATE | NLM_F_EXCL,
          payload: [
            encodeRtmsg({ family: AF_INET, dstLen: 32, table: 0, protocol: RTPROT_BOOT, type: RTN_BLACKHOLE }),
            attr.binary(RTA_DST, parseIp(dst(i), 'dst').bytes),
            attr.u32(RTA_TABLE, 4242),
          ],
        }));
        const res = await sock.requestMany(reqs);
        sock.close();
        if (res.some((r) => r.status === 'rejected')) throw new Error('requestMany: some requests failed');
      }),
    );
  }
  const median = (a: number[]) => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)]!;
  const base = median(results['ip -batch']!);
  console.log(`rtnl-batch: ${N} routes, median of 3 rounds`);
  for (const [k, v] of Object.entries(results)) {
    console.log(
      `  ${k.padEnd(14)} ${median(v).toFixed(0).padStart(6)} ms   ratio vs ip -batch: ${(median(v) / base).toFixed(2)}x`,
    );
  }
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
