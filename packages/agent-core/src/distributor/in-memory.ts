import { AsyncQueue } from '../util/async-queue.js';
import type { DistributorEvent, KeyDistributor, LocalMaterial, ObservedNode } from '../types/index.js';

/**
 * An in-process {@link KeyDistributor}: a node map shared by every distributor created on the same
 * {@link InMemoryCluster}. For tests and for embedding without Kubernetes.
 */
export class InMemoryCluster {
  private readonly nodes = new Map<string, ObservedNode>();
  private readonly subscribers = new Set<AsyncQueue<DistributorEvent>>();

  /** Adds or replaces a node and notifies subscribers. Like the API server, stamps `createdAt` once. */
  upsertNode(node: ObservedNode): void {
    const createdAt = this.nodes.get(node.name)?.createdAt ?? node.createdAt ?? new Date().toISOString();
    const copy: ObservedNode = {
      ...node,
      internalIPs: [...node.internalIPs],
      podCIDRs: [...node.podCIDRs],
      annotations: { ...node.annotations },
      createdAt,
    };
    this.nodes.set(node.name, copy);
    for (const s of this.subscribers) s.push({ type: 'upsert', node: copy });
  }

  /** Merges annotations into an existing node (null removes). */
  annotate(name: string, material: LocalMaterial): void {
    const cur = this.nodes.get(name) ?? { name, internalIPs: [], podCIDRs: [], annotations: {} };
    const annotations: Record<string, string> = { ...cur.annotations };
    for (const [k, v] of Object.entries(material)) {
      if (v === null) delete annotations[k];
      else annotations[k] = v;
    }
    this.upsertNode({ ...cur, annotations });
  }

  deleteNode(name: string): void {
    if (!this.nodes.delete(name)) return;
    for (const s of this.subscribers) s.push({ type: 'delete', name });
  }

  getNode(name: string): ObservedNode | undefined {
    return this.nodes.get(name);
  }

  /** A distributor for node `localName`. */
  distributor(localName: string): InMemoryKeyDistributor {
    return new InMemoryKeyDistributor(this, localName);
  }

  /** @internal */
  subscribe(q: AsyncQueue<DistributorEvent>): () => void {
    // Listed by name, as the API server lists (etcd key order).
    for (const name of [...this.nodes.keys()].sort()) q.push({ type: 'upsert', node: this.nodes.get(name)! });
    q.push({ type: 'synced' });
    this.subscribers.add(q);
    return () => this.subscribers.delete(q);
  }
}

/** {@link KeyDistributor} over an {@link InMemoryCluster}. */
export class InMemoryKeyDistributor implements KeyDistributor {
  private queue: AsyncQueue<DistributorEvent> | undefined;
  private unsubscribe: (() => void) | undefined;
  private isSynced = false;

  constructor(
    private readonly cluster: InMemoryCluster,
    private readonly localName: string,
  ) {}

  get synced(): boolean {
    return this.isSynced;
  }

  async publishLocal(material: LocalMaterial): Promise<void> {
    this.cluster.annotate(this.localName, material);
  }

  events(): AsyncIterable<DistributorEvent> {
    if (this.queue) throw new Error('events() supports a single consumer');
    const q = new AsyncQueue<DistributorEvent>();
    this.queue = q;
    this.unsubscribe = this.cluster.subscribe(q);
    this.isSynced = true;
    return q;
  }

  async close(): Promise<void> {
    this.unsubscribe?.();
    this.queue?.end();
  }
}
