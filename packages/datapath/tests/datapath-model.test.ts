import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ipcacheValue, type IpcacheValue } from '@veil/bpf';
import {
  canonicalPrefix,
  entryPrefixes,
  namePatternMatcher,
  normalizeEntry,
  planSync,
  sameValue,
  verifyAdopted,
} from '../src/model.js';
import { readStateFile, StateFileWriter, writeStateFile } from '../src/state-file.js';
import { fsTypeOf } from '../src/pins.js';
import { DEFAULT_CONFIG, IpcacheFlags, type IpcacheEntry } from '@veil/agent-core';
import { BpfDatapath, DatapathArgumentError, datapathOptionsFromConfig, steeringConfig } from '../src/index.js';

const READY = IpcacheFlags.REMOTE | IpcacheFlags.ENCRYPT_READY;

function entry(i: number, over: Partial<IpcacheEntry> = {}): IpcacheEntry {
  return {
    nodeName: `node-${i}`,
    nodeIPs: [`192.168.0.${i}`],
    podCIDRs: [`10.0.${i}.0/24`],
    flags: READY,
    keyIndex: 1,
    nodeId: i,
    ...over,
  };
}

/** What the map would hold after writing `entries` (decoded form). */
function mapOf(entries: IpcacheEntry[]): Map<string, IpcacheValue> {
  const m = new Map<string, IpcacheValue>();
  for (const e of entries) {
    for (const [p, v] of entryPrefixes(normalizeEntry(e))) {
      m.set(p, {
        local: false,
        remote: !!v.remote,
        encryptReady: !!v.encryptReady,
        isNode: !!v.isNode,
        nodeIp: v.nodeIp,
        ifindex: 0,
        nodeId: v.nodeId ?? 0,
        keyIndex: v.keyIndex ?? 0,
      });
    }
  }
  return m;
}

