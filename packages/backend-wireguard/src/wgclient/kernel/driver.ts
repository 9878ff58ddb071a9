import { NetlinkSocket, listLinks } from '@veil/netlink';
import { WgDeviceNotFoundError } from '../../errors.js';
import type { DeviceConfig, WireGuardDevice } from '../../wgtypes/types.js';
import type { DeviceReadOptions, WgDriver } from '../driver.js';
import { WireGuardClient, WireGuardDeviceNotFoundError, WireGuardUnavailableError } from './genl.js';

/** Options of the kernel driver. */
export interface KernelDriverOptions {
  /** Network namespace (a /run/netns name or path). Default: the caller's. */
  netns?: string;
}

/**
 * Kernel WireGuard over generic netlink, wrapping the genetlink WireGuardClient beside it
 * (wgctrl-go's wglinux). Exists only when the kernel has the `wireguard` genl family.
 */
export class KernelDriver implements WgDriver {
  readonly kind = 'kernel' as const;

  private constructor(
    private readonly client: WireGuardClient,
    private readonly netns: string | undefined,
  ) {}

  /**
   * Opens the driver, or returns undefined when the kernel has no WireGuard (so that WgClient
   * simply leaves it out, as wgctrl-go does when the family is missing).
   */
  static async tryOpen(opts: KernelDriverOptions = {}): Promise<KernelDriver | undefined> {
    try {
      const client = await WireGuardClient.open(opts.netns !== undefined ? { netns: opts.netns } : {});
      return new KernelDriver(client, opts.netns);
    } catch (e) {
      if (e instanceof WireGuardUnavailableError) return undefined;
      throw e;
    }
  }

  async devices(opts: DeviceReadOptions = {}): Promise<WireGuardDevice[]> {
    const sock = NetlinkSocket.open('ROUTE', this.netns !== undefined ? { netns: this.netns } : {});
    let names: string[];
    try {
      names = (await listLinks(sock)).filter((l) => l.kind === 'wireguard').map((l) => l.name);
    } finally {
      sock.close();
    }
    const out: WireGuardDevice[] = [];
    for (const n of names) {
      try {
        out.push(await this.device(n, opts));
      } catch (e) {
        if (!(e instanceof WgDeviceNotFoundError)) throw e; // deleted meanwhile
      }
    }
    return out;
  }

  async device(name: string, opts: DeviceReadOptions = {}): Promise<WireGuardDevice> {
    try {
      return await this.client.getDevice(name, { secrets: opts.secrets === true });
    } catch (e) {
      throw mapNotFound(name, e);
    }
  }

  async configureDevice(name: string, config: DeviceConfig): Promise<void> {
    try {
      await this.client.configureDevice(name, config);
    } catch (e) {
      throw mapNotFound(name, e);
    }
  }

  close(): void {
    this.client.close();
  }
}

function mapNotFound(name: string, e: unknown): unknown {
  return e instanceof WireGuardDeviceNotFoundError ? new WgDeviceNotFoundError(name, ['kernel'], e) : e;
}
