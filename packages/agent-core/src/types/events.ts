/** A Kubernetes Event about a node (core/v1 Event with involvedObject = the Node). */
export interface NodeEvent {
  /** Node the event is about. */
  readonly node: string;
  readonly type: 'Normal' | 'Warning';
  /** CamelCase reason, e.g. `PeerRefused`. */
  readonly reason: string;
  /** Human-readable; must not contain secrets. */
  readonly message: string;
}

/** Records events (Kubernetes: posts core/v1 Events; tests: collects them). Never throws. */
export interface EventRecorder {
  record(event: NodeEvent): void;
  /** Waits for in-flight posts. */
  flush(): Promise<void>;
}
