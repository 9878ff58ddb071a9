/** Reconciler timings. */
export interface ReconcilerOptions {
  /** First retry delay after a failed apply (doubles per failure). Default 100 ms. */
  initialRetryMs?: number;
  /** Retry delay cap. Default 30 s. */
  maxRetryMs?: number;
  /** Period of the level-triggered full resync (re-queue every node); 0 disables. Default 5 min. */
  resyncIntervalMs?: number;
}
