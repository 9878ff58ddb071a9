import { describe, expect, it } from 'vitest';
import { Key, type DeviceConfig, type WireGuardPeer } from '../src/index.js';
import { PeerReconciler, WgValidationError, diffPeers, peerFromNode, type DesiredPeer } from '../src/index.js';
import { applySet, emptyDevice, getReply } from './fake-uapi.js';
import { encodeSet, parseGet } from '../src/index.js';
import { newPeer } from '../src/wgtypes/types.js';

const keys = Array.from({ length: 4 }, () => Key.generatePrivate().publicKey());
const [A, B, C, D] = keys as [Key, Key, Key, Key];

function devPeer(publicKey: Key, over: Partial<WireGuardPeer> = {}): WireGuardPeer {
  return { ...newPeer(publicKey, 1), ...over };
}

const current: WireGuardPeer[] = [
  devPeer(A, { endpoint: { address: '192.168.1.2', port: 51871 }, allowedIPs: ['10.0.1.0/24'] }),
  devPeer(B, {
    endpoint: { address: 'fd00::2', port: 51871 },
    allowedIPs: ['10.0.2.0/24', 'fd10:2::/64'],
    persistentKeepalive: 25,
  }),
];
const same: DesiredPeer[] = [
  { publicKey: A, endpoint: { address: '192.168.1.2', port: 51871 }, allowedIPs: ['10.0.1.0/24'] },
  {
    publicKey: B,
    endpoint: { address: 'fd00:0:0::2', port: 51871 },
    allowedIPs: ['fd10:2::/64', '10.0.2.7/24'],
    persistentKeepalive: 25,
  },
];

describe('diffPeers', () => {
  it.each<[string, DesiredPeer[], unknown[]]>([
    ['no-op (IPv6 spelling and allowed-IP order/host bits ignored)', same, []],
    [
      'add a peer',
      [
        ...same,
        { publicKey: C, endpoint: { address: '192.168.1.3', port: 51871 }, allowedIPs: ['10.0.3.0/24'], persistentKeepalive: 0 },
      ],
      [{ publicKey: C, endpoint: { address: '192.168.1.3', port: 51871 }, allowedIPs: ['10.0.3.0/24'] }],
    ],
    [
      'endpoint change → updateOnly, nothing else',
      [{ ...same[0]!, endpoint: { address: '192.168.9.9', port: 51871 } }, same[1]!],
      [{ publicKey: A, updateOnly: true, endpoint: { address: '192.168.9.9', port: 51871 } }],
    ],
    [
      'keepalive change → updateOnly',
      [same[0]!, { ...same[1]!, persistentKeepalive: 0 }],
      [{ publicKey: B, updateOnly: true, persistentKeepalive: 0 }],
    ],
    [
      'allowed-IPs change → replaceAllowedIPs with the full new set',
      [{ ...same[0]!, allowedIPs: ['10.0.1.0/24', '192.168.1.2/32'] }, same[1]!],
      [{ publicKey: A, updateOnly: true, replaceAllowedIPs: true, allowedIPs: ['10.0.1.0/24', '192.168.1.2/32'] }],
    ],
    ['removal', [same[1]!], [{ publicKey: A, remove: true }]],
    [
      'mixed: one add, one removal, one change',
      [
        { ...same[1]!, endpoint: { address: 'fd00::3', port: 1 } },
        { publicKey: D, allowedIPs: ['10.0.4.0/24'] },
      ],
      [
        { publicKey: B, updateOnly: true, endpoint: { address: 'fd00::3', port: 1 } },
        { publicKey: D, allowedIPs: ['10.0.4.0/24'] },
        { publicKey: A, remove: true },
      ],
    ],
  ])('%s', (_name, desired, want) => {
    expect(diffPeers(desired, current)).toEqual(want);
  });

  it('an undefined desired endpoint leaves a learned endpoint alone', () => {
    expect(diffPeers([{ ...same[0]!, endpoint: undefined }, same[1]!], current)).toEqual([]);
  });

  it('removeUnknown: false keeps foreign peers', () => {
    expect(diffPeers([same[1]!], current, { removeUnknown: false })).toEqual([]);
  });

  it('one changed peer among 5,000 yields a one-peer config', () => {
    const many = Array.from({ length: 5000 }, (_, i) => ({
      key: Key.fromBytes(
        Buffer.alloc(32, 0)
          .fill(i & 0xff, 0, 1)
          .fill((i >> 8) & 0xff, 1, 2)
          .fill(1, 2),
      ),
      i,
    }));
    const cur = many.map(({ key, i }) =>
      devPeer(key, {
        endpoint: { address: `10.${i >> 8}.${i & 0xff}.1`, port: 51871 },
        allowedIPs: [`172.${16 + (i >> 8)}.${i & 0xff}.0/24`],
      }),
    );
    const want: DesiredPeer[] = cur.map((p) => ({ publicKey: p.publicKey, endpoint: p.endpoint!, allowedIPs: p.allowedIPs }));
    want[1234] = { ...want[1234]!, allowedIPs: ['172.99.0.0/24'] };
    const change = diffPeers(want, cur);
    expect(change).toHaveLength(1);
    expect(change[0]).toMatchObject({ publicKey: want[1234].publicKey, replaceAllowedIPs: true, allowedIPs: ['172.99.0.0/24'] });
  });

  it('refuses duplicate public keys and bad CIDRs, naming the field', () => {
    expect(() => diffPeers([same[0]!, same[0]!], [])).toThrow(expect.objectContaining({ field: 'desired[1].publicKey' }));
    expect(() => diffPeers([{ publicKey: A, allowedIPs: ['10.0.0.0/99'] }], [])).toThrow(WgValidationError);
  });
});

