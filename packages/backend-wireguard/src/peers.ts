import { WgValidationError } from './errors.js';
import { canonicalCidr, checkEndpoint, parseEndpoint, sameEndpoint } from './ip.js';
import { Key } from './wgtypes/key.js';
import { newPeer, type DeviceConfig, type Endpoint, type PeerConfig, type WireGuardPeer } from './wgtypes/types.js';

/** What a peer should look like on the device. */
export interface DesiredPeer {
  publicKey: Key;
  /** UDP endpoint; undefined = leave whatever the device has (learned from packets). */
  endpoint?: Endpoint;
  /** Allowed IPs (PodCIDRs, plus the node IP with node encryption). Order does not matter. */
  allowedIPs: readonly string[];
  /** Persistent keepalive in seconds; undefined or 0 = off. */
  persistentKeepalive?: number;
}

/** Input of peerFromNode: one remote node as the agent sees it. */
export interface NodePeerSpec {
  publicKey: Key | string;
  /** `ip:port`, `[ipv6]:port`, or an Endpoint. */
  endpoint?: string | Endpoint;
  podCIDRs: readonly string[];
  /** Node IPs, added as /32 or /128 allowed IPs when `nodeEncryption` is on. */
  nodeIPs?: readonly string[];
  nodeEncryption?: boolean;
  persistentKeepalive?: number;
}

/** Builds a DesiredPeer from a node's data (validated; errors name the bad field). */
export function peerFromNode(spec: NodePeerSpec): DesiredPeer {
  let publicKey: Key;
  if (spec.publicKey instanceof Key) publicKey = spec.publicKey;
  else {
    try {
      publicKey = Key.parse(spec.publicKey);
    } catch {
      throw new WgValidationError('publicKey', 'must be a base64 or hex 32-byte key');
    }
  }
  let endpoint: Endpoint | undefined;
  if (typeof spec.endpoint === 'string') {
    endpoint = parseEndpoint(spec.endpoint);
    if (!endpoint)
      throw new WgValidationError('endpoint', `must be ip:port or [ipv6]:port (got ${JSON.stringify(spec.endpoint)})`);
  } else if (spec.endpoint !== undefined) endpoint = checkEndpoint(spec.endpoint, 'endpoint');
  const allowed = spec.podCIDRs.map((c, i) => canonicalCidr(c, `podCIDRs[${i}]`));
  if (spec.nodeEncryption) (spec.nodeIPs ?? []).forEach((ip, i) => allowed.push(canonicalCidr(ip, `nodeIPs[${i}]`)));
  const p: DesiredPeer = { publicKey, allowedIPs: [...new Set(allowed)] };
  if (endpoint) p.endpoint = endpoint;
  if (spec.persistentKeepalive !== undefined) p.persistentKeepalive = spec.persistentKeepalive;
  return p;
}

/** Options of diffPeers. */
export interface DiffOptions {
  /** Remove device peers that are not desired. Default true. */
  removeUnknown?: boolean;
}

function sameSet(a: readonly string[], b: ReadonlySet<string>): boolean {
  if (a.length !== b.size) return false;
  for (const x of a) if (!b.has(x)) return false;
  return true;
}

/**
 * One peer's change, or undefined when the device already matches. `current` must be
 * canonical (as parsed from the device, or as cached after a previous apply).
 */
export function diffPeer(want: DesiredPeer, current: WireGuardPeer | undefined): PeerConfig | undefined {
  const allowed = want.allowedIPs.map((c, i) => canonicalCidr(c, `allowedIPs[${i}]`));
  const keepalive = want.persistentKeepalive ?? 0;
  if (!current) {
    const add: PeerConfig = { publicKey: want.publicKey, allowedIPs: [...new Set(allowed)] };
    if (want.endpoint) add.endpoint = want.endpoint;
    if (keepalive !== 0) add.persistentKeepalive = keepalive;
    return add;
  }
  const upd: PeerConfig = { publicKey: want.publicKey, updateOnly: true };
  let changed = false;
  if (want.endpoint && !sameEndpoint(want.endpoint, current.endpoint)) {
    upd.endpoint = want.endpoint;
    changed = true;
  }
  if (keepalive !== current.persistentKeepalive) {
    upd.persistentKeepalive = keepalive;
    changed = true;
  }
  const wantSet = new Set(allowed);
  if (!sameSet(current.allowedIPs, wantSet)) {
    upd.replaceAllowedIPs = true;
    upd.allowedIPs = [...wantSet];
    changed = true;
  }
  return changed ? upd : undefined;
}

