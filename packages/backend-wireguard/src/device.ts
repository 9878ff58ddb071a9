import {
  NetlinkSocket,
  createWireguard,
  getLink,
  listRoutes,
  parseIp,
  parsePrefix,
  readSysctl,
  setLinkMtu,
  setLinkUp,
  setRpFilter,
} from '@veil/netlink';
import { WgValidationError, WireGuardNotAvailableError } from './errors.js';
import { KernelDriver } from './wgclient/kernel/driver.js';
import { WgClient } from './wgclient/client.js';
import type { DriverKind } from './wgclient/driver.js';
import { UserspaceDriver } from './wgclient/userspace/driver.js';
import { Key } from './wgtypes/key.js';
import type { DeviceConfig } from './wgtypes/types.js';
import { WG_RUN_DIR, WireGuardGoSupervisor, findExecutable, socketAnswers, type BackoffOptions } from './userspace/supervisor.js';

/** WireGuard's per-packet overhead on an IPv6 underlay (40 IP + 8 UDP + 32 WireGuard). */
export const WG_OVERHEAD = 80;
const DEFAULT_UNDERLAY_MTU = 1500;

/** Options of setupDevice. */
export interface DeviceSetupOptions {
  /** Interface name, e.g. `veil_wg0`. */
  name: string;
  privateKey: Key;
  /** UDP listen port (0 = random). */
  listenPort: number;
  /** fwmark on the device's own UDP packets (so policy routing can keep them off the tunnel). */
  fwmark?: number;
  /** Explicit MTU; default: underlay MTU − 80. */
  mtu?: number;
  /** How to find the underlay MTU: the link named `device`, or the route towards `address`. */
  underlay?: { device?: string; address?: string };
  /**
   * rp_filter on the WireGuard device: 'disable' (default) sets it to 0 there; the effective value
   * is max(all, dev), so `all` must be 0 too, or the BPF from-tunnel hop must deliver decrypted
   * packets itself. 'keep' leaves sysctls alone.
   */
  rpFilter?: 'disable' | 'keep';
  /** Use wireguard-go when the kernel has no WireGuard. Default true. */
  userspaceFallback?: boolean;
  /** Directory of wireguard-go sockets. Default /run/wireguard (where `wg` looks). */
  socketDir?: string;
  /** Network namespace (name under /run/netns) to work in. Default: the caller's. */
  netns?: string;
  /** wireguard-go executable. Default `wireguard-go`. */
  wireguardGo?: string;
  backoff?: BackoffOptions;
  /** Called after wireguard-go was restarted and the base config re-applied (re-push peers here). */
  onRestart?: () => Promise<void> | void;
  /** Use kernel WireGuard when available. Default true (tests may force userspace). */
  preferKernel?: boolean;
}

/** A set-up device. `close()` releases handles; `destroy()` also removes the device. */
export interface WgDeviceHandle {
  readonly name: string;
  readonly driver: DriverKind;
  /** True when the device existed before (kernel link or a live userspace socket) and was adopted. */
  readonly adopted: boolean;
  readonly mtu: number;
  readonly client: WgClient;
  /** The supervisor, when this handle started wireguard-go. */
  readonly supervisor: WireGuardGoSupervisor | undefined;
  /**
   * The supervisor of an adopted wireguard-go (started by an earlier agent): it restarts the
   * daemon if it dies, like `supervisor` does for one this handle started.
   */
  readonly watchdog: WireGuardGoSupervisor | undefined;
  /** Problems worth reporting (e.g. rp_filter on `all` is not 0). Never contains keys. */
  readonly warnings: readonly string[];
  /** Replaces the device's private key (also for re-application after a wireguard-go restart). */
  setPrivateKey(key: Key): Promise<void>;
  /**
   * Releases the client. The device stays; a wireguard-go this handle started keeps running
   * unsupervised (for the next agent to adopt), or is stopped with `stopDaemon`.
   */
  close(opts?: { stopDaemon?: boolean }): Promise<void>;
}

function routeSocket(netns: string | undefined): NetlinkSocket {
  return NetlinkSocket.open('ROUTE', netns ? { netns } : {});
}

