import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type {
  AgentConfig,
  BackendPeerStatus,
  BackendStatus,
  EncryptionBackend,
  KeyRotationResult,
  LocalMaterial,
  Logger,
  PeerAnnotationSpec,
  PeerNode,
  PeerProgramResult,
  Steering,
} from '@veil/agent-core';
import { backendSection } from '@veil/agent-core';
import { NetlinkSocket, getLink } from '@veil/netlink';
import { Gauge, type Registry } from 'prom-client';
import { type WireGuardConfig, wireguardConfig } from './config.js';
import { WgBackendError } from './errors.js';
import { KeyStore, writeFileAtomic0600 } from './keys.js';
import { PeerReconciler, type DesiredPeer } from './peers.js';
import { setupDevice, type WgDeviceHandle } from './device.js';
import { Key } from './wgtypes/key.js';
import { WG_RUN_DIR, socketAnswers } from './userspace/supervisor.js';
import type { WireGuardDevice } from './wgtypes/types.js';
import { xeddsaSign, xeddsaVerify } from './xeddsa.js';

/** Annotation carrying a node's WireGuard public key (base64). */
export const PUBLIC_KEY_ANNOTATION = 'veil.io/wireguard-public-key';

/**
 * A node's new public key waiting for its first handshake before it takes the node's traffic
 * (issue 12): anyone who can edit a Node can publish a key, only the node holding the private key
 * can complete a handshake with it.
 */
interface PendingSwitch {
  /** The node's new peer (allowed IPs etc. as it will be programmed once switched). */
  want: DesiredPeer;
  /** When the key was first seen (ms since epoch). */
  since: number;
  /** When the handshake was last kicked. */
  kickedAt: number;
}

/** Poll interval while a key switch waits for its handshake: fast at first, then backing off. */
export function pendingPollMs(ageMs: number): number {
  if (ageMs < 2000) return 10;
  return Math.min(1000, Math.round(ageMs / 10));
}

/** WireGuard retries a handshake every 5 s only for 90 s: a pending key is kicked again this often. */
const PENDING_REKICK_MS = 5000;

/**
 * Annotation carrying the node's current public key signed with its previous one (XEdDSA, base64),
 * published after a rotation: peers switch to a key signed this way at once, and wait for a
 * handshake with any other new key (issue 12).
 */
export const KEY_SIGNATURE_ANNOTATION = 'veil.io/wireguard-key-signature';
/** File in `<stateDir>/wireguard` keeping the signature across restarts: `{ publicKey, signature }`. */
const SIGNATURE_FILE = 'wireguard.key.sig';

/** What a node's previous key signs: the node's name and its new public key. */
export function rotationMessage(node: string, publicKey: Key): Buffer {
  return Buffer.concat([Buffer.from(`veil.io/wireguard-key-rotation\0${node}\0`), publicKey.bytes()]);
}

/** Deployment knobs that are not part of the agent config (tests, several nodes on one host). */
export interface WireGuardBackendOptions {
  /** Interface name. Default `veil_wg0`. */
  device?: string;
  /**
   * wireguard-go socket directory. Default `/run/wireguard`, where `wg show` looks. Another
   * directory is bind-mounted over /run/wireguard in the daemon's own mount namespace (tests, or
   * several agents on one host without a mount namespace each).
   */
  socketDir?: string;
  /** Network namespace (name under /run/netns) holding the device. Default: the agent's. */
  netns?: string;
  /** Use kernel WireGuard when present. Default true. */
  preferKernel?: boolean;
}

function validatePublicKey(value: string): string | undefined {
  try {
    Key.fromBase64(value);
    return undefined;
  } catch {
    return 'must be a base64 WireGuard public key (44 characters)';
  }
}

/** The backend's WireGuard device unless `options.device` names another. */
export const DEFAULT_DEVICE = 'veil_wg0';

/**
 * The WireGuard EncryptionBackend: one device (kernel WireGuard or supervised wireguard-go),
 * the node key from the state dir, one peer per remote node keyed by its published public key.
 * Every write is a diff against what is programmed (PeerReconciler); `init` adopts an existing
 * device and `close` leaves it in place for the next agent.
 */
