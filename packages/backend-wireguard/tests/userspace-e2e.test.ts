import { afterAll, beforeAll, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describePrivileged, TestNetns } from '@veil/test-utils';
import {
  KeyStore,
  PeerReconciler,
  UserspaceDriver,
  WgClient,
  WireGuardGoSupervisor,
  WireGuardNotAvailableError,
  peerFromNode,
  setupDevice,
  type DeviceSetupOptions,
  type DesiredPeer,
  type WgDeviceHandle,
} from '../src/index.js';
import { FakeUapi } from './fake-uapi.js';

// Two "nodes" on one host: two netns joined by a veth underlay, one wireguard-go each (same
// device name in both: the private mount namespace keeps their sockets apart), configured only
// through WgClient (userspace driver), checked against `wg show`, then wireguard-go is killed
// and the supervisor brings it back.

const DEV = 'wgb0';
const PORT = 51871;

interface Node {
  ns: TestNetns;
  sockDir: string;
  keys: KeyStore;
  handle?: WgDeviceHandle;
  /** What setupDevice was called with (an agent restart calls it again the same way). */
  setup?: DeviceSetupOptions;
  reconciler?: PeerReconciler;
  underlay: string;
  tunnelIp: string;
  podCidr: string;
  desired: DesiredPeer[];
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** `wg show <dev> dump` inside the same private mount setup as the daemon. */
function wgDump(n: Node): string[][] {
  const out = n.ns.exec('unshare', [
    '--mount',
    '--propagation',
    'private',
    '--',
    'sh',
    '-c',
    'mount --bind "$1" /run/wireguard && exec wg show "$2" dump',
    'sh',
    n.sockDir,
    DEV,
  ]);
  return out
    .trim()
    .split('\n')
    .map((l) => l.split('\t'));
}

function addTunnelRoutes(n: Node, peerCidr: string): void {
  n.ns.exec('ip', ['addr', 'replace', `${n.tunnelIp}/32`, 'dev', DEV]);
  n.ns.exec('ip', ['route', 'replace', peerCidr, 'dev', DEV, 'src', n.tunnelIp]);
}

function ping(from: Node, to: Node): boolean {
  for (let i = 0; i < 5; i++) {
    if (from.ns.tryExec('ping', ['-c', '2', '-i', '0.3', '-W', '2', '-I', from.tunnelIp, to.tunnelIp], 15_000).status === 0)
      return true;
  }
  return false;
}

describePrivileged(
  'wireguard-go under the supervisor, configured via WgClient',
  ['root', 'netns', 'tun', 'wireguard-go', 'wg'],
  () => {
    const tmp = mkdtempSync(join(tmpdir(), 'wgb-e2e-'));
    const nodes: Node[] = [];

    beforeAll(async () => {
      for (const [i, tag] of ['a', 'b'].entries()) {
        const ns = TestNetns.create(`wgb${tag}`);
        nodes.push({
          ns,
          sockDir: join(tmp, `sock-${tag}`),
          keys: await KeyStore.open({ dir: join(tmp, `state-${tag}`) }),
          underlay: `192.168.77.${i + 1}`,
          tunnelIp: `10.99.${i + 1}.1`,
          podCidr: `10.99.${i + 1}.0/24`,
          desired: [],
        });
      }
      const [a, b] = nodes as [Node, Node];
      a.ns.exec('ip', ['link', 'add', 'wgbu0', 'type', 'veth', 'peer', 'name', 'wgbu1', 'netns', b.ns.name]);
      a.ns.exec('ip', ['addr', 'add', `${a.underlay}/24`, 'dev', 'wgbu0']);
      b.ns.exec('ip', ['addr', 'add', `${b.underlay}/24`, 'dev', 'wgbu1']);
      a.ns.exec('ip', ['link', 'set', 'wgbu0', 'up']);
      b.ns.exec('ip', ['link', 'set', 'wgbu1', 'up']);
    });

    afterAll(async () => {
      for (const n of nodes) {
        await n.handle?.close({ stopDaemon: true });
        n.ns.remove();
      }
      rmSync(tmp, { recursive: true, force: true });
    });

    it('refuses to fall back when userspaceFallback is off, naming what to install', async () => {
      const n = nodes[0]!;
      const err = (await setupDevice({
        name: DEV,
        privateKey: n.keys.privateKey(),
        listenPort: PORT,
        netns: n.ns.name,
        socketDir: n.sockDir,
        preferKernel: false,
        userspaceFallback: false,
      }).catch((e: unknown) => e)) as Error;
      expect(err).toBeInstanceOf(WireGuardNotAvailableError);
      expect(err.message).toMatch(/wireguard.*kernel module|modprobe wireguard/);
      expect(err.message).toContain('wireguard-go');
    });

    it('starts wireguard-go in each netns with its socket in a Veil-owned dir; MTU from the underlay', async () => {
      for (const n of nodes) {
        n.setup = {
          name: DEV,
          privateKey: n.keys.privateKey(),
          listenPort: PORT,
          fwmark: 0x0e00,
          underlay: { address: nodes.find((o) => o !== n)!.underlay },
          netns: n.ns.name,
          socketDir: n.sockDir,
          preferKernel: false,
          backoff: { initialMs: 100 },
          onRestart: async () => {
            // The new TUN has no address/route and the daemon has no peers: put them back.
            const other = nodes.find((o) => o !== n)!;
            addTunnelRoutes(n, other.podCidr);
            n.reconciler!.invalidate();
            await n.reconciler!.sync(n.desired);
          },
        };
        n.handle = await setupDevice(n.setup);
        expect(n.handle.driver).toBe('userspace');
        expect(n.handle.adopted).toBe(false);
        expect(n.handle.mtu).toBe(1420);
        expect(n.handle.supervisor?.pid).toBeGreaterThan(0);
        const link = n.ns.exec('ip', ['-o', 'link', 'show', DEV]);
        expect(link).toContain('mtu 1420');
        expect(link).toMatch(/<[^>]*UP/);
        expect(n.ns.exec('cat', [`/proc/sys/net/ipv4/conf/${DEV}/rp_filter`]).trim()).toBe('0');
        const dev = await n.handle.client.device(DEV);
        expect(dev.listenPort).toBe(PORT);
        expect(dev.fwmark).toBe(0x0e00);
        expect(dev.publicKey?.equals(n.keys.publicKey)).toBe(true);
        expect(await n.handle.client.driverOf(DEV)).toBe('userspace');
      }
      // Setting up again adopts the running daemon instead of starting another one, and leaves its
      // UDP sockets alone: wireguard-go rebinds on every listen_port it is given, same port or not,
      // and what arrives meanwhile is lost (an agent restart lost pings in the lab chaos).
      const n = nodes[0]!;
      const udpInodes = (): string[] =>
        n.ns
          .exec('ss', ['-H', '-u', '-a', '-n', '-e'])
          .split('\n')
          .filter((l) => l.includes(`:${PORT} `))
          .map((l) => /ino:(\d+)/.exec(l)?.[1] ?? '?')
          .sort();
      const before = udpInodes();
      expect(before.length).toBeGreaterThan(0);
      const again = await setupDevice({
        name: DEV,
        privateKey: n.keys.privateKey(),
        listenPort: PORT,
        fwmark: 0x0e00,
        netns: n.ns.name,
        socketDir: n.sockDir,
        preferKernel: false,
      });
      expect(again.adopted).toBe(true);
      expect(again.supervisor).toBeUndefined();
      expect(udpInodes()).toEqual(before);
      await again.close();
    });

    it('peers configured through WgClient handshake and ping; `wg show` agrees', async () => {
      const [a, b] = nodes as [Node, Node];
      for (const [self, other] of [
        [a, b],
        [b, a],
      ] as const) {
        self.desired = [
          peerFromNode({ publicKey: other.keys.publicKey, endpoint: `${other.underlay}:${PORT}`, podCIDRs: [other.podCidr] }),
        ];
        self.reconciler = new PeerReconciler(self.handle!.client, DEV);
        const change = await self.reconciler.sync(self.desired);
        expect(change).toHaveLength(1);
        addTunnelRoutes(self, other.podCidr);
      }
      expect(ping(a, b)).toBe(true);

      const dev = await a.handle!.client.device(DEV);
      const dump = wgDump(a);
      const [iface, peer] = dump as [string[], string[]];
      expect(iface[1]).toBe(a.keys.publicKey.toBase64());
      expect(Number(iface[2])).toBe(dev.listenPort);
      expect(iface[3]).toBe('0xe00');
      expect(peer[0]).toBe(b.keys.publicKey.toBase64());
      expect(peer[2]).toBe(`${b.underlay}:${PORT}`);
      expect(peer[3]).toBe(b.podCidr);
      expect(Number(peer[4])).toBeGreaterThan(0); // handshake happened
      expect(dev.peers[0]?.lastHandshake).toBeDefined();
      // Counters: read by WgClient first, then by wg, after the ping — both non-zero, wg's not smaller.
      expect(dev.peers[0]!.rxBytes).toBeGreaterThan(0);
      expect(Number(peer[5])).toBeGreaterThanOrEqual(dev.peers[0]!.rxBytes);
      expect(Number(peer[6])).toBeGreaterThanOrEqual(dev.peers[0]!.txBytes);

      // No change → nothing written; one allowed-IP change → one peer written.
      expect(await a.reconciler!.sync(a.desired)).toEqual([]);
      a.desired = [{ ...a.desired[0]!, allowedIPs: [b.podCidr, '10.98.0.0/16'] }];
      expect(await a.reconciler!.upsert(a.desired[0]!)).toMatchObject({ replaceAllowedIPs: true });
      expect(wgDump(a)[1]?.[3]).toBe(`${b.podCidr},10.98.0.0/16`);
    });

    it('kill -9 of wireguard-go: the supervisor restarts it, the callback reconfigures, ping works again', async () => {
      const [a, b] = nodes as [Node, Node];
      const sup: WireGuardGoSupervisor = a.handle!.supervisor!;
      const oldPid = sup.pid!;
      const exited = new Promise((r) => sup.once('exit', r));
      const restarted = new Promise<{ pid: number }>((r) => sup.once('restarted', r));
      process.kill(oldPid, 'SIGKILL');
      expect(await exited).toMatchObject({ pid: oldPid, signal: 'SIGKILL' });
      const { pid } = await restarted;
      expect(pid).not.toBe(oldPid);
      expect(sup.restarts).toBe(1);
      expect(ping(a, b)).toBe(true);
      const dev = await a.handle!.client.device(DEV);
      expect(dev.peers.map((p) => p.publicKey.toBase64())).toEqual([b.keys.publicKey.toBase64()]);
    });

    it('a daemon adopted after an agent restart is supervised too: kill -9 → restarted and reconfigured (issue 12)', async () => {
      const [a, b] = nodes as [Node, Node];
      const pid = a.handle!.supervisor!.pid!;
      const opts = a.setup!;
      // Agent stop: handles closed, the daemon keeps running for the next agent.
      await a.handle!.close();
      a.handle = await setupDevice(opts);
      expect(a.handle.adopted).toBe(true);
      const watchdog = a.handle.watchdog;
      expect(watchdog).toBeDefined();
      const restarted = new Promise<{ pid: number }>((r) => watchdog!.once('restarted', r));
      process.kill(pid, 'SIGKILL');
      const next = await restarted;
      expect(next.pid).not.toBe(pid);
      expect(watchdog!.pid).toBe(next.pid);
      expect(ping(a, b)).toBe(true);
    });

    it('stop() ends the daemon by PID and removes its TUN and socket', async () => {
      const n = nodes[1]!;
      const pid = n.handle!.supervisor!.pid!;
      await n.handle!.close({ stopDaemon: true });
      n.handle = undefined;
      await sleep(100);
      expect(() => process.kill(pid, 0)).toThrow();
      expect(n.ns.tryExec('ip', ['link', 'show', DEV]).status).not.toBe(0);
      const client = await WgClient.open({ socketDir: n.sockDir, kernel: false });
      await expect(client.device(DEV)).rejects.toMatchObject({ name: 'WgDeviceNotFoundError' });
      client.close();
      expect(execFileSync('ls', [n.sockDir], { encoding: 'utf8' }).trim()).toBe('');
    });
  },
);

describePrivileged('supervisor refuses what it did not start', ['wireguard-go'], () => {
  it('validates options, and will not take over a socket another daemon answers on', async () => {
    expect(() => new WireGuardGoSupervisor({ device: 'a/b', socketDir: '/tmp/x' })).toThrow(
      expect.objectContaining({ field: 'device' }),
    );
    expect(() => new WireGuardGoSupervisor({ device: 'wg0', socketDir: 'relative' })).toThrow(
      expect.objectContaining({ field: 'socketDir' }),
    );
    const fake = await FakeUapi.start('wgfake1');
    try {
      const sup = new WireGuardGoSupervisor({ device: 'wgfake1', socketDir: fake.dir });
      await expect(sup.start()).rejects.toMatchObject({
        name: 'SupervisorError',
        // eslint-disable-next-line @typescript-eslint/no-unsafe-assignment -- vitest's asymmetric matchers (expect.any/stringMatching) are typed any
        reason: expect.stringContaining('did not start'),
      });
      expect(sup.pid).toBeUndefined();
      // The foreign daemon is untouched and still answers.
      await expect(WgClient.fromDrivers([new UserspaceDriver({ socketDir: fake.dir })]).device('wgfake1')).resolves.toMatchObject(
        { name: 'wgfake1' },
      );
    } finally {
      await fake.close();
    }
  });

  it('names wireguard-go when it is not installed', async () => {
    const sup = new WireGuardGoSupervisor({
      device: 'wgx0',
      socketDir: '/tmp/veil-wgb-unused',
      binary: '/nonexistent/wireguard-go',
    });
    await expect(sup.start()).rejects.toBeInstanceOf(WireGuardNotAvailableError);
  });
});
