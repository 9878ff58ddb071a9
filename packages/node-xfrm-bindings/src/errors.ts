/**
 * Typed errors of node-xfrm-bindings. Every error names what was wrong: the field for bad input,
 * the struct or attribute for undecodable bytes, the operation and errno code for kernel refusals.
 */

/** Base class of every error this package throws. */
export class XfrmError extends Error {
  override name = 'XfrmError';
}

/**
 * Input rejected before any syscall. `field` is a dotted path into the argument
 * (`spi`, `aead.key`, `templates[0].dst`, `selector.src`).
 */
export class XfrmValidationError extends XfrmError {
  override name = 'XfrmValidationError';
  constructor(
    /** Dotted path of the offending field, e.g. `aead.key`. */
    readonly field: string,
    /** What is wrong with it. */
    readonly reason: string,
  ) {
    super(`invalid ${field}: ${reason}`);
  }
}

/** Bytes from the kernel (or a test) that do not form the struct or attribute they claim to be. */
export class XfrmDecodeError extends XfrmError {
  override name = 'XfrmDecodeError';
  constructor(
    /** The C struct or attribute being decoded, e.g. `xfrm_usersa_info` or `XFRMA_ALG_AEAD`. */
    readonly what: string,
    /** What is wrong with the bytes. */
    readonly reason: string,
  ) {
    super(`cannot decode ${what}: ${reason}`);
  }
}

/**
 * The kernel refused an operation. Carries the errno as a code name (`ENOENT`, `EEXIST`,
 * `EPROTONOSUPPORT`) and the kernel's extended-ack message when it sent one.
 */
export class XfrmKernelError extends XfrmError {
  override name = 'XfrmKernelError';
  constructor(
    /** The operation, named like its iproute2 command: `state add`, `policy delete`. */
    readonly op: string,
    /** Positive errno number. */
    readonly errno: number,
    /** Symbolic errno name, e.g. `ENOENT`. */
    readonly code: string,
    /** The kernel's extack message (`Requested type not found`), if any. */
    readonly extack: string | undefined,
    options?: { cause?: unknown; index?: number },
  ) {
    super(
      `xfrm ${op}${options?.index === undefined ? '' : ` [item ${options.index}]`} failed: ${code}${extack ? ` (${extack})` : ''}`,
      options,
    );
    this.index = options?.index;
  }
  /** For batch operations: position of the item the kernel refused. */
  readonly index: number | undefined;
}
