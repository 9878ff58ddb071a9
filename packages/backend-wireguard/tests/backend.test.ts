import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { inspect } from 'node:util';
import { Container } from 'inversify';
import {
  DEFAULT_CONFIG,
  TOKENS,
  createLogger,
  loadBackendModule,
  parseCidr,
  type AgentConfig,
  type Cidr,
  type PeerNode,
} from '@veil/agent-core';
import { TestNetns, describePrivileged } from '@veil/test-utils';
import { Key, type WireGuardDevice } from '../src/index.js';
import backendModule, { KEY_SIGNATURE_ANNOTATION, PUBLIC_KEY_ANNOTATION, WireGuardBackend } from '../src/index.js';
import { underlayPair } from './netns-pair.js';

const DEV = 'wgbk0';

function configFor(stateDir: string, nodeName = 'n'): AgentConfig {
  return {
    ...DEFAULT_CONFIG,
    nodeName,
    stateDir,
    encryption: { ...DEFAULT_CONFIG.encryption, enabled: true, wireguard: { userspaceFallback: true } },
  };
}

const silent = createLogger({ level: 'silent' });

describe('ContainerModule', () => {
  it('is the default export, loadable by agent-core, and binds a WireGuardBackend', async () => {
    // What the agent does (the built package), and the same with this source tree's module.
    for (const mod of [await loadBackendModule('@veil/backend-wireguard'), backendModule]) {
      const c = new Container();
      c.bind(TOKENS.Config).toConstantValue(configFor('/nonexistent'));
      c.bind(TOKENS.Logger).toConstantValue(silent);
      await c.loadAsync(mod);
      expect(c.get(TOKENS.EncryptionBackend).constructor.name).toBe('WireGuardBackend');
    }
    const c = new Container();
    c.bind(TOKENS.Config).toConstantValue(configFor('/nonexistent'));
    c.bind(TOKENS.Logger).toConstantValue(silent);
    await c.loadAsync(backendModule);
    const b = c.get(TOKENS.EncryptionBackend);
    expect(b).toBeInstanceOf(WireGuardBackend);
    expect(c.get(TOKENS.EncryptionBackend)).toBe(b); // singleton
    expect(b.name).toBe('wireguard');
    const spec = b.peerAnnotations[0]!;
    expect(spec).toMatchObject({ key: PUBLIC_KEY_ANNOTATION, required: true, unique: true });
    expect(spec.validate(Key.generatePrivate().publicKey().toBase64())).toBeUndefined();
    expect(spec.validate('not-a-key')).toMatch(/base64/);
  });
});

function peerNode(name: string, ip: string, podCidr: string, key: string, more: Record<string, string> = {}): PeerNode {
  return {
    name,
    internalIPv4: ip,
    internalIPv6: undefined,
    podCIDRs: [parseCidr(podCidr) as Cidr],
    nodeId: 0,
    backend: { ...more, [PUBLIC_KEY_ANNOTATION]: key },
  };
}

