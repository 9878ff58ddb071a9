import { expDelay } from '../util/backoff.js';

/**
 * A keyed work queue in the client-go style: a key is queued at most once (coalescing), a key
 * being processed that is added again is re-queued after it finishes, and failed keys come back
 * after a per-key exponential delay. One worker: ordering per key is trivially preserved.
 */
export class WorkQueue {
  private readonly queue: string[] = [];
  private head = 0;
  private readonly queued = new Set<string>();
  private readonly processing = new Set<string>();
  private readonly dirty = new Set<string>();
  private readonly failures = new Map<string, number>();
  private readonly timers = new Map<string, NodeJS.Timeout>();
  private wake: (() => void) | undefined;
  private idleWaiters: (() => void)[] = [];
  private shut = false;

  constructor(private readonly opts: { initialRetryMs: number; maxRetryMs: number }) {}

  /** Enqueues `key` now (coalesced). */
  add(key: string): void {
    if (this.shut) return;
    if (this.processing.has(key)) {
      this.dirty.add(key);
      return;
    }
    if (this.queued.has(key)) return;
    this.queued.add(key);
    this.queue.push(key);
    const w = this.wake;
    this.wake = undefined;
    w?.();
  }

  /** Re-enqueues after the key's backoff delay; returns the delay used. */
  retry(key: string): number {
    const n = this.failures.get(key) ?? 0;
    this.failures.set(key, n + 1);
    const delay = expDelay(n, this.opts.initialRetryMs, this.opts.maxRetryMs);
    if (!this.timers.has(key)) {
      const t = setTimeout(() => {
        this.timers.delete(key);
        this.add(key);
      }, delay);
      t.unref();
      this.timers.set(key, t);
    }
    return delay;
  }

  /** Clears the key's failure count (after success). */
  forget(key: string): void {
    this.failures.delete(key);
  }

  /** Number of failures recorded for `key`. */
  attempts(key: string): number {
    return this.failures.get(key) ?? 0;
  }

  get length(): number {
    return this.queue.length - this.head;
  }

  /** Next key, or undefined after shutdown. The caller must call {@link done}. */
  async get(): Promise<string | undefined> {
    // After shutdown nothing more is handed out, even if queued: stop means stop.
    if (this.shut) return undefined;
    while (this.length === 0) {
      if (this.shut) return undefined;
      if (this.processing.size === 0) this.notifyIdle();
      await new Promise<void>((r) => (this.wake = r));
    }
    if (this.shut) return undefined;
    const key = this.queue[this.head++] as string;
    if (this.head > 4096 && this.head * 2 > this.queue.length) {
      this.queue.splice(0, this.head);
      this.head = 0;
    }
    this.queued.delete(key);
    this.processing.add(key);
    return key;
  }

  done(key: string): void {
    this.processing.delete(key);
    if (this.dirty.delete(key)) this.add(key);
  }

  /** Resolves when nothing is queued or processing (retry timers may still be pending). */
  idle(): Promise<void> {
    if (this.length === 0 && this.processing.size === 0) return Promise.resolve();
    return new Promise((r) => this.idleWaiters.push(r));
  }

  private notifyIdle(): void {
    const ws = this.idleWaiters;
    this.idleWaiters = [];
    for (const w of ws) w();
  }

  shutdown(): void {
    this.shut = true;
    for (const t of this.timers.values()) clearTimeout(t);
    this.timers.clear();
    const w = this.wake;
    this.wake = undefined;
    w?.();
    this.notifyIdle();
  }
}
