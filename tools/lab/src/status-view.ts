import type { RenderOptions } from '@veil/cli';

/** `veil lab status -o json|yaml`: the lab's state file joined with each agent's status socket. */
export interface LabStatusDoc {
  readonly kind: 'LabStatus';
  readonly labDir: string;
  readonly createdAt: string;
  readonly backend: string;
  readonly apiserver: {
    readonly url: string;
    readonly pid?: number | undefined;
    readonly running: boolean;
    readonly logFile: string;
    readonly controlSocket?: string | undefined;
  };
  readonly nodes: readonly {
    readonly node: string;
    readonly netns: string;
    readonly underlayIP: string;
    /** The node's pod CIDRs, comma-separated (IPv4 first; dual-stack labs have an IPv6 one too). */
    readonly podCIDR: string;
    readonly pid: number | undefined;
    readonly alive: boolean;
    /** The agent's status document (agent-core AgentStatus), absent when it did not answer. */
    readonly status:
      | {
          ready?: boolean;
          driver?: string;
          peers?: { name: string; state: string }[];
          notReadyReason?: string;
          errors?: string[];
        }
      | undefined;
    /** `<pod>=<ip>[,<ipv6>]`. */
    readonly pods: readonly string[];
  }[];
}

type TableFn = (headers: readonly string[], rows: readonly (readonly string[])[]) => string;

/**
 * The text form: a header line, then one row per node (NODE, UNDERLAY IP, POD CIDR, AGENT,
 * STATUS, PEERS). `-o wide` adds NETNS, DRIVER and PODS, and lists peers by name and state.
 */
export function renderLabStatus(d: LabStatusDoc, opts: RenderOptions, table: TableFn): string {
  const api = `API server ${d.apiserver.url} pid ${d.apiserver.pid ?? '-'} ${d.apiserver.running ? 'running' : 'NOT running'}`;
  const head = `lab ${d.labDir} (backend ${d.backend}, since ${d.createdAt}); ${api}\n`;
  const rows = d.nodes.map((n) => {
    const st = n.status;
    const status = st ? (st.ready ? 'ready' : `not ready (${st.notReadyReason ?? '?'})`) : 'no status';
    const peers = st?.peers ?? [];
    const ready = peers.filter((p) => p.state === 'active').length;
    const peerText = opts.wide
      ? peers.map((p) => `${p.name}:${p.state}`).join(' ') || '-'
      : st
        ? `${ready}/${peers.length}`
        : '-';
    const row = [n.node, n.underlayIP, n.podCIDR, `${n.pid ?? '-'} ${n.alive ? 'running' : 'NOT running'}`, status, peerText];
    return opts.wide ? [...row, n.netns, st?.driver ?? '-', n.pods.join(' ') || '-'] : row;
  });
  const headers = ['NODE', 'UNDERLAY IP', 'POD CIDR', 'AGENT', 'STATUS', 'PEERS'];
  return head + table(opts.wide ? [...headers, 'NETNS', 'DRIVER', 'PODS'] : headers, rows);
}
