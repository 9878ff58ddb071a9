import { WgDeviceNotFoundError } from '../errors.js';
import type { DeviceConfig, WireGuardDevice } from '../wgtypes/types.js';
import type { DeviceReadOptions, DriverKind, WgDriver } from './driver.js';
import { KernelDriver } from './kernel/driver.js';
import { UserspaceDriver, type UserspaceDriverOptions } from './userspace/driver.js';

/** Options of WgClient.open. */
export interface WgClientOptions extends UserspaceDriverOptions {
  /** Network namespace for the kernel driver. Default: the caller's. */
  netns?: string;
  /** Use kernel WireGuard when the kernel has it. Default true. */
  kernel?: boolean;
}

/** A device together with the driver that serves it. */
export interface ServedDevice {
  device: WireGuardDevice;
  driver: DriverKind;
}

/**
 * One client, several drivers (wgctrl-go's wgctrl.Client): the kernel driver when the
 * `wireguard` generic netlink family exists, then the userspace UAPI driver, always last.
 * Each call asks the drivers in turn; "device does not exist" means ask the next one, any other
 * error is returned as is.
 */
export class WgClient {
  private constructor(private readonly drivers: readonly WgDriver[]) {}

  /** Opens every available driver. */
  static async open(opts: WgClientOptions = {}): Promise<WgClient> {
    const drivers: WgDriver[] = [];
    if (opts.kernel !== false) {
      const k = await KernelDriver.tryOpen(opts.netns !== undefined ? { netns: opts.netns } : {});
      if (k) drivers.push(k);
    }
    drivers.push(new UserspaceDriver(opts));
    return new WgClient(drivers);
  }

  /** Builds a client over given drivers (tests, custom setups). Order = search order. */
  static fromDrivers(drivers: readonly WgDriver[]): WgClient {
    return new WgClient([...drivers]);
  }

  /** The drivers in search order, e.g. ['userspace'] on a kernel without WireGuard. */
  get driverKinds(): DriverKind[] {
    return this.drivers.map((d) => d.kind);
  }

  /** Every device of every driver (`wg show interfaces`). */
  async devices(opts: DeviceReadOptions = {}): Promise<WireGuardDevice[]> {
    const out: WireGuardDevice[] = [];
    for (const d of this.drivers) out.push(...(await d.devices(opts)));
    return out;
  }

  /** One device (`wg show <name>`). @throws WgDeviceNotFoundError when no driver has it. */
  async device(name: string, opts: DeviceReadOptions = {}): Promise<WireGuardDevice> {
    return (await this.served(name, opts)).device;
  }

  /** One device and which driver serves it. */
  async served(name: string, opts: DeviceReadOptions = {}): Promise<ServedDevice> {
    return this.firstFound(name, async (d) => ({ device: await d.device(name, opts), driver: d.kind }));
  }

  /** Which driver serves a device: 'kernel' or 'userspace'. */
  async driverOf(name: string): Promise<DriverKind> {
    return (await this.served(name)).driver;
  }

  /** Applies a change (`wg set`, or `wg setconf` with replacePeers). */
  async configureDevice(name: string, config: DeviceConfig): Promise<void> {
    await this.firstFound(name, (d) => d.configureDevice(name, config));
  }

  close(): void {
    for (const d of this.drivers) d.close();
  }

  private async firstFound<T>(name: string, op: (d: WgDriver) => Promise<T>): Promise<T> {
    const searched: string[] = [];
    let lastCause: unknown;
    for (const d of this.drivers) {
      try {
        return await op(d);
      } catch (e) {
        if (!(e instanceof WgDeviceNotFoundError)) throw e;
        searched.push(...e.searched);
        lastCause = e;
      }
    }
    throw new WgDeviceNotFoundError(name, searched, lastCause);
  }
}