/**
 * The minimal change turning `current` (the device's peers) into `desired`: new peers are added,
 * changed ones updated in place (`updateOnly`, `replaceAllowedIPs` only when the set differs),
 * undesired ones removed. An unchanged peer produces nothing, so one changed peer gives a
 * one-peer config, never a rewrite of the whole set.
 * @throws WgValidationError on a duplicate public key or a bad CIDR.
 */
export function diffPeers(
  desired: readonly DesiredPeer[],
  current: readonly WireGuardPeer[],
  opts: DiffOptions = {},
): PeerConfig[] {
  const have = new Map<string, WireGuardPeer>();
  for (const p of current) have.set(p.publicKey.toBase64(), p);
  const seen = new Set<string>();
  const out: PeerConfig[] = [];
  desired.forEach((want, i) => {
    if (!(want?.publicKey instanceof Key)) throw new WgValidationError(`desired[${i}].publicKey`, 'must be a Key');
    const id = want.publicKey.toBase64();
    if (seen.has(id)) throw new WgValidationError(`desired[${i}].publicKey`, `duplicate public key ${id}`);
    seen.add(id);
    const c = diffPeer(want, have.get(id));
    if (c) out.push(c);
  });
  if (opts.removeUnknown !== false) {
    for (const [id, p] of have) if (!seen.has(id)) out.push({ publicKey: p.publicKey, remove: true });
  }
  return out;
}

/** Keepalive interval set for an instant while kicking a handshake (any non-zero value sends one). */
const HANDSHAKE_KICK_KEEPALIVE_S = 25;

/** What PeerReconciler needs from a client (WgClient fits). */
export interface PeerDeviceClient {
  device(name: string): Promise<{ peers: WireGuardPeer[] }>;
  configureDevice(name: string, config: DeviceConfig): Promise<void>;
}

/**
 * Keeps a device's peers equal to a desired set, writing only differences. It diffs against a
 * cache of what it last applied (refreshed from the device by `resync()`), so a single node event
 * costs one small `set`, not a read of every peer.
 */
export class PeerReconciler {
  private cache = new Map<string, WireGuardPeer>();
  /** Canonical allowed IP → base64 key of the cached peer holding it (WireGuard gives each to one peer). */
  private holders = new Map<string, string>();
  private synced = false;
  // Operations run one at a time: a resync after a daemon restart must not interleave with an
  // event's upsert (each would diff against a cache the other is changing).
  private queue: Promise<unknown> = Promise.resolve();

  private serial<T>(op: () => Promise<T>): Promise<T> {
    const run = this.queue.then(op, op);
    this.queue = run.catch(() => undefined);
    return run;
  }

  constructor(
    private readonly client: PeerDeviceClient,
    readonly device: string,
  ) {}

  /** Number of peers the reconciler believes the device has. */
  get size(): number {
    return this.cache.size;
  }

  /** Whether a full sync ran since construction / the last invalidate(). */
  get isSynced(): boolean {
    return this.synced;
  }

  /** Forgets the cache (e.g. the device was recreated); the next call re-reads the device. */
  invalidate(): void {
    this.cache.clear();
    this.holders.clear();
    this.synced = false;
  }