export class WireGuardBackend implements EncryptionBackend {
  readonly name = 'wireguard';
  readonly peerAnnotations: readonly PeerAnnotationSpec[] = [
    { key: PUBLIC_KEY_ANNOTATION, required: true, unique: true, validate: validatePublicKey },
    // Any value is accepted: one that does not verify only means the new key waits for a handshake.
    { key: KEY_SIGNATURE_ANNOTATION, required: false, unique: false, validate: () => undefined },
  ];
  private readonly log: Logger;
  private readonly deviceName: string;
  /** The validated `encryption.wireguard` section. */
  private readonly wg: WireGuardConfig;
  private keys: KeyStore | undefined;
  /** The current key signed with the previous one (base64), once this node rotated. */
  private keySignature: string | undefined;
  private handle: WgDeviceHandle | undefined;
  private reconciler: PeerReconciler | undefined;
  private ifindex = 0;
  /** node name → what was programmed for it. */
  private readonly peers = new Map<string, DesiredPeer>();
  /** node name → its new key, not yet handshaken (the old peer keeps the traffic meanwhile). */
  private readonly pending = new Map<string, PendingSwitch>();
  private pollTimer: NodeJS.Timeout | undefined;
  private closed = false;
  private readonly steeringListeners = new Set<(s: Steering) => void>();

  constructor(
    private readonly config: AgentConfig,
    logger: Logger,
    private readonly options: WireGuardBackendOptions = {},
  ) {
    this.log = logger.child({ component: 'backend-wireguard' });
    this.deviceName = options.device ?? DEFAULT_DEVICE;
    this.wg = backendSection(config, wireguardConfig);
  }

  async init(): Promise<readonly string[]> {
    const wg = this.wg;
    const dir = join(this.config.stateDir, 'wireguard');
    this.keys = await KeyStore.open({ dir });
    for (const w of this.keys.warnings) this.log.warn({ dir }, w);
    this.keySignature = await this.readSignature(dir);
    this.handle = await setupDevice({
      name: this.deviceName,
      privateKey: this.keys.privateKey(),
      listenPort: wg.port,
      ...(wg.mtu ? { mtu: wg.mtu } : { underlay: { address: '0.0.0.0' } }), // the default route's link
      userspaceFallback: wg.userspaceFallback,
      socketDir: await this.socketDir(dir),
      ...(this.options.netns ? { netns: this.options.netns } : {}),
      ...(this.options.preferKernel === false ? { preferKernel: false } : {}),
      onRestart: async () => {
        // A fresh wireguard-go: new TUN (new ifindex), no peers. Put every known peer back.
        this.log.warn({ device: this.deviceName }, 'wireguard-go restarted; re-programming peers');
        const before = this.ifindex;
        await this.refreshIfindex();
        if (this.ifindex !== before) for (const l of this.steeringListeners) l(this.steering());
        this.reconciler?.invalidate();
        await this.reconciler?.sync(this.desiredPeers(), { removeUnknown: false });
        for (const p of this.pending.values()) await this.reconciler?.kick(p.want.publicKey).catch(() => undefined);
      },
    });
    this.reconciler = new PeerReconciler(this.handle.client, this.deviceName);
    await this.refreshIfindex();
    for (const w of this.handle.warnings) this.log.warn({ device: this.deviceName }, w);
    this.log.info(
      {
        device: this.deviceName,
        driver: this.handle.driver,
        adopted: this.handle.adopted,
        mtu: this.handle.mtu,
        publicKey: this.keys.publicKey.toBase64(),
        keyCreated: this.keys.created,
      },
      'wireguard device ready',
    );
    // Peers already on the device are kept (no teardown on restart); they are matched to nodes
    // by public key as nodes arrive, and prune() drops the ones no node claims. WireGuard state
    // carries no node names, so none can be reported as adopted here.
    return [];
  }

  /**
   * Where wireguard-go's socket is: the option, else /run/wireguard. An agent before issue 14 kept
   * it in `<stateDir>/wireguard/run`: a daemon still answering there (an upgrade with the device
   * up) is adopted and supervised where it is rather than replaced, so no packet is lost. Once no
   * daemon answers there when an agent starts (after a reboot), /run/wireguard is used.
   */
  private async socketDir(stateWgDir: string): Promise<string> {
    if (this.options.socketDir !== undefined) return this.options.socketDir;
    const legacy = join(stateWgDir, 'run');
    const sock = `${this.deviceName}.sock`;
    if (!(await socketAnswers(join(WG_RUN_DIR, sock))) && (await socketAnswers(join(legacy, sock)))) {
      this.log.warn(
        { device: this.deviceName, socketDir: legacy },
        `adopting wireguard-go where an earlier agent put its socket; \`wg show\` looks in ${WG_RUN_DIR}, used once this daemon is gone at an agent start (a reboot)`,
      );
      return legacy;
    }
    return WG_RUN_DIR;
  }

