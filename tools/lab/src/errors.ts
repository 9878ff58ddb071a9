import { VeilCliError } from '@veil/cli';

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
