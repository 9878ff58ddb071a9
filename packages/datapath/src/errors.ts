import { VeilAgentError } from '@veil/agent-core';

/** Base class of every error the BPF datapath throws. */
export class DatapathError extends VeilAgentError {
  override name = 'DatapathError';
}

/** A bad argument (entry, option, steering), rejected before anything reaches the kernel. */
export class DatapathArgumentError extends DatapathError {
  override name = 'DatapathArgumentError';
  constructor(
    /** Dotted name of the bad field, e.g. `entry.podCIDRs[1]` or `options.pinDir`. */
    readonly field: string,
    message: string,
  ) {
    super(`${field}: ${message}`);
  }
}

/** What failed while loading the programs / opening the pinned maps. */
export type DatapathLoadStage = 'object-missing' | 'open' | 'pin-incompatible' | 'load';

/**
 * The BPF object could not be loaded: it is not built (`object-missing`: run
 * `npm run build -w @veil/bpf`), unreadable, rejected by the verifier, or a map pinned under
 * `pinDir` by an earlier agent is incompatible (different size/type: purge the pin dir).
 */
export class DatapathLoadError extends DatapathError {
  override name = 'DatapathLoadError';
  constructor(
    readonly stage: DatapathLoadStage,
    readonly objectPath: string | undefined,
    readonly pinDir: string,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** bpffs is not mounted where the pins go and could not be mounted (or the pin dir not created). */
export class BpffsError extends DatapathError {
  override name = 'BpffsError';
  constructor(
    /** The directory that was to be mounted / created. */
    readonly path: string,
    /** errno code name when the kernel refused (`EPERM`, `ENOENT`…). */
    readonly code: string | undefined,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** Attaching (or detaching) a program to an interface failed. */
export class DatapathAttachError extends DatapathError {
  override name = 'DatapathAttachError';
  constructor(
    readonly ifname: string,
    readonly program: string,
    readonly direction: 'ingress' | 'egress',
    /** errno code name when the kernel refused (`ENODEV`, `EPERM`…). */
    readonly code: string | undefined,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** A map operation on the pinned ipcache / config / strict_cidrs failed. */
export class DatapathMapError extends DatapathError {
  override name = 'DatapathMapError';
  constructor(
    readonly map: string,
    readonly op: string,
    readonly code: string | undefined,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** The datapath was closed; every operation afterwards fails with this. */
export class DatapathClosedError extends DatapathError {
  override name = 'DatapathClosedError';
  constructor(readonly operation: string) {
    super(`${operation}: the datapath is closed`);
  }
}

/** errno code name from a libbpf-ts / netlink error, if it carries one. */
export function codeOf(err: unknown): string | undefined {
  if (err && typeof err === 'object' && 'code' in err && typeof err.code === 'string') {
    return (err as { code: string }).code;
  }
  return undefined;
}