  private async readSignature(dir: string): Promise<string | undefined> {
    try {
      const saved = JSON.parse(await readFile(join(dir, SIGNATURE_FILE), 'utf8')) as { publicKey?: unknown; signature?: unknown };
      // A signature of another key (the key file was replaced since) is not published.
      if (saved.publicKey === this.keys?.publicKey.toBase64() && typeof saved.signature === 'string') return saved.signature;
    } catch {
      /* none yet, or unreadable: nothing to publish, peers then wait for a handshake */
    }
    return undefined;
  }

  /** Whether `sig` is `node`'s new key signed with the key this agent has for it. */
  private signedRotation(node: string, prev: Key, next: Key, sig: string | undefined): boolean {
    if (!sig) return false;
    return xeddsaVerify(prev, rotationMessage(node, next), Buffer.from(sig, 'base64'));
  }

  async upsertPeer(peer: PeerNode): Promise<PeerProgramResult | void> {
    const rec = this.ready();
    const keyText = peer.backend[PUBLIC_KEY_ANNOTATION];
    if (keyText === undefined) throw new WgBackendError(`peer ${peer.name} has no ${PUBLIC_KEY_ANNOTATION}`);
    const publicKey = Key.fromBase64(keyText, PUBLIC_KEY_ANNOTATION);
    if (this.keys?.publicKey.equals(publicKey))
      throw new WgBackendError(`peer ${peer.name} publishes this node's own public key`);
    const endpointIp = peer.internalIPv4 ?? peer.internalIPv6;
    const allowed = peer.podCIDRs.map((c) => c.text);
    if (this.config.encryption.nodeEncryption) {
      if (peer.internalIPv4) allowed.push(`${peer.internalIPv4}/32`);
      if (peer.internalIPv6) allowed.push(`${peer.internalIPv6}/128`);
    }
    const want: DesiredPeer = { publicKey, allowedIPs: allowed, persistentKeepalive: this.wg.persistentKeepalive };
    if (endpointIp) want.endpoint = { address: endpointIp, port: this.wg.port };
    let prev = this.peers.get(peer.name);
    if (!prev) {
      // First sight of this node since the agent started: a device peer with another key holding its
      // allowed IPs is what it had before (the key changed while this agent was down, or mid-switch).
      const held = await rec.holderOf(allowed, publicKey);
      if (held) {
        prev = { ...want, publicKey: held };
        this.peers.set(peer.name, prev);
      }
    }
    if (!prev || prev.publicKey.equals(publicKey)) {
      await rec.upsert(want);
      this.peers.set(peer.name, want);
      // The key went back to the one in use (its owner restored it) before the new one handshook.
      await this.dropPending(peer.name, 'the key in use is published again, the new one never handshook');
      return {};
    }
    const cur = this.pending.get(peer.name);
    if (this.signedRotation(peer.name, prev.publicKey, publicKey, peer.backend[KEY_SIGNATURE_ANNOTATION])) {
      // The node's own rotation (its previous key signed the new one): switch now, and start the
      // handshake from this side (see PeerReconciler.replace).
      if (cur) {
        this.pending.delete(peer.name);
        if (!cur.want.publicKey.equals(publicKey)) await rec.remove(cur.want.publicKey);
      }
      await rec.replace(prev.publicKey, want);
      this.peers.set(peer.name, want);
      this.log.info({ peer: peer.name, publicKey: publicKey.toBase64() }, 'wireguard key switched: signed with the previous key');
      return {};
    }
    // A new key for a known node with no signature by its previous key: a re-imaged node, or a key
    // someone else published. Until a handshake with the new key proves its holder is there, the
    // old peer keeps the allowed IPs (and the traffic).
    const old: DesiredPeer = { ...want, publicKey: prev.publicKey };
    await rec.upsert(old); // allowed IPs / endpoint changes still apply, on the old key
    this.peers.set(peer.name, old);
    if (cur && cur.want.publicKey.equals(publicKey)) {
      cur.want = want;
      return {};
    }
    await this.dropPending(peer.name, 'another key was published before this one handshook');
    const now = Date.now();
    this.pending.set(peer.name, { want, since: now, kickedAt: now });
    await rec.addPending(want);
    this.log.info(
      { peer: peer.name, publicKey: publicKey.toBase64(), previousKey: prev.publicKey.toBase64() },
      'wireguard key switch pending: the old key keeps the traffic until the new one handshakes',
    );
    this.schedulePoll();
    return {};
  }

