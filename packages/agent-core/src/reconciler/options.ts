/** Reconciler timings. */
export interface ReconcilerOptions {
  /** First retry delay after a failed apply (doubles per failure). Default 100 ms. */
  initialRetryMs?: number;
  /** Retry delay cap. Default 30 s. */
  maxRetryMs?: number;
  /** Period of the level-triggered full resync (re-queue every node); 0 disables. Default 5 min. */
  resyncIntervalMs?: number;
  /**
   * File keeping each remote node's last good peer and ipcache entry across restarts (the Agent
   * uses `<stateDir>/peers-last-good.json`). Undefined: nothing is saved, a restart re-derives
   * everything from the cluster.
   */
  stateFile?: string;
  /** Writes of `stateFile` are coalesced over this window. Default 100 ms. */
  saveDelayMs?: number;
}
