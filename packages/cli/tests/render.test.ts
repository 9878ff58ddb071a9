// Rendering from documents RECORDED from a real agent-core status socket (tests/fixtures/*,
// see status-fixtures.test.ts): exact text for the table layouts (no colour), JSON shapes.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import type { AgentStatus } from '@veil/agent-core';
import type { AgentInfo, CounterListing, IpcacheListing, KeyRotationResponse } from '@veil/agent-core/status-api';
import { UsageError } from '../src/errors.js';
import {
  PLAIN,
  counterList,
  groupDigits,
  humanBytes,
  humanDuration,
  ipcacheList,
  keyRotation,
  palette,
  formatOutput,
  outputFormatOf,
  parseOutputFormat,
  peerList,
  renderCounters,
  renderIpcache,
  renderKeyRotation,
  renderPeers,
  renderStatus,
  renderStructured,
  renderTable,
  statusView,
  visibleLength,
  wantColor,
} from '../src/render/index.js';

function fx<T>(scenario: 'rich' | 'minimal', name: string): T {
  return JSON.parse(readFileSync(join(import.meta.dirname, 'fixtures', scenario, `${name}.json`), 'utf8')) as T;
}
const status = (s: 'rich' | 'minimal') => fx<AgentStatus>(s, 'status');
const info = (s: 'rich' | 'minimal') => fx<AgentInfo>(s, 'agent');

