import { CoreV1Api, type KubeConfig } from '@kubernetes/client-node';
import type { Logger } from '../observability/logger.js';
import type { EventRecorder, NodeEvent } from '../types/index.js';

/** Posts core/v1 Events about Nodes. Failures are logged, never thrown (events are best effort). */
export class KubernetesEventRecorder implements EventRecorder {
  private readonly api: CoreV1Api;
  private readonly inflight = new Set<Promise<void>>();
  private readonly log: Logger;

  constructor(
    kubeConfig: KubeConfig,
    private readonly opts: { namespace: string; component: string; host: string; logger: Logger },
  ) {
    this.api = kubeConfig.makeApiClient(CoreV1Api);
    this.log = opts.logger.child({ component: 'events' });
  }

  record(event: NodeEvent): void {
    const now = new Date();
    const p = this.api
      .createNamespacedEvent({
        namespace: this.opts.namespace,
        body: {
          metadata: { generateName: `${event.node}.veil.`, namespace: this.opts.namespace },
          involvedObject: { kind: 'Node', name: event.node, apiVersion: 'v1' },
          type: event.type,
          reason: event.reason,
          message: event.message,
          source: { component: this.opts.component, host: this.opts.host },
          reportingComponent: this.opts.component,
          reportingInstance: this.opts.host,
          firstTimestamp: now,
          lastTimestamp: now,
          count: 1,
        },
      })
      .then(
        () => undefined,
        (err: unknown) => {
          this.log.warn({ node: event.node, reason: event.reason, err: String(err) }, 'failed to post event');
        },
      );
    this.inflight.add(p);
    void p.finally(() => this.inflight.delete(p));
  }

  async flush(): Promise<void> {
    await Promise.all([...this.inflight]);
  }
}
