import type { Registry } from 'prom-client';
import { Counter } from 'prom-client';
import { samePeer } from '../reconciler/validate.js';
import { Secret } from '../util/secret.js';
import type {
  BackendStatus,
  EncryptionBackend,
  LocalMaterial,
  PeerAnnotationSpec,
  PeerNode,
  PeerProgramResult,
  Steering,
} from '../types/index.js';

/** The annotation the fake backend publishes and requires (unique, 44-char base64 like WireGuard). */
export const FAKE_KEY_ANNOTATION = 'veil.io/fake-public-key';

/** A call the fake recorded. */
export type FakeBackendCall =
  | { op: 'init' }
  | { op: 'upsertPeer'; name: string; changed: boolean }
  | { op: 'removePeer'; name: string }
  | { op: 'prune'; keep: string[]; removed: string[] }
  | { op: 'close' };

/** 32 bytes of base64: the shape of a WireGuard key. */
export function isBase64Key32(v: string): string | undefined {
  if (!/^[A-Za-z0-9+/]{43}=$/.test(v)) return 'must be 32 bytes of base64 (44 characters ending in "=")';
  return undefined;
}

/**
 * An in-memory {@link EncryptionBackend} recording every call. Peers can be pre-seeded (state an
 * earlier agent left behind) to test adoption; failures can be injected per peer name.
 */
export class FakeBackend implements EncryptionBackend {
  readonly name: string;
  readonly peerAnnotations: readonly PeerAnnotationSpec[];
  readonly needsNodeId?: boolean;
  readonly peers = new Map<string, PeerNode>();
  readonly calls: FakeBackendCall[] = [];
  /** Names whose upsert throws (until removed from the set). */
  readonly failUpsert = new Set<string>();
  /** Hook called on every upsertPeer (benchmarks measure latency with it). */
  onUpsert: ((peer: PeerNode) => void) | undefined;
  /** A private key, held as a Secret: it must never show in logs or status. */
  readonly privateKey: Secret;
  private readonly publicKey: string;
  private upserts: Counter | undefined;
  private initialized = false;

  /**
   * `namesSurviveRestart: false` models WireGuard: the device keeps its peers across an agent
   * restart but carries no node names, so `init()` adopts none and `prune()` drops every peer not
   * programmed again since `init()`. Default true (names are adopted, like IPsec's state file).
   */
  constructor(
    opts: {
      name?: string;
      privateKey?: string;
      publicKey?: string;
      preexisting?: readonly PeerNode[];
      keyIndex?: number;
      namesSurviveRestart?: boolean;
      /** Ask the agent for a node ID (like IPsec). */
      needsNodeId?: boolean;
    } = {},
  ) {
    if (opts.needsNodeId) this.needsNodeId = true;
    this.namesSurviveRestart = opts.namesSurviveRestart ?? true;
    this.name = opts.name ?? 'fake';
    this.privateKey = new Secret(opts.privateKey ?? 'cHJpdmF0ZS1rZXktbm90LWZvci1sb2dzLTAxMjM0NTY=');
    this.publicKey = opts.publicKey ?? 'cHVibGljLWtleS1vZi10aGUtbG9jYWwtbm9kZS0wMTI=';
    for (const p of opts.preexisting ?? []) this.peers.set(p.name, p);
    this.keyIndex = opts.keyIndex ?? 0;
    this.peerAnnotations = [{ key: FAKE_KEY_ANNOTATION, required: true, unique: true, validate: isBase64Key32 }];
  }

  readonly keyIndex: number;
  private readonly namesSurviveRestart: boolean;
  /** Peers programmed since init() (what a WireGuard-like backend can name). */
  private readonly claimed = new Set<string>();

  async init(): Promise<readonly string[]> {
    this.calls.push({ op: 'init' });
    this.initialized = true;
    return this.namesSurviveRestart ? [...this.peers.keys()] : [];
  }

  async upsertPeer(peer: PeerNode): Promise<PeerProgramResult> {
    this.onUpsert?.(peer);
    if (this.failUpsert.has(peer.name)) throw new Error(`injected failure for ${peer.name}`);
    const cur = this.peers.get(peer.name);
    const changed = cur === undefined || !samePeer(cur, peer);
    this.calls.push({ op: 'upsertPeer', name: peer.name, changed });
    if (changed) this.peers.set(peer.name, peer);
    this.claimed.add(peer.name);
    this.upserts?.inc();
    return { keyIndex: this.keyIndex };
  }

  async removePeer(name: string): Promise<void> {
    this.calls.push({ op: 'removePeer', name });
    this.peers.delete(name);
    this.claimed.delete(name);
  }

  async prune(keep: ReadonlySet<string>): Promise<readonly string[]> {
    const removed = [...this.peers.keys()].filter((n) => !keep.has(n) || (!this.namesSurviveRestart && !this.claimed.has(n)));
    for (const n of removed) this.peers.delete(n);
    this.calls.push({ op: 'prune', keep: [...keep], removed });
    return removed;
  }

  steering(): Steering {
    return this.currentSteering;
  }

  /** What `steering()` returns; `changeSteering` updates it and notifies subscribers. */
  private currentSteering: Steering = { kind: 'redirect', ifindex: 42 };
  private readonly steeringListeners = new Set<(s: Steering) => void>();

  onSteeringChange(listener: (s: Steering) => void): () => void {
    this.steeringListeners.add(listener);
    return () => this.steeringListeners.delete(listener);
  }

  /** Simulates a device recreated under a new ifindex (e.g. a restarted wireguard-go). */
  changeSteering(steering: Steering): void {
    this.currentSteering = steering;
    for (const l of this.steeringListeners) l(steering);
  }

  localMaterial(): LocalMaterial {
    if (!this.initialized) throw new Error('localMaterial() before init()');
    return { [FAKE_KEY_ANNOTATION]: this.publicKey };
  }

  async status(): Promise<BackendStatus> {
    return {
      backend: this.name,
      driver: 'in-memory',
      keyIndex: this.keyIndex,
      peers: [...this.peers.values()].map((p) => ({ name: p.name, keyIndex: this.keyIndex, detail: 'programmed' })),
      errors: [],
      details: { publicKey: this.publicKey, privateKey: this.privateKey },
    };
  }

  registerMetrics(registry: Registry): void {
    this.upserts = new Counter({ name: 'veil_fake_backend_upserts_total', help: 'upsertPeer calls', registers: [registry] });
  }

  async close(): Promise<void> {
    this.calls.push({ op: 'close' });
  }

  /** Calls of one op. */
  callsOf<K extends FakeBackendCall['op']>(op: K): Extract<FakeBackendCall, { op: K }>[] {
    return this.calls.filter((c): c is Extract<FakeBackendCall, { op: K }> => c.op === op);
  }
}