describe('veil status rendering', () => {
  it('rich fixture: one screen, errors listed', () => {
    expect(renderStatus(statusView(status('rich'), info('rich')), PLAIN)).toBe(
      [
        'Node:              local',
        'Agent:             0.1.0, up 1h2m (pid 4242)',
        'Ready:             yes',
        'Encryption:        enabled (fake)',
        'Backend:           fake, driver userspace (fake), key index 0',
        'Node key:          sha256:a182833b59f8749d (veil.io/fake-public-key)',
        'Peers:             2/5 ready (1 pending, 2 refused)',
        'Strict mode:       enabled (10.0.0.0/16)',
        'Node encryption:   enabled',
        'Datapath:          attached (eth0 [underlay], veilwg0 [tunnel], lxc1234 [pod])',
        'Errors:            2',
        '  - node-4: refused (duplicate-key) annotations[veil.io/fake-public-key]: value already used by node node-1 (the older node keeps it)',
        '  - node-5: refused (malformed-cidr) spec.podCIDRs: "10.0.5.0/33" prefix length exceeds 32',
        '',
      ].join('\n'),
    );
  });

  it('minimal fixture', () => {
    expect(renderStatus(statusView(status('minimal'), info('minimal')), PLAIN)).toBe(
      [
        'Node:              local',
        'Agent:             0.1.0, up 1h2m (pid 4242)',
        'Ready:             yes',
        'Encryption:        enabled (wireguard)',
        'Backend:           fake, driver in-memory, key index 3',
        'Node key:          sha256:a182833b59f8749d (veil.io/fake-public-key)',
        'Peers:             2/2 ready',
        'Strict mode:       disabled',
        'Node encryption:   disabled',
        'Datapath:          attached (eth0 [device])',
        'Errors:            none',
        '',
      ].join('\n'),
    );
  });

  it('an agent without /v1/agent, not ready, with many errors', () => {
    const st: AgentStatus = {
      ...status('minimal'),
      ready: false,
      notReadyReason: 'initial peer sync not complete',
      datapathAttached: false,
      keyIndex: undefined,
      errors: Array.from({ length: 12 }, (_, i) => `error ${i + 1}`),
    };
    const text = renderStatus(statusView(st, undefined), PLAIN);
    expect(text).toBe(
      [
        'Node:              local',
        'Ready:             no: initial peer sync not complete',
        'Encryption:        enabled (wireguard)',
        'Backend:           fake, driver in-memory',
        'Node key:          none published',
        'Peers:             2/2 ready',
        'Node encryption:   unknown',
        'Datapath:          not attached',
        'Errors:            12',
        ...Array.from({ length: 10 }, (_, i) => `  - error ${i + 1}`),
        '  … and 2 more (veil status -o wide)',
        '',
      ].join('\n'),
    );
    // -o wide: every error, nothing summarised.
    const wide = renderStatus(statusView(st, undefined), PLAIN, { wide: true });
    expect(wide.split('\n').filter((l) => l.startsWith('  - '))).toEqual(
      Array.from({ length: 12 }, (_, i) => `  - error ${i + 1}`),
    );
    expect(wide).not.toContain('more (veil status');
  });

  it('own material missing from the API and peers whose traffic is affected are shown (issue 12)', () => {
    const st: AgentStatus = {
      ...status('minimal'),
      ready: false,
      notReadyReason: 'own material missing from the API: veil.io/fake-public-key; refused peers with affected traffic: node-2',
      peers: status('minimal').peers.map((p) =>
        p.name === 'node-2' ? { ...p, state: 'refused' as const, trafficAffected: true } : p,
      ),
      localMaterial: { published: true, inApi: false, missing: ['veil.io/fake-public-key'], restored: 2 },
    };
    const text = renderStatus(statusView(st, info('minimal')), PLAIN);
    expect(text).toContain(
      'Ready:             no: own material missing from the API: veil.io/fake-public-key; refused peers with affected traffic: node-2\n',
    );
    expect(text).toContain('Peers:             1/2 ready (1 refused, 1 with traffic affected)\n');
    expect(text).toContain('Own material:      missing from the API: veil.io/fake-public-key; restored 2×\n');
    expect(statusView(st, undefined)).toMatchObject({
      ownMaterial: { inApi: false, missing: ['veil.io/fake-public-key'], restored: 2 },
      trafficAffected: ['node-2'],
    });
    // An agent from before issue 12 (no localMaterial) renders as before.
    const { localMaterial: _omit, ...old } = status('minimal');
    expect(statusView(old as AgentStatus, undefined).ownMaterial).toBeNull();
  });

  it('JSON view: stable keys, counts, no private material', () => {
    const v = statusView(status('rich'), info('rich'));
    expect(v).toEqual({
      kind: 'VeilStatus',
      node: 'local',
      version: '0.1.0',
      uptimeSeconds: 3723,
      pid: 4242,
      ready: true,
      notReadyReason: null,
      synced: true,
      encryption: { enabled: true, type: 'fake', nodeEncryption: true, strictMode: { enabled: true, cidrs: ['10.0.0.0/16'] } },
      backend: { name: 'fake', driver: 'userspace (fake)', keyIndex: 0 },
      nodeKey: {
        fingerprint: 'sha256:a182833b59f8749d',
        annotations: { 'veil.io/fake-public-key': 'cHVibGljLWtleS1vZi10aGUtbG9jYWwtbm9kZS0wMTI=' },
      },
      peers: { ready: 2, total: 5, pending: 1, refused: 2, error: 0 },
      datapath: {
        attached: true,
        interfaces: [
          { ifname: 'eth0', ifindex: 2, role: 'underlay' },
          { ifname: 'veilwg0', ifindex: 5, role: 'tunnel' },
          { ifname: 'lxc1234', ifindex: 17, role: 'pod' },
        ],
      },
      ownMaterial: { inApi: true, missing: [], restored: 0 },
      trafficAffected: [],
      errors: status('rich').errors,
    });
    const text = JSON.stringify(v);
    expect(text).not.toMatch(/privateKey|REDACTED/);
    const old = statusView(status('minimal'), undefined);
    expect(Object.keys(old)).toEqual(Object.keys(v));
    expect(old).toMatchObject({
      version: null,
      uptimeSeconds: null,
      nodeKey: null,
      datapath: { interfaces: null },
      encryption: { strictMode: null, nodeEncryption: null },
    });
  });
});

