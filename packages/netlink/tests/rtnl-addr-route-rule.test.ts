import { afterAll, beforeAll, expect, it } from 'vitest';
import { TestNetns, describePrivileged, linkName } from '@veil/test-utils';
import {
  NetlinkError,
  NetlinkSocket,
  addAddress,
  addRoute,
  addRule,
  createVeth,
  deleteAddress,
  deleteRoute,
  deleteRule,
  getLink,
  listAddresses,
  listRoutes,
  listRules,
  setLinkUp,
} from '../src/index.js';
import { IFA_F_NODAD, RTPROT_STATIC, RT_SCOPE_LINK } from '../src/route/constants.js';

describePrivileged('rtnetlink addresses, routes and rules (real kernel, test netns)', ['root', 'netns'], () => {
  let ns: TestNetns;
  let sock: NetlinkSocket;
  let dev: string;
  let peer: string;
  let index: number;

  beforeAll(async () => {
    ns = TestNetns.create('nlr');
    sock = NetlinkSocket.open('ROUTE', { netns: ns.path });
    dev = linkName('nl');
    peer = linkName('nl');
    await createVeth(sock, { name: dev, peerName: peer });
    await setLinkUp(sock, dev);
    await setLinkUp(sock, peer);
    index = (await getLink(sock, dev))!.index;
  });
  afterAll(() => {
    sock?.close();
    ns?.remove();
  });

  it('adds, lists and deletes IPv4 and IPv6 (nodad) addresses', async () => {
    await addAddress(sock, { link: dev, address: '10.77.0.1/24' });
    await addAddress(sock, { link: index, address: 'fd77::1/64', nodad: true });
    const v4 = await listAddresses(sock, { family: 4, link: dev });
    expect(v4.map((a) => a.cidr)).toEqual(['10.77.0.1/24']);
    expect(v4[0]).toMatchObject({ index, prefixLen: 24, scope: 0 });
    const v6 = (await listAddresses(sock, { family: 6, link: dev })).filter((a) => a.address.startsWith('fd77'));
    expect(v6).toHaveLength(1);
    expect(v6[0]!.flags & IFA_F_NODAD).toBe(IFA_F_NODAD);
    // nodad: usable at once, never "tentative"
    const line = ns
      .exec('ip', ['-6', '-o', 'addr', 'show', 'dev', dev])
      .split('\n')
      .find((l) => l.includes('fd77::1/64'));
    expect(line).toContain('nodad');
    expect(line).not.toContain('tentative');
    expect(ns.exec('ip', ['-4', '-o', 'addr', 'show', 'dev', dev])).toContain('10.77.0.1/24');

    const dup = await addAddress(sock, { link: dev, address: '10.77.0.1/24' }).catch((e: unknown) => e);
    expect(dup).toMatchObject({ name: 'NetlinkError', code: 'EEXIST', operation: 'RTM_NEWADDR' });

    await deleteAddress(sock, { link: dev, address: '10.77.0.1/24' });
    await deleteAddress(sock, { link: dev, address: 'fd77::1/64' });
    expect((await listAddresses(sock, { link: dev })).filter((a) => !a.address.startsWith('fe80'))).toEqual([]);
  });

  it('adds routes with a table, an MTU metric, scope and protocol; lists and deletes them', async () => {
    await addAddress(sock, { link: dev, address: '10.78.0.1/24' });
    await addRoute(sock, { dst: '10.200.0.0/16', gateway: '10.78.0.2', table: 100, mtu: 1380, protocol: 'static' });
    await addRoute(sock, { dst: '10.201.0.0/16', dev, table: 1000, mtu: 1420 });
    await addRoute(sock, { dst: 'default', gateway: '10.78.0.2', table: 100 });

    const t100 = await listRoutes(sock, { table: 100 });
    expect(t100.map((r) => r.dst).sort()).toEqual(['10.200.0.0/16', 'default']);
    expect(t100.find((r) => r.dst === '10.200.0.0/16')).toMatchObject({
      gateway: '10.78.0.2',
      table: 100,
      mtu: 1380,
      protocol: RTPROT_STATIC,
      oif: index,
    });
    const t1000 = await listRoutes(sock, { table: 1000 });
    expect(t1000).toHaveLength(1);
    expect(t1000[0]).toMatchObject({ dst: '10.201.0.0/16', table: 1000, mtu: 1420, scope: RT_SCOPE_LINK, oif: index });

    expect(ns.exec('ip', ['route', 'show', 'table', '100'])).toContain('10.200.0.0/16 via 10.78.0.2 dev');
    expect(ns.exec('ip', ['route', 'show', 'table', '100'])).toContain('mtu 1380');
    expect(ns.exec('ip', ['route', 'show', 'table', '1000'])).toMatch(/10\.201\.0\.0\/16 dev \S+ scope link mtu 1420/);

    const all = await listRoutes(sock);
    expect(all.some((r) => r.table === 100) && all.some((r) => r.table === 1000) && all.some((r) => r.table === 254)).toBe(true);

    await addRoute(sock, { dst: '10.200.0.0/16', gateway: '10.78.0.2', table: 100, mtu: 1300, replace: true });
    expect((await listRoutes(sock, { table: 100 })).find((r) => r.dst === '10.200.0.0/16')?.mtu).toBe(1300);

    await deleteRoute(sock, { dst: '10.200.0.0/16', table: 100 });
    await deleteRoute(sock, { dst: 'default', table: 100 });
    await deleteRoute(sock, { dst: '10.201.0.0/16', table: 1000 });
    expect(await listRoutes(sock, { table: 100 })).toEqual([]);
    expect(await listRoutes(sock, { table: 1000 })).toEqual([]);
    const missing = await deleteRoute(sock, { dst: '10.201.0.0/16', table: 1000 }).catch((e: unknown) => e);
    expect(missing).toMatchObject({ name: 'NetlinkError', code: 'ESRCH', operation: 'RTM_DELROUTE' });
  });

  it('IPv6 routes with gateway and MTU', async () => {
    await addAddress(sock, { link: dev, address: 'fd78::1/64', nodad: true });
    await addRoute(sock, { dst: 'fd99::/48', gateway: 'fd78::2', table: 200, mtu: 1280 });
    const r = await listRoutes(sock, { family: 6, table: 200 });
    expect(r).toHaveLength(1);
    expect(r[0]).toMatchObject({ family: 6, dst: 'fd99::/48', gateway: 'fd78::2', mtu: 1280, table: 200 });
    await deleteRoute(sock, { dst: 'fd99::/48', table: 200 });
    expect(await listRoutes(sock, { family: 6, table: 200 })).toEqual([]);
  });

  it('adds, lists and deletes rules (fwmark/mask, table, priority, family)', async () => {
    await addRule(sock, { fwmark: 0x200, fwmask: 0xf00, table: 100, priority: 1000 });
    await addRule(sock, { family: 6, fwmark: 0x300, table: 5000, priority: 1001 });
    await addRule(sock, { src: '10.5.0.0/16', table: 7, priority: 1002, invert: true });

    const v4 = await listRules(sock);
    expect(v4.find((r) => r.priority === 1000)).toMatchObject({ fwmark: 0x200, fwmask: 0xf00, table: 100, action: 1 });
    expect(v4.find((r) => r.priority === 1002)).toMatchObject({ src: '10.5.0.0/16', table: 7, invert: true });
    expect(v4.some((r) => r.priority === 32766 && r.table === 254)).toBe(true);
    const v6 = await listRules(sock, { family: 6 });
    expect(v6.find((r) => r.priority === 1001)).toMatchObject({ family: 6, fwmark: 0x300, table: 5000 });

    expect(ns.exec('ip', ['rule', 'show'])).toContain('1000:\tfrom all fwmark 0x200/0xf00 lookup 100');
    expect(ns.exec('ip', ['-6', 'rule', 'show'])).toContain('1001:\tfrom all fwmark 0x300 lookup 5000');

    const dup = await addRule(sock, { fwmark: 0x200, fwmask: 0xf00, table: 100, priority: 1000 }).catch((e: unknown) => e);
    expect(dup).toBeInstanceOf(NetlinkError);
    expect(dup).toMatchObject({ code: 'EEXIST', operation: 'RTM_NEWRULE' });

    await deleteRule(sock, { fwmark: 0x200, fwmask: 0xf00, table: 100, priority: 1000 });
    await deleteRule(sock, { family: 6, priority: 1001 });
    await deleteRule(sock, { priority: 1002 });
    expect((await listRules(sock)).filter((r) => r.priority !== undefined && r.priority >= 1000 && r.priority <= 1002)).toEqual(
      [],
    );
    expect((await listRules(sock, { family: 6 })).some((r) => r.priority === 1001)).toBe(false);
  });
});
