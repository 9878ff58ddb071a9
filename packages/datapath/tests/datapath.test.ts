import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  benchObjectPath,
  datapathConfig,
  formatCidr,
  indexKey,
  ipcacheKey,
  ipcacheValue,
  type IpcacheValue,
  strictCidrValue,
} from '@veil/bpf';
import { describePrivileged, linkName, TestNetns } from '@veil/test-utils';
import { attachTc, BpfMap, ifNameToIndex, listTc, mountBpffs, unmountBpffs } from 'libbpf-ts';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { entryPrefixes, normalizeEntry } from '../src/model.js';
import { ContainerModule } from 'inversify';
import { FakeBackend, RecordingEventRecorder } from '@veil/agent-core/fake';
import { captureLogger, node as clusterNode, testConfig } from './helpers.js';
import { Agent, InMemoryCluster, TOKENS, IpcacheFlags, type IpcacheEntry } from '@veil/agent-core';
import {
  BpfDatapath,
  bpfDatapathModule,
  BpffsError,
  DatapathArgumentError,
  DatapathAttachError,
  DatapathClosedError,
  DatapathLoadError,
  type BpfDatapathOptions,
} from '../src/index.js';

const READY = IpcacheFlags.REMOTE | IpcacheFlags.ENCRYPT_READY;

function peer(i: number, over: Partial<IpcacheEntry> = {}): IpcacheEntry {
  return {
    nodeName: `peer-${i}`,
    nodeIPs: [`192.168.50.${i}`],
    podCIDRs: [`10.${100 + i}.0.0/24`],
    flags: READY,
    keyIndex: 0,
    nodeId: i,
    ...over,
  };
}

async function until<T>(what: string, fn: () => T | undefined | false, timeoutMs = 10_000): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = fn();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

