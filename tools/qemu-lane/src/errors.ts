/** Why a kernel-lane run could not produce a result. */
export type KernelLaneErrorCode =
  /** A host tool or file the lane needs is missing (names the Debian package to install). */
  | 'missing-host-dependency'
  /** The compressed kernel image holds no payload we can decompress into an ELF vmlinux. */
  | 'kernel-extract-failed'
  /** Building the initramfs failed (module lookup, copy). */
  | 'initramfs-failed'
  /** The guest did not finish within the timeout and was killed. */
  | 'timeout'
  /** qemu exited without the guest writing an exit code (kernel panic, init crash, qemu error). */
  | 'guest-crashed'
  /** The guest finished but did not leave the expected vitest report. */
  | 'missing-report'
  /** Bad options given to runInVm or the CLI. */
  | 'invalid-argument';

/** Error raised by the kernel lane; `code` says which step failed. */
export class KernelLaneError extends Error {
  override name = 'KernelLaneError';
  constructor(
    readonly code: KernelLaneErrorCode,
    message: string,
    /** The Debian package that provides what was missing, for `missing-host-dependency`. */
    readonly debianPackage?: string,
  ) {
    super(message);
  }
}