  /** Forgets `node`'s pending key, if any, and removes it from the device, saying why. */
  private async dropPending(node: string, why: string): Promise<void> {
    const p = this.pending.get(node);
    if (!p) return;
    this.pending.delete(node);
    await this.ready().remove(p.want.publicKey);
    this.log.info(
      { peer: node, publicKey: p.want.publicKey.toBase64(), waitedMs: Date.now() - p.since },
      `wireguard key switch dropped: ${why}`,
    );
  }

  /** Active peers as programmed, plus pending keys with no allowed IPs (what the device should hold). */
  private desiredPeers(): DesiredPeer[] {
    const out = [...this.peers.values()];
    for (const p of this.pending.values()) {
      const pend: DesiredPeer = { publicKey: p.want.publicKey, allowedIPs: [] };
      if (p.want.endpoint) pend.endpoint = p.want.endpoint;
      out.push(pend);
    }
    return out;
  }

  /** Polls while switches are pending: one device read per tick for all of them. */
  private schedulePoll(): void {
    if (this.closed || this.pollTimer || this.pending.size === 0) return;
    const newest = Math.max(...[...this.pending.values()].map((p) => p.since));
    this.pollTimer = setTimeout(
      () => {
        void this.pollPending().finally(() => {
          this.pollTimer = undefined;
          this.schedulePoll();
        });
      },
      pendingPollMs(Date.now() - newest),
    );
    this.pollTimer.unref();
  }

  private async pollPending(): Promise<void> {
    const rec = this.reconciler;
    if (!rec || this.pending.size === 0) return;
    let hs: Map<string, Date | undefined>;
    try {
      hs = await rec.latestHandshakes();
    } catch (e) {
      this.log.warn({ device: this.deviceName, err: (e as Error).message }, 'reading handshakes for pending key switches failed');
      return;
    }
    for (const [name, p] of [...this.pending]) {
      if (this.pending.get(name) !== p) continue; // changed by an upsert meanwhile
      const key = p.want.publicKey;
      if (hs.get(key.toBase64()) !== undefined) {
        const old = this.peers.get(name);
        // Recorded before the write, so an upsert arriving meanwhile compares against the new key.
        this.pending.delete(name);
        this.peers.set(name, p.want);
        try {
          if (old) await rec.commitSwitch(old.publicKey, p.want);
          else await rec.upsert(p.want);
          this.log.info(
            { peer: name, publicKey: key.toBase64(), waitedMs: Date.now() - p.since },
            'wireguard key switch done: the new key handshook and now carries the traffic',
          );
        } catch (e) {
          if (old) this.peers.set(name, old);
          if (!this.pending.has(name)) this.pending.set(name, p);
          this.log.warn({ peer: name, err: (e as Error).message }, 'wireguard key switch failed; retrying');
        }
      } else if (Date.now() - p.kickedAt >= PENDING_REKICK_MS) {
        p.kickedAt = Date.now();
        await rec
          .kick(key)
          .catch((e: unknown) => this.log.warn({ peer: name, err: (e as Error).message }, 'kicking a handshake failed'));
      }
    }
  }

  async removePeer(name: string): Promise<void> {
    const rec = this.ready();
    const pend = this.pending.get(name);
    if (pend) {
      this.pending.delete(name);
      await rec.remove(pend.want.publicKey);
    }
    const prev = this.peers.get(name);
    if (!prev) return;
    await rec.remove(prev.publicKey);
    this.peers.delete(name);
  }

  async prune(keep: ReadonlySet<string>): Promise<readonly string[]> {
    const rec = this.ready();
    const removed = [...this.peers.keys()].filter((n) => !keep.has(n));
    for (const n of removed) this.peers.delete(n);
    for (const n of [...this.pending.keys()]) if (!keep.has(n)) this.pending.delete(n);
    // A full diff: also drops device peers no node claims (left by a previous agent).
    await rec.sync(this.desiredPeers());
    return removed;
  }