describe('datapath model: node entries ↔ prefixes', () => {
  it('canonicalizes CIDRs (host bits zeroed) and IPs, and names the bad field', () => {
    expect(canonicalPrefix('10.1.2.3/24', 'x')).toBe('10.1.2.0/24');
    expect(canonicalPrefix('fd00:0:0:0::1/64', 'x')).toBe('fd00::/64');
    expect(() => canonicalPrefix('10.0.0.0/33', 'entry.podCIDRs[0]')).toThrow(DatapathArgumentError);
    try {
      normalizeEntry(entry(1, { podCIDRs: ['10.0.0.0/8', 'nope'] }));
      expect.unreachable();
    } catch (e) {
      expect(e).toBeInstanceOf(DatapathArgumentError);
      expect((e as DatapathArgumentError).field).toBe('entry.podCIDRs[1]');
    }
    expect(() => normalizeEntry(entry(1, { nodeIPs: ['10.0.0.0/8'] }))).toThrow(/entry\.nodeIPs\[0\]/);
    expect(() => normalizeEntry(entry(1, { keyIndex: 16 }))).toThrow(/entry\.keyIndex/);
    expect(() => normalizeEntry(entry(1, { nodeId: 70000 }))).toThrow(/entry\.nodeId/);
    expect(() => normalizeEntry(entry(1, { flags: IpcacheFlags.LOCAL | IpcacheFlags.REMOTE }))).toThrow(/entry\.flags.*LOCAL/);
    expect(() => normalizeEntry(entry(1, { nodeName: '' }))).toThrow(/entry\.nodeName/);
  });

  it('maps pod CIDRs to entries with the node flags and node IPs to IS_NODE host prefixes', () => {
    const e = normalizeEntry(entry(2, { nodeIPs: ['192.168.0.2', 'fd00::2'], podCIDRs: ['10.0.2.0/24', 'fd10:2::/64'] }));
    const p = entryPrefixes(e);
    expect([...p.keys()].sort()).toEqual(['10.0.2.0/24', '192.168.0.2/32', 'fd00::2/128', 'fd10:2::/64']);
    expect(p.get('10.0.2.0/24')).toMatchObject({
      remote: true,
      encryptReady: true,
      isNode: false,
      nodeIp: '192.168.0.2',
      nodeId: 2,
      keyIndex: 1,
    });
    // The IPv6 pod CIDR points at the IPv6 node address.
    expect(p.get('fd10:2::/64')).toMatchObject({ nodeIp: 'fd00::2' });
    expect(p.get('192.168.0.2/32')).toMatchObject({ isNode: true, remote: true, encryptReady: true, nodeIp: '192.168.0.2' });
  });

  it('steers node IPs only with node encryption; without it they are IS_NODE alone (passed in clear)', () => {
    const e = normalizeEntry(entry(2, { nodeIPs: ['192.168.0.2'], podCIDRs: ['10.0.2.0/24'] }));
    const p = entryPrefixes(e, false);
    // A peer that does not accept node IPs (WireGuard allowed IPs without nodeEncryption) must not get them.
    expect(p.get('192.168.0.2/32')).toMatchObject({ isNode: true, remote: false, encryptReady: false });
    expect(p.get('10.0.2.0/24')).toMatchObject({ remote: true, encryptReady: true, isNode: false });
    // A map written with node encryption on is not adopted as-is once it is off: the values differ.
    const written = entryPrefixes(e, true);
    const lookup = (prefix: string): IpcacheValue | undefined => {
      const v = written.get(prefix);
      if (v === undefined) return undefined;
      const bytes = Buffer.alloc(ipcacheValue.size);
      ipcacheValue.encode(v, bytes, 0);
      return ipcacheValue.decode(bytes, 0);
    };
    expect(verifyAdopted([e], lookup, true)).toEqual({ adopted: [e], rejected: [] });
    expect(verifyAdopted([e], lookup, false)).toEqual({ adopted: [], rejected: [e.nodeName] });
  });

  it('plans a sync: adds, updates (entry or map value changed), removes, deletes orphans, keeps LOCAL prefixes', () => {
    const a = normalizeEntry(entry(1)),
      b = normalizeEntry(entry(2)),
      c = normalizeEntry(entry(3));
    const current = mapOf([a, b, c]);
    current.set('10.99.0.0/16', {
      local: false,
      remote: true,
      encryptReady: false,
      isNode: false,
      nodeIp: '192.168.0.99',
      ifindex: 0,
      nodeId: 99,
      keyIndex: 0,
    });
    // The map holds a stale value for c's CIDR (e.g. written by an older agent).
    current.set('10.0.3.0/24', { ...(current.get('10.0.3.0/24') as IpcacheValue), keyIndex: 0 });
    const known = new Map([a, b, c].map((e) => [e.nodeName, e]));
    const b2 = normalizeEntry(entry(2, { keyIndex: 2 }));
    const d = normalizeEntry(entry(4));
    const plan = planSync(current, known, [a, b2, c, d], new Set(['10.0.4.5/32']));
    expect(plan.added).toEqual(['node-4']);
    expect(plan.updated.sort()).toEqual(['node-2', 'node-3']);
    expect(plan.removed).toEqual([]);
    expect(plan.updates.map(([p]) => p).sort()).toEqual([
      '10.0.2.0/24',
      '10.0.3.0/24',
      '10.0.4.0/24',
      '192.168.0.2/32',
      '192.168.0.4/32',
    ]);
    expect(plan.deletes).toEqual(['10.99.0.0/16']);

    const plan2 = planSync(current, known, [a]);
    expect(plan2.removed.sort()).toEqual(['node-2', 'node-3']);
    expect(plan2.deletes.sort()).toEqual(['10.0.2.0/24', '10.0.3.0/24', '10.99.0.0/16', '192.168.0.2/32', '192.168.0.3/32']);
    expect(plan2.updates).toEqual([]);
  });

  it('a sync with nothing to change writes nothing', () => {
    const es = [1, 2, 3].map((i) => normalizeEntry(entry(i)));
    const plan = planSync(mapOf(es), new Map(es.map((e) => [e.nodeName, e])), es);
    expect(plan).toMatchObject({ updates: [], deletes: [], added: [], updated: [], removed: [] });
  });

  it('adopts only recorded entries the map backs exactly', () => {
    const a = entry(1),
      b = entry(2),
      c = entry(3);
    const m = mapOf([a, b]);
    m.set('10.0.2.0/24', { ...(m.get('10.0.2.0/24') as IpcacheValue), nodeId: 77 });
    const { adopted, rejected } = verifyAdopted([a, b, c, { nodeName: 'bad' } as unknown as IpcacheEntry], (p) => m.get(p));
    expect(adopted.map((e) => e.nodeName)).toEqual(['node-1']);
    expect(rejected).toEqual(['node-2', 'node-3', 'bad']);
  });

  it('compares values byte-wise as the programs see them', () => {
    expect(
      sameValue({ remote: true, nodeIp: '10.0.0.1', nodeId: 1 }, { remote: true, nodeIp: '10.0.0.1', nodeId: 1, keyIndex: 0 }),
    ).toBe(true);
    expect(sameValue({ remote: true, nodeIp: '10.0.0.1' }, { remote: true, nodeIp: '10.0.0.2' })).toBe(false);
    expect(sameValue(undefined, { remote: true })).toBe(false);
  });

  it('matches interface name patterns with * and ?', () => {
    const m = namePatternMatcher(['lxc*', 'veth?', 'cali*']);
    expect(['lxc12ab', 'lxc', 'vetha', 'cali0'].every(m)).toBe(true);
    expect(['veth12', 'eth0', 'xlxc1', 'wg0'].some(m)).toBe(false);
    expect(namePatternMatcher(['a.b'])('axb')).toBe(false);
    expect(() => namePatternMatcher([''])).toThrow(/options\.podVethPatterns\[0\]/);
  });
});

