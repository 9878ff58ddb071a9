/**
 * `veil lab up`: a whole cluster on one host. One netns per node joined by an underlay bridge,
 * pods in their own namespaces made by the CNI plugins (cni.ts), the real kube-apiserver + etcd
 * as the control plane (or the API double when they are not built: control-plane.ts), and one
 * real `veil agent` process per node. Then it proves itself: ping and TCP between every
 * pair of pods on different nodes while tcpdump watches the underlay for cleartext pod bytes.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { UsageError, VEIL_MAIN } from '@veil/cli';
import { LabError, LabUnsupportedError } from './errors.js';
import { mapLimit, pidAlive, run, sleep, spawnDetached, waitForLine } from './exec.js';
import { newMarker, startCapture, stopCapture } from './capture.js';
import type { CaptureAnalysis, CaptureHealth } from './pcap.js';
import {
  APISERVER_IP,
  APISERVER_PORT,
  DEFAULT_LAB_DIR,
  ECHO_PORT,
  LAB_POD_SUPERNET,
  LAB_POD_SUPERNET6,
  UNDERLAY_NETNS,
  nodePodCIDRs,
  planLab,
  podIPs as podAddresses,
  withNodeWgRunDir,
  readState,
  writeState,
  type LabNode,
  type LabState,
} from './state.js';
import { createNode, createUnderlay, destroyLab, labNamespaces, mountBpffs } from './topology.js';
import { apiControl, type AgentDenial } from './apiserver.js';
import { requireCniPlugins } from './cni.js';
import { hostPort, probeFromNetns, splitHostPort } from './helpers.js';
import { chartPodVethPatterns, chooseControlPlane, writeChartObjects, type ControlPlaneChoice } from './control-plane.js';
import { errorMessage } from '@veil/agent-core/errors';
import { checkWithholdKey, formatWithheld, peerStatesOf, runWithheldProbes, type WithheldReport } from './withheld.js';

/** The CLI's dist/main.js: every process the lab starts is the `veil` CLI (which loads this package for `lab`). */
export const MAIN_JS = VEIL_MAIN;

export interface LabUpOptions {
  nodes: number;
  podsPerNode: number;
  /** `wireguard`, `ipsec`, `plaintext` (agent-core's example), or any backend module specifier/path. */
  backend: string;
  kernel: 'host' | 'vm';
  keep: boolean;
  /** Agents in strict mode for the lab's pod supernets (IPv4 and IPv6): pod traffic is never sent in clear. */
  strict?: boolean;
  /**
   * Dual-stack pods (an IPv6 pod CIDR per node, an IPv6 address per pod, probes over both). Default:
   * on, except with the IPsec backend, whose tunnels carry only their own family (IPv6 pods need
   * IPv6 node addresses, and the lab's underlay is IPv4: backend-ipsec's README, Limits).
   */
  dualStack?: boolean;
  /** `encryption.nodeEncryption` on every agent: node-to-node traffic goes through the tunnel too (WireGuard). */
  nodeEncryption?: boolean;
  labDir?: string;
  wireguardPort?: number;
  /** How long agents get to become ready with all peers active. */
  readyTimeoutMs?: number;
  /** `--backend ipsec`: the key index of the lab's first key (default 1). */
  ipsecKeyIndex?: number;
  /** Progress lines (default: stderr). */
  progress?: (line: string) => void;
  /** The real etcd + kube-apiserver, the API double, or (default) the real one when it is built. */
  controlPlane?: ControlPlaneChoice;
  /** With `strict`: this node's agent publishes no key (withheld.ts); the other nodes' pods must not reach it. */
  withholdKey?: string;
}

export interface PairResult {
  from: string;
  to: string;
  toIP: string;
  ping: { ok: boolean; sent: number; received: number; error?: string };
  tcp: { ok: boolean; bytes: number; error?: string };
  /** The same probes to the destination's IPv6 address (dual-stack labs). */
  ipv6?: { toIP: string; ping: PairResult['ping']; tcp: PairResult['tcp'] };
}

/** One family's pod pair counts. */
export interface PairCounts {
  total: number;
  pingOk: number;
  tcpOk: number;
  ok: number;
}