  /**
   * Reads the device and makes its peers exactly `desired` (stale peers removed unless
   * `removeUnknown` is false). Returns the change that was applied (empty when none).
   */
  sync(desired: readonly DesiredPeer[], opts: DiffOptions = {}): Promise<PeerConfig[]> {
    return this.serial(() => this.syncNow(desired, opts));
  }

  private async syncNow(desired: readonly DesiredPeer[], opts: DiffOptions): Promise<PeerConfig[]> {
    const dev = await this.client.device(this.device);
    this.setCache(dev.peers);
    this.synced = true;
    const change = diffPeers(desired, dev.peers, opts);
    await this.apply(change);
    return change;
  }

  /** Adds or updates one peer. Returns the change written (undefined = nothing to do). */
  upsert(want: DesiredPeer): Promise<PeerConfig | undefined> {
    return this.serial(async () => {
      if (!this.synced) await this.refresh();
      const change = diffPeer(want, this.cache.get(want.publicKey.toBase64()));
      if (change) await this.apply([change]);
      return change;
    });
  }

  /**
   * A node's new public key, known to be its own (signed with its previous key): the old peer goes
   * and the new one comes in one write, then the new peer is made to handshake at once. The node that changed its key cannot do that itself: its
   * initiations fail until its peers know the new key, and WireGuard retries only after
   * REKEY_TIMEOUT (5 s), so its traffic would stall that long. Turning persistent keepalive on
   * sends a keepalive immediately (wireguard-go and the kernel both do), and with no session yet
   * that keepalive starts a handshake; the configured keepalive is then put back.
   */
  replace(oldKey: Key, want: DesiredPeer): Promise<PeerConfig[]> {
    return this.serial(async () => {
      if (!this.synced) await this.refresh();
      const change: PeerConfig[] = [];
      if (this.cache.has(oldKey.toBase64()) && !oldKey.equals(want.publicKey)) change.push({ publicKey: oldKey, remove: true });
      const keepalive = want.persistentKeepalive ?? 0;
      const add = diffPeer(want, undefined) as PeerConfig;
      // A present peer (the same key came back) is rewritten from scratch so the kick applies.
      if (this.cache.has(want.publicKey.toBase64())) change.push({ publicKey: want.publicKey, remove: true });
      add.persistentKeepalive = keepalive === 0 ? HANDSHAKE_KICK_KEEPALIVE_S : keepalive;
      change.push(add);
      await this.apply(change);
      if (keepalive === 0) {
        const restore: PeerConfig = { publicKey: want.publicKey, updateOnly: true, persistentKeepalive: 0 };
        await this.apply([restore]);
        return [...change, restore];
      }
      return change;
    });
  }

  /**
   * Adds `want` as a pending peer: its endpoint, no allowed IPs (so it carries no traffic and the
   * peer holding the allowed IPs keeps them), keepalive off, then kicks a handshake (see `kick`).
   * A pending peer already on the device (an agent restart mid-switch) is updated in place.
   */
  addPending(want: DesiredPeer): Promise<void> {
    return this.serial(async () => {
      if (!this.synced) await this.refresh();
      const change = diffPeer(
        { publicKey: want.publicKey, allowedIPs: [], ...(want.endpoint ? { endpoint: want.endpoint } : {}) },
        this.cache.get(want.publicKey.toBase64()),
      );
      if (change) await this.apply([change]);
      await this.kickNow(want.publicKey);
    });
  }

  /**
   * Makes a peer with keepalive off start a handshake now: keepalive on for an instant sends a
   * keepalive (kernel and wireguard-go), which with no session starts a handshake; then off again.
   */
  kick(publicKey: Key): Promise<void> {
    return this.serial(() => this.kickNow(publicKey));
  }

  private async kickNow(publicKey: Key): Promise<void> {
    await this.apply([{ publicKey, updateOnly: true, persistentKeepalive: HANDSHAKE_KICK_KEEPALIVE_S }]);
    await this.apply([{ publicKey, updateOnly: true, persistentKeepalive: 0 }]);
  }