describePrivileged('BpfDatapath on the real kernel', ['root', 'bpf', 'netns'], () => {
  let tmp = '';
  let bpffs = '';
  let pinDir = '';
  let stateFile = '';
  let mounted = false;
  let node: TestNetns;
  const pods = new Map<string, TestNetns>();
  const open: BpfDatapath[] = [];
  // Host-side veth names (the pattern is lxc* so other links are left alone).
  const vethA = linkName('lxcda');
  const vethB = linkName('lxcdb');
  const tun = linkName('dpwg');
  const underlay = linkName('dpul');

  function opts(over: BpfDatapathOptions = {}): BpfDatapathOptions {
    return {
      pinDir,
      bpffsRoot: bpffs,
      mountBpffs: false,
      stateFile,
      netns: node.path,
      podVethPatterns: ['lxc*'],
      stateWriteDelayMs: 10,
      ...over,
    };
  }

  function openDp(over: BpfDatapathOptions = {}): BpfDatapath {
    const dp = BpfDatapath.open(opts(over));
    open.push(dp);
    return dp;
  }

  /** A pod netns behind a host veth in the node netns, with `ip` as its /32 and a host route to it. */
  function addPod(tag: string, veth: string, ip: string, route = true): TestNetns {
    const pod = TestNetns.create(tag);
    pods.set(veth, pod);
    node.exec('ip', ['link', 'add', veth, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', pod.name]);
    node.exec('ip', ['addr', 'add', '169.254.1.1/32', 'dev', veth]);
    node.exec('ip', ['link', 'set', veth, 'up']);
    pod.exec('ip', ['link', 'set', 'eth0', 'up']);
    pod.exec('ip', ['addr', 'add', `${ip}/32`, 'dev', 'eth0']);
    pod.exec('ip', ['route', 'add', '169.254.1.1', 'dev', 'eth0', 'scope', 'link']);
    pod.exec('ip', ['route', 'add', 'default', 'via', '169.254.1.1', 'dev', 'eth0']);
    if (route) node.exec('ip', ['route', 'add', `${ip}/32`, 'dev', veth, 'scope', 'link']);
    return pod;
  }

  function removePod(veth: string): void {
    node.tryExec('ip', ['link', 'del', veth]);
    pods.get(veth)?.remove();
    pods.delete(veth);
  }

  function readIpcache(): Map<string, IpcacheValue> {
    const m = BpfMap.fromPin(join(pinDir, 'ipcache'), ipcacheKey, ipcacheValue);
    try {
      return new Map([...m.entries()].map(([k, v]) => [formatCidr(k), v]));
    } finally {
      m.close();
    }
  }

  function readConfig() {
    const m = BpfMap.fromPin(join(pinDir, 'config'), indexKey, datapathConfig);
    try {
      return m.lookup(0);
    } finally {
      m.close();
    }
  }

  function filters(ifname: string, direction: 'ingress' | 'egress' = 'ingress') {
    return listTc({ ifindex: ifNameToIndex(ifname, node.path), direction, netns: node.path });
  }

  beforeAll(() => {
    tmp = mkdtempSync(join(tmpdir(), 'veil-dp-'));
    bpffs = join(tmp, 'bpffs');
    mkdirSync(bpffs);
    mountBpffs(bpffs);
    mounted = true;
    pinDir = join(bpffs, 'veil');
    stateFile = join(tmp, 'state', 'datapath-ipcache.json');
    node = TestNetns.create('dpnode');
    node.exec('sysctl', ['-qw', 'net.ipv4.ip_forward=1']);
    addPod('dpa', vethA, '10.200.1.2');
    addPod('dpb', vethB, '10.200.1.3');
    node.exec('ip', ['tuntap', 'add', 'dev', tun, 'mode', 'tun']);
    node.exec('ip', ['link', 'add', underlay, 'type', 'veth', 'peer', 'name', `${underlay}p`]);
  });

  afterAll(async () => {
    for (const dp of open) await dp.close();
    for (const veth of [...pods.keys()]) removePod(veth);
    node?.remove();
    if (mounted) unmountBpffs(bpffs);
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  });

  describe('attach', () => {
    it('attaches from-pod to existing pod veths and records their pods as LOCAL entries with the veth ifindex', async () => {
      const dp = openDp({ localPodCIDRs: ['10.200.1.0/24'] });
      await dp.attach([]);
      expect(dp.attached).toBe(true);
      const a = dp.attachments().find((x) => x.ifname === vethA);
      expect(a).toMatchObject({
        role: 'pod',
        program: 'veil_from_pod',
        direction: 'ingress',
        ifindex: ifNameToIndex(vethA, node.path),
      });
      const fa = filters(vethA);
      expect(fa).toHaveLength(1);
      expect(fa[0]).toMatchObject({ priority: 1, handle: 0x7e11, bpf: { progId: a?.progId, directAction: true } });
      const m = readIpcache();
      expect(m.get('10.200.1.2/32')).toMatchObject({ local: true, remote: false, ifindex: ifNameToIndex(vethA, node.path) });
      expect(m.get('10.200.1.3/32')).toMatchObject({ local: true, ifindex: ifNameToIndex(vethB, node.path) });
      expect(m.get('10.200.1.0/24')).toMatchObject({ local: true, ifindex: 0 });
      expect(dp.localEndpoints().get('10.200.1.2/32')).toBe(ifNameToIndex(vethA, node.path));
      await dp.close();
    });

    it('attaches to new pod veths as they appear, forgets deleted ones and re-attaches recreated ones', async () => {
      const dp = openDp();
      await dp.attach([]);
      const vethC = linkName('lxcdc');
      addPod('dpc', vethC, '10.200.1.4', false);
      const first = await until('attach to the new veth', () => dp.attachments().find((x) => x.ifname === vethC));
      expect(filters(vethC)[0]?.bpf?.progId).toBe(first.progId);
      // The route arrives after the link: the route watcher adds the LOCAL entry.
      node.exec('ip', ['route', 'add', '10.200.1.4/32', 'dev', vethC, 'scope', 'link']);
      node.exec('ip', ['-6', 'route', 'add', 'fd00:200::4/128', 'dev', vethC]);
      await until('pod /32 entry', () => readIpcache().get('10.200.1.4/32')?.ifindex === first.ifindex);
      await until('pod /128 entry', () => readIpcache().get('fd00:200::4/128')?.ifindex === first.ifindex);
      // A deleted route removes the entry.
      node.exec('ip', ['-6', 'route', 'del', 'fd00:200::4/128', 'dev', vethC]);
      await until('pod /128 entry gone', () => !readIpcache().has('fd00:200::4/128'));

      removePod(vethC);
      await until('forget the deleted veth', () => !dp.attachments().some((x) => x.ifname === vethC));
      await until('its pod entry removed', () => !readIpcache().has('10.200.1.4/32'));

      addPod('dpc', vethC, '10.200.1.4');
      const second = await until('re-attach to the recreated veth', () => dp.attachments().find((x) => x.ifname === vethC));
      expect(second.ifindex).not.toBe(first.ifindex);
      expect(filters(vethC)).toHaveLength(1);
      await until('pod entry with the new ifindex', () => readIpcache().get('10.200.1.4/32')?.ifindex === second.ifindex);
      expect(dp.backgroundErrors).toEqual([]);
      removePod(vethC);
      await until('forget it again', () => !dp.attachments().some((x) => x.ifname === vethC));
      await dp.close();
    });

    it('attaches from-tunnel (tc ingress) and to-wire (tc egress) to devices by explicit role; detach removes only our filter', async () => {
      const dp = openDp({ deviceRoles: { [tun]: 'tunnel' } });
      await dp.attach([
        { kind: 'device', ifname: tun },
        { kind: 'underlay', ifname: underlay },
      ]);
      expect(dp.attached).toBe(true);
      const byName = new Map(dp.attachments().map((a) => [a.ifname, a]));
      expect(byName.get(tun)).toMatchObject({ role: 'tunnel', program: 'veil_from_tunnel', direction: 'ingress' });
      expect(byName.get(underlay)).toMatchObject({ role: 'underlay', program: 'veil_to_wire', direction: 'egress' });
      // Kernel program names are cut to 15 characters: compare ids.
      expect(filters(tun)[0]?.bpf?.progId).toBe(byName.get(tun)?.progId);
      expect(filters(underlay, 'egress')[0]?.bpf?.progId).toBe(byName.get(underlay)?.progId);
      expect(filters(underlay, 'ingress')).toEqual([]);
      await dp.detach([tun, underlay]);
      expect(filters(tun)).toEqual([]);
      expect(filters(underlay, 'egress')).toEqual([]);
      expect(filters(vethA)).toHaveLength(1);
      await dp.close();
    });

    it('removes Veil filters an older agent left at another priority/handle, and leaves foreign filters alone', async () => {
      const old = openDp();
      // An "older agent" at another priority/handle, and a foreign (non-Veil) filter.
      const stale = attachTc({
        ifindex: ifNameToIndex(vethB, node.path),
        direction: 'ingress',
        program: old.bpf.fromPod,
        priority: 7,
        handle: 0x55,
        netns: node.path,
      });
      node.exec('tc', [
        'filter',
        'add',
        'dev',
        vethB,
        'ingress',
        'prio',
        '9',
        'handle',
        '9',
        'bpf',
        'da',
        'obj',
        benchObjectPath('passthrough'),
        'sec',
        'tc',
      ]);
      expect(
        filters(vethB)
          .map((f) => f.priority)
          .sort(),
      ).toEqual([1, 7, 9]);
      await old.close();
      const dp = openDp();
      await dp.attach([]);
      const left = filters(vethB);
      expect(left.map((f) => f.priority).sort()).toEqual([1, 9]);
      expect(left.find((f) => f.priority === 9)?.bpf?.name).toMatch(/^bench_passthrough/);
      expect(stale.detach()).toBe(false);
      node.exec('tc', ['filter', 'del', 'dev', vethB, 'ingress', 'prio', '9']);
      expect(dp.backgroundErrors).toEqual([]);
      await dp.close();
    });

    it('names what failed: missing interfaces, devices without a role', async () => {
      const dp = openDp();
      const missing = linkName('dpno');
      const err = await dp.attach([{ kind: 'tunnel', ifname: missing }]).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(DatapathAttachError);
      expect(err).toMatchObject({ ifname: missing, program: 'veil_from_tunnel', code: 'ENODEV' });
      expect((err as Error).message).toContain(missing);
      expect(dp.attached).toBe(false);
      await expect(dp.attach([{ kind: 'device', ifname: underlay }])).rejects.toThrow(DatapathArgumentError);
      await expect(dp.attach([{ kind: 'device', ifname: underlay }])).rejects.toThrow(/deviceRoles/);
      await dp.close();
      await expect(dp.upsert(peer(1))).rejects.toThrow(DatapathClosedError);
    });
  });

  describe('ipcache', () => {
    it('upserts and removes per node, and syncPeers applies only the diff', async () => {
      const dp = openDp();
      for (const i of [1, 2, 3]) await dp.upsert(peer(i));
      let m = readIpcache();
      for (const i of [1, 2, 3]) {
        expect(m.get(`10.${100 + i}.0.0/24`)).toMatchObject({
          remote: true,
          encryptReady: true,
          isNode: false,
          nodeIp: `192.168.50.${i}`,
          nodeId: i,
        });
        // Node encryption is off: the node IP is known (IS_NODE) but not steered into encryption.
        expect(m.get(`192.168.50.${i}/32`)).toMatchObject({
          remote: false,
          encryptReady: false,
          isNode: true,
          nodeIp: `192.168.50.${i}`,
        });
      }
      // Turning node encryption on rewrites the node-IP entries in place (and off again restores them).
      await dp.configure({ nodeEncryption: true });
      expect(readIpcache().get('192.168.50.1/32')).toMatchObject({ remote: true, encryptReady: true, isNode: true });
      expect(dp.config.nodeEncryption).toBe(true);
      await dp.configure({ nodeEncryption: false });
      expect(readIpcache().get('192.168.50.1/32')).toMatchObject({ remote: false, encryptReady: false, isNode: true });
      // The status view reads the map itself (veil bpf ipcache list), with the owning node names.
      const dump = new Map(dp.ipcacheDump().map((r) => [r.prefix, r]));
      expect(dump.size).toBe(readIpcache().size);
      expect(dump.get('10.101.0.0/24')).toEqual({
        prefix: '10.101.0.0/24',
        nodeName: 'peer-1',
        nodeIP: '192.168.50.1',
        flags: 0x02 | 0x04,
        keyIndex: 0,
        nodeId: 1,
        ifindex: 0,
      });
      expect(dump.get('192.168.50.1/32')).toMatchObject({ nodeName: 'peer-1', flags: 0x10 });
      // An update that moves the pod CIDR deletes the old prefix.
      await dp.upsert(peer(3, { podCIDRs: ['10.103.1.0/24'] }));
      m = readIpcache();
      expect(m.has('10.103.0.0/24')).toBe(false);
      expect(m.get('10.103.1.0/24')).toMatchObject({ nodeId: 3 });
      await dp.remove('peer-1');
      await dp.remove('never-there');
      m = readIpcache();
      expect(m.has('10.101.0.0/24') || m.has('192.168.50.1/32')).toBe(false);

      const res = await dp.syncPeers([
        peer(2, { keyIndex: 3 }),
        peer(4, { nodeIPs: ['192.168.50.4', 'fd00:50::4'], podCIDRs: ['10.104.0.0/24', 'fd10:104::/64'] }),
      ]);
      expect(res).toEqual({ added: ['peer-4'], updated: ['peer-2'], removed: ['peer-3'] });
      m = readIpcache();
      const remote = [...m]
        .filter(([, v]) => !v.local)
        .map(([p]) => p)
        .sort();
      expect(remote).toEqual([
        '10.102.0.0/24',
        '10.104.0.0/24',
        '192.168.50.2/32',
        '192.168.50.4/32',
        'fd00:50::4/128',
        'fd10:104::/64',
      ]);
      expect(m.get('10.102.0.0/24')?.keyIndex).toBe(3);
      expect(m.get('fd10:104::/64')).toMatchObject({ nodeIp: 'fd00:50::4' });
      // LOCAL pod entries were not touched by the sync.
      expect(m.get('10.200.1.2/32')).toMatchObject({ local: true });
      // Nothing changed → nothing reported.
      expect(
        await dp.syncPeers([
          peer(2, { keyIndex: 3 }),
          peer(4, { nodeIPs: ['192.168.50.4', 'fd00:50::4'], podCIDRs: ['10.104.0.0/24', 'fd10:104::/64'] }),
        ]),
      ).toEqual({ added: [], updated: [], removed: [] });
      expect([...(await dp.entries()).keys()].sort()).toEqual(['peer-2', 'peer-4']);
      await expect(dp.upsert(peer(5, { podCIDRs: ['10.0.0.0/40'] }))).rejects.toThrow(/entry\.podCIDRs\[0\]/);
      await dp.close();
    });

    it('a second instance adopts the entries the map backs (and not the ones it does not)', async () => {
      const before = readIpcache();
      const dp = openDp();
      const got = await dp.entries();
      expect([...got.keys()].sort()).toEqual(['peer-2', 'peer-4']);
      expect(got.get('peer-4')).toMatchObject({
        nodeIPs: ['192.168.50.4', 'fd00:50::4'],
        podCIDRs: ['10.104.0.0/24', 'fd10:104::/64'],
        nodeId: 4,
      });
      expect(readIpcache()).toEqual(before);
      // Tamper with the map behind the agent's back: that node is no longer adopted.
      const m = BpfMap.fromPin(join(pinDir, 'ipcache'), ipcacheKey, ipcacheValue);
      m.update('10.102.0.0/24', { remote: true, nodeIp: '192.168.50.2', nodeId: 99 });
      m.close();
      await dp.close();
      const dp2 = openDp();
      expect([...(await dp2.entries()).keys()]).toEqual(['peer-4']);
      expect(dp2.rejectedEntries).toEqual(['peer-2']);
      // The sync repairs it and reports it as added (it was not adopted).
      const res = await dp2.syncPeers([
        peer(2, { keyIndex: 3 }),
        peer(4, { nodeIPs: ['192.168.50.4', 'fd00:50::4'], podCIDRs: ['10.104.0.0/24', 'fd10:104::/64'] }),
      ]);
      expect(res).toEqual({ added: ['peer-2'], updated: [], removed: [] });
      expect(readIpcache().get('10.102.0.0/24')).toMatchObject({ nodeId: 2, keyIndex: 3 });
      await dp2.close();
    });
  });

  describe('config and counters', () => {
    it('setSteering and tuning are read back from the pinned config map; strict CIDRs go to strict_cidrs', async () => {
      const dp = openDp({
        mtu: 1420,
        wgPort: 51871,
        strict: { enabled: true, cidrs: ['10.200.0.0/16', '10.100.0.0/14'], allowRemoteNodeIdentities: true },
      });
      const wgIfindex = ifNameToIndex(tun, node.path);
      await dp.setSteering({ kind: 'redirect', ifindex: wgIfindex });
      expect(readConfig()).toMatchObject({
        backend: 'wireguard',
        wgIfindex,
        mtu: 1420,
        wgPort: 51871,
        strict: true,
        allowRemoteNodeIdentities: true,
      });
      await dp.setSteering({ kind: 'mark', value: 0x0e00, mask: 0xffffff00, keyIndexShift: 12, nodeIdShift: 16 });
      expect(readConfig()).toMatchObject({ backend: 'ipsec', wgIfindex: 0, mtu: 1420 });
      await expect(
        dp.setSteering({ kind: 'mark', value: 0x0100, mask: 0xffffff00, keyIndexShift: 12, nodeIdShift: 16 }),
      ).rejects.toThrow(DatapathArgumentError);
      await dp.setSteering({ kind: 'none' });
      expect(readConfig()).toMatchObject({ backend: 'none' });
      const sc = BpfMap.fromPin(join(pinDir, 'strict_cidrs'), ipcacheKey, strictCidrValue);
      expect([...sc.keys()].map(formatCidr).sort()).toEqual(['10.100.0.0/14', '10.200.0.0/16']);
      await dp.configure({
        strict: { enabled: false, cidrs: ['10.200.0.0/16'], allowRemoteNodeIdentities: false },
        nodeEncryption: true,
      });
      expect([...sc.keys()].map(formatCidr)).toEqual(['10.200.0.0/16']);
      sc.close();
      expect(readConfig()).toMatchObject({ strict: false, nodeEncryption: true, mtu: 1420 });
      expect(dp.config.nodeEncryption).toBe(true);
      // Steering survives a restart (options without steering do not reset it).
      await dp.setSteering({ kind: 'redirect', ifindex: wgIfindex });
      await dp.close();
      const dp2 = openDp();
      expect(dp2.config).toMatchObject({ backend: 'wireguard', wgIfindex });
      await dp2.setSteering({ kind: 'none' });
      await dp2.close();
    });

    it('restart under traffic: programs are replaced in place, no ping is lost, counters keep counting', async () => {
      const dp1 = openDp();
      await dp1.attach([]);
      const before = await dp1.counters();
      const progBefore = filters(vethA)[0]?.bpf?.progId;
      const podA = pods.get(vethA) as TestNetns;
      const ping = podA.spawn('ping', ['-n', '-q', '-c', '300', '-i', '0.01', '-W', '2', '10.200.1.3']);
      let out = '';
      ping.stdout?.on('data', (d: Buffer) => (out += d.toString()));
      const exited = new Promise<number | null>((r) => ping.on('exit', (code) => r(code)));
      await new Promise((r) => setTimeout(r, 700));
      // Restart: close the old agent's handles, open a new one over the same pins, re-attach.
      await dp1.close();
      const dp2 = openDp();
      await dp2.attach([]);
      const code = await exited;
      const m = /(\d+) packets transmitted, (\d+) received/.exec(out);
      expect(m, out).not.toBeNull();
      const [sent, received] = [Number(m?.[1]), Number(m?.[2])];
      expect(sent).toBe(300);
      expect(sent - received).toBe(0);
      expect(code).toBe(0);
      // Replaced, not added: one filter per veth, running the new program.
      const f = filters(vethA);
      expect(f).toHaveLength(1);
      expect(f[0]?.bpf?.progId).toBe(dp2.attachments().find((x) => x.ifname === vethA)?.progId);
      expect(f[0]?.bpf?.progId).not.toBe(progBefore);
      // Counters live in the pinned map and prove there was no gap: every echo request (into
      // lxcA) and every reply (into lxcB) went through a from-pod program, old or new. Nothing
      // else in these namespaces is addressed to a LOCAL pod.
      const after = await dp2.counters();
      expect((after['pass-local'] ?? 0n) - (before['pass-local'] ?? 0n)).toBe(600n);
      expect(dp2.counterDetails()['pass-local']?.bytes).toBeGreaterThan(0n);
      await dp2.close();
    });

    it('close() keeps kernel state; purge() removes the pins and the state file', async () => {
      const dp = openDp();
      await dp.attach([]);
      await dp.upsert(peer(7));
      await dp.close();
      expect(filters(vethA)).toHaveLength(1);
      expect(readIpcache().get('10.107.0.0/24')).toMatchObject({ nodeId: 7 });
      expect(existsSync(stateFile)).toBe(true);
      expect(BpfDatapath.purge({ pinDir, stateFile }).sort()).toEqual(
        ['config', 'counters', 'ipcache', 'strict_cidrs'].map((n) => join(pinDir, n)),
      );
      expect(existsSync(pinDir)).toBe(false);
      expect(existsSync(stateFile)).toBe(false);
      expect(BpfDatapath.purge({ pinDir })).toEqual([]);
      // A fresh start after purge: new, empty maps, nothing adopted; filters replaced in place.
      const dp2 = openDp();
      expect((await dp2.entries()).size).toBe(0);
      expect([...readdirSync(pinDir)].sort()).toEqual(['config', 'counters', 'ipcache', 'strict_cidrs']);
      await dp2.attach([]);
      expect(filters(vethA)).toHaveLength(1);
      expect(readIpcache().get('10.200.1.2/32')).toMatchObject({ local: true });
      await dp2.close();
    });
  });

  describe('load errors', () => {
    it('names the missing object, the unmountable bpffs and the incompatible pin', () => {
      expect(() => openDp({ objectPath: join(tmp, 'missing.bpf.o') })).toThrow(DatapathLoadError);
      try {
        openDp({ objectPath: join(tmp, 'missing.bpf.o') });
      } catch (e) {
        expect(e).toMatchObject({ stage: 'object-missing' });
        expect((e as Error).message).toMatch(/npm run build -w @veil\/bpf/);
      }
      expect(() => openDp({ pinDir: join(tmp, 'not-bpffs') })).toThrow(BpffsError);
      try {
        openDp({ ipcacheMaxEntries: 1234 });
        expect.unreachable();
      } catch (e) {
        expect(e).toBeInstanceOf(DatapathLoadError);
        expect(e).toMatchObject({ stage: 'pin-incompatible', pinDir });
      }
    });
  });

  it('entryPrefixes agrees with what upsert writes', async () => {
    const dp = openDp();
    const e = peer(9, { nodeIPs: ['192.168.50.9', 'fd00:50::9'], podCIDRs: ['10.109.0.0/24'] });
    await dp.upsert(e);
    const m = readIpcache();
    for (const p of entryPrefixes(normalizeEntry(e)).keys()) expect(m.get(p)?.nodeId).toBe(9);
    await dp.remove(e.nodeName);
    await dp.close();
  });

  it('composes into the Agent through bpfDatapathModule: peers land in the pinned map, a restart adopts and prunes', async () => {
    const cluster = new InMemoryCluster();
    cluster.upsertNode(clusterNode(1, { internalIPs: ['192.168.60.1'], podCIDRs: ['10.61.0.0/24'] }));
    cluster.upsertNode(clusterNode(2, { internalIPs: ['192.168.60.2'], podCIDRs: ['10.62.0.0/24'] }));
    const config = testConfig({ stateDir: join(tmp, 'agent-state'), podVethPatterns: ['lxc*'] });
    const start = async (): Promise<Agent> => {
      const agent = await Agent.create({
        config,
        platformModules: [
          new ContainerModule(({ bind }) => {
            bind(TOKENS.KeyDistributor).toConstantValue(cluster.distributor('local'));
            bind(TOKENS.EventRecorder).toConstantValue(new RecordingEventRecorder());
          }),
          bpfDatapathModule((c) => ({
            pinDir,
            bpffsRoot: bpffs,
            mountBpffs: false,
            netns: node.path,
            stateFile: join(c.stateDir, 'dp.json'),
          })),
        ],
        backendModule: new ContainerModule(({ bind }) => void bind(TOKENS.EncryptionBackend).toConstantValue(new FakeBackend())),
        logger: captureLogger('warn').logger,
        noListeners: true,
      });
      await agent.start();
      await until('agent ready', () => agent.ready);
      return agent;
    };
    const a1 = await start();
    const dp1 = a1.container.get(TOKENS.Datapath);
    expect(dp1).toBeInstanceOf(BpfDatapath);
    await until('peers in the map', () => readIpcache().get('10.62.0.0/24')?.nodeIp === '192.168.60.2');
    expect(readIpcache().get('10.61.0.0/24')).toMatchObject({ remote: true, encryptReady: true, nodeIp: '192.168.60.1' });
    expect(filters(vethA)).toHaveLength(1);
    await a1.stop();
    // While no agent runs, node-2 leaves the cluster: the next agent adopts both, then prunes node-2.
    cluster.deleteNode('node-2');
    const a2 = await start();
    await until('node-2 pruned', () => !readIpcache().has('10.62.0.0/24'));
    expect(readIpcache().has('192.168.60.2/32')).toBe(false);
    expect(readIpcache().get('10.61.0.0/24')).toMatchObject({ nodeIp: '192.168.60.1' });
    expect([...(await a2.container.get(TOKENS.Datapath).entries()).keys()]).toEqual(['node-1']);
    await a2.stop();
  });
});