export interface LabSummary {
  ok: boolean;
  backend: string;
  driver: string;
  nodes: number;
  pods: number;
  /** Pod pairs across nodes over IPv4. */
  pairs: PairCounts;
  /** The same pairs over IPv6 (dual-stack labs: every pod has an IPv6 address too). */
  pairsIPv6?: PairCounts;
  /** With node encryption: node-to-node pings (each node to the next, marker payload). */
  nodePairs?: { total: number; ok: number };
  capture: CaptureAnalysis & { wireguardPort: number; health: CaptureHealth };
  /** This run's probe marker (hex), searched for in the capture. */
  marker: string;
  /** Cleartext on the underlay is expected (only) for the plaintext example backend. */
  expectsEncryption: boolean;
  failures: string[];
  kept: boolean;
  durationMs: number;
  /**
   * What served the Kubernetes API; the agents' calls it refused (must be none), and how many it
   * refused while (re)starting, before its RBAC caches synced (not failures).
   */
  controlPlane: { kind: 'kube-apiserver' | 'double'; note: string; agentDenials: AgentDenial[]; refusedWhileStarting: number };
  /** `--withhold-key`: the node without a key, the probes to it, the strict drops they were counted as. */
  withheld?: WithheldReport;
}

/** Whether a lab's pods are dual-stack: as asked, else all but IPsec labs (see {@link LabUpOptions.dualStack}). */
export function labDualStack(backendType: string, asked?: boolean): boolean {
  return asked ?? backendType !== 'ipsec';
}

/** The example backend shipped with agent-core, for exercising the lab without encryption. */
function plaintextBackendPath(): string {
  const coreEntry = fileURLToPath(import.meta.resolve('@veil/agent-core'));
  return join(dirname(coreEntry), '..', 'examples', 'plaintext-backend');
}

/** Maps `--backend` to the `encryption.type` the agents get, and checks it loads here. */
export async function resolveBackend(backend: string, requested: 'host' | 'vm'): Promise<string> {
  // Inside the qemu lane (veil lab up --kernel vm re-runs itself there) the kernel is the VM's.
  const kernel = process.env.VEIL_KERNEL_LANE === '1' ? 'vm' : requested;
  if (backend === 'ipsec' && kernel === 'host') {
    throw new LabUnsupportedError('the IPsec backend needs ESP, which this host kernel lacks: run it with --kernel vm');
  }
  let type = backend;
  if (backend === 'plaintext') type = plaintextBackendPath();
  else if (backend.startsWith('.') || isAbsolute(backend)) type = resolve(backend);
  if (backend === 'wireguard' && kernel === 'host') {
    const r = await run('sh', ['-c', 'command -v wireguard-go']);
    if (r.code !== 0)
      throw new LabUnsupportedError(
        'this host kernel has no WireGuard and wireguard-go is not installed (apt-get install wireguard-go), or use --kernel vm',
      );
  }
  const { loadBackendModule } = await import('@veil/agent-core');
  try {
    await loadBackendModule(type);
  } catch (err) {
    const msg = errorMessage(err);
    throw new LabUnsupportedError(`backend "${backend}" cannot be loaded: ${msg}`);
  }
  return type;
}

function nodeObject(n: LabNode): object {
  return {
    apiVersion: 'v1',
    kind: 'Node',
    metadata: { name: n.name, labels: { 'veil.io/lab': 'true' }, annotations: {} },
    spec: { podCIDR: n.podCIDR, podCIDRs: nodePodCIDRs(n) },
    status: {
      addresses: [
        { type: 'InternalIP', address: n.underlayIP },
        { type: 'Hostname', address: n.name },
      ],
    },
  };
}

/** The lab agents' `encryption.ipsec.keyRotationDuration`: short, so a rotation completes within a chaos run. */
export const LAB_IPSEC_ROTATION_DURATION = '20s';

/**
 * The IPsec backend's key files (Cilium's format, one fresh key from the backend's own `keygen`):
 * what the chart mounts from the `veil-ipsec-keys` Secret. One copy per node (`<node dir>/ipsec-keys`),
 * as every kubelet keeps its own copy of a Secret: `veil lab chaos` rolls a new key out node by node.
 */
async function writeIpsecKeyFiles(nodes: readonly LabNode[], keyIndex: number): Promise<Map<string, string>> {
  const { keygen } = await import('@veil/backend-ipsec');
  const line = keygen({ spi: keyIndex }) + '\n';
  const files = new Map<string, string>();
  for (const n of nodes) {
    const file = join(n.dir, 'ipsec-keys');
    writeFileSync(file, line, { mode: 0o600 });
    files.set(n.name, file);
  }
  return files;
}

