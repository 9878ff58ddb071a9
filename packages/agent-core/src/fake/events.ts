import type { EventRecorder, NodeEvent } from '../types/index.js';

/** Collects events in memory. */
export class RecordingEventRecorder implements EventRecorder {
  readonly events: NodeEvent[] = [];
  record(event: NodeEvent): void {
    this.events.push(event);
  }
  async flush(): Promise<void> {}
}
