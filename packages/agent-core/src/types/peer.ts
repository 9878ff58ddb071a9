/**
 * Annotation keys owned by agent-core. Backends publish their own under `veil.io/<backend>-…`
 * (e.g. `veil.io/wireguard-public-key`), declared through {@link PeerAnnotationSpec}.
 */
export const NODE_ID_ANNOTATION = 'veil.io/node-id';
/** Optional override of the node's internal IPs: comma-separated IPv4/IPv6 addresses. */
export const INTERNAL_IPS_ANNOTATION = 'veil.io/internal-ips';

/**
 * A node as the key distributor observed it, NOT yet validated: values are the raw strings from
 * the source (Node status/spec/annotations). The reconciler turns it into a {@link PeerNode} or
 * refuses it with a reason.
 */
export interface ObservedNode {
  readonly name: string;
  /** Raw internal addresses (Node status.addresses of type InternalIP). */
  readonly internalIPs: readonly string[];
  /** Raw pod CIDRs (Node spec.podCIDRs, falling back to spec.podCIDR). */
  readonly podCIDRs: readonly string[];
  /** Every `veil.io/…` annotation, raw. */
  readonly annotations: Readonly<Record<string, string>>;
  /**
   * When the node object was created (RFC 3339, Node `metadata.creationTimestamp`). Conflicts
   * between nodes (same key, node ID, address, overlapping pod CIDRs) are decided by it: the older
   * node wins, then the smaller name. Absent = youngest.
   */
  readonly createdAt?: string;
}

/** A validated IP prefix. */
export interface Cidr {
  readonly family: 4 | 6;
  /** Canonical text, e.g. `10.0.1.0/24`. */
  readonly text: string;
  readonly prefixLength: number;
  /** Network address as an integer (32 or 128 bits). */
  readonly network: bigint;
}

/** A validated peer node: what backends and the datapath are programmed with. */
export interface PeerNode {
  readonly name: string;
  /** First valid internal IPv4, if any. */
  readonly internalIPv4: string | undefined;
  /** First valid internal IPv6, if any. */
  readonly internalIPv6: string | undefined;
  readonly podCIDRs: readonly Cidr[];
  /** Cluster-wide node ID (1..65535) from `veil.io/node-id`; 0 when the node published none. */
  readonly nodeId: number;
  /** Backend-namespaced annotations declared by the active backend, validated by its specs. */
  readonly backend: Readonly<Record<string, string>>;
}

/**
 * What the local node publishes for its peers: annotation key → value, backend-namespaced
 * (e.g. `{ 'veil.io/wireguard-public-key': '…' }`). A value of `null` removes the annotation.
 * Never contains private material.
 */
export type LocalMaterial = Readonly<Record<string, string | null>>;