describePrivileged('WireGuardBackend on wireguard-go, two nodes', ['root', 'netns', 'tun', 'wireguard-go'], () => {
  const tmp = mkdtempSync(join(tmpdir(), 'wgb-backend-'));
  const ns: TestNetns[] = [];
  const backends: WireGuardBackend[] = [];
  const handedOver: number[] = []; // PIDs of daemons left running by close(), ours to end

  beforeAll(() => {
    ns.push(...underlayPair(['wgbka', 'wgbkb'], ['wgbk0u', 'wgbk1u'], '192.168.78'));
    ns[0]!.exec('ip', ['route', 'add', 'default', 'via', '192.168.78.2']);
  });

  afterAll(async () => {
    for (const b of backends) await b.destroy();
    for (const pid of handedOver) {
      try {
        process.kill(pid, 'SIGTERM');
      } catch {
        /* already gone */
      }
    }
    for (const n of ns) n.remove();
    rmSync(tmp, { recursive: true, force: true });
  });

  it('init, publish, peer, ping; status names peers and shows no private key', async () => {
    for (const [i, n] of ns.entries()) {
      // Node names as the peers know them: a rotation is signed for the node's name.
      const b = new WireGuardBackend(configFor(join(tmp, `state${i}`), i === 0 ? 'node-a' : 'node-b'), silent, {
        device: DEV,
        // Both "nodes" use the device name wgbk0 on one host: a socket directory each (the default,
        // /run/wireguard, is tested on its own below in a private mount namespace).
        socketDir: join(tmp, `run${i}`),
        netns: n.name,
        preferKernel: false,
      });
      expect(await b.init()).toEqual([]);
      backends.push(b);
    }
    const [ba, bb] = backends as [WireGuardBackend, WireGuardBackend];
    const [a, b] = ns as [TestNetns, TestNetns];
    expect(ba.steering()).toMatchObject({ kind: 'redirect' });
    expect((ba.steering() as { ifindex: number }).ifindex).toBe(Number(a.exec('cat', [`/sys/class/net/${DEV}/ifindex`]).trim()));
    // The device MTU travels with the steering so the BPF too-big check matches the device.
    expect((ba.steering() as { mtu?: number }).mtu).toBe(Number(a.exec('cat', [`/sys/class/net/${DEV}/mtu`]).trim()));
    // MTU from the default route's link (veth, 1500) minus 80.
    expect(a.exec('ip', ['-o', 'link', 'show', DEV])).toContain('mtu 1420');

    const keyA = ba.localMaterial()[PUBLIC_KEY_ANNOTATION]!;
    const keyB = bb.localMaterial()[PUBLIC_KEY_ANNOTATION]!;
    await ba.upsertPeer(peerNode('node-b', '192.168.78.2', '10.97.2.0/24', keyB));
    await bb.upsertPeer(peerNode('node-a', '192.168.78.1', '10.97.1.0/24', keyA));
    a.exec('ip', ['addr', 'add', '10.97.1.1/32', 'dev', DEV]);
    a.exec('ip', ['route', 'add', '10.97.2.0/24', 'dev', DEV, 'src', '10.97.1.1']);
    b.exec('ip', ['addr', 'add', '10.97.2.1/32', 'dev', DEV]);
    b.exec('ip', ['route', 'add', '10.97.1.0/24', 'dev', DEV, 'src', '10.97.2.1']);
    let ok = false;
    for (let i = 0; i < 5 && !ok; i++)
      ok = a.tryExec('ping', ['-c', '2', '-i', '0.3', '-W', '2', '10.97.2.1'], 15_000).status === 0;
    expect(ok).toBe(true);

    // Prometheus view of the same device: meta, peers, handshake time and bytes per node name.
    const registry = new Registry();
    ba.registerMetrics(registry);
    const scrape = await registry.metrics();
    expect(scrape).toContain(
      `veil_wireguard_meta{device="${DEV}",driver="userspace",listen_port="51871",public_key="${keyA}"} 1`,
    );
    expect(scrape).toMatch(/^veil_wireguard_peers 1$/m);
    const handshake = new RegExp(
      `^veil_wireguard_latest_handshake_seconds\\{peer="node-b",public_key="${keyB.replace(/[+/]/g, '\\$&')}"\\} (\\d+)$`,
      'm',
    ).exec(scrape);
    expect(Number(handshake?.[1])).toBeGreaterThan(Date.now() / 1000 - 120);
    expect(Number(/^veil_wireguard_sent_bytes\{peer="node-b".*\} (\d+)$/m.exec(scrape)?.[1])).toBeGreaterThan(0);
    expect(Number(/^veil_wireguard_received_bytes\{peer="node-b".*\} (\d+)$/m.exec(scrape)?.[1])).toBeGreaterThan(0);
    expect(scrape).not.toContain(
      (ba as unknown as { keys: { privateKey(): { toBase64(): string } } }).keys.privateKey().toBase64(),
    );

    const st = await ba.status();
    expect(st).toMatchObject({ backend: 'wireguard', driver: 'userspace (wireguard-go)' });
    expect(st.peers.map((p) => p.name)).toEqual(['node-b']);
    expect(st.peers[0]?.detail).toMatch(/handshake \d+s ago/);
    const priv = (ba['keys' as never] as unknown as { privateKey(): Key }).privateKey();
    for (const text of [
      JSON.stringify(st),
      inspect(st, { depth: 10 }),
      inspect(ba, { depth: 10 }),
      Object.prototype.toString.call(ba),
    ]) {
      expect(text).not.toContain(priv.toBase64());
      expect(text).not.toContain(priv.toHex());
    }
  });

  it('a killed wireguard-go comes back with a new ifindex; steering listeners and peers follow', async () => {
    const [, bb] = backends as [WireGuardBackend, WireGuardBackend];
    const before = bb.steering();
    const changed = new Promise((r) => bb.onSteeringChange(r));
    const pid = (await bb.status()).details?.wireguardGoPid as number;
    process.kill(pid, 'SIGKILL');
    const next = (await changed) as { kind: string; ifindex: number };
    expect(next.kind).toBe('redirect');
    expect(next.ifindex).not.toBe((before as { ifindex: number }).ifindex);
    expect(bb.steering()).toEqual(next);
    // Peers are back (the address/route on the new TUN are the lab's business; the peer is ours).
    for (let i = 0; i < 50 && (await bb.status()).peers.length === 0; i++) await new Promise((r) => setTimeout(r, 100));
    expect((await bb.status()).peers.map((p) => p.name)).toEqual(['node-a']);
    expect((await bb.status()).details?.restarts).toBe(1);
  });

  /** Pings `target` from `from` every 50 ms for `count` pings; resolves with what ping counted. */
  function pingDuring(from: TestNetns, target: string, count: number): Promise<{ sent: number; received: number; out: string }> {
    const child = from.spawn('ping', ['-n', '-i', '0.05', '-W', '1', '-c', String(count), target]);
    let out = '';
    child.stdout?.on('data', (d: Buffer) => (out += d.toString()));
    return new Promise((resolve) =>
      child.on('close', () => {
        const m = /(\d+) packets transmitted, (\d+) received/.exec(out);
        resolve({ sent: Number(m?.[1] ?? 0), received: Number(m?.[2] ?? 0), out });
      }),
    );
  }

  function deviceOf(b: WireGuardBackend): Promise<WireGuardDevice> {
    return (b as unknown as { handle: { client: { device(n: string): Promise<WireGuardDevice> } } }).handle.client.device(DEV);
  }

  const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

  it('a peer that learns a rotated key handshakes at once, with no traffic to trigger it (issue 12)', async () => {
    // The rotated node's own handshake attempts with its new key fail until its peers know the key,
    // and WireGuard retries only after 5 s (REKEY_TIMEOUT): traffic from it would stall that long.
    // So whoever learns the new key starts the handshake itself.
    const [ba, bb] = backends as [WireGuardBackend, WireGuardBackend];
    const [a, b] = ns as [TestNetns, TestNetns];
    // b's TUN was recreated by the previous test: its address and route are the lab's business.
    if (!b.exec('ip', ['-o', 'addr', 'show', 'dev', DEV]).includes('10.97.2.1')) {
      b.exec('ip', ['addr', 'add', '10.97.2.1/32', 'dev', DEV]);
      b.exec('ip', ['route', 'replace', '10.97.1.0/24', 'dev', DEV, 'src', '10.97.2.1']);
    }
    const oldKey = ba.localMaterial()[PUBLIC_KEY_ANNOTATION]!;
    const { material } = await ba.rotateKeys();
    const newKey = material[PUBLIC_KEY_ANNOTATION]!;
    // The rotation is signed with the previous key: the peer switches in the same call.
    expect(material[KEY_SIGNATURE_ANNOTATION]).toMatch(/^[A-Za-z0-9+/]{86}==$/);
    const signature = { [KEY_SIGNATURE_ANNOTATION]: material[KEY_SIGNATURE_ANNOTATION]! };
    await bb.upsertPeer(peerNode('node-a', '192.168.78.1', '10.97.1.0/24', newKey, signature));
    let dev = await deviceOf(bb);
    expect(dev.peers.map((p) => [p.publicKey.toBase64(), p.allowedIPs])).toEqual([[newKey, ['10.97.1.0/24']]]);
    expect(oldKey).not.toBe(newKey);
    let detail = '';
    for (let i = 0; i < 200; i++) {
      const st = await bb.status();
      detail = st.peers.find((p) => p.name === 'node-a')?.detail ?? '';
      if (/^handshake \d+s ago$/.test(detail)) break;
      await sleep(100);
    }
    expect(detail).toMatch(/^handshake \d+s ago$/);
    // It was this side that started it: an initiation is 148 bytes (a response only 92) and no data
    // has been sent.
    dev = await deviceOf(bb);
    const onDevice = dev.peers.find((p) => p.publicKey.toBase64() === newKey);
    expect(onDevice?.txBytes).toBeGreaterThanOrEqual(148);
    // The configured keepalive (0 = off) is what stays on the device afterwards.
    expect(onDevice?.persistentKeepalive).toBe(0);
    // And traffic from the rotated node flows on the first try.
    expect(a.tryExec('ping', ['-c', '1', '-W', '2', '10.97.2.1'], 15_000).status).toBe(0);
  });

  it('a new key not signed with the previous one (a re-imaged node) takes the traffic once it has handshaken (issue 12)', async () => {
    const [ba, bb] = backends as [WireGuardBackend, WireGuardBackend];
    const [a] = ns as [TestNetns];
    const oldKey = ba.localMaterial()[PUBLIC_KEY_ANNOTATION]!;
    const { material } = await ba.rotateKeys();
    const newKey = material[PUBLIC_KEY_ANNOTATION]!;
    const seenAt = Date.now();
    await bb.upsertPeer(peerNode('node-a', '192.168.78.1', '10.97.1.0/24', newKey)); // no signature
    // Pending: the new key has no allowed IPs yet, the old one keeps them.
    let dev = await deviceOf(bb);
    expect(dev.peers.find((p) => p.publicKey.toBase64() === oldKey)?.allowedIPs).toEqual(['10.97.1.0/24']);
    expect(dev.peers.find((p) => p.publicKey.toBase64() === newKey)?.allowedIPs).toEqual([]);
    let switchedAt = 0;
    for (let i = 0; i < 500 && !switchedAt; i++) {
      dev = await deviceOf(bb);
      if (!dev.peers.some((p) => p.publicKey.toBase64() === oldKey)) switchedAt = Date.now();
      else await sleep(5);
    }
    expect(switchedAt, 'the switch happened').toBeGreaterThan(0);
    const onDevice = dev.peers.find((p) => p.publicKey.toBase64() === newKey);
    expect(onDevice?.allowedIPs).toEqual(['10.97.1.0/24']); // the traffic moved to the new key
    expect(onDevice?.lastHandshake).toBeDefined(); // ... after its handshake
    expect(onDevice?.txBytes).toBeGreaterThanOrEqual(148); // started by this side
    expect(onDevice?.persistentKeepalive).toBe(0);
    expect((await bb.status()).details?.keySwitchesPending).toEqual([]);
    console.log(`unsigned key: seen → switched in ${switchedAt - seenAt} ms`);
    expect(a.tryExec('ping', ['-c', '1', '-W', '2', '10.97.2.1'], 15_000).status).toBe(0);
  });

  it('a key published by someone else never takes the traffic: pings keep answering; the real key back drops it (issue 12)', async () => {
    const [ba] = backends as [WireGuardBackend, WireGuardBackend];
    let bb = backends[1]!;
    const [a] = ns as [TestNetns];
    const realKey = ba.localMaterial()[PUBLIC_KEY_ANNOTATION]!;
    const forged = Key.generatePrivate().publicKey().toBase64();
    // Even with a copy of node-a's real signature (of the key in use, by the one before): it signs another key.
    const replayed = { [KEY_SIGNATURE_ANNOTATION]: ba.localMaterial()[KEY_SIGNATURE_ANNOTATION]! };
    expect(replayed[KEY_SIGNATURE_ANNOTATION]).toBeDefined();
    const pings = pingDuring(a, '10.97.2.1', 80); // 4 s, every 50 ms
    await sleep(300);
    await bb.upsertPeer(peerNode('node-a', '192.168.78.1', '10.97.1.0/24', forged, replayed));
    let dev = await deviceOf(bb);
    const byKey = (k: string): WireGuardDevice['peers'][number] | undefined =>
      dev.peers.find((p) => p.publicKey.toBase64() === k);
    expect(byKey(realKey)?.allowedIPs).toEqual(['10.97.1.0/24']);
    expect(byKey(forged)?.allowedIPs).toEqual([]);
    expect(byKey(forged)?.endpoint).toMatchObject({ address: '192.168.78.1' });
    const st = await bb.status();
    expect(st.details?.keySwitchesPending).toEqual([expect.objectContaining({ peer: 'node-a', publicKey: forged })]);
    // One line for the node: the key carrying the traffic, and the pending one.
    expect(st.peers.filter((p) => p.name === 'node-a').map((p) => p.detail)).toEqual([
      expect.stringMatching(/^handshake \d+s ago; key switch pending \d+s: no handshake with the new key yet$/),
    ]);
    const registry = new Registry();
    bb.registerMetrics(registry);
    expect(await registry.metrics()).toMatch(/^veil_wireguard_key_switch_pending 1$/m);

    // The agent restarts meanwhile: its peer state is gone, the device still has both peers. The forged
    // key again does not take the traffic (even when it is what the restarted agent is told first).
    await sleep(700);
    await bb.close();
    bb = new WireGuardBackend(configFor(join(tmp, 'state1'), 'node-b'), silent, {
      device: DEV,
      socketDir: join(tmp, 'run1'),
      netns: ns[1]!.name,
      preferKernel: false,
    });
    await bb.init();
    backends[1] = bb;
    await bb.upsertPeer(peerNode('node-a', '192.168.78.1', '10.97.1.0/24', forged));
    dev = await deviceOf(bb);
    expect(byKey(realKey)?.allowedIPs).toEqual(['10.97.1.0/24']);
    expect(byKey(forged)?.allowedIPs).toEqual([]);
    await sleep(1000); // longer than the first, fast polls: still no handshake, still no switch
    dev = await deviceOf(bb);
    expect(byKey(realKey)?.allowedIPs).toEqual(['10.97.1.0/24']);

    // The owner puts its key back: the pending peer goes.
    await bb.upsertPeer(peerNode('node-a', '192.168.78.1', '10.97.1.0/24', realKey));
    dev = await deviceOf(bb);
    expect(dev.peers.map((p) => p.publicKey.toBase64())).toEqual([realKey]);
    expect((await bb.status()).details?.keySwitchesPending).toEqual([]);
    const r = await pings;
    expect(r.sent, r.out).toBe(80);
    expect(r.received, r.out).toBe(80);
  });

  it('a key change waits for its handshake; prune drops unclaimed ones; a new backend adopts the device', async () => {
    const [ba] = backends as [WireGuardBackend];
    const rotated = Key.generatePrivate().publicKey().toBase64();
    await ba.upsertPeer(peerNode('node-c', '192.168.78.3', '10.97.3.0/24', Key.generatePrivate().publicKey().toBase64()));
    await ba.upsertPeer(peerNode('node-c', '192.168.78.3', '10.97.3.0/24', rotated));
    let st = await ba.status();
    // No node-c answers: the old key stays, the new one waits (pending) beside it.
    expect(st.peers.map((p) => p.name).sort()).toEqual(['node-b', 'node-c']);
    expect(st.peers.find((p) => p.name === 'node-c')?.detail).toContain('; key switch pending');

    // The agent restarts: handles released, the device and wireguard-go stay and are adopted.
    const pid = (await ba.status()).details?.wireguardGoPid as number;
    expect(pid).toBeGreaterThan(0);
    handedOver.push(pid);
    await ba.close();
    expect(() => process.kill(pid, 0)).not.toThrow(); // still running, now unsupervised
    const again = new WireGuardBackend(configFor(join(tmp, 'state0'), 'node-a'), silent, {
      device: DEV,
      socketDir: join(tmp, 'run0'),
      netns: ns[0]!.name,
      preferKernel: false,
    });
    await again.init();
    expect(again.localMaterial()).toEqual(ba.localMaterial()); // same key from the state dir
    st = await again.status();
    expect(st.peers).toHaveLength(3); // nothing torn down
    expect(st.peers.every((p) => p.name.startsWith('unclaimed'))).toBe(true);
    await again.upsertPeer(
      peerNode('node-b', '192.168.78.2', '10.97.2.0/24', backends[1]!.localMaterial()[PUBLIC_KEY_ANNOTATION]!),
    );
    expect(await again.prune(new Set(['node-b']))).toEqual([]);
    st = await again.status();
    expect(st.peers.map((p) => p.name)).toEqual(['node-b']);
    // wireguard-go dies: restarted (new TUN, new ifindex), peers re-programmed, steering listeners told.
    const sup = (await again.status()).details;
    expect(sup?.wireguardGoPid).toBeUndefined(); // adopted: not ours to supervise
    // Key rotation: new public material, the device uses the new key, the state dir has it.
    const before = again.localMaterial()[PUBLIC_KEY_ANNOTATION];
    const { material } = await again.rotateKeys();
    expect(material[PUBLIC_KEY_ANNOTATION]).not.toBe(before);
    expect(again.localMaterial()).toEqual(material);
    expect((await again.status()).details?.publicKey).toBe(material[PUBLIC_KEY_ANNOTATION]);
    expect((await again.status()).details?.publicKeyFingerprint).toMatch(/^[0-9a-f]{16}$/);
    const reread = new WireGuardBackend(configFor(join(tmp, 'state0'), 'node-a'), silent, {
      device: DEV,
      socketDir: join(tmp, 'run0'),
      netns: ns[0]!.name,
      preferKernel: false,
    });
    await reread.init();
    expect(reread.localMaterial()).toEqual(material);
    await reread.close();
    await again.removePeer('node-b');
    expect((await again.status()).peers).toEqual([]);
    await again.close();
  });
});

