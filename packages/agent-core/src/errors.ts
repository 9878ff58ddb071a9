/** The message of anything thrown (an Error's message, else its string form): the one helper for logs and status. */
export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** Base class of every error agent-core throws; carries no secrets by construction. */
export class VeilAgentError extends Error {
  override name = 'VeilAgentError';
}

/** One invalid configuration key. */
export interface ConfigIssue {
  /** Dotted key path, e.g. `encryption.wireguard.port`. */
  readonly key: string;
  /** Where the bad value came from. */
  readonly source: 'file' | 'env' | 'flag' | 'merged';
  readonly message: string;
}

/** Invalid configuration: names EVERY bad key, not just the first. */
export class ConfigError extends VeilAgentError {
  override name = 'ConfigError';
  constructor(readonly issues: readonly ConfigIssue[]) {
    super(
      `invalid configuration (${issues.length} problem${issues.length === 1 ? '' : 's'}): ` +
        issues.map((i) => `${i.key}: ${i.message}${i.source === 'merged' ? '' : ` (from ${i.source})`}`).join('; '),
    );
  }
}

/** Why a backend module could not be loaded. */
export type BackendLoadErrorCode =
  'MODULE_NOT_FOUND' | 'NO_DEFAULT_EXPORT' | 'NOT_A_CONTAINER_MODULE' | 'IMPORT_FAILED' | 'BAD_CONFIG_EXPORT';

/** `loadBackendModule()` failed; `specifier` is what was imported. */
export class BackendLoadError extends VeilAgentError {
  override name = 'BackendLoadError';
  constructor(
    readonly code: BackendLoadErrorCode,
    readonly requested: string,
    readonly specifier: string,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** A backend or datapath operation failed for one peer; the reconciler retries it. */
export class PeerApplyError extends VeilAgentError {
  override name = 'PeerApplyError';
  constructor(
    readonly node: string,
    readonly stage: 'backend' | 'datapath',
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** The status socket cannot be created at its path (a non-socket file, or another live agent). */
export class StatusSocketError extends VeilAgentError {
  override name = 'StatusSocketError';
  constructor(
    readonly path: string,
    message: string,
  ) {
    super(`status socket ${path}: ${message}`);
  }
}