/** Node `n`'s agent configuration file (strict mode: every lab pod supernet, IPv4 and IPv6). */
export function agentConfig(
  n: LabNode,
  backendType: string,
  wgPort: number,
  strict: boolean,
  podVethPatterns: readonly string[],
  ipsecKeyFile?: string,
  nodeEncryption = false,
): object {
  return {
    encryption: {
      enabled: true,
      type: backendType,
      ...(nodeEncryption ? { nodeEncryption: true } : {}),
      wireguard: { port: wgPort, userspaceFallback: true },
      // Tunnel endpoints: each node's default route (via eth0) gives its underlay address.
      ...(ipsecKeyFile ? { ipsec: { keyFile: ipsecKeyFile, keyRotationDuration: LAB_IPSEC_ROTATION_DURATION } } : {}),
      ...(strict
        ? {
            strictMode: {
              enabled: true,
              cidrs: n.podCIDR6 ? [LAB_POD_SUPERNET, LAB_POD_SUPERNET6] : [LAB_POD_SUPERNET],
              allowRemoteNodeIdentities: false,
            },
          }
        : {}),
    },
    nodeName: n.name,
    nodeId: n.nodeId,
    stateDir: join(n.dir, 'state'),
    status: { socketPath: n.statusSocket },
    metrics: { enabled: true, port: 9962, host: '127.0.0.1' },
    health: { port: 9879, host: '127.0.0.1' },
    // The chart's default: the CNI plugin names node-side veths `veth…`.
    podVethPatterns,
    logLevel: 'info',
  };
}

/**
 * Starts (or restarts) a node's agent, detached, in the node's namespace with the node's own
 * /run/wireguard; sets `n.agentPid`.
 */
export function startAgent(n: LabNode, bpffsRoot: string): void {
  const env = { ...process.env, NODE_OPTIONS: `${process.env.NODE_OPTIONS ?? ''} --max-semi-space-size=2`.trim() };
  const child = spawnDetached(
    'ip',
    [
      'netns',
      'exec',
      n.netns,
      // The node's own /run/wireguard: wireguard-go's socket lands there, where `wg` looks.
      ...withNodeWgRunDir(n, [
        process.execPath,
        MAIN_JS,
        'agent',
        '--config',
        n.configFile,
        '--kubeconfig',
        n.kubeconfig,
        '--underlay-device',
        'eth0',
        '--bpf-pin-dir',
        n.pinDir,
        '--bpffs-root',
        bpffsRoot,
        '--pod-cidrs',
        nodePodCIDRs(n).join(','),
      ]),
    ],
    n.logFile,
    env,
  );
  if (child.pid !== undefined) n.agentPid = child.pid;
}

export interface AgentView {
  ready: boolean;
  driver: string;
  /** The backend's key index (IPsec: the current one). */
  keyIndex?: number;
  /** The backend's own status details (IPsec: currentIndex, rotation, driftRepairs, …). */
  backendDetails?: Record<string, unknown>;
  peers: { name: string; state: string }[];
  notReadyReason?: string;
  errors: string[];
  /** Backend peers no node claims (agent-core's `AgentStatus.orphanPeers`). */
  orphanPeers: string[];
}

export async function agentStatus(socket: string): Promise<AgentView | undefined> {
  const { getJsonOverUnixSocket } = await import('@veil/agent-core');
  try {
    return (await Promise.race([getJsonOverUnixSocket(socket), sleep(3_000).then(() => undefined)])) as AgentView | undefined;
  } catch {
    return undefined;
  }
}

/** Removes a previous lab (state file, `veil-lab-*` namespaces); returns true if there was one. */
async function cleanupStaleLab(labDir: string): Promise<boolean> {
  const state = readState(labDir);
  const namespaces = await labNamespaces();
  if (!state && namespaces.length === 0 && !existsSync(labDir)) return false;
  await destroyLab(state ?? undefined, labDir);
  return state !== undefined || namespaces.length > 0;
}