describe('veil peers rendering', () => {
  it('rich fixture: handshakes, traffic, pending and refused reasons', () => {
    expect(renderPeers(peerList(status('rich')), PLAIN)).toBe(
      [
        'NODE     ENDPOINT              ALLOWED IPS                 KEY   HANDSHAKE   RX        TX        STATE',
        'node-1   192.168.0.1,fd00::1   10.0.1.0/24,fd10:0:1::/64   0     1m15s ago   1.5 MiB   3.2 KiB   ready',
        'node-2   192.168.0.2           10.0.2.0/24                 0     never       0 B       148 B     ready',
        'node-3   -                     -                           -     -           -         -         pending (annotations[veil.io/fake-public-key]: not published yet)',
        'node-4   -                     -                           -     -           -         -         refused (duplicate-key: annotations[veil.io/fake-public-key] (conflicts with node-1))',
        'node-5   -                     -                           -     -           -         -         refused (malformed-cidr: spec.podCIDRs)',
        '',
      ].join('\n'),
    );
  });

  it('-o wide adds PROGRAMMED and DETAIL and shows exact byte counts', () => {
    const lines = renderPeers(peerList(status('rich')), PLAIN, { wide: true }).split('\n');
    expect(lines[0]).toMatch(/^NODE +ENDPOINT +ALLOWED IPS +KEY +HANDSHAKE +RX +TX +STATE +PROGRAMMED +DETAIL$/);
    expect(lines[1]).toMatch(/^node-1 .* 1m15s ago +1572864 +3300 +ready +yes +handshake 75s ago$/);
    expect(lines[3]).toMatch(/^node-3 .* pending \(.*\) +no +-$/);
  });

  it('minimal fixture: a backend without handshakes shows its key state', () => {
    expect(renderPeers(peerList(status('minimal')), PLAIN)).toBe(
      [
        'NODE     ENDPOINT      ALLOWED IPS   KEY   KEY STATE    RX   TX   STATE',
        'node-1   192.168.0.1   10.0.1.0/24   3     programmed   -    -    ready',
        'node-2   192.168.0.2   10.0.2.0/24   3     programmed   -    -    ready',
        '',
      ].join('\n'),
    );
  });

  it('no peers', () => {
    expect(renderPeers(peerList({ ...status('minimal'), peers: [] }), PLAIN)).toBe('No peers (node local, backend fake).\n');
  });

  it('JSON rows', () => {
    const l = peerList(status('rich'));
    expect(l.kind).toBe('PeerList');
    expect(l.items[0]).toEqual({
      node: 'node-1',
      endpoints: ['192.168.0.1', 'fd00::1'],
      allowedIPs: ['10.0.1.0/24', 'fd10:0:1::/64'],
      keyIndex: 0,
      backendDetail: 'handshake 75s ago',
      handshakeAgeSeconds: 75,
      rxBytes: 1572864,
      txBytes: 3300,
      state: 'ready',
      reason: null,
      programmed: true,
    });
    expect(l.items[3]).toEqual({
      node: 'node-4',
      endpoints: [],
      allowedIPs: [],
      keyIndex: null,
      backendDetail: null,
      handshakeAgeSeconds: null,
      rxBytes: null,
      txBytes: null,
      state: 'refused',
      reason: 'duplicate-key: annotations[veil.io/fake-public-key] (conflicts with node-1)',
      programmed: false,
    });
  });
});