  /**
   * New node key: written to the state dir (the old one kept aside until the device has the new
   * one), set on the device, returned as public material for the agent to publish. WireGuard has
   * one key per device, so peers re-handshake once they have seen the new annotation.
   */
  async rotateKeys(): Promise<KeyRotationResult> {
    if (!this.keys || !this.handle) throw new WgBackendError('rotateKeys() before init()');
    const previous = this.keys.privateKey();
    await this.keys.rotate();
    // Signed and saved before the device uses the new key: peers switch at once on a signed key.
    const signature = xeddsaSign(previous, rotationMessage(this.config.nodeName, this.keys.publicKey)).toString('base64');
    await writeFileAtomic0600(
      join(this.config.stateDir, 'wireguard', SIGNATURE_FILE),
      JSON.stringify({ publicKey: this.keys.publicKey.toBase64(), signature }),
    );
    this.keySignature = signature;
    await this.handle.setPrivateKey(this.keys.privateKey());
    await this.keys.confirmRotation();
    this.log.info({ device: this.deviceName, publicKey: this.keys.publicKey.toBase64() }, 'wireguard key rotated');
    return { material: this.localMaterial() };
  }

  steering(): Steering {
    if (!this.ifindex) throw new WgBackendError('steering() before init()');
    // The device MTU bounds what the BPF redirect may hand it (bpf_redirect bypasses PMTU checks).
    return {
      kind: 'redirect',
      ifindex: this.ifindex,
      udpPort: this.wg.port,
      ...(this.handle?.mtu ? { mtu: this.handle.mtu } : {}),
    };
  }

  /**
   * Called when steering() changes after init: a restarted wireguard-go has a new TUN, hence a new
   * ifindex, and the datapath must redirect there (EncryptionBackend.onSteeringChange: the agent
   * forwards each change to Datapath.setSteering). Returns an unsubscribe function.
   */
  onSteeringChange(listener: (steering: Steering) => void): () => void {
    this.steeringListeners.add(listener);
    return () => this.steeringListeners.delete(listener);
  }

  localMaterial(): LocalMaterial {
    if (!this.keys) throw new WgBackendError('localMaterial() before init()');
    return {
      [PUBLIC_KEY_ANNOTATION]: this.keys.publicKey.toBase64(),
      ...(this.keySignature ? { [KEY_SIGNATURE_ANNOTATION]: this.keySignature } : {}),
    };
  }

  async status(): Promise<BackendStatus> {
    const errors: string[] = [];
    const peers: BackendPeerStatus[] = [];
    const pub = this.keys?.publicKey;
    const details: Record<string, unknown> = {
      interface: this.deviceName,
      mtu: this.handle?.mtu,
      publicKey: pub?.toBase64(),
      // A short fingerprint of the PUBLIC key, to compare nodes at a glance.
      publicKeyFingerprint: pub ? createHash('sha256').update(pub.bytes()).digest('hex').slice(0, 16) : undefined,
    };
    if (this.handle) {
      try {
        const dev = await this.handle.client.device(this.deviceName);
        details.listenPort = dev.listenPort;
        const byKey = this.nodesByKey();
        const pendingKeys = new Set([...this.pending.values()].map((p) => p.want.publicKey.toBase64()));
        for (const p of dev.peers) {
          if (pendingKeys.has(p.publicKey.toBase64())) continue; // told on the node's active line below
          const hs = p.lastHandshake
            ? `handshake ${Math.round((Date.now() - p.lastHandshake.getTime()) / 1000)}s ago`
            : 'no handshake yet';
          peers.push({
            name: byKey.get(p.publicKey.toBase64()) ?? `unclaimed ${p.publicKey.toBase64()}`,
            detail: hs,
            stats: { rxBytes: p.rxBytes, txBytes: p.txBytes },
          });
        }
        // One line per node (the agent joins backend lines to nodes by name): a pending key is added
        // to the line of the key that still carries the traffic.
        for (const [name, pend] of this.pending) {
          const note = `key switch pending ${Math.round((Date.now() - pend.since) / 1000)}s: no handshake with the new key yet`;
          const i = peers.findIndex((x) => x.name === name);
          const line = peers[i];
          if (line) peers[i] = { ...line, detail: `${line.detail ?? ''}; ${note}` };
          else peers.push({ name, detail: note });
        }
      } catch (e) {
        errors.push(`reading ${this.deviceName}: ${(e as Error).message}`);
      }
      const sup = this.handle.supervisor ?? this.handle.watchdog;
      if (sup) {
        details.wireguardGoPid = sup.pid;
        details.restarts = sup.restarts;
        if (this.handle.watchdog) details.wireguardGoAdopted = true;
      }
      errors.push(...this.handle.warnings);
      details.keySwitchesPending = [...this.pending].map(([peer, p]) => ({
        peer,
        publicKey: p.want.publicKey.toBase64(),
        since: new Date(p.since).toISOString(),
      }));
    } else errors.push('not initialised');
    return {
      backend: this.name,
      driver: this.handle?.driver === 'kernel' ? 'kernel' : 'userspace (wireguard-go)',
      peers,
      errors,
      details,
    };
  }

