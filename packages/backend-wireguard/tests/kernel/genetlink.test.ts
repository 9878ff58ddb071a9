// Runs inside the qemu kernel lane (Debian 6.1 with the wireguard module): real kernel devices,
// configured only through WireGuardClient. `ip` creates the links; `wg` is used only to cross-check.
import { describePrivileged, TestNetns } from '@veil/test-utils';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { canonicalCidr } from '../../src/wgclient/kernel/codec.js';
import { Key } from '../../src/wgtypes/key.js';
import { WireGuardClient, WireGuardDeviceNotFoundError } from '../../src/wgclient/kernel/genl.js';
import type { PeerConfig } from '../../src/wgtypes/types.js';

describePrivileged('kernel WireGuard over generic netlink', ['root', 'netns'], () => {
  let ns1: TestNetns;
  let ns2: TestNetns;
  let c1: WireGuardClient;
  let c2: WireGuardClient;
  const k1 = Key.generatePrivate();
  const k2 = Key.generatePrivate();
  const psk = Key.generatePreshared();

  beforeAll(async () => {
    ns1 = TestNetns.create('wgk1');
    ns2 = TestNetns.create('wgk2');
    // Underlay: a veth pair between the two namespaces.
    ns1.exec('ip', ['link', 'add', 'ul0', 'type', 'veth', 'peer', 'name', 'ul1', 'netns', ns2.name]);
    ns1.exec('ip', ['addr', 'add', '192.168.77.1/24', 'dev', 'ul0']);
    ns2.exec('ip', ['addr', 'add', '192.168.77.2/24', 'dev', 'ul1']);
    ns1.exec('ip', ['link', 'set', 'ul0', 'up']);
    ns2.exec('ip', ['link', 'set', 'ul1', 'up']);
    for (const [ns, n] of [
      [ns1, 1],
      [ns2, 2],
    ] as const) {
      ns.exec('ip', ['link', 'add', 'wg0', 'type', 'wireguard']);
      ns.exec('ip', ['addr', 'add', `10.77.0.${n}/24`, 'dev', 'wg0']);
      ns.exec('ip', ['addr', 'add', `fd77::${n}/64`, 'dev', 'wg0', 'nodad']);
      ns.exec('ip', ['link', 'set', 'wg0', 'up']);
    }
    c1 = await WireGuardClient.open({ netns: ns1.name });
    c2 = await WireGuardClient.open({ netns: ns2.name });
  });

  afterAll(() => {
    c1?.close();
    c2?.close();
    ns1?.remove();
    ns2?.remove();
  });

  it('configures two devices and pings across the tunnel (IPv4 and IPv6)', async () => {
    await c1.configureDevice('wg0', {
      privateKey: k1,
      listenPort: 51001,
      peers: [
        {
          publicKey: k2.publicKey(),
          presharedKey: psk,
          endpoint: { address: '192.168.77.2', port: 51002 },
          allowedIPs: ['10.77.0.2/32', 'fd77::2/128'],
        },
      ],
    });
    await c2.configureDevice('wg0', {
      privateKey: k2,
      listenPort: 51002,
      fwmark: 0x77,
      peers: [
        {
          publicKey: k1.publicKey(),
          presharedKey: psk,
          endpoint: { address: '192.168.77.1', port: 51001 },
          persistentKeepalive: 25,
          allowedIPs: ['10.77.0.1/32', 'fd77::1/128'],
        },
      ],
    });
    // The first packet waits for the handshake, which is slow under emulation: allow a deadline.
    const v4 = ns1.tryExec('ping', ['-c', '1', '-w', '30', '10.77.0.2'], 60_000);
    expect(v4.status, v4.stdout + v4.stderr).toBe(0);
    const v6 = ns2.tryExec('ping', ['-c', '1', '-w', '30', 'fd77::1'], 60_000);
    expect(v6.status, v6.stdout + v6.stderr).toBe(0);
  });

  it('getDevice shows the handshake, traffic counters and configuration', async () => {
    const d = await c1.getDevice('wg0');
    expect(d.name).toBe('wg0');
    expect(d.ifindex).toBeGreaterThan(0);
    expect(d.listenPort).toBe(51001);
    expect(d.publicKey?.equals(k1.publicKey())).toBe(true);
    expect(d.privateKey).toBeUndefined();
    expect(d.peers).toHaveLength(1);
    const p = d.peers[0];
    expect(p?.publicKey.equals(k2.publicKey())).toBe(true);
    expect(p?.presharedKey).toBeUndefined();
    expect(p?.endpoint).toEqual({ address: '192.168.77.2', port: 51002 });
    expect(p?.allowedIPs.sort()).toEqual(['10.77.0.2/32', 'fd77::2/128']);
    expect(p?.lastHandshake).toBeInstanceOf(Date);
    expect(Math.abs((p?.lastHandshake?.getTime() ?? 0) - Date.now())).toBeLessThan(120_000);
    expect(p?.rxBytes).toBeGreaterThan(0);
    expect(p?.txBytes).toBeGreaterThan(0);
    expect(p?.protocolVersion).toBe(1);

    const withSecrets = await c1.getDevice(d.ifindex, { secrets: true });
    expect(withSecrets.privateKey?.equals(k1)).toBe(true);
    expect(withSecrets.peers[0]?.presharedKey?.equals(psk)).toBe(true);

    const d2 = await c2.getDevice('wg0');
    expect(d2.fwmark).toBe(0x77);
    expect(d2.peers[0]?.persistentKeepalive).toBe(25);
    // Cross-check with wg(8): it reads the same kernel state through its own netlink code.
    const dump = ns2.exec('wg', ['show', 'wg0', 'dump']).trim().split('\n');
    expect(dump[0]?.split('\t')[1]).toBe(k2.publicKey().toBase64());
    expect(dump[1]?.split('\t')[0]).toBe(k1.publicKey().toBase64());
    expect(dump[1]?.split('\t')[3]).toBe('10.77.0.1/32,fd77::1/128');
  });

  it('honours updateOnly, remove, replaceAllowedIPs and replacePeers', async () => {
    const stranger = Key.generatePrivate().publicKey();
    await c1.configureDevice('wg0', { peers: [{ publicKey: stranger, updateOnly: true, allowedIPs: ['10.99.0.0/16'] }] });
    expect((await c1.getDevice('wg0')).peers).toHaveLength(1);

    await c1.configureDevice('wg0', { peers: [{ publicKey: stranger, allowedIPs: ['10.99.0.0/16'] }] });
    expect((await c1.getDevice('wg0')).peers).toHaveLength(2);

    await c1.configureDevice('wg0', { peers: [{ publicKey: stranger, replaceAllowedIPs: true, allowedIPs: ['10.98.0.0/16'] }] });
    const replaced = (await c1.getDevice('wg0')).peers.find((p) => p.publicKey.equals(stranger));
    expect(replaced?.allowedIPs).toEqual(['10.98.0.0/16']);

    await c1.configureDevice('wg0', { peers: [{ publicKey: stranger, remove: true }] });
    expect((await c1.getDevice('wg0')).peers.map((p) => p.publicKey.toBase64())).toEqual([k2.publicKey().toBase64()]);

    ns1.exec('ip', ['link', 'add', 'wg1', 'type', 'wireguard']);
    await c1.configureDevice('wg1', { peers: [{ publicKey: stranger }, { publicKey: k2.publicKey() }] });
    await c1.configureDevice('wg1', { replacePeers: true, peers: [{ publicKey: k1.publicKey() }] });
    const wg1 = await c1.getDevice('wg1');
    expect(wg1.peers.map((p) => p.publicKey.toBase64())).toEqual([k1.publicKey().toBase64()]);
    expect(wg1.publicKey).toBeUndefined();
    ns1.exec('ip', ['link', 'del', 'wg1']);
  });

  it('reports a missing or non-WireGuard device as WireGuardDeviceNotFoundError', async () => {
    await expect(c1.getDevice('nosuchwg0')).rejects.toMatchObject({ name: 'WireGuardDeviceNotFoundError', code: 'ENODEV' });
    await expect(c1.configureDevice('ul0', { listenPort: 1 })).rejects.toBeInstanceOf(WireGuardDeviceNotFoundError);
    await expect(c1.getDevice('ul0')).rejects.toMatchObject({ code: 'EOPNOTSUPP' });
  });

  it('configures 10,000 peers in one call and reads all of them back', async () => {
    // A namespace of its own. Teardown matters on 6.1: each peer's removal waits for an RCU
    // grace period. Destroying the device (link delete or `ip netns del`) does that outside
    // the RTNL lock with normal grace periods, ~3 minutes for 10,000 peers under TCG, and the
    // netns cleanup worker holds pernet_ops_rwsem all along, so any module load (e.g. the next
    // suite's RTM_NEWLINK of kind dummy) waits behind it. replacePeers with no peers removes
    // them under the RTNL lock, where grace periods are expedited: a few seconds.
    const big = TestNetns.create('wgk3');
    // Timeouts count the time the kernel spends inside sendmsg(), long for 10,000 peers under TCG.
    const c3 = await WireGuardClient.open({ netns: big.name, timeoutMs: 120_000 });
    try {
      big.exec('ip', ['link', 'add', 'wgbig', 'type', 'wireguard']);
      const peers: PeerConfig[] = Array.from({ length: 10_000 }, (_, i) => ({
        publicKey: Key.fromBytes(Buffer.concat([Buffer.alloc(28, 0xab), Buffer.from([0, 0, i >> 8, i & 0xff])])),
        endpoint: { address: `192.0.2.${(i % 250) + 1}`, port: 51820 },
        allowedIPs: [`10.${i >> 8}.${i & 0xff}.0/24`, `fd00:${i.toString(16)}::/64`],
      }));
      await c3.configureDevice('wgbig', { replacePeers: true, listenPort: 51999, peers });
      const d = await c3.getDevice('wgbig');
      expect(d.listenPort).toBe(51999);
      expect(d.peers).toHaveLength(10_000);
      const byKey = new Map(d.peers.map((p) => [p.publicKey.toHex(), p]));
      let mismatches = 0;
      for (const p of peers) {
        const got = byKey.get(p.publicKey.toHex());
        if (got?.allowedIPs.sort().join() !== (p.allowedIPs ?? []).map(canonicalCidr).sort().join()) mismatches++;
      }
      expect(mismatches).toBe(0);
      const wgCount = big.exec('wg', ['show', 'wgbig', 'peers'], { timeoutMs: 120_000 }).trim().split('\n').length;
      expect(wgCount).toBe(10_000);
    } finally {
      try {
        await c3.configureDevice('wgbig', { replacePeers: true, peers: [] });
      } finally {
        c3.close();
        big.remove();
      }
    }
  }, 600_000);
});
