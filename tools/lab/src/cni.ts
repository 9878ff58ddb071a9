/**
 * Lab pods made the way a container runtime makes them: the reference CNI plugins (Debian's
 * `containernetworking-plugins`, `/usr/lib/cni`), `ptp` with `host-local` IPAM, invoked per the
 * CNI spec (CNI_COMMAND=ADD/DEL, CNI_CONTAINERID, CNI_NETNS, CNI_IFNAME, CNI_PATH, CNI_ARGS, the
 * network configuration on stdin, the result as JSON on stdout). The plugin runs in the node's
 * namespace, as the runtime's would on a node.
 *
 * What `ptp` builds: a veth pair, the node side named `veth<8 hex>` (what the chart's
 * `podVethPatterns` default `veth*` matches), holding the gateway addresses (/32, /128), and host
 * routes `<pod-ip>/32|128 dev veth…` (how the datapath learns a pod's veth); the pod side `eth0`
 * with an address from each of the node's pod CIDRs (IPv4, and IPv6 on a dual-stack node) and
 * default routes via the gateways.
 */
import { accessSync, constants } from 'node:fs';
import { join } from 'node:path';
import { LabError, LabUnsupportedError } from './errors.js';
import { run } from './exec.js';
import { POD_MTU, type LabNode, type LabPod } from './state.js';

/** Where Debian's containernetworking-plugins installs the plugins (the CNI_PATH). */
export const CNI_BIN_DIR = process.env.VEIL_CNI_PATH ?? '/usr/lib/cni';
/** The plugins the lab uses. */
const PLUGINS = ['ptp', 'host-local'] as const;
/** The CNI spec version of the configuration and result. */
export const CNI_VERSION = '1.0.0';
/** First address host-local hands out on node i: 10.244.i.11 (the lab's plan). */
const FIRST_POD_HOST = 11;

/** Throws {@link LabUnsupportedError} naming the missing plugin and the package that has it. */
export function requireCniPlugins(): void {
  for (const p of PLUGINS) {
    try {
      accessSync(join(CNI_BIN_DIR, p), constants.X_OK);
    } catch {
      throw new LabUnsupportedError(
        `the CNI plugin ${join(CNI_BIN_DIR, p)} is missing: apt-get install containernetworking-plugins (tools/setup/install.sh does)`,
      );
    }
  }
}

/**
 * The node's network configuration: `ptp` + `host-local` over its pod CIDRs, addresses from .11
 * on (IPv6: ::11 on); one range per family, so a dual-stack node gives each pod both.
 */
export function cniNetworkConfig(node: LabNode): object {
  const [a, b, c] = node.podCIDR.split('/')[0]?.split('.') ?? [];
  const prefix = `${a}.${b}.${c}`;
  const ranges: object[][] = [[{ subnet: node.podCIDR, rangeStart: `${prefix}.${FIRST_POD_HOST}`, gateway: `${prefix}.1` }]];
  const routes: object[] = [{ dst: '0.0.0.0/0' }];
  if (node.podCIDR6) {
    // fd00:10:244:<i>::/64 → gateway ::1, pods from ::11 (the IPv4 plan's digits).
    const net6 = node.podCIDR6.split('/')[0] ?? '';
    ranges.push([{ subnet: node.podCIDR6, rangeStart: `${net6}${FIRST_POD_HOST}`, gateway: `${net6}1` }]);
    routes.push({ dst: '::/0' });
  }
  return {
    cniVersion: CNI_VERSION,
    name: 'veil-lab',
    type: 'ptp',
    mtu: POD_MTU,
    ipMasq: false,
    ipam: {
      type: 'host-local',
      ranges,
      routes,
      // Leases live with the lab (deleted with it), not in the host's /var/lib/cni.
      dataDir: join(node.dir, 'cni-ipam'),
    },
  };
}

