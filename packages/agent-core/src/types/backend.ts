import type { Registry } from 'prom-client';
import type { Steering } from './datapath.js';
import type { LocalMaterial, PeerNode } from './peer.js';

/**
 * A backend-owned annotation on peer Nodes, validated by core before the peer reaches the backend.
 * Example (WireGuard): `{ key: 'veil.io/wireguard-public-key', required: true, unique: true,
 * validate: isBase64Key32 }`.
 */
export interface PeerAnnotationSpec {
  /** Full annotation key, backend-namespaced (`veil.io/<backend>-…`). */
  readonly key: string;
  /** A peer without it is `pending` (not yet published), not refused. */
  readonly required: boolean;
  /** No two nodes may share a value; the first holder keeps it, later ones are refused (`duplicate-key`). */
  readonly unique: boolean;
  /** Returns a reason if malformed (refused as `malformed-annotation`), undefined if fine. */
  validate(value: string): string | undefined;
}

/** What a backend reports back after programming a peer; fed into the ipcache entry. */
export interface PeerProgramResult {
  /** IPsec key index (SPI generation); 0/undefined for backends without one. */
  readonly keyIndex?: number;
  /** Extra ipcache flags the backend wants set. */
  readonly flags?: number;
}

/** Per-peer backend view (for status). */
export interface BackendPeerStatus {
  readonly name: string;
  /** Backend-specific, human-readable state (e.g. `handshake 12s ago`, `states installed`). */
  readonly detail?: string;
  readonly keyIndex?: number;
  /** Backend-specific counters (bytes/handshakes), never keys. */
  readonly stats?: Readonly<Record<string, number | string>>;
}

/** What `veil status` shows for the backend (like `cilium-dbg encrypt status`). */
export interface BackendStatus {
  /** Backend name, e.g. `wireguard`, `ipsec`. */
  readonly backend: string;
  /** Driver in use, e.g. `kernel`, `userspace (wireguard-go)`, `xfrm`. */
  readonly driver: string;
  /** Current key index (IPsec), if any. */
  readonly keyIndex?: number;
  readonly peers: readonly BackendPeerStatus[];
  /** Backend-level problems (not per-peer). */
  readonly errors: readonly string[];
  /** Anything else worth showing (interface name, listen port, public key …). */
  readonly details?: Readonly<Record<string, unknown>>;
}

/** What {@link EncryptionBackend.rotateKeys} returns. */
export interface KeyRotationResult {
  /**
   * The NEW public material to publish on the local Node (public only, like `localMaterial()`;
   * after a rotation `localMaterial()` must return this too). The agent publishes it so peers
   * pick up the new key.
   */
  readonly material: LocalMaterial;
  /** The new key index (IPsec SPI generation), for backends that have one. */
  readonly keyIndex?: number;
}

/**
 * An encryption backend (WireGuard device + peers, or XFRM states/policies per node pair).
 * Every method must be idempotent and diff against kernel state: `upsertPeer` with an unchanged
 * peer writes nothing, and `init` adopts state left by a previous agent instead of tearing it down.
 */
export interface EncryptionBackend {
  /** Backend name (also the `encryption.type` value selecting it). */
  readonly name: string;
  /**
   * The backend needs a cluster-unique node ID (`config.nodeId`, e.g. IPsec marks and SPIs). When
   * true and `nodeId` is 0, the agent allocates one before `init` (see `NodeIdAllocator`).
   */
  readonly needsNodeId?: boolean;
  /** Annotations peers must/may carry for this backend. */
  readonly peerAnnotations: readonly PeerAnnotationSpec[];
  /**
   * Sets up devices / XFRM base state and loads or creates local keys; adopts existing kernel
   * state. Returns the names of peers it found already programmed (adopted).
   */
  init(): Promise<readonly string[]>;
  /** Creates or updates one peer. */
  upsertPeer(peer: PeerNode): Promise<PeerProgramResult | void>;
  /** Removes one peer; absent is not an error. */
  removePeer(name: string): Promise<void>;
  /** Removes every peer not in `keep`; called only after the initial sync. Returns removed names. */
  prune(keep: ReadonlySet<string>): Promise<readonly string[]>;
  /** How the datapath should steer traffic into this backend. Valid after `init`. */
  steering(): Steering;
  /** Public material to publish on the local Node (never private keys). Valid after `init`. */
  localMaterial(): LocalMaterial;
  status(): Promise<BackendStatus>;
  /**
   * Optional: replace the node's key (`veil keys rotate`, `POST /v1/keys/rotate` on the status
   * socket). Generates a new private key, reprograms the local device/states with it (peers keep
   * the old public key until they see the new annotation, so implementations should keep traffic
   * flowing where the protocol allows), and returns the new public material, which the agent
   * publishes. Never returns or logs private keys. Backends without it answer 501 on the socket.
   */
  rotateKeys?(): Promise<KeyRotationResult>;
  /**
   * Optional: subscribe to steering changes after `init` (e.g. a restarted wireguard-go comes back
   * with a new TUN ifindex). The agent forwards each change to `Datapath.setSteering`. Returns an
   * unsubscribe function.
   */
  onSteeringChange?(listener: (steering: Steering) => void): () => void;
  /**
   * Optional: subscribe to changes of {@link localMaterial} the backend makes on its own (e.g.
   * IPsec publishing "ready for key index n" once its new inbound states exist). The agent
   * publishes each new material, as after `rotateKeys`. Returns an unsubscribe function.
   */
  onMaterialChange?(listener: (material: LocalMaterial) => void): () => void;
  /**
   * Optional: subscribe to requests to program peers again although they did not change (e.g.
   * IPsec switching a peer's key index once both sides are ready). The agent calls `upsertPeer`
   * for each named peer it knows and applies the returned {@link PeerProgramResult}.
   * Returns an unsubscribe function.
   */
  onReprogramPeers?(listener: (peerNames: readonly string[]) => void): () => void;
  /** Optional hook: register backend metrics on the agent's registry. */
  registerMetrics?(registry: Registry): void;
  /** Releases handles only: kernel state stays (the next agent adopts it). */
  close(): Promise<void>;
}
