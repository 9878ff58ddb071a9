import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describePrivileged, TestNetns } from '@veil/test-utils';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { cniAdd, cniDel } from '../src/cni.js';
import { chartPodVethPatterns } from '../src/control-plane.js';
import type { LabNode, LabPod } from '../src/state.js';

/** `*` wildcards, as the agent's podVethPatterns match interface names. */
const matches = (patterns: string[], name: string): boolean =>
  patterns.some((p) =>
    new RegExp(
      `^${p
        .split('*')
        .map((s) => s.replace(/[.+?^${}()|[\]\\]/g, '\\$&'))
        .join('.*')}$`,
    ).test(name),
  );

// The lab's pods as the CNI plugins make them (ptp + host-local, invoked per the spec), in namespaces of this test.
describePrivileged('lab pods through the CNI plugins', ['root', 'netns'], () => {
  let nodeNs: TestNetns;
  let podNs: TestNetns[];
  let dir: string;
  let node: LabNode;
  let pods: LabPod[];

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'veil-lab-cni-'));
    nodeNs = TestNetns.create('cninode');
    podNs = [TestNetns.create('cnipod'), TestNetns.create('cnipod')];
    pods = podNs.map((ns, j) => ({ name: `n7-p${j + 1}`, netns: ns.name, ip: '', hostVeth: '' }));
    node = {
      name: 'n7',
      netns: nodeNs.name,
      nodeId: 7,
      underlayIP: '198.18.0.7',
      podCIDR: '10.244.7.0/24',
      podCIDR6: 'fd00:10:244:7::/64',
      pods,
      dir,
      configFile: join(dir, 'agent.json'),
      kubeconfig: join(dir, 'kubeconfig.json'),
      logFile: join(dir, 'agent.log'),
      statusSocket: join(dir, 'status.sock'),
      pinDir: join(dir, 'bpf'),
    };
  });
  afterAll(() => {
    for (const ns of [...(podNs ?? []), nodeNs]) ns?.remove();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it(
    "ADD gives each pod an address from each of the node's CIDRs (IPv4 and IPv6) and a node-side veth the chart's podVethPatterns match, with the /32 and /128 host routes the datapath reads",
    { timeout: 60_000 },
    async () => {
      const patterns = await chartPodVethPatterns();
      for (const p of pods) await cniAdd(node, p);
      expect(pods.map((p) => p.ip)).toEqual(['10.244.7.11', '10.244.7.12']);
      expect(pods.map((p) => p.ip6)).toEqual(['fd00:10:244:7::11', 'fd00:10:244:7::12']);
      for (const [j, p] of pods.entries()) {
        expect(p.hostVeth).toMatch(/^veth[0-9a-f]{8}$/);
        expect(matches(patterns, p.hostVeth)).toBe(true);
        // Node side: the veth exists, and `<pod>/32 dev <veth>` is a main-table unicast route without a gateway.
        const link = JSON.parse(nodeNs.exec('ip', ['-j', '-d', 'link', 'show', p.hostVeth])) as {
          mtu: number;
          linkinfo: { info_kind: string };
        }[];
        expect(link[0]?.linkinfo.info_kind).toBe('veth');
        expect(link[0]?.mtu).toBe(1420);
        const routes = JSON.parse(nodeNs.exec('ip', ['-j', 'route', 'show', `${p.ip}/32`])) as {
          dst: string;
          dev: string;
          gateway?: string;
        }[];
        expect(routes).toEqual([expect.objectContaining({ dst: p.ip, dev: p.hostVeth })]);
        expect(routes[0]?.gateway).toBeUndefined();
        const routes6 = JSON.parse(nodeNs.exec('ip', ['-j', '-6', 'route', 'show', `${p.ip6}/128`])) as {
          dst: string;
          dev: string;
          gateway?: string;
        }[];
        expect(routes6).toEqual([expect.objectContaining({ dst: p.ip6, dev: p.hostVeth })]);
        expect(routes6[0]?.gateway).toBeUndefined();
        // Pod side: eth0 with the address, default route via the node-side gateway.
        const addrs = JSON.parse(podNs[j]!.exec('ip', ['-j', 'addr', 'show', 'eth0'])) as {
          addr_info: { local: string; prefixlen: number }[];
        }[];
        expect(addrs[0]?.addr_info.map((a) => `${a.local}/${a.prefixlen}`)).toContain(`${p.ip}/24`);
        expect(podNs[j]!.exec('ip', ['route', 'show', 'default'])).toContain('via 10.244.7.1 dev eth0');
        expect(addrs[0]?.addr_info.map((a) => `${a.local}/${a.prefixlen}`)).toContain(`${p.ip6}/64`);
        expect(podNs[j]!.exec('ip', ['-6', 'route', 'show', 'default'])).toContain('via fd00:10:244:7::1 dev eth0');
      }
      // Through the node: pod 1 reaches pod 2, over both families.
      expect(podNs[0]!.tryExec('ping', ['-c', '1', '-W', '5', pods[1]!.ip]).status).toBe(0);
      nodeNs.exec('sysctl', ['-q', '-w', 'net.ipv6.conf.all.forwarding=1']);
      expect(podNs[0]!.tryExec('ping', ['-6', '-c', '1', '-W', '5', pods[1]!.ip6!]).status).toBe(0);
    },
  );

  it(
    'DEL removes the veth and its route and releases the address (its host-local lease is gone, the other pod keeps its own)',
    { timeout: 60_000 },
    async () => {
      const p = pods[1]!;
      const veth = p.hostVeth;
      await cniDel(node, p);
      expect(nodeNs.tryExec('ip', ['link', 'show', veth]).status).not.toBe(0);
      expect(nodeNs.exec('ip', ['route', 'show', `${p.ip}/32`]).trim()).toBe('');
      expect(nodeNs.exec('ip', ['-6', 'route', 'show', `${p.ip6}/128`]).trim()).toBe('');
      // host-local keeps one file per leased address in its dataDir (per network name).
      expect(nodeNs.tryExec('ls', [join(dir, 'cni-ipam', 'veil-lab', p.ip)]).status).not.toBe(0);
      expect(nodeNs.tryExec('ls', [join(dir, 'cni-ipam', 'veil-lab', pods[0]!.ip)]).status).toBe(0);
      expect(nodeNs.tryExec('ls', [join(dir, 'cni-ipam', 'veil-lab', p.ip6!)]).status).not.toBe(0);
      expect(nodeNs.tryExec('ls', [join(dir, 'cni-ipam', 'veil-lab', pods[0]!.ip6!)]).status).toBe(0);
    },
  );
});