function contains(prefix: string, addr: Buffer, family: 4 | 6): number {
  if (prefix === 'default') return 0;
  const p = parsePrefix(prefix, 'route');
  if (p.family !== family) return -1;
  for (let bit = 0; bit < p.prefixLen; bit++) {
    const mask = 0x80 >> (bit % 8);
    if (((p.bytes[bit >> 3] as number) & mask) !== ((addr[bit >> 3] as number) & mask)) return -1;
  }
  return p.prefixLen;
}

/**
 * The underlay MTU: the MTU of `device`, or of the route (RTAX_MTU) / output link used to reach
 * `address` (longest prefix match in the main table). Undefined when it cannot be found.
 */
export async function underlayMtu(underlay: { device?: string; address?: string }, netns?: string): Promise<number | undefined> {
  const sock = routeSocket(netns);
  try {
    if (underlay.device) return (await getLink(sock, underlay.device))?.mtu;
    if (!underlay.address) return undefined;
    let ip;
    try {
      ip = parseIp(underlay.address, 'underlay.address');
    } catch {
      throw new WgValidationError('underlay.address', `must be an IP address (got ${JSON.stringify(underlay.address)})`);
    }
    let best: { len: number; mtu: number | undefined; oif: number | undefined } | undefined;
    for (const r of await listRoutes(sock, { family: ip.family })) {
      if (r.type !== 1) continue; // unicast only
      const len = contains(r.dst, ip.bytes, ip.family);
      if (len >= 0 && (!best || len > best.len)) best = { len, mtu: r.mtu, oif: r.oif };
    }
    if (!best) return undefined;
    if (best.mtu) return best.mtu;
    return best.oif === undefined ? undefined : (await getLink(sock, best.oif))?.mtu;
  } finally {
    sock.close();
  }
}

/**
 * Creates or adopts the WireGuard device, idempotently:
 * - kernel WireGuard when the `wireguard` genl family exists: `ip link add <name> type wireguard`
 *   unless a wireguard link of that name exists;
 * - otherwise, with `userspaceFallback`, wireguard-go under a supervisor (adopting a daemon that
 *   already answers on the socket);
 * - otherwise a WireGuardNotAvailableError naming what to install.
 * Then: MTU (underlay − 80 unless configured), private key, listen port, fwmark, rp_filter, up.
 */
