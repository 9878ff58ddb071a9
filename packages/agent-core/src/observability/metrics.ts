import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/** Reasons a peer is refused (label values of `veil_refused_peers_total`). */
export type RefusalReason =
  | 'duplicate-key'
  | 'duplicate-node-id'
  | 'malformed-annotation'
  | 'malformed-ip'
  | 'malformed-cidr'
  | 'cidr-overlap'
  | 'no-internal-ip'
  /** Another (older) node already uses this InternalIP. */
  | 'duplicate-node-ip'
  /** A pod CIDR contains a node address (e.g. the underlay's CIDR): pod traffic to hosts would enter the tunnel. */
  | 'cidr-covers-node-ip'
  /** A pod CIDR of an IP family the cluster's pods do not use (see the README: cluster families). */
  | 'pod-cidr-family'
  /** A live node dropped a pod CIDR its pods may still use: the last good entry is kept until the node is deleted. */
  | 'pod-cidr-removed';

/** Peer states (label values of `veil_peers`). */
const PEER_STATES = ['active', 'pending', 'refused', 'error'] as const;
export type PeerState = (typeof PEER_STATES)[number];

/** The agent's metrics, all registered on one Registry. */
export class AgentMetrics {
  readonly peers: Gauge<'state'>;
  readonly reconcileDuration: Histogram<'result'>;
  readonly reconcileErrors: Counter<'stage'>;
  readonly refusedPeers: Counter<'reason'>;
  readonly verdicts: Gauge<'verdict'>;
  readonly localMaterialRestored: Counter<'key'>;
  /** Read at scrape time: peer counts by state (set by the reconciler). */
  private peerStateSource: (() => ReadonlyMap<string, number>) | undefined;

  constructor(
    readonly registry: Registry,
    /** Reads BPF verdict counters at scrape time (from the Datapath). */
    verdictSource?: () => Promise<Readonly<Record<string, bigint>>>,
    opts: { defaultMetrics?: boolean } = {},
  ) {
    if (opts.defaultMetrics ?? true) collectDefaultMetrics({ register: registry, prefix: 'veil_agent_' });
    // collect() runs with `this` bound to the gauge, so the agent's state is reached through a closure.
    const peerStates = (): ReadonlyMap<string, number> | undefined => this.peerStateSource?.();
    this.peers = new Gauge({
      name: 'veil_peers',
      help: 'Peers by state',
      labelNames: ['state'],
      registers: [registry],
      // Counted by the reconciler on every transition; turned into samples only when scraped.
      collect() {
        const counts = peerStates();
        for (const s of PEER_STATES) this.set({ state: s }, counts?.get(s) ?? 0);
      },
    });
    this.reconcileDuration = new Histogram({
      name: 'veil_reconcile_duration_seconds',
      help: 'Duration of one peer reconcile',
      labelNames: ['result'],
      buckets: [0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5],
      registers: [registry],
    });
    this.reconcileErrors = new Counter({
      name: 'veil_reconcile_errors_total',
      help: 'Failed peer reconciles, by stage (backend, datapath)',
      labelNames: ['stage'],
      registers: [registry],
    });
    this.refusedPeers = new Counter({
      name: 'veil_refused_peers_total',
      help: 'Peer updates refused because of bad input, by reason',
      labelNames: ['reason'],
      registers: [registry],
    });
    this.localMaterialRestored = new Counter({
      name: 'veil_local_material_restored_total',
      help: 'Own annotations the agent found missing or changed on its Node and published again, by annotation key',
      labelNames: ['key'],
      registers: [registry],
    });
    this.verdicts = new Gauge({
      name: 'veil_bpf_verdicts',
      help: 'BPF datapath verdict counters (summed over CPUs), by verdict',
      labelNames: ['verdict'],
      registers: [registry],
      async collect() {
        if (!verdictSource) return;
        try {
          const c = await verdictSource();
          for (const [verdict, n] of Object.entries(c)) this.set({ verdict }, Number(n));
        } catch {
          // A scrape must not fail because the datapath is not up yet.
        }
      },
    });
  }

  /** Sets where `veil_peers` reads its counts from at scrape time. */
  setPeerStateSource(source: () => ReadonlyMap<string, number>): void {
    this.peerStateSource = source;
  }
}