/**
 * The child the next suite runs inside `unshare --mount` with a tmpfs on /run/wireguard: a
 * WireGuardBackend with no socketDir (the agent's default), one peer, then `wg show` as an
 * operator types it. It prints what it saw as one JSON line.
 */
const DEFAULT_DIR_CHILD = `
import { execFileSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { DEFAULT_CONFIG, createLogger, parseCidr } from '@veil/agent-core';
import { WireGuardBackend, WireGuardGoSupervisor, WgClient, UserspaceDriver, PUBLIC_KEY_ANNOTATION } from '@veil/backend-wireguard';
const p = JSON.parse(process.env.VEIL_TEST_PARAMS);
const config = { ...DEFAULT_CONFIG, nodeName: 'n', stateDir: p.stateDir,
  encryption: { ...DEFAULT_CONFIG.encryption, enabled: true, wireguard: { userspaceFallback: true } } };
let legacyPid;
if (p.legacy) {
  // What an agent before issue 14 left running: wireguard-go with its socket under the state dir.
  const sup = new WireGuardGoSupervisor({ device: p.dev, socketDir: join(p.stateDir, 'wireguard', 'run'), netns: p.netns });
  await sup.start();
  legacyPid = sup.pid;
  sup.detach();
}
const b = new WireGuardBackend(config, createLogger({ level: 'silent' }), { device: p.dev, netns: p.netns, preferKernel: false });
try {
  await b.init();
  await b.upsertPeer({ name: 'peer-1', internalIPv4: '192.168.79.2', internalIPv6: undefined,
    podCIDRs: [parseCidr('10.96.2.0/24')], nodeId: 0, backend: { [PUBLIC_KEY_ANNOTATION]: p.peerKey } });
  const out = {
    runDir: readdirSync('/run/wireguard'),
    interfaces: execFileSync('wg', ['show', 'interfaces'], { encoding: 'utf8' }).trim(),
    publicKey: p.legacy ? undefined : execFileSync('wg', ['show', p.dev, 'public-key'], { encoding: 'utf8' }).trim(),
    peers: p.legacy ? undefined : execFileSync('wg', ['show', p.dev, 'peers'], { encoding: 'utf8' }).trim(),
    ownKey: b.localMaterial()[PUBLIC_KEY_ANNOTATION],
    details: (await b.status()).details,
    legacyPid,
    legacyAlive: legacyPid !== undefined && alive(legacyPid),
    legacyPeers: legacyPid === undefined ? undefined : await peersAt(join(p.stateDir, 'wireguard', 'run')),
  };
  process.stdout.write(JSON.stringify(out) + '\\n');
} finally {
  await b.destroy();
  if (legacyPid !== undefined) process.kill(legacyPid, 'SIGTERM');
}
function alive(pid) {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}
async function peersAt(socketDir) {
  const client = WgClient.fromDrivers([new UserspaceDriver({ socketDir })]);
  try {
    return (await client.device(p.dev)).peers.map((x) => x.publicKey.toBase64());
  } finally {
    client.close();
  }
}
`;

