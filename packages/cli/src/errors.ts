/** Base class of the CLI's own errors (bad flags, lab failures); printed as one line. */
export class VeilCliError extends Error {
  override name = 'VeilCliError';
  /** Process exit code to use when this error ends a command. */
  readonly exitCode: number;
  constructor(message: string, options?: { exitCode?: number; cause?: unknown }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.exitCode = options?.exitCode ?? 1;
  }
}

/** A command-line flag is missing, unknown or malformed; `flag` names it. */
export class UsageError extends VeilCliError {
  override name = 'UsageError';
  constructor(
    readonly flag: string,
    message: string,
  ) {
    super(`${flag}: ${message}`, { exitCode: 2 });
  }
}

/** The lab cannot run in this environment (missing tool, backend, kernel feature); exit code 2. */
export class LabUnsupportedError extends VeilCliError {
  override name = 'LabUnsupportedError';
  constructor(message: string) {
    super(message, { exitCode: 2 });
  }
}

/** Setting up, driving or tearing down the lab failed; `step` says where. */
export class LabError extends VeilCliError {
  override name = 'LabError';
  constructor(
    readonly step: string,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(`${step}: ${message}`, options);
  }
}

/** One line for a user: `Name: message` (the stack only when asked for). */
export function formatError(err: unknown, debug = false): string {
  if (!(err instanceof Error)) return String(err);
  if (debug && err.stack) return err.stack + (err.cause instanceof Error ? `\ncaused by: ${err.cause.stack ?? err.cause.message}` : '');
  return `${err.name}: ${err.message}`;
}