/** Runs the whole lab; returns the summary (teardown included unless `keep`). */
export async function labUp(opts: LabUpOptions): Promise<LabSummary> {
  const started = Date.now();
  const log = opts.progress ?? ((l: string) => process.stderr.write(l + '\n'));
  const t = (): string => `[${((Date.now() - started) / 1000).toFixed(1).padStart(5)}s]`;
  if (!Number.isInteger(opts.nodes) || opts.nodes < 2 || opts.nodes > 50)
    throw new UsageError('--nodes', 'needs an integer in [2, 50]');
  if (!Number.isInteger(opts.podsPerNode) || opts.podsPerNode < 1 || opts.podsPerNode > 50)
    throw new UsageError('--pods-per-node', 'needs an integer in [1, 50]');
  checkWithholdKey(opts);
  const labDir = opts.labDir ?? DEFAULT_LAB_DIR;
  const wgPort = opts.wireguardPort ?? 51871;
  const backendType = await resolveBackend(opts.backend, opts.kernel);
  requireCniPlugins();
  const cp = await chooseControlPlane(opts.controlPlane ?? 'auto');
  log(`${t()} ${cp.note}`);

  if (await cleanupStaleLab(labDir)) log(`${t()} removed a previous lab`);
  const bpffsRoot = join(labDir, 'bpf');
  const nodes = planLab(opts.nodes, opts.podsPerNode, labDir, bpffsRoot, labDualStack(backendType, opts.dualStack));
  mkdirSync(labDir, { recursive: true });
  const state: LabState = {
    version: 1,
    createdAt: new Date().toISOString(),
    labDir,
    backend: opts.backend,
    backendType,
    wireguardPort: wgPort,
    bpffsRoot,
    bpffsMounted: false,
    apiserver: {
      kind: cp.kind,
      url: `${cp.kind === 'double' ? 'http' : 'https'}://${APISERVER_IP}:${APISERVER_PORT}`,
      logFile: join(labDir, 'apiserver.log'),
      controlSocket: join(labDir, 'apiserver.sock'),
    },
    nodes,
    helperPids: [],
  };
  writeState(state); // from here on, a crash leaves enough for the next `up`/`down` to clean
  let summary: LabSummary | undefined;
  try {
    await mountBpffs(bpffsRoot);
    state.bpffsMounted = true;
    await createUnderlay();
    for (const n of nodes) {
      mkdirSync(join(n.dir, 'state'), { recursive: true });
      await createNode(n, nodes);
    }
    log(`${t()} topology: ${nodes.length} nodes, ${nodes.length * opts.podsPerNode} pods, underlay ${UNDERLAY_NETNS}`);

    const nodesFile = join(labDir, 'nodes.json');
    writeFileSync(nodesFile, JSON.stringify(nodes.map(nodeObject), null, 2));
    const real = cp.kind === 'kube-apiserver';
    const realArgs: string[] = [];
    if (real) {
      const chartObjects = join(labDir, 'chart-objects.json');
      const n = await writeChartObjects(chartObjects);
      log(`${t()} helm rendered the chart: ${n} objects to apply (ServiceAccount, RBAC, node restriction)`);
      realArgs.push('--dir', join(labDir, 'control-plane'), '--chart-objects', chartObjects);
    }
    const api = spawnDetached(
      'ip',
      [
        'netns',
        'exec',
        UNDERLAY_NETNS,
        process.execPath,
        MAIN_JS,
        'lab',
        'apiserver',
        '--kind',
        cp.kind,
        '--host',
        APISERVER_IP,
        '--port',
        String(APISERVER_PORT),
        '--nodes',
        nodesFile,
        '--control',
        state.apiserver.controlSocket ?? '',
        ...realArgs,
      ],
      state.apiserver.logFile,
    );
    if (api.pid !== undefined) state.apiserver.pid = api.pid;
    writeState(state);
    // A loaded 2-core machine: kube-apiserver may take a minute or two to become ready.
    await waitForLine(state.apiserver.logFile, /apiserver listening/, real ? 300_000 : 15_000 * SLOW, api.pid, 'apiserver');
    log(`${t()} ${real ? 'kube-apiserver' : 'API server double'} on ${state.apiserver.url}`);
    // The helper's proof that the chart's node restriction is live (a dry run of n1's token on n2, refused).
    for (const l of readFileSync(state.apiserver.logFile, 'utf8').split('\n'))
      if (l.startsWith('node restriction in force')) log(`${t()} ${l}`);

    const ipsecKeyFiles = backendType === 'ipsec' ? await writeIpsecKeyFiles(nodes, opts.ipsecKeyIndex ?? 1) : undefined;
    const podVethPatterns = await chartPodVethPatterns();
    for (const n of nodes) {
      const config = agentConfig(
        n,
        backendType,
        wgPort,
        opts.strict ?? false,
        podVethPatterns,
        ipsecKeyFiles?.get(n.name),
        opts.nodeEncryption ?? false,
      );
      // The withheld node: the same config with encryption disabled (the agent runs, publishes no key, steers nothing).
      if (n.name === opts.withholdKey) (config as { encryption: { enabled: boolean } }).encryption.enabled = false;
      writeFileSync(n.configFile, JSON.stringify(config, null, 2));
      // The real server: the agent's own TokenRequest token, bound to a Pod on its node.
      const kc = await apiControl(state.apiserver.controlSocket ?? '', { op: 'kubeconfig', node: n.name }, 60_000);
      if (!kc.ok || !kc.kubeconfig) throw new LabError(`kubeconfig for ${n.name}`, kc.ok ? 'empty reply' : kc.error);
      writeFileSync(n.kubeconfig, kc.kubeconfig, { mode: 0o600 });
      startAgent(n, bpffsRoot);
      for (const p of n.pods) {
        const echo = spawnDetached(
          'ip',
          ['netns', 'exec', p.netns, process.execPath, MAIN_JS, 'lab', '_echo', '--port', String(ECHO_PORT)],
          join(n.dir, `${p.name}-echo.log`),
        );
        if (echo.pid !== undefined) p.echoPid = echo.pid;
      }
    }
    writeState(state);
    log(`${t()} started ${nodes.length} agents (backend ${opts.backend})`);

    const driver = await waitReady(nodes, opts.readyTimeoutMs ?? 120_000, (line) => log(`${t()} ${line}`), opts.withholdKey);
    // The pairs that must connect: between nodes holding keys (all of them without --withhold-key).
    const keyed = nodes.filter((n) => n.name !== opts.withholdKey);
    for (const n of nodes)
      for (const p of n.pods)
        await waitForLine(
          join(n.dir, `${p.name}-echo.log`),
          /echo listening/,
          10_000 * SLOW,
          p.echoPid,
          `echo server in ${p.name}`,
        );

    // The capture starts before any pod traffic; every probe payload carries this run's marker.
    const marker = newMarker();
    const cap = await startCapture(state, join(labDir, 'underlay.pcap'), join(labDir, 'tcpdump.log'));
    const pairs = await runTraffic(keyed, marker, (line) => log(`${t()} ${line}`));
    const nodePairs = opts.nodeEncryption ? await runNodeTraffic(keyed, marker, (line) => log(`${t()} ${line}`)) : [];
    const withheld = opts.withholdKey
      ? await runWithheldProbes({
          nodes,
          withheld: opts.withholdKey,
          marker,
          peerStates: peerStatesOf(await Promise.all(nodes.map((n) => agentStatus(n.statusSocket))), nodes, opts.withholdKey),
          ping: probePing,
          log: (line) => log(`${t()} ${line}`),
        })
      : undefined;
    const podIPs = nodes.flatMap((n) => n.pods.flatMap(podAddresses));
    const { analysis, health } = await stopCapture(state, cap, {
      wgPort: opts.backend === 'wireguard' || backendType === 'wireguard' ? wgPort : 0,
      podIPs,
      nodeIPs: nodes.map((n) => n.underlayIP),
      marker,
    });

    const expectsEncryption = opts.backend !== 'plaintext';
    const failures: string[] = [];
    for (const p of pairs) {
      if (!p.ping.ok)
        failures.push(
          `ping ${p.from} → ${p.to} (${p.toIP}): ${p.ping.received}/${p.ping.sent}${p.ping.error ? ` ${p.ping.error}` : ''}`,
        );
      if (!p.tcp.ok) failures.push(`tcp ${p.from} → ${p.to} (${p.toIP}): ${p.tcp.error ?? 'failed'}`);
      const v6 = p.ipv6;
      if (v6 && !v6.ping.ok)
        failures.push(
          `ping ${p.from} → ${p.to} (${v6.toIP}): ${v6.ping.received}/${v6.ping.sent}${v6.ping.error ? ` ${v6.ping.error}` : ''}`,
        );
      if (v6 && !v6.tcp.ok) failures.push(`tcp ${p.from} → ${p.to} (${v6.toIP}): ${v6.tcp.error ?? 'failed'}`);
    }
    for (const p of nodePairs)
      if (!p.ok)
        failures.push(`node ping ${p.from} → ${p.to} (${p.toIP}): ${p.received}/${p.sent}${p.error ? ` ${p.error}` : ''}`);
    failures.push(...captureFailures(analysis, health, expectsEncryption));
    if (withheld) {
      withheld.capture = { plaintextPackets: analysis.plaintextPackets, markerPackets: analysis.markerPackets };
      failures.push(...withheld.failures.map((f) => `withheld key: ${f}`));
    }
    const refused = await apiDenials(state);
    const agentDenials = refused.filter((d) => !d.duringStartup);
    failures.push(
      ...agentDenials.map((d) => `the API server refused an agent call (outside the chart's RBAC/policy): ${describeDenial(d)}`),
    );
    summary = {
      ok: failures.length === 0,
      backend: opts.backend,
      driver,
      nodes: nodes.length,
      pods: nodes.reduce((k, n) => k + n.pods.length, 0),
      pairs: pairCounts(pairs),
      ...(pairs.some((p) => p.ipv6) ? { pairsIPv6: pairCounts(pairs.flatMap((p) => (p.ipv6 ? [p.ipv6] : []))) } : {}),
      ...(opts.nodeEncryption ? { nodePairs: { total: nodePairs.length, ok: nodePairs.filter((p) => p.ok).length } } : {}),
      capture: { ...analysis, wireguardPort: wgPort, health },
      marker: marker.toString('hex'),
      expectsEncryption,
      failures,
      kept: opts.keep,
      durationMs: 0,
      controlPlane: { kind: cp.kind, note: cp.note, agentDenials, refusedWhileStarting: refused.length - agentDenials.length },
      ...(withheld ? { withheld } : {}),
    };
    return summary;
  } finally {
    if (!opts.keep) {
      await destroyLab(readState(labDir) ?? state, labDir);
      log(`${t()} lab torn down`);
    } else {
      const hint = nodes[1]?.pods[0]?.ip6 ? ` | veil lab exec n1-p1 -- ping -6 ${nodes[1].pods[0].ip6}` : '';
      log(`${t()} lab kept: veil lab status | veil lab exec n1-p1 -- ping 10.244.2.11${hint} | veil lab down`);
    }
    if (summary) summary.durationMs = Date.now() - started;
  }
}

