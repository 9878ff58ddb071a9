import { z } from 'zod';
import { parseCidr } from '../util/ip.js';

export const durationRe = /^(\d+(\.\d+)?(ns|us|µs|ms|s|m|h))+$/;
const cidrRe = /^[0-9a-fA-F:.]+\/\d{1,3}$/;

/** Go-style duration (`90s`, `5m`, `1h30m`) in milliseconds. */
export function parseDuration(text: string): number {
  const units: Record<string, number> = { ns: 1e-6, us: 1e-3, µs: 1e-3, ms: 1, s: 1e3, m: 60e3, h: 3600e3 };
  let total = 0;
  for (const m of text.matchAll(/(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)/g)) total += Number(m[1]) * (units[m[2] ?? 's'] ?? 0);
  return total;
}

const listenPort = z.number().int().min(0).max(65535);

/**
 * What core owns of the configuration. Keys mirror the Helm values (`encryption.*`) plus agent
 * settings. Every object is strict: unknown keys are errors, so typos are caught. A backend's own
 * section (`encryption.wireguard`, `encryption.ipsec`, a contributor's `encryption.<name>`) is not
 * here: each backend declares it with {@link defineBackendConfig} and validates it itself, the way
 * Cilium's cells own their config.
 */
export const AgentConfigSchema = z.strictObject({
  encryption: z.strictObject({
    enabled: z.boolean(),
    /** Backend name (`wireguard`, `ipsec`) or a package specifier / path of a third-party backend. */
    type: z.string().min(1),
    /** Also encrypt node-to-node (host) traffic. */
    nodeEncryption: z.boolean(),
    strictMode: z.strictObject({
      enabled: z.boolean(),
      /** Pod CIDRs whose traffic must never leave unencrypted. */
      // Strictly parsed here, so a bad entry is refused naming this key (not a datapath option
      // path), and host bits (`10.244.1.1/16`) are refused rather than silently rounded.
      cidrs: z.array(
        z
          .string()
          .regex(cidrRe, 'must be a CIDR like 10.0.0.0/8')
          .superRefine((v, ctx) => {
            if (!cidrRe.test(v)) return; // the regex above already names it
            const c = parseCidr(v);
            if (typeof c === 'string')
              ctx.addIssue({ code: 'custom', message: `${c} (write the network address, e.g. 10.244.0.0/16)` });
          }),
      ),
      allowRemoteNodeIdentities: z.boolean(),
    }),
  }),
  /** This node's name (downward API `spec.nodeName`). */
  nodeName: z.string().min(1, 'must be set (flag --nodeName, env VEIL_NODE_NAME or K8S_NODE_NAME)'),
  /**
   * Cluster-wide node ID published as `veil.io/node-id` (1..65535). 0 = allocate one when the
   * backend needs it (IPsec) and a node-ID store is bound (Leases), else publish none. An
   * explicit ID is claimed the same way and refused when another node holds it.
   */
  nodeId: z.number().int().min(0).max(65535),
  /** Namespace of the node-ID Leases (`veil-node-id-<id>`): the chart's release namespace. */
  nodeIdNamespace: z.string().min(1),
  stateDir: z.string().min(1),
  /** Port 0 picks an ephemeral port (tests). */
  metrics: z.strictObject({ enabled: z.boolean(), port: listenPort, host: z.string().min(1) }),
  health: z.strictObject({ port: listenPort, host: z.string().min(1) }),
  status: z.strictObject({ socketPath: z.string().min(1) }),
  logLevel: z.enum(['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent']),
  /** Glob-like patterns (`*` wildcard) of pod veth names the datapath attaches to. */
  podVethPatterns: z.array(z.string().min(1)).min(1),
  /** Namespace Kubernetes Events are posted in (Node events conventionally go to `default`). */
  eventsNamespace: z.string().min(1),
});

type CoreConfig = z.infer<typeof AgentConfigSchema>;

/** Backend sections under `encryption`, by section name; read one with `backendSection()`. */
export interface BackendSections {
  readonly [section: string]: unknown;
}

/** The validated agent configuration: core's keys plus the backends' sections under `encryption`. */
export type AgentConfig = Omit<CoreConfig, 'encryption'> & { encryption: CoreConfig['encryption'] & BackendSections };

/** Core's defaults (lowest precedence layer); backends add their sections' defaults. */
export const DEFAULT_CONFIG: AgentConfig = {
  encryption: {
    enabled: false,
    type: 'wireguard',
    nodeEncryption: false,
    strictMode: { enabled: false, cidrs: [], allowRemoteNodeIdentities: false },
  },
  nodeName: '',
  nodeId: 0,
  nodeIdNamespace: 'kube-system',
  stateDir: '/var/lib/veil',
  // Loopback unless told otherwise: the agent runs on the host network, where 0.0.0.0 would
  // expose both to every network the node is on. The chart binds metrics to the node's address.
  metrics: { enabled: true, port: 9962, host: '127.0.0.1' },
  health: { port: 9879, host: '127.0.0.1' },
  status: { socketPath: '/var/run/veil/status.sock' },
  logLevel: 'info',
  podVethPatterns: ['lxc*', 'veth*'],
  eventsNamespace: 'default',
};