describe('veil bpf rendering', () => {
  it('ipcache read from the map', () => {
    expect(renderIpcache(ipcacheList(fx<IpcacheListing>('rich', 'ipcache')), PLAIN)).toBe(
      [
        'PREFIX           NODE     NODE IP       FLAGS                          KEY   NODE ID   IFINDEX',
        '10.0.0.5/32      local    -             LOCAL                          0     0         17',
        '10.0.0.9/32      local    -             LOCAL                          0     0         23',
        '10.0.1.0/24      node-1   192.168.0.1   REMOTE|ENCRYPT_READY           0     0         -',
        '10.0.2.0/24      node-2   192.168.0.2   REMOTE|ENCRYPT_READY           0     0         -',
        '192.168.0.1/32   node-1   192.168.0.1   REMOTE|ENCRYPT_READY|IS_NODE   0     0         -',
        '192.168.0.2/32   node-2   192.168.0.2   REMOTE|ENCRYPT_READY|IS_NODE   0     0         -',
        'fd00::1/128      node-1   fd00::1       REMOTE|ENCRYPT_READY|IS_NODE   0     0         -',
        'fd10:0:1::/64    node-1   fd00::1       REMOTE|ENCRYPT_READY           0     0         -',
        '',
      ].join('\n'),
    );
  });

  it('ipcache derived from per-node entries says so; JSON shape', () => {
    const l = ipcacheList(fx<IpcacheListing>('minimal', 'ipcache'));
    expect(renderIpcache(l, PLAIN).split('\n').at(-2)).toBe(
      "(derived from the agent's per-node entries: this datapath cannot dump its map)",
    );
    expect(l).toMatchObject({ kind: 'IpcacheList', source: 'derived' });
    expect(l.items[0]).toEqual({
      prefix: '10.0.1.0/24',
      node: 'node-1',
      nodeIP: '192.168.0.1',
      flags: ['REMOTE', 'ENCRYPT_READY'],
      keyIndex: 3,
      nodeId: 0,
      ifindex: 0,
    });
    expect(renderIpcache({ kind: 'IpcacheList', source: 'map', items: [] }, PLAIN)).toBe('The ipcache is empty.\n');
  });

  it('counters: non-zero by default, --all lists every reason, bytes when the datapath has them', () => {
    const rich = fx<CounterListing>('rich', 'counters');
    expect(renderCounters(counterList(rich, false), PLAIN)).toBe(
      [
        'REASON        PACKETS   BYTES',
        'encrypt       12,345    9.4 MiB',
        'pass          42        4.1 KiB',
        'drop_strict   3         180 B',
        '',
      ].join('\n'),
    );
    expect(renderCounters(counterList(rich, true), PLAIN).split('\n').at(-2)).toBe('drop_no_key   0         0 B');
    const minimal = counterList(fx<CounterListing>('minimal', 'counters'), false);
    expect(renderCounters(minimal, PLAIN)).toBe(['REASON    PACKETS   BYTES', 'encrypt   7         -', ''].join('\n'));
    expect(minimal).toEqual({
      kind: 'CounterList',
      source: 'verdicts',
      all: false,
      items: [{ reason: 'encrypt', packets: 7, bytes: null }],
    });
    expect(counterList(rich, true).items.map((i) => [i.reason, i.packets, i.bytes])).toEqual([
      ['encrypt', 12345, 9876543],
      ['pass', 42, 4200],
      ['drop_strict', 3, 180],
      ['drop_no_key', 0, 0],
    ]);
    const zero: CounterListing = { source: 'verdicts', counters: [{ reason: 'pass', packets: '0', bytes: null }] };
    expect(renderCounters(counterList(zero, false), PLAIN)).toBe('All counters are zero (--all lists them).\n');
  });
});

describe('veil keys rotate rendering', () => {
  it('prints the new fingerprint and whether it was published', () => {
    const r = keyRotation(fx<KeyRotationResponse>('rich', 'rotate'));
    expect(renderKeyRotation(r, PLAIN)).toBe(
      'Rotated the fake node key: sha256:a9b1d31d2ef44ed4 (was sha256:a182833b59f8749d)\nPublished the new public key; peers switch over as they see it.\n',
    );
    expect(r).toEqual({
      kind: 'KeyRotation',
      backend: 'fake',
      previousFingerprint: 'sha256:a182833b59f8749d',
      fingerprint: 'sha256:a9b1d31d2ef44ed4',
      keyIndex: null,
      published: true,
      publishError: null,
    });
    expect(
      renderKeyRotation(
        { ...r, previousFingerprint: null, keyIndex: 4, published: false, publishError: 'apiserver down' },
        PLAIN,
      ),
    ).toBe(
      'Rotated the fake node key: sha256:a9b1d31d2ef44ed4, key index 4\nPublishing the new public key failed (apiserver down); the agent keeps retrying.\n',
    );
  });
});

