import type { DeviceConfig, WireGuardDevice } from '../wgtypes/types.js';

/** Which implementation serves a device. */
export type DriverKind = 'kernel' | 'userspace';

/** Options of a device read. */
export interface DeviceReadOptions {
  /** Include the private key and preshared keys. Default false. */
  secrets?: boolean;
}

/**
 * One way of talking to WireGuard devices (wgctrl-go's wginternal.Client).
 * A device this driver does not know is reported as WgDeviceNotFoundError, which tells WgClient
 * to ask the next driver; every other error stops the search.
 */
export interface WgDriver {
  readonly kind: DriverKind;
  /** Every device this driver serves. */
  devices(opts?: DeviceReadOptions): Promise<WireGuardDevice[]>;
  device(name: string, opts?: DeviceReadOptions): Promise<WireGuardDevice>;
  configureDevice(name: string, config: DeviceConfig): Promise<void>;
  close(): void;
}
