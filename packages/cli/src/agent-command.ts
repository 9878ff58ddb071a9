/**
 * `veil agent`: the composition root. Everything concrete is chosen here and nowhere else:
 * the Kubernetes platform module, the BPF datapath (pin dir, device roles), and the encryption
 * backend by name. Restart-safe: a signal closes handles only, kernel state stays.
 */
import { readFileSync } from 'node:fs';
import { UsageError, formatError } from './errors.js';

/** Flags `veil agent` takes itself; everything else goes to agent-core's loadConfig. */
export interface AgentCliOptions {
  kubeconfig?: string;
  debug: boolean;
  /** Underlay interface (to-wire on its tc egress); default: the default route's device. */
  underlayDevice?: string;
  /** Tunnel interface (from-tunnel on its tc ingress); default `veil_wg0` for the WireGuard backend. */
  tunnelDevice?: string;
  /** bpffs directory for this agent's pins. Default `/sys/fs/bpf/veil`. */
  bpfPinDir?: string;
  /** Where bpffs is (or gets) mounted. Default `/sys/fs/bpf`. */
  bpffsRoot?: string;
  /** This node's pod CIDRs; default: read from the Node object at start. */
  podCIDRs?: string[];
}

type StringFlag = 'kubeconfig' | 'underlayDevice' | 'tunnelDevice' | 'bpfPinDir' | 'bpffsRoot';
const CLI_FLAGS: Record<string, StringFlag | 'podCIDRs'> = {
  kubeconfig: 'kubeconfig',
  'underlay-device': 'underlayDevice',
  'tunnel-device': 'tunnelDevice',
  'bpf-pin-dir': 'bpfPinDir',
  'bpffs-root': 'bpffsRoot',
  'pod-cidrs': 'podCIDRs',
};

/**
 * Splits `veil agent` arguments into the CLI's own flags and the rest (config flags for
 * loadConfig, e.g. `--config f.yaml --encryption.wireguard.port=51871`).
 */
export function splitAgentArgs(argv: readonly string[]): { cli: AgentCliOptions; configArgv: string[] } {
  const cli: AgentCliOptions = { debug: false };
  const configArgv: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] as string;
    if (arg === '--debug') {
      cli.debug = true;
      continue;
    }
    const m = /^--([a-z-]+)(?:=(.*))?$/s.exec(arg);
    const key = m ? CLI_FLAGS[m[1] as string] : undefined;
    if (!m || !key) {
      configArgv.push(arg);
      continue;
    }
    const value = m[2] ?? argv[++i];
    if (value === undefined || value === '' || value.startsWith('--')) throw new UsageError(`--${m[1]}`, 'needs a value');
    if (key === 'podCIDRs') {
      const cidrs = value
        .split(',')
        .map((s) => s.trim())
        .filter((s) => s.length > 0);
      for (const c of cidrs)
        if (!/^[0-9a-fA-F:.]+\/\d{1,3}$/.test(c)) throw new UsageError('--pod-cidrs', `"${c}" is not a CIDR`);
      cli.podCIDRs = cidrs;
    } else {
      cli[key] = value;
    }
  }
  return { cli, configArgv };
}

/** The interface of the IPv4 default route (first in /proc/net/route), or undefined. */
export function defaultRouteDevice(routeTable = '/proc/net/route'): string | undefined {
  let text: string;
  try {
    text = readFileSync(routeTable, 'utf8');
  } catch {
    return undefined;
  }
  for (const line of text.split('\n').slice(1)) {
    const f = line.trim().split(/\s+/);
    // Iface Destination Gateway Flags RefCnt Use Metric Mask …
    if (f.length >= 8 && f[1] === '00000000' && f[7] === '00000000') return f[0];
  }
  return undefined;
}

