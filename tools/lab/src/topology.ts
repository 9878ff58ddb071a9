import { mkdirSync, rmSync } from 'node:fs';
import { LabError } from './errors.js';
import { ipBatch, mustRun, pidMatches, run, terminate } from './exec.js';
import { cniAdd, cniDel } from './cni.js';
import { APISERVER_IP, LAB_NETNS_PREFIX, UNDERLAY_NETNS, type LabNode, type LabState } from './state.js';

const BRIDGE = 'br0';

/** Names of existing network namespaces starting with `veil-lab-`. */
export async function labNamespaces(): Promise<string[]> {
  const r = await run('ip', ['-j', 'netns', 'list']);
  if (r.code !== 0 || r.stdout.trim() === '') return [];
  const list = JSON.parse(r.stdout) as { name: string }[];
  return list.map((n) => n.name).filter((n) => n.startsWith(LAB_NETNS_PREFIX));
}

async function sysctl(netns: string, settings: Record<string, string>): Promise<void> {
  await mustRun(`sysctl in ${netns}`, 'ip', [
    'netns',
    'exec',
    netns,
    'sysctl',
    '-q',
    '-w',
    ...Object.entries(settings).map(([k, v]) => `${k}=${v}`),
  ]);
}

/** Underlay netns with a bridge (the "switch"); the API server double listens on the bridge address. */
export async function createUnderlay(): Promise<void> {
  await mustRun('create underlay netns', 'ip', ['netns', 'add', UNDERLAY_NETNS]);
  await ipBatch(
    'configure underlay',
    ['link set lo up', `link add ${BRIDGE} type bridge`, `addr add ${APISERVER_IP}/24 dev ${BRIDGE}`, `link set ${BRIDGE} up`],
    UNDERLAY_NETNS,
  );
}

/** A node's fixed link-local address on the underlay (fe80::<i>), the next hop of routes to its IPv6 pod CIDR. */
export function nodeLinkLocal6(node: Pick<LabNode, 'nodeId'>): string {
  return `fe80::${node.nodeId.toString(16)}`;
}

/**
 * One node: its netns, an `eth0` on the underlay bridge, forwarding on / rp_filter off
 * (decrypted packets arrive on the tunnel device and leave towards pods), a default route via
 * the bridge address, and a route to every other node's pod CIDRs via that node (direct routing:
 * what an unencrypted cluster would do, so a missing steering shows up as cleartext). The underlay
 * has IPv4 node addresses only; the routes to IPv6 pod CIDRs go via each node's fixed link-local
 * address ({@link nodeLinkLocal6}; the kernel takes no IPv4 next hop for an IPv6 route), so
 * unsteered IPv6 pod traffic crosses the underlay in clear too.
 */
export async function createNode(node: LabNode, all: readonly LabNode[]): Promise<void> {
  await mustRun(`create ${node.netns}`, 'ip', ['netns', 'add', node.netns]);
  await mustRun(`underlay veth for ${node.name}`, 'ip', [
    'link',
    'add',
    'name',
    `ul-${node.name}`,
    'netns',
    UNDERLAY_NETNS,
    'type',
    'veth',
    'peer',
    'name',
    'eth0',
    'netns',
    node.netns,
  ]);
  await ipBatch(
    `attach ${node.name} to the bridge`,
    [`link set ul-${node.name} master ${BRIDGE}`, `link set ul-${node.name} up`],
    UNDERLAY_NETNS,
  );
  await sysctl(node.netns, {
    'net.ipv4.ip_forward': '1',
    'net.ipv4.conf.all.rp_filter': '0',
    'net.ipv4.conf.default.rp_filter': '0',
    ...(node.podCIDR6 ? { 'net.ipv6.conf.all.forwarding': '1' } : {}),
  });
  const lines = [
    'link set lo up',
    `addr add ${node.underlayIP}/24 dev eth0`,
    // nodad: usable as a next hop at once (no duplicate address detection wait).
    ...(node.podCIDR6 ? [`addr add ${nodeLinkLocal6(node)}/64 dev eth0 nodad`] : []),
    'link set eth0 up',
    `route add default via ${APISERVER_IP} dev eth0`,
  ];
  for (const other of all) {
    if (other === node) continue;
    lines.push(`route add ${other.podCIDR} via ${other.underlayIP} dev eth0`);
    if (other.podCIDR6) lines.push(`route add ${other.podCIDR6} via ${nodeLinkLocal6(other)} dev eth0`);
  }
  await ipBatch(`configure ${node.name}`, lines, node.netns);
  // Pods as a container runtime makes them: the namespace, then CNI ADD (cni.ts) from the node.
  for (const pod of node.pods) {
    await mustRun(`create ${pod.netns}`, 'ip', ['netns', 'add', pod.netns]);
    await ipBatch(`loopback of ${pod.name}`, ['link set lo up'], pod.netns);
    // The plugin waits out duplicate address detection on the pod's IPv6 address (~1.5 s a pod);
    // the addresses are the IPAM's own, so there is nothing to detect.
    if (node.podCIDR6) await sysctl(pod.netns, { 'net.ipv6.conf.all.accept_dad': '0', 'net.ipv6.conf.default.accept_dad': '0' });
    await cniAdd(node, pod);
  }
}