describe('peerFromNode', () => {
  it('builds allowed IPs from PodCIDRs, plus node IPs with node encryption', () => {
    const p = peerFromNode({
      publicKey: A.toBase64(),
      endpoint: '[fd00::2]:51871',
      podCIDRs: ['10.0.2.5/24', 'fd10:2::/64'],
      nodeIPs: ['192.168.1.2', 'fd00::2'],
      nodeEncryption: true,
      persistentKeepalive: 25,
    });
    expect(p.publicKey.equals(A)).toBe(true);
    expect(p.endpoint).toEqual({ address: 'fd00::2', port: 51871 });
    expect(p.allowedIPs).toEqual(['10.0.2.0/24', 'fd10:2::/64', '192.168.1.2/32', 'fd00::2/128']);
    expect(
      peerFromNode({ publicKey: A, endpoint: '1.2.3.4:5', podCIDRs: ['10.0.0.0/24'], nodeIPs: ['1.2.3.4'] }).allowedIPs,
    ).toEqual(['10.0.0.0/24']);
  });

  it.each([
    [{ publicKey: 'nope', podCIDRs: [] }, 'publicKey'],
    [{ publicKey: A, endpoint: '1.2.3.4', podCIDRs: [] }, 'endpoint'],
    [{ publicKey: A, endpoint: '[fd00::1]:70000', podCIDRs: [] }, 'endpoint'],
    [{ publicKey: A, podCIDRs: ['x'] }, 'podCIDRs[0]'],
  ])('rejects bad input naming the field (%#)', (spec, field) => {
    expect(() => peerFromNode(spec as never)).toThrow(expect.objectContaining({ name: 'WgValidationError', field }));
  });
});

// A client over the model daemon, counting what is written.
function modelClient() {
  const dev = emptyDevice();
  const writes: DeviceConfig[] = [];
  let reads = 0;
  return {
    dev,
    writes,
    get reads() {
      return reads;
    },
    async device() {
      reads++;
      return parseGet(getReply(dev), { name: 'wg0' });
    },
    async configureDevice(_n: string, cfg: DeviceConfig) {
      writes.push(cfg);
      const lines = encodeSet(cfg).split('\n');
      if (applySet(dev, lines.slice(1, -2)) !== 0) throw new Error('model refused');
    },
  };
}

