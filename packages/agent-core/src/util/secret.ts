import { inspect } from 'node:util';

const REDACTED = '[REDACTED]';

/**
 * A value that must never be printed: JSON, string conversion and util.inspect all show
 * `[REDACTED]`. Backends keep private keys in a Secret so a stray log/status/error field cannot
 * leak them; call `reveal()` only at the point of use (the kernel/UAPI call).
 */
export class Secret<T = string> {
  readonly #value: T;
  constructor(value: T) {
    this.#value = value;
  }
  reveal(): T {
    return this.#value;
  }
  toJSON(): string {
    return REDACTED;
  }
  toString(): string {
    return REDACTED;
  }
  [inspect.custom](): string {
    return REDACTED;
  }
}
