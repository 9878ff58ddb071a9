/** Exponential backoff with full jitter in [d/2, d]. */
export class Backoff {
  private attempt = 0;
  constructor(
    private readonly initialMs: number,
    private readonly maxMs: number,
  ) {}

  /** Delay for the next attempt (and counts it). */
  next(): number {
    const d = Math.min(this.maxMs, this.initialMs * 2 ** this.attempt);
    this.attempt = Math.min(this.attempt + 1, 30);
    return Math.round(d / 2 + (Math.random() * d) / 2);
  }

  reset(): void {
    this.attempt = 0;
  }

  /** Attempts counted since the last reset. */
  get attempts(): number {
    return this.attempt;
  }
}

/** Deterministic exponential delay for attempt n (0-based), capped. */
export function expDelay(n: number, initialMs: number, maxMs: number): number {
  return Math.min(maxMs, initialMs * 2 ** Math.min(n, 30));
}