describe('output plumbing', () => {
  it('colour only on a TTY and never with NO_COLOR; ANSI does not shift columns', () => {
    expect(wantColor({ isTTY: true }, {})).toBe(true);
    expect(wantColor({ isTTY: true }, { NO_COLOR: '1' })).toBe(false);
    expect(wantColor({ isTTY: true }, { NO_COLOR: '' })).toBe(true);
    expect(wantColor({ isTTY: false }, {})).toBe(false);
    expect(wantColor({}, {})).toBe(false);
    const coloured = renderPeers(peerList(status('rich')), palette(true));
    expect(coloured).toContain('\u001b[32mready\u001b[39m');
    expect(coloured.replace(new RegExp(`${String.fromCharCode(27)}\\[[0-9;]*m`, 'g'), '')).toBe(
      renderPeers(peerList(status('rich')), PLAIN),
    );
    expect(visibleLength(palette(true).red('abc'))).toBe(3);
  });

  it('tables: padded to the widest cell, 3-space gaps, no trailing spaces', () => {
    expect(
      renderTable(
        ['A', 'LONG HEADER', 'Z'],
        [
          ['xx', 'y', ''],
          ['x', '', 'z'],
        ],
      ),
    ).toBe(`A    LONG HEADER   Z\nxx   y\nx${' '.repeat(18)}z\n`);
  });

  it('-o: table (default), wide, json, yaml; anything else is a usage error (exit 2)', async () => {
    expect(parseOutputFormat(undefined)).toBe('table');
    expect(parseOutputFormat('wide')).toBe('wide');
    expect(parseOutputFormat('json')).toBe('json');
    expect(parseOutputFormat('yaml')).toBe('yaml');
    const err = (() => {
      try {
        parseOutputFormat('xml');
      } catch (e) {
        return e;
      }
      return undefined;
    })();
    expect(err).toBeInstanceOf(UsageError);
    expect((err as UsageError).exitCode).toBe(2);
    expect((err as UsageError).message).toBe("--output: unknown format 'xml' (use one of: table, wide, json, yaml)");
    const doc = statusView(status('rich'), info('rich'));
    expect(JSON.parse(await renderStructured(doc, 'json'))).toEqual(doc);
    expect(parseYaml(await renderStructured(doc, 'yaml'))).toEqual(doc);
    // formatOutput: the renderer is told whether -o wide was asked for; json/yaml never call it.
    const seen: boolean[] = [];
    const render = (d: typeof doc, o: { wide: boolean }): string => {
      seen.push(o.wide);
      return `${d.node}\n`;
    };
    expect(await formatOutput(doc, 'table', render)).toBe('local\n');
    expect(await formatOutput(doc, 'wide', render)).toBe('local\n');
    expect(JSON.parse(await formatOutput(doc, 'json', render))).toEqual(doc);
    expect(parseYaml(await formatOutput(doc, 'yaml', render))).toEqual(doc);
    expect(seen).toEqual([false, true]);
  });

  it('--json, where a command keeps it, is the deprecated form of -o json', () => {
    expect(outputFormatOf({ output: 'table', json: true })).toBe('json');
    expect(outputFormatOf({ output: 'json', json: true })).toBe('json');
    expect(outputFormatOf({ output: 'wide' })).toBe('wide');
    expect(() => outputFormatOf({ output: 'yaml', json: true })).toThrow(
      expect.objectContaining({
        exitCode: 2,
        message: '--json: conflicts with -o yaml (--json is the deprecated form of -o json)',
      }),
    );
  });

  it('humanised numbers', () => {
    expect([0, 1023, 1024, 1536, 10 * 1024, 1_572_864, 5 * 1024 ** 4].map(humanBytes)).toEqual([
      '0 B',
      '1023 B',
      '1 KiB',
      '1.5 KiB',
      '10 KiB',
      '1.5 MiB',
      '5 TiB',
    ]);
    expect(humanBytes(-1)).toBe('-');
    expect([0, 59, 60, 75, 3600, 3723, 86400, 90000 + 60].map(humanDuration)).toEqual([
      '0s',
      '59s',
      '1m',
      '1m15s',
      '1h',
      '1h2m',
      '1d',
      '1d1h',
    ]);
    expect(groupDigits(1234567)).toBe('1,234,567');
    expect(groupDigits(12n)).toBe('12');
  });
});