describe('datapath steering and options', () => {
  it('maps steering to the config backend fields', () => {
    expect(steeringConfig({ kind: 'redirect', ifindex: 7 })).toEqual({ backend: 'wireguard', wgIfindex: 7 });
    expect(steeringConfig({ kind: 'mark', value: 0x0e00, mask: 0xffffff00, keyIndexShift: 12, nodeIdShift: 16 })).toEqual({
      backend: 'ipsec',
      wgIfindex: 0,
    });
    expect(steeringConfig({ kind: 'none' })).toEqual({ backend: 'none', wgIfindex: 0 });
    expect(() => steeringConfig({ kind: 'redirect', ifindex: 0 })).toThrow(/steering\.ifindex/);
    // A backend's device MTU reaches the programs' too-big check.
    expect(steeringConfig({ kind: 'redirect', ifindex: 7, mtu: 1420 })).toEqual({
      backend: 'wireguard',
      wgIfindex: 7,
      mtu: 1420,
    });
    expect(() => steeringConfig({ kind: 'redirect', ifindex: 7, mtu: 20 })).toThrow(/steering\.mtu/);
    expect(() => steeringConfig({ kind: 'mark', value: 0x0d00, mask: 0xffffff00, keyIndexShift: 12, nodeIdShift: 16 })).toThrow(
      /mark layout/,
    );
    expect(() => steeringConfig({ kind: 'bogus' } as never)).toThrow(/steering\.kind/);
  });

  it('derives options from the agent config', () => {
    const cfg = {
      ...DEFAULT_CONFIG,
      stateDir: '/var/lib/x',
      encryption: {
        ...DEFAULT_CONFIG.encryption,
        enabled: true,
        strictMode: { enabled: true, cidrs: ['10.0.0.0/8'], allowRemoteNodeIdentities: true },
      },
    };
    expect(datapathOptionsFromConfig(cfg)).toEqual({
      stateFile: '/var/lib/x/datapath-ipcache.json',
      podVethPatterns: ['lxc*', 'veth*'],
      strict: { enabled: true, cidrs: ['10.0.0.0/8'], allowRemoteNodeIdentities: true },
      nodeEncryption: false,
    });
    // A backend's section is the backend's: the datapath reads none of it, whatever it says.
    expect(datapathOptionsFromConfig({ ...cfg, encryption: { ...cfg.encryption, wireguard: { mtu: 1380, port: 1 } } })).toEqual(
      datapathOptionsFromConfig(cfg),
    );
    // The backend's MTU and its own UDP port reach the datapath through its steering.
    expect(steeringConfig({ kind: 'redirect', ifindex: 7, mtu: 1380, udpPort: 51871 })).toEqual({
      backend: 'wireguard',
      wgIfindex: 7,
      mtu: 1380,
      wgPort: 51871,
    });
    expect(() => steeringConfig({ kind: 'redirect', ifindex: 7, udpPort: 0 })).toThrow(/steering\.udpPort/);
    // Strict mode without encryption would drop all remote traffic: off.
    expect(datapathOptionsFromConfig({ ...cfg, encryption: { ...cfg.encryption, enabled: false } }).strict?.enabled).toBe(false);
  });

  it('rejects bad options before touching the kernel', () => {
    expect(() => BpfDatapath.open({ netns: 'relative' })).toThrow(/options\.netns/);
    expect(() => BpfDatapath.open({ mtu: 12 })).toThrow(/options\.mtu/);
    expect(() => BpfDatapath.open({ tcPriority: 0 })).toThrow(/options\.tcPriority/);
    expect(() => BpfDatapath.open({ localPodCIDRs: ['x'] })).toThrow(/options\.localPodCIDRs\[0\]/);
    expect(() =>
      BpfDatapath.open({ strict: { enabled: true, cidrs: ['10.0.0.0/99'], allowRemoteNodeIdentities: false } }),
    ).toThrow(/options\.strict\.cidrs\[0\]/);
    expect(() => BpfDatapath.open({ deviceRoles: { wg0: 'sideways' as never } })).toThrow(/options\.deviceRoles\.wg0/);
    expect(() => BpfDatapath.purge({ pinDir: '' })).toThrow(/pinDir/);
  });
});

