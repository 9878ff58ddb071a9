// Runs inside the qemu kernel lane (Debian 6.1 with the wireguard module): the kernel driver of
// WgClient, and device setup in kernel mode, between two namespaces.
import { afterAll, beforeAll, expect, it } from 'vitest';
import { describePrivileged, type TestNetns } from '@veil/test-utils';
import { underlayPair } from '../netns-pair.js';
import { Key } from '../../src/index.js';
import {
  PeerReconciler,
  WgClient,
  WgDeviceNotFoundError,
  peerFromNode,
  setupDevice,
  type WgDeviceHandle,
} from '../../src/index.js';

const DEV = 'wgbk0';

describePrivileged('WgClient kernel driver and kernel-mode device setup', ['root', 'netns'], () => {
  const ns: TestNetns[] = [];
  const handles: WgDeviceHandle[] = [];
  const keys = [Key.generatePrivate(), Key.generatePrivate()];

  beforeAll(() => {
    ns.push(...underlayPair(['wgbka', 'wgbkb'], ['ul0', 'ul1'], '192.168.79', 9000));
  });

  afterAll(async () => {
    for (const h of handles) await h.close();
    for (const n of ns) n.remove();
  });

  it('creates kernel devices (MTU = underlay − 80), adopts them on a second setup', async () => {
    for (const [i, n] of ns.entries()) {
      const h = await setupDevice({
        name: DEV,
        privateKey: keys[i]!,
        listenPort: 51871,
        netns: n.name,
        underlay: { address: `192.168.79.${2 - i}` },
        userspaceFallback: false,
      });
      handles.push(h);
      expect(h).toMatchObject({ driver: 'kernel', adopted: false, mtu: 8920 });
      expect(n.exec('ip', ['-d', '-o', 'link', 'show', DEV])).toMatch(/mtu 8920.*wireguard/);
    }
    const again = await setupDevice({ name: DEV, privateKey: keys[0]!, listenPort: 51871, netns: ns[0]!.name, mtu: 1400 });
    expect(again).toMatchObject({ driver: 'kernel', adopted: true, mtu: 1400 });
    await again.close();
  });

  it('asks the kernel driver first and reports it; unknown devices fall through every driver', async () => {
    const client = await WgClient.open({ netns: ns[0]!.name, socketDir: '/nonexistent-veil-dir' });
    try {
      expect(client.driverKinds).toEqual(['kernel', 'userspace']);
      expect(await client.driverOf(DEV)).toBe('kernel');
      expect((await client.devices()).map((d) => d.name)).toEqual([DEV]);
      const dev = await client.device(DEV, { secrets: true });
      expect(dev.privateKey?.equals(keys[0]!)).toBe(true);
      expect(dev.listenPort).toBe(51871);
      const err = await client.device('nosuch0').catch((e: unknown) => e);
      expect(err).toBeInstanceOf(WgDeviceNotFoundError);
      expect((err as WgDeviceNotFoundError).searched).toEqual(['kernel', 'userspace (/nonexistent-veil-dir)']);
      // A link that is not WireGuard is "not found" for the kernel driver too (EOPNOTSUPP).
      await expect(client.configureDevice('ul0', { listenPort: 1 })).rejects.toBeInstanceOf(WgDeviceNotFoundError);
    } finally {
      client.close();
    }
  });

  it('peers programmed through the reconciler ping across; one change writes one peer', async () => {
    const [a, b] = ns as [TestNetns, TestNetns];
    const recs = handles.map((h) => new PeerReconciler(h.client, DEV));
    await recs[0]!.sync([
      peerFromNode({ publicKey: keys[1]!.publicKey(), endpoint: '192.168.79.2:51871', podCIDRs: ['10.96.2.0/24'] }),
    ]);
    await recs[1]!.sync([
      peerFromNode({ publicKey: keys[0]!.publicKey(), endpoint: '192.168.79.1:51871', podCIDRs: ['10.96.1.0/24'] }),
    ]);
    a.exec('ip', ['addr', 'add', '10.96.1.1/32', 'dev', DEV]);
    a.exec('ip', ['route', 'add', '10.96.2.0/24', 'dev', DEV, 'src', '10.96.1.1']);
    b.exec('ip', ['addr', 'add', '10.96.2.1/32', 'dev', DEV]);
    b.exec('ip', ['route', 'add', '10.96.1.0/24', 'dev', DEV, 'src', '10.96.2.1']);
    expect(a.tryExec('ping', ['-c', '2', '-W', '3', '10.96.2.1'], 20_000).status).toBe(0);
    const change = await recs[0]!.upsert(
      peerFromNode({
        publicKey: keys[1]!.publicKey(),
        endpoint: '192.168.79.2:51871',
        podCIDRs: ['10.96.2.0/24', '10.95.0.0/16'],
      }),
    );
    expect(change).toMatchObject({ updateOnly: true, replaceAllowedIPs: true });
    expect(a.exec('wg', ['show', DEV, 'allowed-ips']).trim().split(/\s+/).slice(1).sort()).toEqual([
      '10.95.0.0/16',
      '10.96.2.0/24',
    ]);
  });
});