/** The agents' calls the control plane refused so far (audit log of the real server; none for the double). */
export async function apiDenials(state: LabState): Promise<AgentDenial[]> {
  const r = await apiControl(state.apiserver.controlSocket ?? '', { op: 'denials' }, 30_000);
  if (!r.ok) throw new LabError('apiserver', `cannot read the agents' refused calls: ${r.error}`);
  return r.denials ?? [];
}

export function describeDenial(d: AgentDenial): string {
  return `${d.verb} ${d.uri} → ${d.code}${d.message ? ` (${d.message})` : ''}${d.duringStartup ? ' while the apiserver was starting' : ''}`;
}

/**
 * What a capture must show: a healthy tcpdump in every case; for an encrypting backend encrypted
 * packets, no pod address in clear, no probe marker, and nothing on the tunnel port that is not
 * WireGuard between nodes; for a backend that does not encrypt, the marker itself (the proof the
 * search can see a leak).
 */
export function captureFailures(a: CaptureAnalysis, health: CaptureHealth, expectsEncryption: boolean): string[] {
  const f = health.problems.map((p) => `capture unhealthy: ${p}`);
  if (expectsEncryption) {
    if (a.plaintextPackets > 0) f.push(`${a.plaintextPackets} cleartext pod packets (${a.plaintextBytes} bytes) on the underlay`);
    if (a.markerPackets > 0) f.push(`the probe marker is in ${a.markerPackets} underlay packets (probe payload in clear)`);
    if (a.malformedTunnelPackets > 0)
      f.push(`${a.malformedTunnelPackets} packets on the tunnel port are not WireGuard messages between node addresses`);
    if (a.encryptedPackets === 0) f.push('no encrypted packets seen on the underlay');
  } else if (a.markerPackets === 0) {
    f.push('the probe marker is nowhere in the capture of a backend that does not encrypt: the marker search cannot see leaks');
  }
  return f;
}

