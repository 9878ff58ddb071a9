import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';

/** Every namespace the lab creates starts with this; cleanup only ever touches these. */
export const LAB_NETNS_PREFIX = 'veil-lab-';
/** The underlay namespace (bridge + the control plane). */
export const UNDERLAY_NETNS = `${LAB_NETNS_PREFIX}ul`;
/** Root of everything the lab writes (state, logs, configs, bpffs). */
export const DEFAULT_LAB_DIR = '/run/veil-lab';
/** Underlay /24; node i is .i, the bridge (and the API server) .254. */
const UNDERLAY_PREFIX = '198.18.0.';
export const APISERVER_IP = `${UNDERLAY_PREFIX}254`;
export const APISERVER_PORT = 6443;
export const POD_MTU = 1420;
export const ECHO_PORT = 7777;

export interface LabPod {
  name: string;
  netns: string;
  /** Its address: planned as 10.244.<node>.<10+j>, then what the CNI's host-local IPAM gave. */
  ip: string;
  /**
   * Its IPv6 address (dual-stack labs): planned as fd00:10:244:<node>::<10+j, hex>, then what
   * host-local gave. Absent in state files of IPv4-only labs.
   */
  ip6?: string;
  /** Node-side veth, named by the CNI plugin (`veth…`, the chart's podVethPatterns); empty until made. */
  hostVeth: string;
  echoPid?: number;
}

export interface LabNode {
  name: string;
  netns: string;
  nodeId: number;
  underlayIP: string;
  /** The IPv4 pod CIDR (10.244.<i>.0/24). */
  podCIDR: string;
  /** The IPv6 pod CIDR (fd00:10:244:<i>::/64), absent in state files of IPv4-only labs. */
  podCIDR6?: string;
  pods: LabPod[];
  dir: string;
  configFile: string;
  kubeconfig: string;
  logFile: string;
  statusSocket: string;
  pinDir: string;
  agentPid?: number;
}

export interface LabState {
  version: 1;
  createdAt: string;
  labDir: string;
  backend: string;
  /** What `encryption.type` the agents were given (a resolved path for path backends). */
  backendType: string;
  wireguardPort: number;
  bpffsRoot: string;
  bpffsMounted: boolean;
  /**
   * The control plane helper (`veil lab apiserver`). `kind`: the real kube-apiserver + etcd or the
   * API double (absent in state files of older labs: the double). `controlSocket`: where `veil lab
   * up` gets the agents' kubeconfigs and `veil lab chaos` tampers with Node objects and wipes the
   * API server's state.
   */
  apiserver: { kind?: 'kube-apiserver' | 'double'; pid?: number; url: string; logFile: string; controlSocket?: string };
  nodes: LabNode[];
  /** Other helpers we started (capture…). */
  helperPids: number[];
}

function statePath(labDir: string): string {
  return join(labDir, 'state.json');
}

export function readState(labDir: string): LabState | undefined {
  let text: string;
  try {
    text = readFileSync(statePath(labDir), 'utf8');
  } catch {
    return undefined;
  }
  try {
    const s = JSON.parse(text) as LabState;
    return s && s.version === 1 && Array.isArray(s.nodes) ? s : undefined;
  } catch {
    return undefined;
  }
}

/** Atomic write (tmp + rename) so a crash never leaves half a state file. */
export function writeState(state: LabState): void {
  const p = statePath(state.labDir);
  mkdirSync(dirname(p), { recursive: true });
  writeFileSync(`${p}.tmp`, JSON.stringify(state, null, 2) + '\n');
  renameSync(`${p}.tmp`, p);
}

/**
 * A node's own /run/wireguard (`<node dir>/run-wireguard`): its agent, its wireguard-go and
 * `veil lab exec <node> -- wg show` see it there, each node its own, as on separate machines.
 */
export function nodeWgRunDir(n: Pick<LabNode, 'dir'>): string {
  return join(n.dir, 'run-wireguard');
}

// Runs in the mount namespace `ip netns exec` makes (private: nothing propagates to the host).
const BIND_WG_RUN = 'mkdir -p /run/wireguard "$1" && mount --bind "$1" /run/wireguard && shift && exec "$@"';

/**
 * `argv` wrapped to run with the node's own directory bind-mounted on /run/wireguard; meant to
 * follow `ip netns exec <node netns>`, whose private mount namespace keeps the mount to itself.
 */
export function withNodeWgRunDir(n: Pick<LabNode, 'dir'>, argv: readonly string[]): string[] {
  return ['sh', '-c', BIND_WG_RUN, 'sh', nodeWgRunDir(n), ...argv];
}

/** Every lab IPv4 pod CIDR (10.244.<i>.0/24) is inside this. */
export const LAB_POD_SUPERNET = '10.244.0.0/16';
/** Every lab IPv6 pod CIDR (fd00:10:244:<i>::/64, i ≤ 50 read as hex digits, so ≤ 0x50) is inside this. */
export const LAB_POD_SUPERNET6 = 'fd00:10:244::/56';

/** A node's pod CIDRs, IPv4 first (Node `spec.podCIDRs` order: `spec.podCIDR` is the first). */
export function nodePodCIDRs(n: Pick<LabNode, 'podCIDR' | 'podCIDR6'>): string[] {
  return n.podCIDR6 ? [n.podCIDR, n.podCIDR6] : [n.podCIDR];
}

/** A pod's addresses, IPv4 first. */
export function podIPs(p: Pick<LabPod, 'ip' | 'ip6'>): string[] {
  return p.ip6 ? [p.ip, p.ip6] : [p.ip];
}

/**
 * The lab's topology for `nodes` × `podsPerNode` (names, addresses, paths); nothing is created.
 * Dual-stack (the default): every node also gets an IPv6 pod CIDR and every pod an IPv6 address;
 * the underlay stays IPv4 (the tunnels carry IPv6 inside).
 */
export function planLab(nodes: number, podsPerNode: number, labDir: string, bpffsRoot: string, dualStack = true): LabNode[] {
  const out: LabNode[] = [];
  for (let i = 1; i <= nodes; i++) {
    const name = `n${i}`;
    const dir = join(labDir, name);
    const pods: LabPod[] = [];
    for (let j = 1; j <= podsPerNode; j++) {
      pods.push({
        name: `${name}-p${j}`,
        netns: `${LAB_NETNS_PREFIX}${name}-p${j}`,
        ip: `10.244.${i}.${10 + j}`,
        ...(dualStack ? { ip6: `fd00:10:244:${i}::${(0x10 + j).toString(16)}` } : {}),
        hostVeth: '',
      });
    }
    out.push({
      name,
      netns: `${LAB_NETNS_PREFIX}${name}`,
      nodeId: i,
      underlayIP: `${UNDERLAY_PREFIX}${i}`,
      podCIDR: `10.244.${i}.0/24`,
      ...(dualStack ? { podCIDR6: `fd00:10:244:${i}::/64` } : {}),
      pods,
      dir,
      configFile: join(dir, 'agent.json'),
      kubeconfig: join(dir, 'kubeconfig.json'),
      logFile: join(dir, 'agent.log'),
      statusSocket: join(dir, 'status.sock'),
      pinDir: join(bpffsRoot, name),
    });
  }
  return out;
}
