// The status commands against a REAL agent-core Agent serving its status socket (fakes behind
// it), through the command functions and through `node dist/main.js` (the built CLI).
import { execFile, spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { InMemoryCluster } from '@veil/agent-core';
import { FAKE_KEY_ANNOTATION, FakeBackend, FakeDatapath } from '@veil/agent-core/fake';
import { runCounters, runIpcacheList } from '../src/commands/bpf.js';
import { runKeysRotate } from '../src/commands/keys.js';
import { runPeers } from '../src/commands/peers.js';
import { runStatus } from '../src/commands/status.js';
import type { CommandIO, QueryOptions } from '../src/render/io.js';
import { FlakyDistributor, keyFor, richCluster, RotatingBackend, startLabAgent, type LabAgent } from './fixtures/lab-agent.js';

const run = promisify(execFile);
const MAIN = join(import.meta.dirname, '..', 'dist', 'main.js');

function bufferIO(opts: { tty?: boolean; env?: NodeJS.ProcessEnv } = {}): CommandIO & { out: () => string; err: () => string } {
  let out = '';
  let err = '';
  return {
    stdout: { write: (s: string) => (out += s), isTTY: opts.tty === true },
    stderr: { write: (s: string) => (err += s) },
    env: opts.env ?? {},
    out: () => out,
    err: () => err,
  };
}

const unreachable = (p: string) =>
  `Error: cannot reach the Veil agent at ${p} (is it running? try: kubectl -n kube-system get pods -l app.kubernetes.io/name=veil)\n`;

describe('status commands against a running agent (rich)', () => {
  let lab: LabAgent;
  beforeAll(async () => {
    lab = await startLabAgent({
      config: {
        encryption: {
          enabled: true,
          type: 'fake',
          nodeEncryption: false,
          strictMode: { enabled: true, cidrs: ['10.0.0.0/16'], allowRemoteNodeIdentities: false },
          wireguard: { port: 51871, userspaceFallback: false, persistentKeepalive: 0, mtu: 0 },
          ipsec: { secretName: 'veil-ipsec-keys', keyFile: '/etc/veil/ipsec/keys', keyRotationDuration: '5m' },
        },
      },
    });
  });
  afterAll(async () => {
    await lab?.stop();
  });

  it('veil status: one screen, exit 0, no colour when not a TTY', async () => {
    const io = bufferIO();
    expect(await runStatus({ socket: lab.socketPath }, io)).toBe(0);
    expect(io.err()).toBe('');
    const lines = io.out().split('\n');
    expect(lines[0]).toBe('Node:              local');
    expect(lines[1]).toMatch(/^Agent: {13}0\.1\.0, up \S+ \(pid \d+\)$/);
    expect(lines.slice(2, 11)).toEqual([
      'Ready:             yes',
      'Encryption:        enabled (fake)',
      'Backend:           fake, driver userspace (fake), key index 0',
      expect.stringMatching(/^Node key: {10}sha256:[0-9a-f]{16} \(veil\.io\/fake-public-key\)$/),
      'Peers:             2/5 ready (1 pending, 2 refused)',
      'Strict mode:       enabled (10.0.0.0/16)',
      'Node encryption:   disabled',
      'Datapath:          attached (eth0 [underlay], veilwg0 [tunnel], lxc1234 [pod])',
      'Errors:            2',
    ]);
    expect(io.out()).not.toContain('\u001b[');
  });

  it('colours on a TTY, never with NO_COLOR', async () => {
    const tty = bufferIO({ tty: true });
    await runStatus({ socket: lab.socketPath }, tty);
    expect(tty.out()).toContain('\u001b[32myes\u001b[39m');
    const noColor = bufferIO({ tty: true, env: { NO_COLOR: '1' } });
    await runStatus({ socket: lab.socketPath }, noColor);
    expect(noColor.out()).not.toContain('\u001b[');
  });

  it('veil status -o json: the documented shape; the socket comes from VEIL_STATUS_SOCKET too', async () => {
    const io = bufferIO({ env: { VEIL_STATUS_SOCKET: lab.socketPath } });
    expect(await runStatus({ output: 'json' }, io)).toBe(0);
    const doc = JSON.parse(io.out()) as Record<string, unknown>;
    expect(Object.keys(doc)).toEqual([
      'kind',
      'node',
      'version',
      'uptimeSeconds',
      'pid',
      'ready',
      'notReadyReason',
      'synced',
      'encryption',
      'backend',
      'nodeKey',
      'peers',
      'datapath',
      'ownMaterial',
      'trafficAffected',
      'errors',
    ]);
    expect(doc).toMatchObject({
      kind: 'VeilStatus',
      ready: true,
      peers: { ready: 2, total: 5, pending: 1, refused: 2, error: 0 },
      backend: { name: 'fake' },
    });
    expect(io.out()).not.toContain(lab.backend.privateKey.reveal());
  });

  it('veil peers: table and -o json', async () => {
    const io = bufferIO();
    expect(await runPeers({ socket: lab.socketPath }, io)).toBe(0);
    expect(io.out().split('\n').slice(0, 3)).toEqual([
      'NODE     ENDPOINT              ALLOWED IPS                 KEY   HANDSHAKE   RX        TX        STATE',
      'node-1   192.168.0.1,fd00::1   10.0.1.0/24,fd10:0:1::/64   0     1m15s ago   1.5 MiB   3.2 KiB   ready',
      'node-2   192.168.0.2           10.0.2.0/24                 0     never       0 B       148 B     ready',
    ]);
    const json = bufferIO();
    expect(await runPeers({ socket: lab.socketPath, output: 'json' }, json)).toBe(0);
    const doc = JSON.parse(json.out()) as { kind: string; items: { node: string; state: string; reason: string | null }[] };
    expect(doc.kind).toBe('PeerList');
    expect(doc.items.map((i) => [i.node, i.state])).toEqual([
      ['node-1', 'ready'],
      ['node-2', 'ready'],
      ['node-3', 'pending'],
      ['node-4', 'refused'],
      ['node-5', 'refused'],
    ]);
    expect(doc.items[4]?.reason).toBe('malformed-cidr: spec.podCIDRs');
  });

  it('veil bpf ipcache list (-o yaml) and veil bpf counters (--all)', async () => {
    const io = bufferIO();
    expect(await runIpcacheList({ socket: lab.socketPath, output: 'yaml' }, io)).toBe(0);
    const doc = parseYaml(io.out()) as {
      kind: string;
      source: string;
      items: { prefix: string; flags: string[]; ifindex: number }[];
    };
    expect(doc).toMatchObject({ kind: 'IpcacheList', source: 'map' });
    expect(doc.items.map((i) => i.prefix)).toEqual([
      '10.0.0.5/32',
      '10.0.0.9/32',
      '10.0.1.0/24',
      '10.0.2.0/24',
      '192.168.0.1/32',
      '192.168.0.2/32',
      'fd00::1/128',
      'fd10:0:1::/64',
    ]);
    expect(doc.items[0]).toMatchObject({ flags: ['LOCAL'], ifindex: 17 });
    const c = bufferIO();
    expect(await runCounters({ socket: lab.socketPath }, c)).toBe(0);
    expect(c.out()).toBe(
      'REASON        PACKETS   BYTES\nencrypt       12,345    9.4 MiB\npass          42        4.1 KiB\ndrop_strict   3         180 B\n',
    );
    const all = bufferIO();
    expect(await runCounters({ socket: lab.socketPath, all: true, output: 'json' }, all)).toBe(0);
    expect((JSON.parse(all.out()) as { items: unknown[] }).items).toHaveLength(4);
  });

  it('veil keys rotate: new fingerprint printed, published on the Node, shown by veil status', async () => {
    const before = JSON.parse(
      await (async () => {
        const io = bufferIO();
        await runStatus({ socket: lab.socketPath, output: 'json' }, io);
        return io.out();
      })(),
    ) as { nodeKey: { fingerprint: string } };
    const io = bufferIO();
    expect(await runKeysRotate({ socket: lab.socketPath, output: 'json' }, io)).toBe(0);
    const r = JSON.parse(io.out()) as { kind: string; fingerprint: string; previousFingerprint: string; published: boolean };
    expect(r).toMatchObject({ kind: 'KeyRotation', previousFingerprint: before.nodeKey.fingerprint, published: true });
    expect(r.fingerprint).not.toBe(before.nodeKey.fingerprint);
    expect(lab.cluster.getNode('local')?.annotations[FAKE_KEY_ANNOTATION]).toBe(keyFor(9001));
    const st = bufferIO();
    await runStatus({ socket: lab.socketPath }, st);
    expect(st.out()).toContain(`Node key:          ${r.fingerprint} (veil.io/fake-public-key)`);
    const text = bufferIO();
    expect(await runKeysRotate({ socket: lab.socketPath }, text)).toBe(0);
    expect(text.out()).toMatch(
      /^Rotated the fake node key: sha256:[0-9a-f]{16} \(was sha256:[0-9a-f]{16}\)\nPublished the new public key; peers switch over as they see it\.\n$/,
    );
  });
});

describe('status commands: failures', () => {
  const dirs: string[] = [];
  afterAll(async () => {
    for (const d of dirs) await rm(d, { recursive: true, force: true });
  });
  async function tmp(): Promise<string> {
    const d = await mkdtemp(join(tmpdir(), 'veil-cliv-'));
    dirs.push(d);
    return d;
  }

  it("a backend without rotateKeys: exit 1 with the agent's 501 reason", async () => {
    const cluster = new InMemoryCluster();
    cluster.upsertNode({
      name: 'node-1',
      internalIPs: ['192.168.0.1'],
      podCIDRs: ['10.0.1.0/24'],
      annotations: { [FAKE_KEY_ANNOTATION]: keyFor(1) },
    });
    const lab = await startLabAgent({ cluster, backend: new FakeBackend(), datapath: new FakeDatapath(), expectedPeers: 1 });
    try {
      const io = bufferIO();
      expect(await runKeysRotate({ socket: lab.socketPath }, io)).toBe(1);
      expect(io.out()).toBe('');
      expect(io.err()).toBe('Error: the fake backend does not support key rotation\n');
    } finally {
      await lab.stop();
    }
  });

  it('keys rotate while the API server is down: refused (exit 1), nothing changed; it rotates once the API answers', async () => {
    const cluster = richCluster();
    const distributor = new FlakyDistributor(cluster, 'local');
    const lab = await startLabAgent({ cluster, distributor });
    try {
      const before = cluster.getNode('local')?.annotations[FAKE_KEY_ANNOTATION];
      distributor.failPublish = true;
      const io = bufferIO();
      expect(await runKeysRotate({ socket: lab.socketPath }, io)).toBe(1);
      expect(io.err()).toMatch(/^Error: the API server cannot be written \(the API server is unavailable\).*nothing was changed/);
      expect(io.out()).toBe('');
      expect(cluster.getNode('local')?.annotations[FAKE_KEY_ANNOTATION]).toBe(before);
      distributor.failPublish = false;
      expect(await runKeysRotate({ socket: lab.socketPath }, bufferIO())).toBe(0);
      expect(cluster.getNode('local')?.annotations[FAKE_KEY_ANNOTATION]).toBe(keyFor(9001));
    } finally {
      await lab.stop();
    }
  });

  it('keys rotate when the API server goes away during the rotation: rotated, publishing retried until it works', async () => {
    const cluster = richCluster();
    const distributor = new FlakyDistributor(cluster, 'local');
    const lab = await startLabAgent({ cluster, distributor });
    try {
      distributor.failPublish = true;
      distributor.passNext = 1; // the agent's pre-rotation check still gets through
      const io = bufferIO();
      expect(await runKeysRotate({ socket: lab.socketPath }, io)).toBe(0);
      expect(io.out()).toMatch(
        /^Rotated the fake node key: sha256:[0-9a-f]{16} \(was sha256:[0-9a-f]{16}\)\nPublishing the new public key failed \(the API server is unavailable\); the agent keeps retrying\.\n$/,
      );
      expect(cluster.getNode('local')?.annotations[FAKE_KEY_ANNOTATION]).not.toBe(keyFor(9001));
      distributor.failPublish = false;
      const start = Date.now();
      while (cluster.getNode('local')?.annotations[FAKE_KEY_ANNOTATION] !== keyFor(9001)) {
        if (Date.now() - start > 10_000) throw new Error('the new key was never published');
        await new Promise((r) => setTimeout(r, 20));
      }
    } finally {
      await lab.stop();
    }
  });

  it('a second rotation while one runs is refused (409), not queued', async () => {
    const backend = new RotatingBackend();
    let release!: () => void;
    backend.rotateGate = new Promise((r) => (release = r));
    const lab = await startLabAgent({ backend });
    try {
      const first = runKeysRotate({ socket: lab.socketPath }, bufferIO());
      await new Promise((r) => setTimeout(r, 50));
      const io = bufferIO();
      expect(await runKeysRotate({ socket: lab.socketPath }, io)).toBe(1);
      expect(io.err()).toBe('Error: a key rotation is already in progress\n');
      release();
      expect(await first).toBe(0);
    } finally {
      await lab.stop();
    }
  });

  it('agent not ready: veil status still exits 0 and says why', async () => {
    const datapath = new FakeDatapath();
    datapath.attachGate = new Promise(() => undefined);
    const lab = await startLabAgent({ cluster: new InMemoryCluster(), datapath, waitReady: false });
    try {
      const io = bufferIO();
      expect(await runStatus({ socket: lab.socketPath }, io)).toBe(0);
      expect(io.out()).toMatch(/^Ready: {13}no: .*datapath not attached$/m);
      expect(io.out()).toContain('Datapath:          not attached (eth0 [device])');
    } finally {
      await lab.stop();
    }
  });

  it('agent down (no socket file): one clear line, exit 1, for every command', async () => {
    const sock = join(await tmp(), 'status.sock');
    for (const f of [runStatus, runPeers, runIpcacheList, runCounters, runKeysRotate]) {
      const io = bufferIO();
      expect(await f({ socket: sock }, io), f.name).toBe(1);
      expect(io.err(), f.name).toBe(unreachable(sock));
      expect(io.out()).toBe('');
    }
  });

  it('stale socket (ECONNREFUSED) and a silent agent (timeout)', async () => {
    const dir = await tmp();
    const stale = join(dir, 'stale.sock');
    // A listener killed with SIGKILL leaves its socket file behind: connecting is refused.
    await new Promise<void>((resolve, reject) => {
      const child = spawn(process.execPath, [
        '-e',
        `require('net').createServer().listen(${JSON.stringify(stale)}, () => process.kill(process.pid, 'SIGKILL'))`,
      ]);
      child.on('exit', () => resolve());
      child.on('error', reject);
    });
    const io = bufferIO();
    expect(await runStatus({ socket: stale }, io)).toBe(1);
    expect(io.err()).toBe(unreachable(stale));

    const silentPath = join(dir, 'silent.sock');
    const { createServer } = await import('node:net');
    const silent = createServer(() => undefined);
    await new Promise<void>((r) => silent.listen(silentPath, r));
    try {
      const t = bufferIO();
      expect(await runPeers({ socket: silentPath, timeout: '0.2' }, t)).toBe(1);
      expect(t.err()).toBe(
        `Error: the Veil agent at ${silentPath} did not answer in time (is it overloaded or stuck? try: kubectl -n kube-system get pods -l app.kubernetes.io/name=veil)\n`,
      );
      const bad = bufferIO();
      expect(await runPeers({ socket: silentPath, timeout: 'soon' }, bad)).toBe(2);
      expect(bad.err()).toBe("Error: --timeout: needs a positive number of seconds, got 'soon'\n");
    } finally {
      silent.close();
    }
  });

  it('bad -o is a usage error (exit 2) before the agent is asked', async () => {
    const io = bufferIO();
    expect(await runStatus({ output: 'xml', socket: '/nonexistent/status.sock' }, io)).toBe(2);
    expect(io.err()).toBe("Error: --output: unknown format 'xml' (use one of: table, wide, json, yaml)\n");
  });
});

describe('one output convention: -o table|wide|json|yaml on every command that prints data', () => {
  let lab: LabAgent;
  beforeAll(async () => {
    lab = await startLabAgent();
  });
  afterAll(async () => {
    await lab?.stop();
  });

  // Each command: its JSON `kind`, and a line only `-o wide` prints.
  const commands = [
    { name: 'veil status', run: runStatus, kind: 'VeilStatus', wideOnly: /Datapath: +attached \(eth0#2 \[underlay\]/ },
    { name: 'veil peers', run: runPeers, kind: 'PeerList', wideOnly: /^NODE .* STATE +PROGRAMMED +DETAIL$/m },
    {
      name: 'veil bpf ipcache list',
      run: runIpcacheList,
      kind: 'IpcacheList',
      // The ipcache table has every column already: wide is the same table.
      wideOnly: undefined,
    },
    {
      name: 'veil bpf counters',
      run: (o: QueryOptions, io: CommandIO) => runCounters({ ...o, all: true }, io),
      kind: 'CounterList',
      wideOnly: /^encrypt +12,345 +9,876,543$/m,
    },
  ];

  for (const c of commands) {
    it(`${c.name}: table (default), wide, json and yaml are one document`, async () => {
      const outputs: Record<string, string> = {};
      for (const output of [undefined, 'table', 'wide', 'json', 'yaml']) {
        const io = bufferIO();
        expect(await c.run({ socket: lab.socketPath, ...(output ? { output } : {}) }, io), `${c.name} -o ${output}`).toBe(0);
        expect(io.err()).toBe('');
        outputs[output ?? 'default'] = io.out();
      }
      expect(outputs.default).toBe(outputs.table);
      const json = JSON.parse(outputs.json!) as { kind: string };
      expect(json.kind).toBe(c.kind);
      expect(parseYaml(outputs.yaml!)).toEqual(json);
      if (c.wideOnly) {
        expect(outputs.wide).toMatch(c.wideOnly);
        expect(outputs.table).not.toMatch(c.wideOnly);
      } else expect(outputs.wide).toBe(outputs.table);
    });
  }

  it('veil keys rotate: -o json and -o yaml are one document; wide is the table', async () => {
    const docs: Record<string, string> = {};
    for (const output of ['table', 'wide', 'json', 'yaml']) {
      const io = bufferIO();
      expect(await runKeysRotate({ socket: lab.socketPath, output }, io)).toBe(0);
      docs[output] = io.out();
    }
    expect(docs.table).toMatch(/^Rotated the fake node key: sha256:/);
    expect(docs.wide).toMatch(/^Rotated the fake node key: sha256:/);
    const json = JSON.parse(docs.json!) as { kind: string; fingerprint: string };
    const yaml = parseYaml(docs.yaml!) as { kind: string; fingerprint: string };
    expect([json.kind, yaml.kind]).toEqual(['KeyRotation', 'KeyRotation']);
    // Every call rotates: four different keys.
    expect(
      new Set([docs.table, docs.wide, json.fingerprint, yaml.fingerprint].map((d) => /sha256:[0-9a-f]+/.exec(d ?? '')?.[0])).size,
    ).toBe(4);
  });

  it('the built CLI: -o wide and -o yaml parse as flags of every data command; --help lists the formats', async () => {
    const env = { ...process.env, VEIL_STATUS_SOCKET: lab.socketPath, NO_COLOR: '1' };
    const peers = await run(process.execPath, [MAIN, 'peers', '-o', 'wide'], { env });
    expect(peers.stdout.split('\n')[0]).toMatch(/^NODE .* PROGRAMMED +DETAIL$/);
    const st = await run(process.execPath, [MAIN, 'status', '--output', 'yaml'], { env });
    expect((parseYaml(st.stdout) as { kind: string }).kind).toBe('VeilStatus');
    for (const cmd of [['status'], ['peers'], ['bpf', 'ipcache', 'list'], ['bpf', 'counters'], ['keys', 'rotate']]) {
      const help = await run(process.execPath, [MAIN, ...cmd, '--help'], { env });
      expect(help.stdout, cmd.join(' ')).toContain('-o, --output <format>  output format: table, wide, json, yaml');
    }
  });
});

describe('the built CLI (node dist/main.js)', () => {
  let lab: LabAgent;
  beforeAll(async () => {
    lab = await startLabAgent();
  });
  afterAll(async () => {
    await lab?.stop();
  });

  it('veil status / peers -o json / bpf counters over the socket, exit 0', async () => {
    const st = await run(process.execPath, [MAIN, 'status', '--socket', lab.socketPath], {
      env: { ...process.env, NO_COLOR: '1' },
    });
    expect(st.stdout).toMatch(/^Node: {14}local\n/);
    expect(st.stdout).toContain('Peers:             2/5 ready (1 pending, 2 refused)');
    const peers = await run(process.execPath, [MAIN, 'peers', '-o', 'json'], {
      env: { ...process.env, VEIL_STATUS_SOCKET: lab.socketPath },
    });
    expect((JSON.parse(peers.stdout) as { items: unknown[] }).items).toHaveLength(5);
    const counters = await run(process.execPath, [MAIN, 'bpf', 'counters', '--all', '--socket', lab.socketPath]);
    expect(counters.stdout.split('\n')).toHaveLength(6);
    const ipcache = await run(process.execPath, [MAIN, 'bpf', 'ipcache', 'list', '--socket', lab.socketPath, '-o', 'yaml']);
    expect(ipcache.stdout).toMatch(/^kind: IpcacheList\nsource: map\n/);
  });

  it('agent down: exit 1, one line on stderr, no stack trace', async () => {
    const sock = join(tmpdir(), `veil-cliv-absent-${process.pid}.sock`);
    const err = (await run(process.execPath, [MAIN, 'status', '--socket', sock]).catch((e: unknown) => e)) as {
      code: number;
      stdout: string;
      stderr: string;
    };
    expect(err.code).toBe(1);
    expect(err.stdout).toBe('');
    expect(err.stderr).toBe(unreachable(sock));
  });
});