export async function setupDevice(opts: DeviceSetupOptions): Promise<WgDeviceHandle> {
  if (!(opts.privateKey instanceof Key)) throw new WgValidationError('privateKey', 'must be a Key');
  if (opts.mtu !== undefined && (!Number.isInteger(opts.mtu) || opts.mtu < 1280 || opts.mtu > 65535)) {
    throw new WgValidationError('mtu', 'must be an integer 1280..65535');
  }
  const netns = opts.netns;
  const socketDir = opts.socketDir ?? WG_RUN_DIR;
  const warnings: string[] = [];

  let mtu = opts.mtu;
  if (mtu === undefined) {
    const u = opts.underlay ? await underlayMtu(opts.underlay, netns) : undefined;
    if (opts.underlay && u === undefined) warnings.push(`underlay MTU not found; assuming ${DEFAULT_UNDERLAY_MTU}`);
    mtu = Math.max(1280, (u ?? DEFAULT_UNDERLAY_MTU) - WG_OVERHEAD);
  }
  const baseConfig: DeviceConfig = { privateKey: opts.privateKey, listenPort: opts.listenPort };
  if (opts.fwmark !== undefined) baseConfig.fwmark = opts.fwmark;

  const linkSetup = async (): Promise<void> => {
    const sock = routeSocket(netns);
    try {
      await setLinkMtu(sock, opts.name, mtu);
      if (opts.rpFilter !== 'keep') {
        setRpFilter(opts.name, 0, netns ? { netns } : {});
      }
      await setLinkUp(sock, opts.name);
    } finally {
      sock.close();
    }
  };

  const kernel = opts.preferKernel === false ? undefined : await KernelDriver.tryOpen(netns ? { netns } : {});
  let driver: DriverKind;
  let adopted: boolean;
  let supervisor: WireGuardGoSupervisor | undefined;
  let watchdog: WireGuardGoSupervisor | undefined;
  let client: WgClient;

  if (kernel) {
    driver = 'kernel';
    const sock = routeSocket(netns);
    try {
      const link = await getLink(sock, opts.name);
      if (link && link.kind !== 'wireguard') {
        throw new WgValidationError('name', `interface ${opts.name} exists and is a ${link.kind ?? 'non-WireGuard'} link`);
      }
      adopted = link !== undefined;
      if (!link) await createWireguard(sock, { name: opts.name, mtu });
    } catch (e) {
      kernel.close();
      throw e;
    } finally {
      sock.close();
    }
    client = WgClient.fromDrivers([kernel, new UserspaceDriver({ socketDir })]);
  } else {
    if (opts.userspaceFallback === false) {
      throw new WireGuardNotAvailableError(
        'the kernel has no WireGuard (generic netlink family "wireguard" is missing) and userspaceFallback is off',
      );
    }
    const bin = opts.wireguardGo ?? 'wireguard-go';
    if (!findExecutable(bin)) {
      throw new WireGuardNotAvailableError(`the kernel has no WireGuard and ${bin} is not installed`);
    }
    driver = 'userspace';
    client = WgClient.fromDrivers([new UserspaceDriver({ socketDir })]);
    adopted = await socketAnswers(`${socketDir}/${opts.name}.sock`);
    const supervise = (): WireGuardGoSupervisor =>
      new WireGuardGoSupervisor({
        device: opts.name,
        socketDir,
        ...(netns ? { netns } : {}),
        binary: bin,
        ...(opts.backoff ? { backoff: opts.backoff } : {}),
        onStart: async ({ restart }) => {
          // A fresh daemon knows nothing: push the base config (and let the caller re-push peers).
          await client.configureDevice(opts.name, baseConfig);
          await linkSetup();
          if (restart) await opts.onRestart?.();
        },
      });
    if (!adopted) {
      supervisor = supervise();
      await supervisor.start();
    } else {
      watchdog = supervise();
      await watchdog.adopt();
    }
  }

  try {
    if (adopted) {
      // Only what differs: wireguard-go closes and reopens its UDP sockets on every listen_port it
      // is sent, same port or not, and what arrives meanwhile is lost (an agent restart lost pings).
      const cur = await client.device(opts.name);
      const diff: DeviceConfig = {};
      if (!cur.privateKey?.equals(baseConfig.privateKey!)) diff.privateKey = baseConfig.privateKey!;
      if (cur.listenPort !== baseConfig.listenPort) diff.listenPort = baseConfig.listenPort!;
      if (baseConfig.fwmark !== undefined && cur.fwmark !== baseConfig.fwmark) diff.fwmark = baseConfig.fwmark;
      if (Object.keys(diff).length > 0) await client.configureDevice(opts.name, diff);
    } else {
      await client.configureDevice(opts.name, baseConfig);
    }
    await linkSetup();
    if (opts.rpFilter !== 'keep') {
      const all = readSysctl('net/ipv4/conf/all/rp_filter', netns ? { netns } : {});
      if (all !== '0') {
        warnings.push(
          `net.ipv4.conf.all.rp_filter=${all}: decrypted packets may be dropped unless the BPF from-tunnel hop delivers them`,
        );
      }
    }
  } catch (e) {
    await supervisor?.stop();
    watchdog?.detach();
    client.close();
    throw e;
  }

  return {
    name: opts.name,
    driver,
    adopted,
    mtu,
    client,
    supervisor,
    watchdog,
    warnings,
    async setPrivateKey(key: Key) {
      if (!(key instanceof Key)) throw new WgValidationError('privateKey', 'must be a Key');
      await client.configureDevice(opts.name, { privateKey: key });
      baseConfig.privateKey = key;
    },
    async close(closeOpts = {}) {
      client.close();
      if (closeOpts.stopDaemon) {
        await supervisor?.stop();
        await watchdog?.stop();
      } else {
        supervisor?.detach();
        watchdog?.detach();
      }
    },
  };
}