  /**
   * WireGuard metrics in the spirit of Calico's `wireguard_*`: device meta, peers, per-peer latest
   * handshake and bytes. Read from the device at scrape time (one read per scrape, shared by all
   * gauges), labelled by node name and public key — never the private key.
   */
  registerMetrics(registry: Registry): void {
    let cached: { at: number; dev: Promise<WireGuardDevice | undefined> } | undefined;
    const read = (): Promise<WireGuardDevice | undefined> => {
      if (!cached || Date.now() - cached.at > 1000) {
        const dev = this.handle ? this.handle.client.device(this.deviceName).catch(() => undefined) : Promise.resolve(undefined);
        cached = { at: Date.now(), dev };
      }
      return cached.dev;
    };
    const nodeOf = (): Map<string, string> => this.nodesByKey();
    const pendingCount = (): number => this.pending.size;
    const perPeer = (name: string, help: string, value: (p: WireGuardDevice['peers'][number]) => number): void => {
      new Gauge({
        name,
        help,
        labelNames: ['peer', 'public_key'],
        registers: [registry],
        async collect() {
          this.reset();
          const dev = await read();
          const names = nodeOf();
          for (const p of dev?.peers ?? []) {
            const key = p.publicKey.toBase64();
            this.set({ peer: names.get(key) ?? '', public_key: key }, value(p));
          }
        },
      });
    };
    // collect() runs with `this` bound to the gauge; the driver is read through a closure.
    const driverOf = (): 'kernel' | 'userspace' => (this.handle?.driver === 'kernel' ? 'kernel' : 'userspace');
    new Gauge({
      name: 'veil_wireguard_meta',
      help: 'WireGuard device info (value 1): device, driver (kernel|userspace), listen port, public key',
      labelNames: ['device', 'driver', 'listen_port', 'public_key'],
      registers: [registry],
      async collect() {
        this.reset();
        const dev = await read();
        if (!dev) return;
        const driver = driverOf();
        this.set(
          { device: dev.name, driver, listen_port: String(dev.listenPort), public_key: dev.publicKey?.toBase64() ?? '' },
          1,
        );
      },
    });
    new Gauge({
      name: 'veil_wireguard_peers',
      help: 'Peers configured on the WireGuard device',
      registers: [registry],
      async collect() {
        this.set((await read())?.peers.length ?? 0);
      },
    });
    new Gauge({
      name: 'veil_wireguard_key_switch_pending',
      help: 'Nodes whose newly published key waits for its first handshake (the old key keeps the traffic meanwhile)',
      registers: [registry],
      collect() {
        this.set(pendingCount());
      },
    });
    perPeer('veil_wireguard_latest_handshake_seconds', 'Unix time of the latest handshake with the peer (0 = never)', (p) =>
      p.lastHandshake ? Math.floor(p.lastHandshake.getTime() / 1000) : 0,
    );
    perPeer('veil_wireguard_received_bytes', 'Bytes received from the peer', (p) => p.rxBytes);
    perPeer('veil_wireguard_sent_bytes', 'Bytes sent to the peer', (p) => p.txBytes);
  }

  /** base64 key → node name, for active and pending keys. */
  private nodesByKey(): Map<string, string> {
    const out = new Map([...this.peers].map(([n, p]) => [p.publicKey.toBase64(), n]));
    for (const [n, p] of this.pending) out.set(p.want.publicKey.toBase64(), n);
    return out;
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.pollTimer) clearTimeout(this.pollTimer);
    this.pollTimer = undefined;
    // Handles only: the device (and a wireguard-go it started) stay for the next agent to adopt.
    await this.handle?.close();
    this.handle = undefined;
  }

  /** Stops a wireguard-go this backend started and forgets the device (tests, uninstall). */
  async destroy(): Promise<void> {
    this.closed = true;
    if (this.pollTimer) clearTimeout(this.pollTimer);
    this.pollTimer = undefined;
    await this.handle?.close({ stopDaemon: true });
    this.handle = undefined;
  }

  private ready(): PeerReconciler {
    if (!this.reconciler) throw new WgBackendError('backend used before init()');
    return this.reconciler;
  }

  private async refreshIfindex(): Promise<void> {
    const sock = NetlinkSocket.open('ROUTE', this.options.netns ? { netns: this.options.netns } : {});
    try {
      this.ifindex = (await getLink(sock, this.deviceName))?.index ?? 0;
    } finally {
      sock.close();
    }
  }
}