/**
 * Waits until every agent is ready with all peers active. With a `withheld` node: its (disabled)
 * agent only has to be ready, and the others must see it `pending`; they count as ready when the
 * one thing keeping them from it is that peer stuck pending (agent-core's notReadyReason).
 */
export async function waitReady(
  nodes: readonly LabNode[],
  timeoutMs: number,
  log: (l: string) => void,
  withheld?: string,
): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  let last = '';
  for (;;) {
    const views = await Promise.all(nodes.map((n) => agentStatus(n.statusSocket)));
    const readyNodes = views.filter((v, i) => {
      if (withheld !== undefined && nodes[i]?.name === withheld) return v?.ready === true;
      if (!v || !(v.ready || onlyPendingOn(v.notReadyReason, withheld))) return false;
      const others = nodes.filter((_, j) => j !== i).map((n) => n.name);
      return others.every((o) => v.peers.some((p) => p.name === o && p.state === (o === withheld ? 'pending' : 'active')));
    }).length;
    const line =
      `agents ready with all peers active: ${readyNodes}/${nodes.length}` +
      (withheld ? ` (${withheld} withholds its key: pending on the others)` : '');
    if (line !== last) log(line);
    last = line;
    if (readyNodes === nodes.length) return views.find((_, i) => nodes[i]?.name !== withheld)?.driver ?? 'unknown';
    for (const n of nodes) {
      if (n.agentPid !== undefined && !pidAlive(n.agentPid)) {
        const tail = readFileSync(n.logFile, 'utf8').trim().split('\n').slice(-3).join(' | ');
        throw new LabError(`agent ${n.name}`, `exited: ${tail}`);
      }
    }
    if (Date.now() > deadline) {
      const why = views.map(
        (v, i) =>
          `${nodes[i]?.name}: ${v ? (v.notReadyReason ?? `peers ${v.peers.map((p) => `${p.name}=${p.state}`).join(',')}`) + (v.errors.length ? ` errors: ${v.errors.join('; ')}` : '') : 'no status'}`,
      );
      throw new LabError('agents', `not ready after ${timeoutMs} ms: ${why.join(' / ')}`);
    }
    await sleep(500);
  }
}

