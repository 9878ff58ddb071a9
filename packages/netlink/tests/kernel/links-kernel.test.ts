import { afterAll, beforeAll, expect, it } from 'vitest';
import { TestNetns, describePrivileged, linkName } from '@veil/test-utils';
import {
  type LinkEvent,
  NetlinkSocket,
  createDummy,
  createWireguard,
  deleteLink,
  getLink,
  resolveFamily,
  setLinkMtu,
  setLinkUp,
  watchLinks,
} from '../../src/index.js';

// Runs inside the qemu kernel lane (Debian 6.1 kernel with the dummy and wireguard drivers),
// covering what the host kernel cannot: dummy and kernel WireGuard links.

function waitFor<T>(get: () => T | undefined, timeoutMs = 10_000): Promise<T> {
  return new Promise((resolve, reject) => {
    const start = Date.now();
    const poll = () => {
      const v = get();
      if (v !== undefined) resolve(v);
      else if (Date.now() - start > timeoutMs) reject(new Error('timed out waiting for events'));
      else setTimeout(poll, 10);
    };
    poll();
  });
}

describePrivileged('dummy and wireguard links (kernel lane)', ['root', 'netns'], () => {
  let ns: TestNetns;
  let sock: NetlinkSocket;
  beforeAll(() => {
    ns = TestNetns.create('nlk');
    sock = NetlinkSocket.open('ROUTE', { netns: ns.path });
  });
  afterAll(() => {
    sock?.close();
    ns?.remove();
  });

  it('creates a dummy, sets it up and its MTU, deletes it', async () => {
    const n = linkName('nl');
    await createDummy(sock, { name: n, mtu: 1300 });
    expect(await getLink(sock, n)).toMatchObject({ name: n, kind: 'dummy', mtu: 1300, up: false });
    await setLinkUp(sock, n);
    await setLinkMtu(sock, n, 9000);
    expect(await getLink(sock, n)).toMatchObject({ up: true, mtu: 9000 });
    expect(ns.exec('ip', ['-o', '-d', 'link', 'show', n])).toContain('dummy');
    await deleteLink(sock, n);
    expect(await getLink(sock, n)).toBeUndefined();
  });

  it('receives add and del events for a dummy', async () => {
    const watcher = await watchLinks({ netns: ns.path });
    const events: LinkEvent[] = [];
    watcher.on('link', (e) => events.push(e));
    const n = linkName('nl');
    try {
      await createDummy(sock, { name: n });
      await waitFor(() => events.find((e) => e.kind === 'add' && e.link.name === n));
      await deleteLink(sock, n);
      await waitFor(() => events.find((e) => e.kind === 'del' && e.link.name === n));
      expect(events.find((e) => e.link.name === n)?.link.kind).toBe('dummy');
    } finally {
      watcher.close();
    }
  });

  it('creates a kernel wireguard link and resolves the wireguard genl family', async () => {
    const n = linkName('nl');
    await createWireguard(sock, { name: n, mtu: 1420 });
    expect(await getLink(sock, n)).toMatchObject({ kind: 'wireguard', mtu: 1420 });
    const genl = NetlinkSocket.open('GENERIC', { netns: ns.path });
    try {
      const fam = await resolveFamily(genl, 'wireguard');
      expect(fam.id).toBeGreaterThanOrEqual(0x10);
      expect(fam.version).toBe(1);
    } finally {
      genl.close();
    }
    await deleteLink(sock, n);
  });
});