/** What a successful ADD returned that the lab uses. */
export interface CniAddResult {
  /** The pod's IPv4 address (without the prefix length). */
  ip: string;
  /** Its IPv6 address, when the network has an IPv6 range. */
  ip6?: string;
  /** The node-side veth. */
  hostVeth: string;
}

/** A CNI result (spec 1.0.0), the parts the lab reads. */
interface CniResult {
  interfaces?: { name: string; sandbox?: string }[];
  ips?: { address: string; interface?: number }[];
}

/** Picks the pod addresses and the node-side veth out of an ADD result; throws naming what is missing. */
export function parseCniResult(stdout: string): CniAddResult {
  let r: CniResult;
  try {
    r = JSON.parse(stdout) as CniResult;
  } catch {
    throw new LabError('cni', `the plugin's result is not JSON: ${stdout.slice(0, 200)}`);
  }
  const host = r.interfaces?.find((i) => !i.sandbox);
  const addrs = (r.ips ?? []).map((x) => x.address.split('/')[0] ?? '');
  const ip = addrs.find((a) => a !== '' && !a.includes(':'));
  const ip6 = addrs.find((a) => a.includes(':'));
  if (!host?.name) throw new LabError('cni', `the result names no node-side interface: ${stdout.slice(0, 300)}`);
  if (!ip) throw new LabError('cni', `the result has no IPv4 pod address: ${stdout.slice(0, 300)}`);
  return { ip, ...(ip6 ? { ip6 } : {}), hostVeth: host.name };
}

/** Invokes the ptp plugin in the node's namespace, as a runtime does; returns its stdout. */
async function invoke(command: 'ADD' | 'DEL', node: LabNode, pod: LabPod): Promise<string> {
  const env = [
    `CNI_COMMAND=${command}`,
    `CNI_CONTAINERID=${pod.netns}`,
    `CNI_NETNS=/run/netns/${pod.netns}`,
    'CNI_IFNAME=eth0',
    `CNI_PATH=${CNI_BIN_DIR}`,
    // What kubelet's runtime passes; IgnoreUnknown lets plugins that do not read them go on.
    `CNI_ARGS=IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=${pod.name};K8S_POD_INFRA_CONTAINER_ID=${pod.netns}`,
  ];
  const r = await run('ip', ['netns', 'exec', node.netns, 'env', '-i', ...env, join(CNI_BIN_DIR, 'ptp')], {
    input: JSON.stringify(cniNetworkConfig(node)),
    timeoutMs: 60_000,
  });
  if (r.code !== 0) {
    // Per the spec a failing plugin prints {code, msg, details} on stdout.
    let why = r.stderr.trim() || r.stdout.trim();
    try {
      const e = JSON.parse(r.stdout) as { code?: number; msg?: string; details?: string };
      if (e.msg) why = `${e.msg}${e.details ? `: ${e.details}` : ''} (CNI error ${e.code})`;
    } catch {
      /* not JSON */
    }
    throw new LabError(`cni ${command} ${pod.name}`, `${join(CNI_BIN_DIR, 'ptp')} exited ${r.code}: ${why}`);
  }
  return r.stdout;
}

/**
 * CNI ADD for a pod whose namespace exists: its veth, addresses and routes; sets `pod.ip`,
 * `pod.ip6` (a dual-stack node) and `pod.hostVeth`.
 */
export async function cniAdd(node: LabNode, pod: LabPod): Promise<CniAddResult> {
  const res = parseCniResult(await invoke('ADD', node, pod));
  if (node.podCIDR6 && !res.ip6)
    throw new LabError(`cni ADD ${pod.name}`, `no IPv6 address from ${node.podCIDR6} in the plugin's result`);
  pod.ip = res.ip;
  if (res.ip6) pod.ip6 = res.ip6;
  pod.hostVeth = res.hostVeth;
  return res;
}

/** CNI DEL (releases the address, removes the veth); errors are the caller's to ignore at teardown. */
export async function cniDel(node: LabNode, pod: LabPod): Promise<void> {
  await invoke('DEL', node, pod);
}
