/** Base class of every error thrown by @veil/backend-ipsec. */
export class IpsecError extends Error {
  override name = 'IpsecError';
}

/**
 * The key file was refused. `line` is 1-based (0 = the file as a whole), `field` names the
 * offending part (`spi`, `aead-key`, `icv-bits`, …). Key bytes never appear in the message.
 */
export class IpsecKeyFileError extends IpsecError {
  override name = 'IpsecKeyFileError';
  constructor(
    readonly path: string,
    readonly line: number,
    readonly field: string,
    readonly reason: string,
    options?: { cause?: unknown },
  ) {
    super(`IPsec key file ${path}${line > 0 ? ` line ${line}` : ''}: ${field}: ${reason}`, options);
  }
}

/** An argument or configuration value the backend cannot work with. */
export class IpsecConfigError extends IpsecError {
  override name = 'IpsecConfigError';
  constructor(
    readonly field: string,
    readonly reason: string,
  ) {
    super(`invalid ${field}: ${reason}`);
  }
}

/** A peer cannot be programmed as published (no node ID, no address family in common …). */
export class IpsecPeerError extends IpsecError {
  override name = 'IpsecPeerError';
  constructor(
    readonly peer: string,
    readonly reason: string,
  ) {
    super(`IPsec peer ${peer}: ${reason}`);
  }
}

/**
 * The kernel cannot hold the states this backend needs: ESP (`esp4`/`esp6`) or the configured
 * algorithm is not available ("Requested type not found"). Policies alone do not encrypt, so the
 * backend refuses to start rather than pretend.
 */
export class IpsecNotSupportedError extends IpsecError {
  override name = 'IpsecNotSupportedError';
  constructor(
    readonly what: string,
    readonly kernelMessage: string,
    options?: { cause?: unknown },
  ) {
    super(
      `IPsec is not supported by this kernel: ${what} (${kernelMessage}). ` +
        `Load esp4/esp6, xfrm_user and the cipher modules (e.g. 'modprobe esp4 esp6 xfrm_user gcm seqiv chacha20poly1305')`,
      options,
    );
  }
}

/** Writing an XFRM object failed for another reason; names the object and the operation. */
export class IpsecXfrmError extends IpsecError {
  override name = 'IpsecXfrmError';
  constructor(
    readonly op: string,
    readonly object: string,
    readonly reason: string,
    options?: { cause?: unknown },
  ) {
    super(`XFRM ${op} ${object}: ${reason}`, options);
  }
}
