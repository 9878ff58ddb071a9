/**
 * How encrypted traffic is steered into the backend, set by the datapath from
 * {@link EncryptionBackend.steering}:
 * - `redirect`: the tc program redirects matching packets to `ifindex` (e.g. the WireGuard device);
 * - `mark`: the program sets `skb->mark = value | keyIndex << keyIndexShift | nodeId << nodeIdShift`
 *   (bits outside `mask` untouched) so per-node-pair XFRM policies/states match (IPsec; @veil/bpf's
 *   layout is value 0x0E00, keyIndexShift 12, nodeIdShift 16, mask 0xFFFFFF00);
 * - `none`: no steering (plaintext; strict mode still drops what it must).
 */
export type Steering =
  | { readonly kind: 'redirect'; readonly ifindex: number; readonly mtu?: number; readonly udpPort?: number }
  | {
      readonly kind: 'mark';
      readonly value: number;
      readonly mask: number;
      readonly keyIndexShift: number;
      readonly nodeIdShift: number;
      readonly mtu?: number;
    }
  | { readonly kind: 'none' };
// `mtu` (optional): the largest inner L3 packet the backend's encryption path carries without
// fragmenting on the wire (e.g. the WireGuard device MTU). The datapath answers bigger packets with
// ICMP frag-needed / packet-too-big; undefined leaves the datapath's MTU setting as it is.
// `udpPort` (redirect, optional): the UDP port the backend's own encrypted packets use on the
// underlay (WireGuard's listen port); node encryption lets them pass instead of encrypting them again.

/** ipcache entry flags: the same bits as `ipcache_value.flags` in bpf/lib/maps.h. */
export const IpcacheFlags = {
  /** A local pod (from-tunnel delivers to its veth). */
  LOCAL: 0x01,
  /** Hosted by a remote node. */
  REMOTE: 0x02,
  /** The backend has this peer programmed: encrypt (redirect / mark) instead of passing. */
  ENCRYPT_READY: 0x04,
  /** The entry is a node's own address (node-to-node encryption). */
  IS_NODE: 0x10,
} as const;

/** Field-wise equality of two normalized entries (order of IPs / CIDRs matters, as given). */
export function sameIpcacheEntry(a: IpcacheEntry, b: IpcacheEntry): boolean {
  return (
    a.nodeName === b.nodeName &&
    a.flags === b.flags &&
    a.keyIndex === b.keyIndex &&
    a.nodeId === b.nodeId &&
    a.nodeIPs.join(',') === b.nodeIPs.join(',') &&
    a.podCIDRs.join(',') === b.podCIDRs.join(',')
  );
}

/** What the datapath knows about one remote node. */
export interface IpcacheEntry {
  readonly nodeName: string;
  /** Node IPs (v4 and/or v6) used as tunnel/ESP endpoints. */
  readonly nodeIPs: readonly string[];
  /** Pod CIDRs owned by the node (canonical text). */
  readonly podCIDRs: readonly string[];
  /** Bitwise-or of {@link IpcacheFlags}. */
  readonly flags: number;
  /** IPsec key index (SPI generation) 0..15, 0 for backends without one. */
  readonly keyIndex: number;
  /** Cluster node ID (u16), part of the IPsec mark. */
  readonly nodeId: number;
}

/** Where a program set is attached. */
export interface AttachTarget {
  /**
   * `pod-veth`: from-pod on tc ingress of a pod veth's host side. `tunnel`: from-tunnel on tc ingress
   * of the encryption device (e.g. the WireGuard device). `underlay`: to-wire on tc egress of the
   * node's uplink. `device`: a device whose role the datapath implementation resolves itself.
   */
  readonly kind: 'pod-veth' | 'tunnel' | 'underlay' | 'device';
  readonly ifname: string;
}

/** BPF verdict counters, by verdict name (e.g. `encrypt`, `pass`, `drop_strict`). */
export type VerdictCounters = Readonly<Record<string, bigint>>;

/** Result of a full sync: what was changed to make actual equal desired. */
export interface DatapathSyncResult {
  readonly added: readonly string[];
  readonly updated: readonly string[];
  readonly removed: readonly string[];
}

/** One program attachment, for status (`veil status`); a subset of what a datapath may know. */
export interface DatapathAttachmentInfo {
  readonly ifname: string;
  readonly ifindex?: number;
  /** e.g. `pod`, `tunnel`, `underlay`. */
  readonly role?: string;
  readonly direction?: string;
}

/** One ipcache map entry as the kernel holds it (per prefix), for `veil bpf ipcache list`. */
export interface IpcachePrefixEntry {
  /** Canonical prefix text, e.g. `10.1.2.0/24`, `192.168.0.2/32`. */
  readonly prefix: string;
  /** Owning node, when known (LOCAL entries: this node). */
  readonly nodeName?: string;
  /** Tunnel / ESP endpoint of the owning node, when set. */
  readonly nodeIP?: string;
  /** Bitwise-or of {@link IpcacheFlags}. */
  readonly flags: number;
  readonly keyIndex: number;
  readonly nodeId: number;
  /** Local pod veth ifindex (LOCAL entries), 0 otherwise. */
  readonly ifindex: number;
}

/** Per-reason counter totals (packets and bytes, summed over CPUs). */
export type DatapathCounterDetails = Readonly<Record<string, { readonly packets: bigint; readonly bytes: bigint }>>;

/**
 * The BPF datapath: the shared tc program set plus the ipcache/config/counter maps.
 * Implementations must be idempotent and diff against what is already in the (pinned) maps, so
 * an agent restart converges without interrupting traffic.
 */
export interface Datapath {
  /** Loads (or adopts pinned) programs and attaches them to `targets`; existing attachments are kept. */
  attach(targets: readonly AttachTarget[]): Promise<void>;
  /** Detaches from targets that disappeared (e.g. a deleted pod veth). */
  detach(ifnames: readonly string[]): Promise<void>;
  /** True once the program set is attached to at least the configured devices. */
  readonly attached: boolean;
  /** Current ipcache contents keyed by node name (adopted from pinned maps at start). */
  entries(): Promise<ReadonlyMap<string, IpcacheEntry>>;
  /** Inserts or replaces one node's entries. */
  upsert(entry: IpcacheEntry): Promise<void>;
  /** Removes one node's entries; absent is not an error. */
  remove(nodeName: string): Promise<void>;
  /** Makes the ipcache exactly `entries` by diff (no flush). */
  syncPeers(entries: readonly IpcacheEntry[]): Promise<DatapathSyncResult>;
  /** Programs the steering config map. */
  setSteering(steering: Steering): Promise<void>;
  /** Reads the per-CPU verdict counters, summed. */
  counters(): Promise<VerdictCounters>;
  /** Releases handles only: kernel state stays (the next agent adopts it). */
  close(): Promise<void>;

  // Optional introspection for the status socket (`veil status`, `veil bpf …`). When absent the
  // agent falls back to what the members above give (see observability/status-api.ts).

  /** Current program attachments. */
  attachments?(): readonly DatapathAttachmentInfo[];
  /** The ipcache map as the kernel holds it, one row per prefix. */
  ipcacheDump?(): Promise<readonly IpcachePrefixEntry[]> | readonly IpcachePrefixEntry[];
  /** Counters with packets AND bytes per reason. */
  counterDetails?(): Promise<DatapathCounterDetails> | DatapathCounterDetails;
  /** Local pod endpoints (host prefix → veth ifindex) the datapath discovered. */
  localEndpoints?(): ReadonlyMap<string, number>;
}