/** Runs the agent until SIGTERM/SIGINT. Returns the process exit code. */
export async function runAgent(argv: readonly string[], env: NodeJS.ProcessEnv = process.env): Promise<number> {
  let debug = argv.includes('--debug');
  try {
    const { cli, configArgv } = splitAgentArgs(argv);
    debug = cli.debug;
    // Heavy imports (client-node alone is ~70 MB RSS) only once we really run the agent.
    const core = await import('@veil/agent-core');
    const { bpfDatapathModule } = await import('@veil/datapath');
    // Core's keys first, then the backend `encryption.type` names validates its own section.
    const { config, backend } = await core.loadAgentConfig({ argv: configArgv, env });
    const { KubeConfig, CoreV1Api } = await import('@kubernetes/client-node');
    const kc = new KubeConfig();
    const kubeconfig = cli.kubeconfig ?? env.KUBECONFIG;
    if (kubeconfig) {
      try {
        kc.loadFromFile(kubeconfig);
      } catch (err) {
        throw new UsageError('--kubeconfig', `cannot load ${kubeconfig}: ${core.errorMessage(err)}`);
      }
    } else if (env.KUBERNETES_SERVICE_HOST) {
      kc.loadFromCluster();
    } else {
      kc.loadFromDefault();
    }
    if (!kc.getCurrentCluster())
      throw new UsageError('--kubeconfig', 'no cluster configured (pass --kubeconfig, set KUBECONFIG, or run in a pod)');

    const logger = core.createLogger({ level: config.logLevel });
    const underlay = cli.underlayDevice ?? defaultRouteDevice();
    const tunnel =
      cli.tunnelDevice ??
      (config.encryption.type === 'wireguard' ? (await import('@veil/backend-wireguard')).DEFAULT_DEVICE : undefined);
    // Explicit roles: from-tunnel on the tunnel's tc ingress, to-wire on the underlay's tc egress
    // (devices that do not exist yet, like the WireGuard device before the backend's init, are
    // attached when they appear).
    const attachTargets: { kind: 'tunnel' | 'underlay'; ifname: string }[] = [];
    if (underlay) attachTargets.push({ kind: 'underlay', ifname: underlay });
    if (tunnel) attachTargets.push({ kind: 'tunnel', ifname: tunnel });
    if (!underlay) logger.warn('no underlay device (no default route and no --underlay-device): to-wire is not attached');

    let podCIDRs = cli.podCIDRs;
    if (!podCIDRs) {
      // The datapath classifies local pods by the node's pod CIDRs; the reconciler only handles remote nodes.
      try {
        const node = await Promise.race([
          kc.makeApiClient(CoreV1Api).readNode({ name: config.nodeName }),
          new Promise<never>((_, reject) => setTimeout(() => reject(new Error('timed out after 5 s')), 5_000).unref()),
        ]);
        podCIDRs = node.spec?.podCIDRs?.length ? node.spec.podCIDRs : node.spec?.podCIDR ? [node.spec.podCIDR] : undefined;
      } catch (err) {
        logger.warn(
          { node: config.nodeName, err: core.errorMessage(err) },
          'could not read the local pod CIDRs from the Node object',
        );
      }
    }

    const agent = await core.Agent.create({
      config,
      backendModule: backend.module,
      logger,
      platformModules: [
        core.kubernetesModule(kc),
        bpfDatapathModule({
          ...(cli.bpfPinDir ? { pinDir: cli.bpfPinDir } : {}),
          ...(cli.bpffsRoot ? { bpffsRoot: cli.bpffsRoot } : {}),
          ...(podCIDRs ? { localPodCIDRs: podCIDRs } : {}),
        }),
      ],
      attachTargets,
    });

    let stopping: Promise<void> | undefined;
    const done = new Promise<number>((resolve) => {
      const onSignal = (signal: NodeJS.Signals): void => {
        if (stopping) {
          logger.warn({ signal }, 'second signal: exiting now');
          resolve(1);
          return;
        }
        logger.info({ signal }, 'stopping (kernel state is kept for the next agent)');
        stopping = agent.stop().then(
          () => resolve(0),
          (err: unknown) => {
            logger.error({ err: formatError(err) }, 'stop failed');
            resolve(1);
          },
        );
      };
      process.on('SIGTERM', onSignal);
      process.on('SIGINT', onSignal);
    });
    await agent.start();
    logger.info({ node: config.nodeName, backend: config.encryption.type, attachTargets, podCIDRs }, 'agent started');
    return await done;
  } catch (err) {
    process.stderr.write(`veil agent: ${formatError(err, debug)}\n`);
    return 1;
  }
}