describe('datapath state file', () => {
  const dir = mkdtempSync(join(tmpdir(), 'veil-dp-state-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('round-trips, and ignores files of another pin dir, version or garbage', () => {
    const f = join(dir, 'sub', 'state.json');
    writeStateFile(f, '/pins/a', [entry(1), entry(2)]);
    expect(readStateFile(f, '/pins/a').nodes.map((e) => e.nodeName)).toEqual(['node-1', 'node-2']);
    // eslint-disable-next-line @typescript-eslint/no-unsafe-assignment -- vitest's asymmetric matchers (expect.any/stringMatching) are typed any
    expect(readStateFile(f, '/pins/b')).toMatchObject({ nodes: [], problem: expect.stringMatching(/pin dir/) });
    expect(readStateFile(join(dir, 'absent.json'), '/pins/a')).toEqual({ nodes: [] });
    writeFileSync(f, '{"version": 9, "nodes": []}');
    expect(readStateFile(f, '/pins/a').problem).toMatch(/version 9/);
    writeFileSync(f, 'not json');
    expect(readStateFile(f, '/pins/a').nodes).toEqual([]);
  });

  it('coalesces writes and flushes on demand', () => {
    const f = join(dir, 'coalesced.json');
    const nodes = [entry(1)];
    const w = new StateFileWriter(f, '/pins/a', () => nodes, 10_000);
    w.markDirty();
    nodes.push(entry(2));
    w.markDirty();
    expect(readStateFile(f, '/pins/a').nodes).toEqual([]);
    w.flush();
    expect(readStateFile(f, '/pins/a').nodes).toHaveLength(2);
  });

  it('finds the filesystem type of a path', () => {
    expect(fsTypeOf('/proc/self')).toBe('proc');
  });
});
