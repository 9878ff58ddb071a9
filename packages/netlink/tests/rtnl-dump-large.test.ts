import { expect, it } from 'vitest';
import { type ChildProcess } from 'node:child_process';
import { describePrivileged, linkName } from '@veil/test-utils';
import { DumpInterruptedError, addAddress, addRoute, createVeth, listAddresses, listRoutes } from '../src/index.js';
import { netnsSocket } from './helpers.js';

describePrivileged('large dumps and interrupted dumps', ['root', 'netns'], () => {
  const env = netnsSocket('nld', 'ROUTE');

  it('dumps 5,000 routes of one table; the count matches `ip route show table X | wc -l`', async () => {
    const TABLE = 4242;
    const N = 5000;
    const adds: Promise<void>[] = [];
    for (let i = 0; i < N; i++) {
      // Many requests at once: the socket keeps at most maxInFlight outstanding.
      adds.push(
        addRoute(env.sock, { dst: `10.${100 + (i >> 16)}.${(i >> 8) & 255}.${i & 255}/32`, type: 'blackhole', table: TABLE }),
      );
    }
    await Promise.all(adds);
    const routes = await listRoutes(env.sock, { table: TABLE });
    const ipCount = env.ns.exec('sh', ['-c', `ip route show table ${TABLE} | wc -l`]).trim();
    expect(routes).toHaveLength(N);
    expect(String(routes.length)).toBe(ipCount);
    expect(new Set(routes.map((r) => r.dst)).size).toBe(N);
    expect(routes.every((r) => r.table === TABLE && r.type === 6 /* RTN_BLACKHOLE */)).toBe(true);
    // The other tables are filtered out (by the kernel under strict checking, and by us).
    expect((await listRoutes(env.sock, { table: 254 })).some((r) => r.table === TABLE)).toBe(false);
  });

  it('requestMany: 3,000 rules in batched datagrams, duplicates fail individually', async () => {
    const { attr, listRules } = await import('../src/index.js');
    const { encodeFibRuleHdr } = await import('../src/route/rule.js');
    const { RTM_NEWRULE } = await import('../src/route/constants.js');
    const { NLM_F_CREATE, NLM_F_EXCL } = await import('../src/constants.js');
    const N = 3000;
    const rule = (i: number) => ({
      type: RTM_NEWRULE,
      flags: NLM_F_CREATE | NLM_F_EXCL,
      payload: [
        encodeFibRuleHdr({ family: 2, table: 0, action: 1 }),
        attr.u32(10, i + 1),
        attr.u32(6, 10_000 + i),
        attr.u32(15, 300),
      ],
    });
    const reqs = Array.from({ length: N }, (_, i) => rule(i));
    reqs.push(rule(0), rule(1)); // duplicates: EEXIST
    const results = await env.sock.requestMany(reqs);
    expect(results.slice(0, N).every((r) => r.status === 'fulfilled')).toBe(true);
    expect(results.slice(N).map((r) => r.status === 'rejected' && (r.reason as { code: string }).code)).toEqual([
      'EEXIST',
      'EEXIST',
    ]);
    const rules = (await listRules(env.sock)).filter((r) => r.table === 300);
    expect(rules).toHaveLength(N);
    const ipCount = env.ns.exec('sh', ['-c', 'ip rule show | grep -c "lookup 300"']).trim();
    expect(ipCount).toBe(String(N));
  });

  it('rejects an address dump with DumpInterruptedError while addresses change underneath', async () => {
    const dev = linkName('nl');
    const other = linkName('nl');
    await createVeth(env.sock, { name: dev, peerName: other });
    const adds: Promise<void>[] = [];
    for (let i = 0; i < 3000; i++) {
      adds.push(addAddress(env.sock, { link: dev, address: `10.60.${i >> 8}.${i & 255}/32` }));
    }
    await Promise.all(adds);
    // Another process keeps changing addresses, which bumps the kernel's address sequence
    // between dump parts; the kernel then flags the parts with NLM_F_DUMP_INTR.
    let churn: ChildProcess | undefined;
    try {
      churn = env.ns.spawn(
        'sh',
        ['-c', `while true; do ip addr add 10.61.0.1/32 dev ${other}; ip addr del 10.61.0.1/32 dev ${other}; done`],
        {
          stdio: 'ignore',
        },
      );
      let interrupted: DumpInterruptedError | undefined;
      let complete = 0;
      for (let i = 0; i < 50 && !interrupted; i++) {
        try {
          const list = await listAddresses(env.sock, { family: 4 });
          // A dump that was not flagged must be complete.
          expect(list.filter((a) => a.address.startsWith('10.60.')).length).toBe(3000);
          complete++;
        } catch (e) {
          if (!(e instanceof DumpInterruptedError)) throw e;
          interrupted = e;
        }
      }
      expect(interrupted).toBeInstanceOf(DumpInterruptedError);
      expect(interrupted?.operation).toBe('RTM_GETADDR');
      expect(interrupted?.message).toMatch(/incomplete/);
      expect(complete).toBeLessThan(50);
    } finally {
      if (churn?.pid) process.kill(churn.pid);
      await new Promise((r) => setTimeout(r, 50));
    }
  });
});