/** True when `reason` is only agent-core's "peers pending with no encryption …: <withheld>". */
export function onlyPendingOn(reason: string | undefined, withheld: string | undefined): boolean {
  if (reason === undefined || withheld === undefined) return false;
  return /^peers pending with no encryption for over \d+s: (\S+)$/.exec(reason)?.[1] === withheld;
}

/**
 * Under the qemu lane (software emulation) node starts and handshakes are 5–20× slower: scale the
 * traffic checks' timeouts and run them one at a time there.
 */
const SLOW = process.env.VEIL_KERNEL_LANE === '1' ? 4 : 1;

/** Pings per pod pair; a pair passes only if every one is answered. */
const PINGS_PER_PAIR = 3;

/**
 * PINGS_PER_PAIR pings from `netns` to `ip`, payload `marker`. Every probe must succeed: one lost
 * ping fails it.
 */
async function probePing(
  netns: string,
  ip: string,
  marker: Buffer,
): Promise<{ ok: boolean; sent: number; received: number; error?: string }> {
  const r = await run(
    'ip',
    [
      'netns',
      'exec',
      netns,
      'ping',
      '-n',
      '-q',
      '-c',
      String(PINGS_PER_PAIR),
      '-i',
      '0.2',
      '-W',
      String(2 * SLOW),
      '-p',
      marker.toString('hex'),
      ip,
    ],
    { timeoutMs: 20_000 * SLOW },
  );
  const m = /(\d+) packets transmitted, (\d+) received/.exec(r.stdout);
  const sent = m ? Number(m[1]) : 0;
  const received = m ? Number(m[2]) : 0;
  const ok = r.code === 0 && sent === PINGS_PER_PAIR && received === sent;
  return {
    ok,
    sent,
    received,
    ...(ok ? {} : { error: m ? `${sent - received} lost` : r.stderr.trim() || `ping exited ${r.code}` }),
  };
}

/**
 * Node encryption: each node pings the next one's underlay address from its own namespace (host
 * traffic, which only to-wire can steer), with this run's marker, so the capture proves it crossed
 * encrypted. Every ping must be answered.
 */
async function runNodeTraffic(
  nodes: readonly LabNode[],
  marker: Buffer,
  log: (l: string) => void,
): Promise<{ from: string; to: string; toIP: string; ok: boolean; sent: number; received: number; error?: string }[]> {
  const out = await mapLimit([...nodes.entries()], 1, async ([i, n]) => {
    const to = nodes[(i + 1) % nodes.length] as LabNode;
    return { from: n.name, to: to.name, toIP: to.underlayIP, ...(await probePing(n.netns, to.underlayIP, marker)) };
  });
  log(`node encryption: ${out.filter((p) => p.ok).length}/${out.length} node-to-node pings OK`);
  return out;
}

/** Counts of pairs whose ping, TCP echo, and both passed. */
export function pairCounts(pairs: readonly Pick<PairResult, 'ping' | 'tcp'>[]): PairCounts {
  return {
    total: pairs.length,
    pingOk: pairs.filter((p) => p.ping.ok).length,
    tcpOk: pairs.filter((p) => p.tcp.ok).length,
    ok: pairs.filter((p) => p.ping.ok && p.tcp.ok).length,
  };
}

/**
 * Ping and TCP echo between every ordered pair of pods on different nodes, payloads carrying
 * `marker`; over IPv6 too for destinations with an IPv6 address (dual-stack).
 */
