import { errnoCode } from '@veil/netlink';

/**
 * Base class of the backend's own errors. `Key` and the kernel genetlink layer (WireGuardClient,
 * its codec) throw @veil/netlink's classes (NetlinkValidationError, NetlinkBaseError subclasses),
 * as they did before they moved here.
 */
export class WgBackendError extends Error {
  override name = 'WgBackendError';
}

/** An argument was rejected before anything was sent. `field` names the offending input. */
export class WgValidationError extends WgBackendError {
  override name = 'WgValidationError';
  constructor(
    readonly field: string,
    readonly reason: string,
  ) {
    // The value is deliberately left out: it may be key material.
    super(`invalid ${field}: ${reason}`);
  }
}

/** No driver knows the device (no such interface, not WireGuard, or no UAPI socket for it). */
export class WgDeviceNotFoundError extends WgBackendError {
  override name = 'WgDeviceNotFoundError';
  constructor(
    readonly device: string,
    /** Where it was looked for, e.g. "kernel", "userspace (/var/run/wireguard)". */
    readonly searched: readonly string[],
    override readonly cause?: unknown,
  ) {
    super(`WireGuard device ${JSON.stringify(device)} not found (searched: ${searched.join(', ') || 'no drivers'})`);
  }
}

/** The userspace implementation answered with `errno=<n>` where n ≠ 0. */
export class UapiError extends WgBackendError {
  override name = 'UapiError';
  /** Symbolic name ('EINVAL'), never the raw number alone. */
  readonly code: string;
  constructor(
    readonly device: string,
    readonly operation: 'get' | 'set',
    readonly errno: number,
  ) {
    const code = errnoCode(errno);
    super(`userspace WireGuard ${operation} on ${JSON.stringify(device)} failed: ${code}`);
    this.code = code;
  }
}

/** The UAPI reply was not well-formed (garbage, truncated, unknown key, bad value). */
export class UapiProtocolError extends WgBackendError {
  override name = 'UapiProtocolError';
  constructor(
    readonly reason: string,
    /** 1-based line number of the first offending line, 0 when it concerns the whole reply. */
    readonly line: number,
  ) {
    super(line > 0 ? `malformed UAPI reply at line ${line}: ${reason}` : `malformed UAPI reply: ${reason}`);
  }
}

/** Talking to a UAPI socket failed below the protocol (connect refused, reset, timeout). */
export class UapiTransportError extends WgBackendError {
  override name = 'UapiTransportError';
  constructor(
    readonly socketPath: string,
    /** Node's error code ('ECONNREFUSED', 'ETIMEDOUT'...). */
    readonly code: string,
    override readonly cause?: unknown,
  ) {
    super(`UAPI socket ${socketPath}: ${code}`);
  }
}

/** A key file exists but cannot be used; it is left untouched. */
export class KeyFileError extends WgBackendError {
  override name = 'KeyFileError';
  constructor(
    readonly path: string,
    readonly reason: string,
    override readonly cause?: unknown,
  ) {
    super(`key file ${path}: ${reason} (the file was left untouched)`);
  }
}

/** Neither kernel WireGuard nor (allowed) wireguard-go is available. */
export class WireGuardNotAvailableError extends WgBackendError {
  override name = 'WireGuardNotAvailableError';
  constructor(readonly detail: string) {
    super(
      `WireGuard is not available: ${detail}. Load the 'wireguard' kernel module (Linux >= 5.6, ` +
        `'modprobe wireguard'), or install 'wireguard-go' and enable userspaceFallback`,
    );
  }
}

/** The wireguard-go supervisor could not start or keep the daemon running. */
export class SupervisorError extends WgBackendError {
  override name = 'SupervisorError';
  constructor(
    readonly device: string,
    readonly reason: string,
  ) {
    super(`wireguard-go for ${JSON.stringify(device)}: ${reason}`);
  }
}
