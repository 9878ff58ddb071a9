import { createHash } from 'node:crypto';
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
import { KeyStore } from './keys.js';
import { PeerReconciler, type DesiredPeer } from './peers.js';
import { setupDevice, type WgDeviceHandle } from './device.js';
import { Key } from './wgtypes/key.js';
import { WG_RUN_DIR, socketAnswers } from './userspace/supervisor.js';
import type { WireGuardDevice } from './wgtypes/types.js';

/** Annotation carrying a node's WireGuard public key (base64). */
export const PUBLIC_KEY_ANNOTATION = 'veil.io/wireguard-public-key';

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
  ];
  private readonly log: Logger;
  private readonly deviceName: string;
  /** The validated `encryption.wireguard` section. */
  private readonly wg: WireGuardConfig;
  private keys: KeyStore | undefined;
  private handle: WgDeviceHandle | undefined;
  private reconciler: PeerReconciler | undefined;
  private ifindex = 0;
  /** node name → what was programmed for it. */
  private readonly peers = new Map<string, DesiredPeer>();
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
        await this.reconciler?.sync([...this.peers.values()], { removeUnknown: false });
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
    const prev = this.peers.get(peer.name);
    // A new key for a known node (a rotation, or its owner restoring it): the old peer must go, or it
    // would keep the allowed IPs, and this side starts the handshake (see PeerReconciler.replace).
    if (prev && !prev.publicKey.equals(publicKey)) await rec.replace(prev.publicKey, want);
    else await rec.upsert(want);
    this.peers.set(peer.name, want);
    return {};
  }

  async removePeer(name: string): Promise<void> {
    const rec = this.ready();
    const prev = this.peers.get(name);
    if (!prev) return;
    await rec.remove(prev.publicKey);
    this.peers.delete(name);
  }

  async prune(keep: ReadonlySet<string>): Promise<readonly string[]> {
    const rec = this.ready();
    const removed = [...this.peers.keys()].filter((n) => !keep.has(n));
    for (const n of removed) this.peers.delete(n);
    // A full diff: also drops device peers no node claims (left by a previous agent).
    await rec.sync([...this.peers.values()]);
    return removed;
  }

  /**
   * New node key: written to the state dir (the old one kept aside until the device has the new
   * one), set on the device, returned as public material for the agent to publish. WireGuard has
   * one key per device, so peers re-handshake once they have seen the new annotation.
   */
  async rotateKeys(): Promise<KeyRotationResult> {
    if (!this.keys || !this.handle) throw new WgBackendError('rotateKeys() before init()');
    await this.keys.rotate();
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
    return { [PUBLIC_KEY_ANNOTATION]: this.keys.publicKey.toBase64() };
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
        const byKey = new Map([...this.peers].map(([n, p]) => [p.publicKey.toBase64(), n]));
        for (const p of dev.peers) {
          const hs = p.lastHandshake
            ? `handshake ${Math.round((Date.now() - p.lastHandshake.getTime()) / 1000)}s ago`
            : 'no handshake yet';
          peers.push({
            name: byKey.get(p.publicKey.toBase64()) ?? `unclaimed ${p.publicKey.toBase64()}`,
            detail: hs,
            stats: { rxBytes: p.rxBytes, txBytes: p.txBytes },
          });
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
    const nodeOf = (): Map<string, string> => new Map([...this.peers].map(([n, p]) => [p.publicKey.toBase64(), n]));
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
    perPeer('veil_wireguard_latest_handshake_seconds', 'Unix time of the latest handshake with the peer (0 = never)', (p) =>
      p.lastHandshake ? Math.floor(p.lastHandshake.getTime() / 1000) : 0,
    );
    perPeer('veil_wireguard_received_bytes', 'Bytes received from the peer', (p) => p.rxBytes);
    perPeer('veil_wireguard_sent_bytes', 'Bytes sent to the peer', (p) => p.txBytes);
  }

  async close(): Promise<void> {
    // Handles only: the device (and a wireguard-go it started) stay for the next agent to adopt.
    await this.handle?.close();
    this.handle = undefined;
  }

  /** Stops a wireguard-go this backend started and forgets the device (tests, uninstall). */
  async destroy(): Promise<void> {
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