async function runTraffic(nodes: readonly LabNode[], marker: Buffer, log: (l: string) => void): Promise<PairResult[]> {
  const pods = nodes.flatMap((n) => n.pods.map((p) => ({ ...p, node: n.name })));
  const pairs = pods.flatMap((a) => pods.filter((b) => b.node !== a.node).map((b) => ({ a, b })));
  // One probe per pair and destination address: IPv4, then IPv6 when the pod has one.
  const probes = pairs.flatMap(({ a, b }) => podAddresses(b).map((ip) => ({ a, ip })));
  const dual = probes.length > pairs.length;
  log(`traffic: ${pairs.length} pod pairs across nodes${dual ? ', IPv4 and IPv6' : ''} (ping + ${32} KiB TCP echo)`);
  const pingList = await mapLimit(probes, SLOW > 1 ? 1 : 4, ({ a, ip }) => probePing(a.netns, ip, marker));
  const pings = new Map(probes.map(({ a, ip }, i) => [`${a.name}>${ip}`, pingList[i] as PairResult['ping']]));
  log(`ping: ${pingList.filter((p) => p.ok).length}/${probes.length} probes OK`);
  const bySrc = new Map<string, { netns: string; targets: string[] }>();
  for (const { a, ip } of probes) {
    const e = bySrc.get(a.name) ?? { netns: a.netns, targets: [] };
    e.targets.push(hostPort(ip, ECHO_PORT));
    bySrc.set(a.name, e);
  }
  const tcp = new Map<string, { ok: boolean; bytes: number; error?: string }>();
  await mapLimit([...bySrc.entries()], SLOW > 1 ? 1 : 3, async ([src, { netns, targets }]) => {
    const results = await probeFromNetns(netns, targets, {
      size: 32 * 1024,
      marker,
      timeoutMs: 8000 * SLOW,
      runTimeoutMs: 30_000 * SLOW,
    });
    for (const x of results)
      tcp.set(`${src}>${splitHostPort(x.target).host}`, { ok: x.ok, bytes: x.bytes, ...(x.error ? { error: x.error } : {}) });
  });
  const noPing = { ok: false, sent: 0, received: 0, error: 'no ping result' };
  const noTcp = { ok: false, bytes: 0, error: 'no probe result' };
  const out: PairResult[] = pairs.map(({ a, b }) => ({
    from: a.name,
    to: b.name,
    toIP: b.ip,
    ping: pings.get(`${a.name}>${b.ip}`) ?? noPing,
    tcp: tcp.get(`${a.name}>${b.ip}`) ?? noTcp,
    ...(b.ip6
      ? {
          ipv6: {
            toIP: b.ip6,
            ping: pings.get(`${a.name}>${b.ip6}`) ?? noPing,
            tcp: tcp.get(`${a.name}>${b.ip6}`) ?? noTcp,
          },
        }
      : {}),
  }));
  log(`tcp: ${[...tcp.values()].filter((p) => p.ok).length}/${probes.length} probes OK`);
  return out;
}

/** `24/24 OK over IPv4 (ping 24/24, tcp echo 24/24)`. */
function familyLine(c: PairCounts, family: string): string {
  return `${c.ok}/${c.total} OK over ${family} (ping ${c.pingOk}/${c.total}, tcp echo ${c.tcpOk}/${c.total})`;
}

/** The summary as the lines `veil lab up` prints. */
export function formatSummary(s: LabSummary): string {
  const c = s.capture;
  const lines = [
    `veil lab: ${s.nodes} nodes, ${s.pods} pods, backend ${s.backend} (driver ${s.driver}), ${(s.durationMs / 1000).toFixed(1)} s`,
    `  pod pairs across nodes: ${familyLine(s.pairs, 'IPv4')}${s.pairsIPv6 ? `, ${familyLine(s.pairsIPv6, 'IPv6')}` : ''}`,
    ...(s.nodePairs ? [`  node encryption: node-to-node pings ${s.nodePairs.ok}/${s.nodePairs.total} OK`] : []),
    `  underlay capture: ${c.packets} packets, ${c.encryptedPackets} encrypted${s.backend === 'ipsec' ? ' (ESP between node addresses)' : c.wireguardPort ? ` (udp/${c.wireguardPort})` : ''}, plaintext pod-address packets ${c.plaintextPackets} (${c.plaintextBytes} bytes${c.plaintextIPv6Packets ? `; ${c.plaintextIPv6Packets} with a pod IPv6 address` : ''})` +
      (s.expectsEncryption ? '' : ' [expected: this backend does not encrypt]'),
    `  probe marker ${s.marker}: in ${c.markerPackets} underlay packets; tunnel-port packets that are not WireGuard between nodes: ${c.malformedTunnelPackets}`,
    `  capture health: tcpdump ${c.health.exitCode === 0 ? 'exit 0' : `exit ${c.health.exitCode ?? c.health.signal}`}, ${c.health.captured ?? '?'} captured, ${c.health.droppedByKernel ?? '?'} dropped by kernel, ${c.truncatedRecords} truncated`,
    s.controlPlane.kind === 'kube-apiserver'
      ? `  control plane: kube-apiserver; agent calls refused by RBAC/admission: ${s.controlPlane.agentDenials.length} (and ${s.controlPlane.refusedWhileStarting} while it was starting)`
      : '  control plane: the API double (no RBAC: build the real one with bash tools/k8s-bins/build.sh)',
  ];
  if (s.withheld) lines.push(formatWithheld(s.withheld));
  for (const f of s.failures.slice(0, 20)) lines.push(`  FAIL ${f}`);
  if (s.failures.length > 20) lines.push(`  … and ${s.failures.length - 20} more`);
  lines.push(`  result: ${s.ok ? 'PASS' : 'FAIL'}`);
  return lines.join('\n');
}
