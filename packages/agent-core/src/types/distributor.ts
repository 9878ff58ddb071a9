import type { LocalMaterial, ObservedNode } from './peer.js';

/** One change seen by a {@link KeyDistributor}. */
export type DistributorEvent =
  | { readonly type: 'upsert'; readonly node: ObservedNode }
  | { readonly type: 'delete'; readonly name: string }
  /** Emitted once, after the initial list has been delivered as upserts. */
  | { readonly type: 'synced' };

/**
 * Publishes the local node's key material and streams every node's (including the local one's).
 * Implementations: `KubernetesKeyDistributor` (Node annotations via an informer) and
 * `InMemoryKeyDistributor` (tests, embedding).
 */
export interface KeyDistributor {
  /** Publishes the local node's material (merge semantics: keys absent are left alone, null removes). */
  publishLocal(material: LocalMaterial): Promise<void>;
  /**
   * The event stream. Single consumer: call once. Ends after {@link close}. Re-lists after an
   * outage may re-deliver unchanged nodes as upserts and vanished ones as deletes.
   */
  events(): AsyncIterable<DistributorEvent>;
  /** True once the initial list was delivered. */
  readonly synced: boolean;
  close(): Promise<void>;
}
