/**
 * Base class of the CLI's own errors (bad flags, an unreachable agent, and the lab's errors in
 * @veil/lab); main.ts prints them as one line and exits with `exitCode`.
 */
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

/** One line for a user: `Name: message` (the stack only when asked for). */
export function formatError(err: unknown, debug = false): string {
  if (!(err instanceof Error)) return String(err);
  if (debug && err.stack)
    return err.stack + (err.cause instanceof Error ? `\ncaused by: ${err.cause.stack ?? err.cause.message}` : '');
  return `${err.name}: ${err.message}`;
}