describePrivileged(
  'WireGuardBackend default socket directory: /run/wireguard, where wg(8) looks',
  ['root', 'netns', 'tun', 'wireguard-go', 'wg'],
  () => {
    const tmp = mkdtempSync(join(tmpdir(), 'wgb-rundir-'));
    let ns: TestNetns | undefined;

    beforeAll(() => {
      ns = TestNetns.create('wgbrd');
    });

    afterAll(() => {
      ns?.remove();
      rmSync(tmp, { recursive: true, force: true });
    });

    /** Runs the child in its own mount namespace with a fresh tmpfs on /run/wireguard; returns what it saw. */
    function child(dev: string, peerKey: string, stateDir: string, legacy: boolean): Record<string, unknown> {
      const params = JSON.stringify({ dev, netns: ns!.name, stateDir, peerKey, legacy });
      // A private mount namespace with its own /run/wireguard: the host's is never touched.
      const script = 'mkdir -p /run/wireguard && mount -t tmpfs veil-test /run/wireguard && exec "$@"';
      const r = spawnSync(
        'unshare',
        [
          '--mount',
          '--propagation',
          'private',
          '--',
          'sh',
          '-c',
          script,
          'sh',
          process.execPath,
          '--input-type=module',
          '-e',
          DEFAULT_DIR_CHILD,
        ],
        { encoding: 'utf8', env: { ...process.env, VEIL_TEST_PARAMS: params }, timeout: 120_000 },
      );
      expect(r.status, `child failed: ${r.stderr}`).toBe(0);
      return JSON.parse(r.stdout.trim().split('\n').pop()!) as Record<string, unknown>;
    }

    it('the UAPI socket is /run/wireguard/<dev>.sock, so plain `wg show` lists the device and its peers', () => {
      const dev = 'wgbrd0';
      const peerKey = Key.generatePrivate().publicKey().toBase64();
      const seen = child(dev, peerKey, join(tmp, 'state'), false);
      expect(seen.runDir).toEqual(expect.arrayContaining([`${dev}.sock`, `${dev}.log`])); // socket, and the daemon's output
      expect(seen.interfaces).toBe(dev);
      expect(seen.publicKey).toBe(seen.ownKey);
      expect(seen.peers).toBe(peerKey);
      expect(existsSync(`/run/wireguard/${dev}.sock`)).toBe(false); // the host's dir was not used
    });

    it('an upgrade adopts the daemon an earlier agent left with its socket under <stateDir>/wireguard/run', () => {
      const dev = 'wgbrd1';
      const peerKey = Key.generatePrivate().publicKey().toBase64();
      const seen = child(dev, peerKey, join(tmp, 'state-legacy'), true);
      expect(seen.legacyPid, JSON.stringify(seen)).toBeGreaterThan(0);
      expect(seen.legacyAlive).toBe(true); // not replaced: no gap in traffic
      expect(seen.details).toMatchObject({ wireguardGoAdopted: true, publicKey: seen.ownKey });
      expect(seen.legacyPeers).toEqual([peerKey]); // the backend programs the adopted daemon
      expect(seen.runDir).toEqual([]); // no second daemon in /run/wireguard
    });
  },
);
