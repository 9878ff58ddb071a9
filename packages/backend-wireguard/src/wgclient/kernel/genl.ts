import {
  FamilyNotFoundError,
  NetlinkBaseError,
  NetlinkError,
  NetlinkSocket,
  NetlinkValidationError,
  resolveFamily,
  type GenlFamily,
} from '@veil/netlink';
import type { DeviceConfig, DeviceRef, WireGuardDevice } from '../../wgtypes/types.js';
import {
  checkMaxMessageSize,
  WG_DEFAULT_MAX_MESSAGE,
  WG_GENL_NAME,
  decodeDeviceMessages,
  encodeGetDevice,
  encodeSetDevice,
  toWireGuardDevice,
} from './codec.js';

// The genetlink layer's errors derive from @veil/netlink's NetlinkBaseError, as they did when this
// file lived there: KernelDriver maps them to WgDeviceNotFoundError, and callers of the low-level
// client can catch every netlink failure with one class.

/** The kernel has no `wireguard` generic netlink family (module not loaded or not built). */
export class WireGuardUnavailableError extends NetlinkBaseError {
  override name = 'WireGuardUnavailableError';
  readonly family = WG_GENL_NAME;
  constructor(override readonly cause?: unknown) {
    super('the kernel has no WireGuard support (generic netlink family "wireguard" not found; is the wireguard module loaded?)');
  }
}

/**
 * The device does not exist (`ENODEV`) or is not a WireGuard device (`EOPNOTSUPP`).
 * A multi-driver client treats this as "try the next driver", like wgctrl-go's os.ErrNotExist.
 */
export class WireGuardDeviceNotFoundError extends NetlinkBaseError {
  override name = 'WireGuardDeviceNotFoundError';
  constructor(
    readonly device: DeviceRef,
    /** 'ENODEV': no such interface; 'EOPNOTSUPP': the interface is not WireGuard. */
    readonly code: 'ENODEV' | 'EOPNOTSUPP',
    override readonly cause?: NetlinkError,
  ) {
    super(
      code === 'ENODEV'
        ? `no interface ${JSON.stringify(device)}`
        : `interface ${JSON.stringify(device)} is not a WireGuard device`,
    );
  }
}

/** Options of WireGuardClient.open. */
export interface WireGuardClientOptions {
  /** Network namespace to talk to (a /run/netns name or path, or an fd). Default: the caller's. */
  netns?: string | number;
  /** Upper bound of one SET_DEVICE message in bytes (nlmsghdr included). Default 64 KiB; see encodeSetDevice. */
  maxMessageSize?: number;
  /** Per-request timeout in ms. Default: the socket's (30 s). */
  timeoutMs?: number;
}

/** Options of getDevice. */
export interface GetDeviceOptions {
  /** Include the device private key and the peers' preshared keys. Default false: they are left out. */
  secrets?: boolean;
}

function mapDeviceError(device: DeviceRef, e: unknown): unknown {
  if (e instanceof NetlinkError && (e.code === 'ENODEV' || e.code === 'EOPNOTSUPP')) {
    return new WireGuardDeviceNotFoundError(device, e.code, e);
  }
  return e;
}

/**
 * Kernel WireGuard over generic netlink: the equivalent of `wg show` / `wg set` / `wg setconf`.
 * One client holds one NETLINK_GENERIC socket; close() it when done.
 */
export class WireGuardClient {
  private constructor(
    private readonly sock: NetlinkSocket,
    /** The resolved `wireguard` family. */
    readonly family: GenlFamily,
    private readonly maxMessageSize: number,
    private readonly timeoutMs: number | undefined,
  ) {}

  /**
   * Opens a generic netlink socket and resolves the `wireguard` family.
   * @throws WireGuardUnavailableError when the kernel has no WireGuard.
   */
  static async open(opts: WireGuardClientOptions = {}): Promise<WireGuardClient> {
    const max = opts.maxMessageSize ?? WG_DEFAULT_MAX_MESSAGE;
    checkMaxMessageSize(max);
    if (opts.timeoutMs !== undefined && !(Number.isFinite(opts.timeoutMs) && opts.timeoutMs > 0)) {
      throw new NetlinkValidationError('timeoutMs', 'must be a positive number', opts.timeoutMs);
    }
    const sock = NetlinkSocket.open('GENERIC', {
      ...(opts.netns !== undefined ? { netns: opts.netns } : {}),
      ...(opts.timeoutMs !== undefined ? { timeoutMs: opts.timeoutMs } : {}),
    });
    try {
      const family = await resolveFamily(sock, WG_GENL_NAME);
      return new WireGuardClient(sock, family, max, opts.timeoutMs);
    } catch (e) {
      sock.close();
      if (e instanceof FamilyNotFoundError) throw new WireGuardUnavailableError(e);
      throw e;
    }
  }

  /**
   * Reads a device and all its peers (WG_CMD_GET_DEVICE dump; `wg show <dev>`). Peers whose
   * allowed IPs span several dump messages are merged.
   * @throws WireGuardDeviceNotFoundError when the device is missing or not WireGuard.
   */
  async getDevice(device: DeviceRef, opts: GetDeviceOptions = {}): Promise<WireGuardDevice> {
    const payload = encodeGetDevice(device);
    let parts;
    try {
      parts = await this.sock.dump(
        { type: this.family.id, payload, operation: 'WG_CMD_GET_DEVICE' },
        this.timeoutMs !== undefined ? { timeoutMs: this.timeoutMs } : {},
      );
    } catch (e) {
      throw mapDeviceError(device, e);
    }
    return toWireGuardDevice(decodeDeviceMessages(parts.map((m) => m.payload)), opts.secrets === true);
  }

  /**
   * Applies `config` (WG_CMD_SET_DEVICE; `wg set` / `wg setconf` when `replacePeers`). Large peer
   * sets are split into several messages, sent in order; the first error stops the rest (the
   * messages already applied stay applied, as with `wg`).
   * @throws NetlinkValidationError for bad config (before anything is sent),
   *         WireGuardDeviceNotFoundError, NetlinkError for other kernel refusals.
   */
  async configureDevice(device: DeviceRef, config: DeviceConfig): Promise<void> {
    const payloads = encodeSetDevice(device, config, this.maxMessageSize);
    for (const payload of payloads) {
      try {
        await this.sock.request(
          { type: this.family.id, payload, operation: 'WG_CMD_SET_DEVICE' },
          this.timeoutMs !== undefined ? { timeoutMs: this.timeoutMs } : {},
        );
      } catch (e) {
        throw mapDeviceError(device, e);
      }
    }
  }

  /** Closes the socket; pending calls reject. Idempotent. */
  close(): void {
    this.sock.close();
  }
}
