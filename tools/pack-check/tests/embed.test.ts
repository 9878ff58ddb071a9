import { spawn, type ChildProcess } from 'node:child_process';
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { UserspaceDriver, WgClient, type WireGuardDevice } from '@veil/backend-wireguard';
import { TestNetns, describePrivileged, linkName } from '@veil/test-utils';
import { afterAll, beforeAll, expect, inject, it } from 'vitest';

/** One running copy of examples/embed-wireguard (installed from its tarball), in one namespace. */
class Embedder {
  readonly events: Record<string, unknown>[] = [];
  private stderr = '';
  private constructor(
    readonly ns: TestNetns,
    readonly device: string,
    readonly peersFile: string,
    readonly socketDir: string,
    readonly child: ChildProcess,
  ) {
    let buf = '';
    child.stdout?.setEncoding('utf8').on('data', (d: string) => {
      buf += d;
      for (let i = buf.indexOf('\n'); i >= 0; i = buf.indexOf('\n')) {
        const line = buf.slice(0, i).trim();
        buf = buf.slice(i + 1);
        if (line) this.events.push(JSON.parse(line) as Record<string, unknown>);
      }
    });
    child.stderr?.setEncoding('utf8').on('data', (d: string) => (this.stderr += d));
  }

  static start(project: string, ns: TestNetns, opts: { address: string; port: number; stateDir: string }): Embedder {
    const device = linkName('vemb');
    const peersFile = join(opts.stateDir, 'peers', 'peers.json');
    const main = join(project, 'node_modules', 'veil-example-embed-wireguard', 'main.js');
    const child = spawn(
      process.execPath,
      [
        main,
        '--netns',
        ns.name,
        '--device',
        device,
        '--port',
        String(opts.port),
        '--address',
        opts.address,
        '--state-dir',
        opts.stateDir,
        '--peers',
        peersFile,
      ],
      { cwd: project, stdio: ['ignore', 'pipe', 'pipe'], env: { PATH: process.env.PATH, HOME: process.env.HOME } },
    );
    // The example keeps wireguard-go's UAPI socket under <state-dir>/run.
    return new Embedder(ns, device, peersFile, join(opts.stateDir, 'run'), child);
  }