  /**
   * Completes a key switch in one device write: the new (pending) peer gets the allowed IPs, endpoint
   * and keepalive of `want`, then the old peer goes. The allowed IPs move before the removal, so
   * there is no instant with no peer routing them.
   */
  commitSwitch(oldKey: Key, want: DesiredPeer): Promise<PeerConfig[]> {
    return this.serial(async () => {
      if (!this.synced) await this.refresh();
      const current = this.cache.get(want.publicKey.toBase64());
      const change: PeerConfig[] = [];
      const upd = diffPeer(want, current);
      if (upd) change.push(upd);
      if (this.cache.has(oldKey.toBase64()) && !oldKey.equals(want.publicKey)) change.push({ publicKey: oldKey, remove: true });
      await this.apply(change);
      return change;
    });
  }

  /**
   * The key of a device peer other than `except` holding any of `allowedIPs` (canonical), or
   * undefined: after an agent restart, the peer a node had before its key changed.
   */
  holderOf(allowedIPs: readonly string[], except: Key): Promise<Key | undefined> {
    return this.serial(async () => {
      if (!this.synced) await this.refresh();
      // An index lookup: this runs on every node's first upsert, so a scan of all peers would make
      // programming 10,000 nodes quadratic.
      const skip = except.toBase64();
      for (const [i, c] of allowedIPs.entries()) {
        const id = this.holders.get(canonicalCidr(c, `allowedIPs[${i}]`));
        if (id !== undefined && id !== skip) return this.cache.get(id)?.publicKey;
      }
      return undefined;
    });
  }

  /** One device read: each peer's latest handshake (undefined = none yet), by base64 key. */
  async latestHandshakes(): Promise<Map<string, Date | undefined>> {
    const dev = await this.client.device(this.device);
    return new Map(dev.peers.map((p) => [p.publicKey.toBase64(), p.lastHandshake]));
  }

  /** Removes one peer; absent is not an error. Returns whether something was written. */
  remove(publicKey: Key): Promise<boolean> {
    return this.serial(async () => {
      if (!this.synced) await this.refresh();
      if (!this.cache.has(publicKey.toBase64())) return false;
      await this.apply([{ publicKey, remove: true }]);
      return true;
    });
  }

  private async refresh(): Promise<void> {
    const dev = await this.client.device(this.device);
    this.setCache(dev.peers);
    this.synced = true;
  }

  private async apply(change: PeerConfig[]): Promise<void> {
    if (change.length === 0) return;
    try {
      await this.client.configureDevice(this.device, { peers: change });
    } catch (e) {
      // Part of it may have been applied: trust the device next time.
      this.invalidate();
      throw e;
    }
    for (const c of change) {
      const id = c.publicKey.toBase64();
      const prev = this.cache.get(id);
      if (c.remove) {
        this.unindex(id, prev);
        this.cache.delete(id);
        continue;
      }
      const next: WireGuardPeer = prev ? { ...prev } : newPeer(c.publicKey, 1);
      if (c.endpoint) next.endpoint = c.endpoint;
      if (c.persistentKeepalive !== undefined) next.persistentKeepalive = c.persistentKeepalive;
      if (c.allowedIPs)
        next.allowedIPs = c.replaceAllowedIPs || !prev ? [...c.allowedIPs] : [...new Set([...next.allowedIPs, ...c.allowedIPs])];
      this.unindex(id, prev);
      this.cache.set(id, next);
      for (const a of next.allowedIPs) this.holders.set(a, id);
    }
  }

  private setCache(peers: readonly WireGuardPeer[]): void {
    this.cache = new Map(peers.map((p) => [p.publicKey.toBase64(), p]));
    this.holders = new Map(peers.flatMap((p) => p.allowedIPs.map((a) => [a, p.publicKey.toBase64()] as [string, string])));
  }

  private unindex(id: string, peer: WireGuardPeer | undefined): void {
    for (const a of peer?.allowedIPs ?? []) if (this.holders.get(a) === id) this.holders.delete(a);
  }
}