/** Mounts a bpffs the agents (in their own mount namespaces, see `ip netns exec`) all see. */
export async function mountBpffs(root: string): Promise<void> {
  mkdirSync(root, { recursive: true });
  const r = await run('findmnt', ['-n', '-o', 'FSTYPE', '--mountpoint', root]);
  if (r.code === 0 && r.stdout.trim() === 'bpf') return;
  await mustRun('mount bpffs', 'mount', ['-t', 'bpf', 'bpf', root]);
}

/**
 * Tears a lab down: processes from the state file (each checked against its command line, so a
 * reused PID is never signalled), then whatever still runs inside the lab's own namespaces
 * (wireguard-go daemons the agents left for their successors), then the namespaces, then the
 * bpffs and the lab directory. Also removes `veil-lab-*` namespaces a crashed lab left without
 * a state file. Returns what was removed.
 */
export async function destroyLab(state: LabState | undefined, labDir: string): Promise<{ pids: number[]; namespaces: string[] }> {
  const killed: number[] = [];
  const kill = async (pid: number | undefined, marker: string, graceMs?: number): Promise<void> => {
    if (pid !== undefined && pidMatches(pid, marker)) {
      await terminate(pid, graceMs);
      killed.push(pid);
    }
  };
  if (state) {
    for (const pid of state.helperPids) await kill(pid, 'tcpdump');
    await Promise.all(state.nodes.map((n) => kill(n.agentPid, 'agent')));
    for (const n of state.nodes) for (const p of n.pods) await kill(p.echoPid, '_echo');
    // The control plane helper stops kube-apiserver, then etcd (each up to 10 s) before it exits.
    await kill(state.apiserver.pid, 'apiserver', 25_000);
  }
  const namespaces = await labNamespaces();
  for (const ns of namespaces) {
    const r = await run('ip', ['netns', 'pids', ns]);
    const pids = r.stdout
      .split(/\s+/)
      .filter((s) => /^\d+$/.test(s))
      .map(Number);
    await Promise.all(
      pids.map(async (pid) => {
        await terminate(pid, 2_000);
        killed.push(pid);
      }),
    );
  }
  // CNI DEL for every pod the plugin made, as a runtime does when a pod goes (releases the
  // address); best effort: deleting the namespaces below removes the veths in any case.
  if (state)
    for (const n of state.nodes)
      for (const p of n.pods)
        if (p.hostVeth && namespaces.includes(p.netns) && namespaces.includes(n.netns)) await cniDel(n, p).catch(() => undefined);
  // Pods first: their veths go with them; then nodes, then the underlay.
  const order = [...namespaces].sort((a, b) => b.length - a.length);
  for (const ns of order) {
    const r = await run('ip', ['netns', 'del', ns]);
    if (r.code !== 0 && !/No such file/.test(r.stderr)) throw new LabError('teardown', `ip netns del ${ns}: ${r.stderr.trim()}`);
  }
  const bpffs = state?.bpffsRoot;
  if (bpffs) {
    const r = await run('findmnt', ['-n', '-o', 'FSTYPE', '--mountpoint', bpffs]);
    if (r.code === 0 && r.stdout.trim() === 'bpf') await mustRun('unmount bpffs', 'umount', [bpffs]);
  }
  rmSync(labDir, { recursive: true, force: true });
  return { pids: killed, namespaces: order };
}
