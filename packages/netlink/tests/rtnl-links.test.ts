import { afterAll, beforeAll, expect, it } from 'vitest';
import { TestNetns, describePrivileged, linkName } from '@veil/test-utils';
import {
  NetlinkError,
  NetlinkSocket,
  NetlinkValidationError,
  createDummy,
  createVeth,
  createWireguard,
  deleteLink,
  getLink,
  listLinks,
  moveLinkToNetns,
  setLinkDown,
  setLinkMtu,
  setLinkUp,
} from '../src/index.js';

describePrivileged('rtnetlink links (real kernel, test netns)', ['root', 'netns'], () => {
  let a: TestNetns;
  let b: TestNetns;
  let sock: NetlinkSocket;
  let sockB: NetlinkSocket;

  beforeAll(() => {
    a = TestNetns.create('nla');
    b = TestNetns.create('nlb');
    sock = NetlinkSocket.open('ROUTE', { netns: a.path });
    sockB = NetlinkSocket.open('ROUTE', { netns: b.name });
  });
  afterAll(() => {
    sock?.close();
    sockB?.close();
    a?.remove();
    b?.remove();
  });

  it('the socket lives in the test netns, and the caller stays in its own', async () => {
    const links = await listLinks(sock);
    expect(links.map((l) => l.name)).toEqual(['lo']);
    const own = await (async () => {
      const s = NetlinkSocket.open('ROUTE');
      try {
        return await listLinks(s);
      } finally {
        s.close();
      }
    })();
    expect(own.length).toBeGreaterThanOrEqual(1);
    expect(own.some((l) => l.name === 'lo')).toBe(true);
    expect(sock.portId).toBeGreaterThan(0);
  });

  it('creates a veth pair, sets it up, changes the MTU, reads it back, deletes it', async () => {
    const n0 = linkName('nl');
    const n1 = linkName('nl');
    await createVeth(sock, { name: n0, peerName: n1, mtu: 1400 });
    const l0 = await getLink(sock, n0);
    expect(l0).toMatchObject({ name: n0, kind: 'veth', mtu: 1400, up: false });
    expect(a.exec('ip', ['-o', 'link', 'show', n1])).toContain('mtu 1400');

    await setLinkUp(sock, n0);
    await setLinkUp(sock, l0!.index);
    expect((await getLink(sock, n0))?.up).toBe(true);
    expect(a.exec('ip', ['-o', 'link', 'show', n0])).toMatch(/<[^>]*\bUP\b/);

    await setLinkMtu(sock, n0, 1280);
    expect((await getLink(sock, l0!.index))?.mtu).toBe(1280);
    expect(a.exec('ip', ['-o', 'link', 'show', n0])).toContain('mtu 1280');

    await setLinkDown(sock, n0);
    expect((await getLink(sock, n0))?.up).toBe(false);

    await deleteLink(sock, n0);
    expect(await getLink(sock, n0)).toBeUndefined();
    expect(await getLink(sock, n1)).toBeUndefined(); // deleting one end removes the pair
  });

  it('creates the veth peer directly in another netns (peer netns by path)', async () => {
    const n0 = linkName('nl');
    const n1 = linkName('nl');
    await createVeth(sock, { name: n0, peerName: n1, peerNetns: b.path });
    expect(await getLink(sock, n1)).toBeUndefined();
    const peer = await getLink(sockB, n1);
    expect(peer?.kind).toBe('veth');
    const here = await getLink(sock, n0);
    expect(here?.parentIndex).toBe(peer?.index);
    expect(here?.linkNetnsId).toBeDefined();
    await deleteLink(sock, n0);
    expect(await getLink(sockB, n1)).toBeUndefined();
  });

  it('moves a link to another netns by path, by name and by fd', async () => {
    const n0 = linkName('nl');
    const n1 = linkName('nl');
    await createVeth(sock, { name: n0, peerName: n1 });
    await moveLinkToNetns(sock, n1, b.path);
    expect(await getLink(sock, n1)).toBeUndefined();
    expect((await getLink(sockB, n1))?.name).toBe(n1);
    expect(b.exec('ip', ['-o', 'link', 'show', n1])).toContain(n1);

    await moveLinkToNetns(sockB, n1, a.name);
    expect((await getLink(sock, n1))?.name).toBe(n1);

    const { openSync, closeSync } = await import('node:fs');
    const fd = openSync(b.path, 'r');
    try {
      await moveLinkToNetns(sock, n1, fd);
    } finally {
      closeSync(fd);
    }
    expect((await getLink(sockB, n1))?.name).toBe(n1);
    await deleteLink(sock, n0);
  });

  it('surfaces EEXIST and ENODEV as typed NetlinkErrors naming the operation', async () => {
    const n0 = linkName('nl');
    const n1 = linkName('nl');
    await createVeth(sock, { name: n0, peerName: n1 });
    const dup = await createVeth(sock, { name: n0, peerName: linkName('nl') }).catch((e: unknown) => e);
    expect(dup).toBeInstanceOf(NetlinkError);
    expect(dup).toMatchObject({ code: 'EEXIST', errno: 17, operation: 'RTM_NEWLINK' });
    await deleteLink(sock, n0);
    const gone = await deleteLink(sock, n0).catch((e: unknown) => e);
    expect(gone).toMatchObject({ name: 'NetlinkError', code: 'ENODEV', operation: 'RTM_DELLINK' });
  });

  it('surfaces the kernel extended-ack text (unknown link kind)', async () => {
    // A raw request with a kind no kernel has: the kernel answers EOPNOTSUPP "Unknown device type".
    const { attr } = await import('../src/index.js');
    const { encodeIfinfomsg } = await import('../src/route/link.js');
    const { RTM_NEWLINK } = await import('../src/route/constants.js');
    const { NLM_F_CREATE, NLM_F_EXCL } = await import('../src/constants.js');
    const err = await sock
      .request({
        type: RTM_NEWLINK,
        flags: NLM_F_CREATE | NLM_F_EXCL,
        payload: [encodeIfinfomsg(), attr.string(3, linkName('nl')), attr.nested(18, [attr.string(1, 'veil-no-such-kind')])],
      })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(NetlinkError);
    expect(err).toMatchObject({ code: 'EOPNOTSUPP', operation: 'RTM_NEWLINK', extAckMessage: 'Unknown device type' });
    expect((err as Error).message).toBe('RTM_NEWLINK failed: EOPNOTSUPP: Unknown device type');
  });

  it('creates a dummy, or fails typed when this kernel has no dummy driver', async () => {
    const n = linkName('nl');
    const supported = a.tryExec('ip', ['link', 'add', 'probe0', 'type', 'dummy']).status === 0;
    if (supported) a.exec('ip', ['link', 'del', 'probe0']);
    const res = await createDummy(sock, { name: n, mtu: 1300 }).then(
      () => undefined,
      (e: unknown) => e,
    );
    if (supported) {
      expect(res).toBeUndefined();
      expect(await getLink(sock, n)).toMatchObject({ kind: 'dummy', mtu: 1300 });
      await deleteLink(sock, n);
    } else {
      expect(res).toMatchObject({ name: 'NetlinkError', code: 'EOPNOTSUPP', extAckMessage: 'Unknown device type' });
    }
  });

  it('creates a wireguard link, or fails typed when the module is missing', async () => {
    const n = linkName('nl');
    const supported = a.tryExec('ip', ['link', 'add', 'probe1', 'type', 'wireguard']).status === 0;
    if (supported) a.exec('ip', ['link', 'del', 'probe1']);
    const res = await createWireguard(sock, { name: n }).then(
      () => undefined,
      (e: unknown) => e,
    );
    if (supported) {
      expect(res).toBeUndefined();
      expect((await getLink(sock, n))?.kind).toBe('wireguard');
      await deleteLink(sock, n);
    } else {
      expect(res).toMatchObject({ name: 'NetlinkError', code: 'EOPNOTSUPP' });
    }
  });

  it('getLink of a missing link is undefined; bad names never reach the kernel', async () => {
    expect(await getLink(sock, 'nlmissing0')).toBeUndefined();
    expect(await getLink(sock, 999_999)).toBeUndefined();
    await expect(setLinkUp(sock, 'this-name-is-too-long')).rejects.toBeInstanceOf(NetlinkValidationError);
  });
});