describe('PeerReconciler', () => {
  it('syncs, then writes one small change per event without re-reading the device', async () => {
    const c = modelClient();
    const r = new PeerReconciler(c, 'wg0');
    expect(await r.sync(same)).toHaveLength(2);
    expect(c.reads).toBe(1);
    expect(await r.sync(same)).toEqual([]);
    expect(c.reads).toBe(2);

    expect(await r.upsert(same[0]!)).toBeUndefined();
    const ch = await r.upsert({ ...same[0]!, allowedIPs: ['10.0.1.0/24', '10.0.100.0/24'] });
    expect(ch).toMatchObject({ replaceAllowedIPs: true });
    expect(c.writes.at(-1)?.peers).toHaveLength(1);
    expect(await r.upsert({ ...same[0]!, allowedIPs: ['10.0.1.0/24', '10.0.100.0/24'] })).toBeUndefined();
    expect(await r.remove(B)).toBe(true);
    expect(await r.remove(B)).toBe(false);
    expect(c.reads).toBe(2);

    const onDevice = parseGet(getReply(c.dev), { name: 'wg0' });
    expect(onDevice.peers.map((p) => p.publicKey.toBase64())).toEqual([A.toBase64()]);
    expect(onDevice.peers[0]?.allowedIPs).toEqual(['10.0.1.0/24', '10.0.100.0/24']);
    expect(r.size).toBe(1);
  });

  it('serialises concurrent operations (each diffs against the result of the previous one)', async () => {
    const c = modelClient();
    const r = new PeerReconciler(c, 'wg0');
    const wants = [0, 1, 2, 3].map((i) => ({ ...same[0]!, allowedIPs: [`10.50.${i}.0/24`] }));
    const results = await Promise.all([r.sync(same), ...wants.map((w) => r.upsert(w)), r.remove(B)]);
    expect(results.slice(1, 5).every((ch) => ch !== undefined && (ch as { replaceAllowedIPs?: boolean }).replaceAllowedIPs)).toBe(
      true,
    );
    const onDevice = parseGet(getReply(c.dev), { name: 'wg0' });
    expect(onDevice.peers.map((p) => [p.publicKey.toBase64(), p.allowedIPs])).toEqual([[A.toBase64(), ['10.50.3.0/24']]]);
  });

  it('replace(): the old key out and the new one in with a keepalive kick in one write, then the configured keepalive back', async () => {
    const c = modelClient();
    const r = new PeerReconciler(c, 'wg0');
    await r.sync(same);
    const rotated = Key.generatePrivate().publicKey();
    const want: DesiredPeer = { ...same[0]!, publicKey: rotated };
    const writes = c.writes.length;
    await r.replace(A, want);
    expect(
      c.writes.slice(writes).map((w) => w.peers?.map((p) => [p.publicKey.toBase64(), p.remove ?? false, p.persistentKeepalive])),
    ).toEqual([
      [
        [A.toBase64(), true, undefined],
        [rotated.toBase64(), false, 25],
      ],
      [[rotated.toBase64(), false, 0]],
    ]);
    const onDevice = parseGet(getReply(c.dev), { name: 'wg0' });
    expect(onDevice.peers.map((p) => p.publicKey.toBase64()).sort()).toEqual([B.toBase64(), rotated.toBase64()].sort());
    expect(onDevice.peers.find((p) => p.publicKey.equals(rotated))).toMatchObject({
      persistentKeepalive: 0,
      allowedIPs: want.allowedIPs,
    });
    // A configured keepalive kicks by itself: one write, and it stays.
    const again = Key.generatePrivate().publicKey();
    const before = c.writes.length;
    await r.replace(rotated, { ...want, publicKey: again, persistentKeepalive: 10 });
    expect(c.writes.length - before).toBe(1);
    expect(parseGet(getReply(c.dev), { name: 'wg0' }).peers.find((p) => p.publicKey.equals(again))?.persistentKeepalive).toBe(10);
    // The reconciler's cache agrees with the device: a repeated upsert writes nothing.
    expect(await r.upsert({ ...want, publicKey: again, persistentKeepalive: 10 })).toBeUndefined();
  });

  it('key switch: a pending peer with no allowed IPs and a kick, then allowed IPs moved and the old key removed in one write', async () => {
    const c = modelClient();
    const r = new PeerReconciler(c, 'wg0');
    await r.sync(same);
    const rotated = Key.generatePrivate().publicKey();
    const want: DesiredPeer = { ...same[0]!, publicKey: rotated };
    let writes = c.writes.length;
    await r.addPending(want);
    const summary = (from: number): unknown =>
      c.writes
        .slice(from)
        .map((w) => w.peers?.map((p) => [p.publicKey.toBase64(), p.remove ?? false, p.allowedIPs, p.persistentKeepalive]));
    expect(summary(writes)).toEqual([
      [[rotated.toBase64(), false, [], undefined]],
      [[rotated.toBase64(), false, undefined, 25]], // the kick: a keepalive, hence a handshake
      [[rotated.toBase64(), false, undefined, 0]],
    ]);
    let onDevice = parseGet(getReply(c.dev), { name: 'wg0' });
    expect(onDevice.peers.find((p) => p.publicKey.equals(A))?.allowedIPs).toEqual(['10.0.1.0/24']);
    expect(onDevice.peers.find((p) => p.publicKey.equals(rotated))).toMatchObject({ allowedIPs: [], endpoint: want.endpoint });
    // After a restart: the device peer holding the node's allowed IPs under another key.
    expect(await r.holderOf(['10.0.1.7/24'], rotated)).toEqual(A);
    expect(await r.holderOf(['10.0.9.0/24'], rotated)).toBeUndefined();

    writes = c.writes.length;
    await r.commitSwitch(A, want);
    expect(c.writes.length - writes).toBe(1);
    // The new key gets the allowed IPs before the old one goes: no instant without a route.
    expect(summary(writes)).toEqual([
      [
        [rotated.toBase64(), false, ['10.0.1.0/24'], undefined],
        [A.toBase64(), true, undefined, undefined],
      ],
    ]);
    onDevice = parseGet(getReply(c.dev), { name: 'wg0' });
    expect(onDevice.peers.map((p) => p.publicKey.toBase64()).sort()).toEqual([B.toBase64(), rotated.toBase64()].sort());
    expect(onDevice.peers.find((p) => p.publicKey.equals(rotated))?.allowedIPs).toEqual(['10.0.1.0/24']);
    // The reconciler's cache agrees with the device: a repeated upsert writes nothing.
    expect(await r.upsert(want)).toBeUndefined();
    expect((await r.latestHandshakes()).has(rotated.toBase64())).toBe(true);
    // The holder index follows the switch: the allowed IPs are the new key's, the old key holds nothing.
    expect(await r.holderOf(['10.0.1.0/24'], A)).toEqual(rotated);
    expect(await r.holderOf(['10.0.1.0/24'], rotated)).toBeUndefined();
    await r.remove(rotated);
    expect(await r.holderOf(['10.0.1.0/24'], A)).toBeUndefined();
  });

  it('re-reads the device after invalidate() (e.g. a daemon restart)', async () => {
    const c = modelClient();
    const r = new PeerReconciler(c, 'wg0');
    await r.sync(same);
    c.dev.peers.clear(); // the daemon restarted empty
    r.invalidate();
    const ch = await r.upsert(same[0]!);
    expect(ch).toMatchObject({ publicKey: A });
    expect(ch?.updateOnly).toBeUndefined();
    expect(c.dev.peers.size).toBe(1);
  });
});
