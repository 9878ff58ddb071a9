import { expect, it } from 'vitest';
import { describePrivileged, linkName } from '@veil/test-utils';
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
import { netnsSocket, waitFor } from '../helpers.js';

// Runs inside the qemu kernel lane (Debian 6.1 kernel with the dummy and wireguard drivers),
// covering what the host kernel cannot: dummy and kernel WireGuard links.

describePrivileged('dummy and wireguard links (kernel lane)', ['root', 'netns'], () => {
  const env = netnsSocket('nlk', 'ROUTE');

  it('creates a dummy, sets it up and its MTU, deletes it', async () => {
    const n = linkName('nl');
    await createDummy(env.sock, { name: n, mtu: 1300 });
    expect(await getLink(env.sock, n)).toMatchObject({ name: n, kind: 'dummy', mtu: 1300, up: false });
    await setLinkUp(env.sock, n);
    await setLinkMtu(env.sock, n, 9000);
    expect(await getLink(env.sock, n)).toMatchObject({ up: true, mtu: 9000 });
    expect(env.ns.exec('ip', ['-o', '-d', 'link', 'show', n])).toContain('dummy');
    await deleteLink(env.sock, n);
    expect(await getLink(env.sock, n)).toBeUndefined();
  });

  it('receives add and del events for a dummy', async () => {
    const watcher = await watchLinks({ netns: env.ns.path });
    const events: LinkEvent[] = [];
    watcher.on('link', (e) => events.push(e));
    const n = linkName('nl');
    try {
      await createDummy(env.sock, { name: n });
      await waitFor(() => events.find((e) => e.kind === 'add' && e.link.name === n), 10_000);
      await deleteLink(env.sock, n);
      await waitFor(() => events.find((e) => e.kind === 'del' && e.link.name === n), 10_000);
      expect(events.find((e) => e.link.name === n)?.link.kind).toBe('dummy');
    } finally {
      watcher.close();
    }
  });

  it('creates a kernel wireguard link and resolves the wireguard genl family', async () => {
    const n = linkName('nl');
    await createWireguard(env.sock, { name: n, mtu: 1420 });
    expect(await getLink(env.sock, n)).toMatchObject({ kind: 'wireguard', mtu: 1420 });
    const genl = NetlinkSocket.open('GENERIC', { netns: env.ns.path });
    try {
      const fam = await resolveFamily(genl, 'wireguard');
      expect(fam.id).toBeGreaterThanOrEqual(0x10);
      expect(fam.version).toBe(1);
    } finally {
      genl.close();
    }
    await deleteLink(env.sock, n);
  });
});