  /** Waits (bounded, generous for a loaded machine) for an event matching `pred`, from index `from`. */
  async waitFor(
    pred: (e: Record<string, unknown>) => boolean,
    what: string,
    from = 0,
    timeoutMs = 90_000,
  ): Promise<Record<string, unknown>> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const hit = this.events.slice(from).find(pred);
      if (hit) return hit;
      if (this.child.exitCode !== null || Date.now() > deadline) {
        throw new Error(
          `${this.ns.name}: no ${what} (exit ${this.child.exitCode}); events ${JSON.stringify(this.events)}; stderr ${this.stderr}`,
        );
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  /** Writes the peers file the way a careful producer does: a temporary file, then a rename. */
  async writePeers(doc: unknown): Promise<void> {
    await mkdir(join(this.peersFile, '..'), { recursive: true });
    const tmp = `${this.peersFile}.tmp`;
    await writeFile(tmp, typeof doc === 'string' ? doc : JSON.stringify(doc));
    await rename(tmp, this.peersFile);
  }

  /** The device as its UAPI socket reports it (read from outside the example, by the test). */
  async readDevice(): Promise<WireGuardDevice> {
    const client = WgClient.fromDrivers([new UserspaceDriver({ socketDir: this.socketDir })]);
    try {
      return await client.device(this.device);
    } finally {
      client.close();
    }
  }

  async stop(): Promise<void> {
    if (this.child.exitCode !== null) return;
    const exited = new Promise((r) => this.child.once('exit', r));
    this.child.kill('SIGTERM');
    const timer = setTimeout(() => this.child.kill('SIGKILL'), 30_000);
    await exited;
    clearTimeout(timer);
  }
}

/** The marker sent over TCP: it must never appear on the underlay. */
const MARKER = `veil-embed-marker-${Math.random().toString(16).slice(2)}`;

describePrivileged(
  'the embedding example (examples/embed-wireguard from its tarball) drives WireGuard between two namespaces',
  ['root', 'netns', 'tun', 'wireguard-go', 'tcpdump'],
  () => {
    const { project, root } = inject('packCheck');
    let a: TestNetns;
    let b: TestNetns;
    let ea: Embedder;
    let eb: Embedder;
    let vb: string;
    const underlay = { a: '192.168.231.1', b: '192.168.231.2' };
    const tunnel = { a: '10.231.0.1', b: '10.231.0.2' };
    const port = { a: 51901, b: 51902 };

    beforeAll(async () => {
      a = TestNetns.create('emb-a');
      b = TestNetns.create('emb-b');
      const va = linkName('vea');
      vb = linkName('veb');
      a.exec('ip', ['link', 'add', va, 'type', 'veth', 'peer', 'name', vb, 'netns', b.name]);
      a.exec('ip', ['addr', 'add', `${underlay.a}/24`, 'dev', va]);
      b.exec('ip', ['addr', 'add', `${underlay.b}/24`, 'dev', vb]);
      a.exec('ip', ['link', 'set', va, 'up']);
      b.exec('ip', ['link', 'set', vb, 'up']);
      const dir = join(root, 'embed');
      ea = Embedder.start(project, a, { address: `${tunnel.a}/32`, port: port.a, stateDir: join(dir, 'a') });
      eb = Embedder.start(project, b, { address: `${tunnel.b}/32`, port: port.b, stateDir: join(dir, 'b') });
    }, 120_000);

    afterAll(async () => {
      await Promise.all([ea?.stop(), eb?.stop()]);
      a?.remove();
      b?.remove();
      await rm(join(root, 'embed'), { recursive: true, force: true });
    }, 120_000);

    it('each side comes up (userspace wireguard-go here) and publishes its public key', async () => {
      for (const e of [ea, eb]) {
        const ready = await e.waitFor((x) => x.event === 'ready', 'ready event');
        expect(ready).toMatchObject({ device: e.device, driver: 'userspace' });
        expect(String(ready.publicKey)).toMatch(/^[A-Za-z0-9+/]{43}=$/);
        expect(e.ns.exec('ip', ['-br', 'addr', 'show', 'dev', e.device])).toContain(e === ea ? tunnel.a : tunnel.b);
      }
    });

    it('peers from the watched JSON file: ping and TCP cross, and the underlay carries only WireGuard UDP', async () => {
      const keyOf = async (e: Embedder): Promise<string> =>
        String((await e.waitFor((x) => x.event === 'ready', 'ready')).publicKey);
      const [ka, kb] = [await keyOf(ea), await keyOf(eb)];
      const syncedFrom = [ea.events.length, eb.events.length];
      await ea.writePeers({
        peers: [{ name: 'b', publicKey: kb, endpoint: `${underlay.b}:${port.b}`, allowedIPs: [`${tunnel.b}/32`] }],
      });
      await eb.writePeers({
        peers: [{ name: 'a', publicKey: ka, endpoint: `${underlay.a}:${port.a}`, allowedIPs: [`${tunnel.a}/32`] }],
      });
      await ea.waitFor((x) => x.event === 'synced' && x.peers === 1, 'synced with 1 peer', syncedFrom[0]);
      await eb.waitFor((x) => x.event === 'synced' && x.peers === 1, 'synced with 1 peer', syncedFrom[1]);

      // Capture on the underlay (b's side of the veth) while the probes run.
      const pcap = join(root, 'embed', 'underlay.pcap');
      const dump = b.spawn('tcpdump', ['-i', vb, '-w', pcap, '-U', '--immediate-mode', '-n']);
      let dumpErr = '';
      dump.stderr?.setEncoding('utf8').on('data', (d: string) => (dumpErr += d));
      // tcpdump says "listening on" once the capture is open.
      for (let i = 0; i < 300 && !dumpErr.includes('listening on'); i++) await new Promise((r) => setTimeout(r, 100));
      expect(dumpErr).toContain('listening on');

      // The first packets trigger the handshake; retry pings until one round trip succeeds.
      let ping = a.tryExec('ping', ['-c', '3', '-W', '2', tunnel.b], 30_000);
      for (let i = 0; i < 10 && ping.status !== 0; i++) ping = a.tryExec('ping', ['-c', '3', '-W', '2', tunnel.b], 30_000);
      expect(ping.status, ping.stdout + ping.stderr).toBe(0);

      // TCP: a listener in b (node), a client in a sends the marker; b must receive it whole.
      const serverJs = `const s = require('net').createServer((c) => { let d = ''; c.setEncoding('utf8'); c.on('data', (x) => (d += x)); c.on('end', () => { process.stdout.write(d); s.close(); }); }); s.listen(7001, '${tunnel.b}', () => console.error('listening'));`;
      const server = b.spawn(process.execPath, ['-e', serverJs]);
      let received = '';
      let serverErr = '';
      server.stdout?.setEncoding('utf8').on('data', (d: string) => (received += d));
      server.stderr?.setEncoding('utf8').on('data', (d: string) => (serverErr += d));
      const serverDone = new Promise((r) => server.once('exit', r));
      for (let i = 0; i < 300 && !serverErr.includes('listening'); i++) await new Promise((r) => setTimeout(r, 100));
      expect(serverErr).toContain('listening');
      const clientJs = `const c = require('net').connect(7001, '${tunnel.b}', () => c.end('${MARKER}')); c.on('error', (e) => { console.error(e.message); process.exit(1); });`;
      const sent = a.tryExec(process.execPath, ['-e', clientJs], 60_000);
      expect(sent.status, sent.stderr).toBe(0);
      await serverDone;
      expect(received).toBe(MARKER);

      const stopped = new Promise((r) => dump.once('exit', r));
      dump.kill('SIGINT');
      await stopped;
      const raw = await readFile(pcap);
      expect(raw.includes(Buffer.from(MARKER)), 'marker seen in clear on the underlay').toBe(false);
      // Decode the capture: every IPv4 packet between the two underlay addresses is UDP between the
      // two WireGuard ports; the tunnel addresses never appear on the wire.
      const text = b.exec('tcpdump', ['-r', pcap, '-n', '-q', 'ip']);
      const lines = text.split('\n').filter((l) => l.includes(' IP '));
      expect(lines.length, 'packets captured').toBeGreaterThanOrEqual(10);
      process.stderr.write(`[pack-check] embed: ${lines.length} IPv4 packets on the underlay, ${raw.length} bytes of capture\n`);
      const notWg = lines.filter(
        (l) =>
          !new RegExp(
            `${underlay.a.replace(/\./g, '\\.')}\\.${port.a} > ${underlay.b.replace(/\./g, '\\.')}\\.${port.b}: UDP`,
          ).test(l) &&
          !new RegExp(
            `${underlay.b.replace(/\./g, '\\.')}\\.${port.b} > ${underlay.a.replace(/\./g, '\\.')}\\.${port.a}: UDP`,
          ).test(l),
      );
      expect(notWg).toEqual([]);
      expect(text).not.toContain(tunnel.a);
      expect(text).not.toContain(tunnel.b);
      // The device's own counters agree: bytes went both ways through the peer, after a handshake.
      const [peer] = (await ea.readDevice()).peers;
      expect(peer?.publicKey.toBase64()).toBe(kb);
      expect(peer?.rxBytes).toBeGreaterThan(0);
      expect(peer?.txBytes).toBeGreaterThan(0);
      expect(peer?.lastHandshake).toBeInstanceOf(Date);
    });

    it('a bad peers file is rejected naming the field, and the last good peer stays programmed', async () => {
      const from = ea.events.length;
      await ea.writePeers({ peers: [{ name: 'b', publicKey: 'not-a-key', allowedIPs: [`${tunnel.b}/32`] }] });
      const rejected = await ea.waitFor((x) => x.event === 'rejected', 'rejected event', from);
      expect(String(rejected.error)).toMatch(/^peers\[0\]\.publicKey: /);
      const ping = a.tryExec('ping', ['-c', '2', '-W', '2', tunnel.b], 30_000);
      expect(ping.status, ping.stdout + ping.stderr).toBe(0);
    });

    it('removing the peer from the file removes it from the device, and traffic stops', async () => {
      const from = ea.events.length;
      await ea.writePeers({ peers: [] });
      await ea.waitFor((x) => x.event === 'synced' && x.peers === 0, 'synced with 0 peers', from);
      expect((await ea.readDevice()).peers).toEqual([]);
      const ping = a.tryExec('ping', ['-c', '1', '-W', '1', tunnel.b], 30_000);
      expect(ping.status).not.toBe(0);
    });
  },
);
