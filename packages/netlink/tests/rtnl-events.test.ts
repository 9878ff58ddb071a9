import { expect, it } from 'vitest';
import { describePrivileged, linkName } from '@veil/test-utils';
import {
  type Link,
  type LinkEvent,
  NetlinkSocket,
  addAddress,
  listAddresses,
  createVeth,
  deleteLink,
  setLinkMtu,
  watchLinks,
} from '../src/index.js';
import { RTM_NEWADDR, RTNLGRP_IPV4_IFADDR } from '../src/route/constants.js';
import { netnsSocket, waitFor } from './helpers.js';

describePrivileged('link events (RTNLGRP_LINK)', ['root', 'netns'], () => {
  const env = netnsSocket('nle', 'ROUTE');

  it('reports add, change and del for links created through the API', async () => {
    const watcher = await watchLinks({ netns: env.ns.path });
    const events: LinkEvent[] = [];
    watcher.on('link', (e) => events.push(e));
    try {
      const n0 = linkName('nl');
      const n1 = linkName('nl');
      await createVeth(env.sock, { name: n0, peerName: n1 });
      await waitFor(() => (events.filter((e) => e.kind === 'add').length >= 2 ? true : undefined));
      expect(
        events
          .filter((e) => e.kind === 'add')
          .map((e) => e.link.name)
          .sort(),
      ).toEqual([n0, n1].sort());
      expect(events.find((e) => e.link.name === n0)?.link.kind).toBe('veth');

      await setLinkMtu(env.sock, n0, 1300);
      await waitFor(() => events.find((e) => e.kind === 'change' && e.link.name === n0 && e.link.mtu === 1300));

      await deleteLink(env.sock, n0);
      await waitFor(() => (events.filter((e) => e.kind === 'del').length >= 2 ? true : undefined));
      expect(
        events
          .filter((e) => e.kind === 'del')
          .map((e) => e.link.name)
          .sort(),
      ).toEqual([n0, n1].sort());
    } finally {
      watcher.close();
    }
  });

  it('reports links created by someone else (ip link), via the async iterator', async () => {
    const watcher = await watchLinks({ netns: env.ns.name });
    const n0 = linkName('nl');
    const seen: string[] = [];
    const consumer = (async () => {
      for await (const ev of watcher) {
        seen.push(`${ev.kind}:${ev.link.name}`);
        if (ev.kind === 'del' && ev.link.name === n0) break;
      }
    })();
    env.ns.exec('ip', ['link', 'add', n0, 'type', 'veth', 'peer', 'name', `${n0}p`.slice(0, 15)]);
    env.ns.exec('ip', ['link', 'del', n0]);
    await consumer;
    watcher.close();
    expect(seen).toContain(`add:${n0}`);
    expect(seen).toContain(`del:${n0}`);
    expect(seen.indexOf(`add:${n0}`)).toBeLessThan(seen.indexOf(`del:${n0}`));
  });

  it('joinGroup/leaveGroup on a plain socket start and stop multicast delivery', async () => {
    const dev = linkName('nl');
    await createVeth(env.sock, { name: dev, peerName: linkName('nl') });
    const listener = NetlinkSocket.open('ROUTE', { netns: env.ns.path });
    const got: [number, number][] = [];
    listener.on('message', (m, g) => got.push([m.type, g]));
    try {
      listener.joinGroup(RTNLGRP_IPV4_IFADDR);
      await addAddress(env.sock, { link: dev, address: '10.33.0.1/32' });
      await waitFor(() => got.find(([t, g]) => t === RTM_NEWADDR && g === RTNLGRP_IPV4_IFADDR));
      listener.leaveGroup(RTNLGRP_IPV4_IFADDR);
      got.length = 0;
      await addAddress(env.sock, { link: dev, address: '10.33.0.2/32' });
      // A marker after the change: once this request's ACK is in, any notification would be too.
      await listAddresses(listener, { link: dev });
      await new Promise((r) => setTimeout(r, 50));
      expect(got).toEqual([]);
    } finally {
      listener.close();
      await deleteLink(env.sock, dev);
    }
  });

  it('an overflowing receive buffer surfaces as "overrun", then the watcher resyncs', async () => {
    // A tiny buffer, and a synchronous `ip -batch` that blocks our event loop while the
    // kernel queues dozens of notifications: the socket overruns (ENOBUFS).
    const watcher = await watchLinks({ netns: env.ns.path, rcvbuf: 4096 });
    const names = Array.from({ length: 20 }, () => linkName('nl'));
    try {
      const overrun = new Promise<void>((r) => watcher.once('overrun', r));
      const resync = new Promise<Link[]>((r) => watcher.once('resync', r));
      const batch = names.map((n) => `link add ${n} type veth peer name ${n}p`).join('\n');
      env.ns.exec('ip', ['-batch', '-'], { input: `${batch}\n` });
      await overrun;
      const links = await resync;
      for (const n of names) expect(links.some((l) => l.name === n)).toBe(true);
    } finally {
      watcher.close();
      env.ns.exec('ip', ['-batch', '-'], { input: `${names.map((n) => `link del ${n}`).join('\n')}\n` });
    }
  });

  it('does not report existing links as new (watcher is seeded)', async () => {
    const n0 = linkName('nl');
    await createVeth(env.sock, { name: n0, peerName: linkName('nl') });
    const watcher = await watchLinks({ netns: env.ns.path });
    const events: LinkEvent[] = [];
    watcher.on('link', (e) => events.push(e));
    try {
      await setLinkMtu(env.sock, n0, 1400);
      const ev = await waitFor(() => events.find((e) => e.link.name === n0));
      expect(ev.kind).toBe('change');
    } finally {
      watcher.close();
      await deleteLink(env.sock, n0);
    }
  });
});
