import {
  CoreV1Api,
  ListWatch,
  PatchStrategy,
  Watch,
  setHeaderOptions,
  type KubeConfig,
  type V1Node,
  type V1NodeList,
} from '@kubernetes/client-node';
import fetch from 'node-fetch';
import type { Logger } from '../observability/logger.js';
import { AsyncQueue } from '../util/async-queue.js';
import { Backoff } from '../util/backoff.js';
import type { DistributorEvent, KeyDistributor, LocalMaterial } from '../types/index.js';
import { ANNOTATION_PREFIX, observeNode } from './node-object.js';

/** Options for {@link KubernetesKeyDistributor}. */
export interface KubernetesKeyDistributorOptions {
  kubeConfig: KubeConfig;
  /** The local node: the only Node this distributor ever patches. */
  nodeName: string;
  logger: Logger;
  /** Informer restart backoff; default 200 ms doubling to 30 s. */
  restartBackoff?: { initialMs: number; maxMs: number };
  /** Nodes per list page; default 500 (the client-go informer default). */
  listPageSize?: number;
}

/**
 * {@link KeyDistributor} over Kubernetes Node objects: reads every node through a client-node
 * informer and publishes the local material as annotations with a JSON merge patch on the local
 * Node only.
 *
 * client-node 1.4's informer stops on any non-410 error (connection refused, 5xx); this class
 * restarts it with exponential backoff. The informer keeps its resourceVersion, so a restart
 * resumes the watch, and a 410 answer makes it relist (emitting deletes for vanished nodes).
 */
export class KubernetesKeyDistributor implements KeyDistributor {
  private readonly api: CoreV1Api;
  private informer: ListWatch<V1Node> | undefined;
  private queue: AsyncQueue<DistributorEvent> | undefined;
  private isSynced = false;
  private closed = false;
  private restartTimer: NodeJS.Timeout | undefined;
  private readonly backoff: Backoff;
  private readonly pageSize: number;
  private readonly log: Logger;
  /** Informer (re)starts after an error; exposed for tests/metrics. */
  restarts = 0;

  constructor(private readonly opts: KubernetesKeyDistributorOptions) {
    this.api = opts.kubeConfig.makeApiClient(CoreV1Api);
    this.log = opts.logger.child({ component: 'k8s-distributor' });
    this.pageSize = opts.listPageSize ?? 500;
    this.backoff = new Backoff(opts.restartBackoff?.initialMs ?? 200, opts.restartBackoff?.maxMs ?? 30_000);
  }

  get synced(): boolean {
    return this.isSynced;
  }

  /** Failed attempts since the API server last answered (0 once it does again). */
  get backoffAttempts(): number {
    return this.backoff.attempts;
  }

  async publishLocal(material: LocalMaterial): Promise<void> {
    await this.api.patchNode(
      { name: this.opts.nodeName, body: { metadata: { annotations: { ...material } } } },
      setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
    );
  }

  events(): AsyncIterable<DistributorEvent> {
    if (this.queue) throw new Error('events() supports a single consumer');
    const q = new AsyncQueue<DistributorEvent>();
    this.queue = q;
    let listOk = false;
    const informer = new ListWatch<V1Node>(
      '/api/v1/nodes',
      // Any watch event proves the API server answers again: only then does the backoff reset.
      new ProjectingWatch(this.opts.kubeConfig, () => this.backoff.reset()),
      async () => {
        const list = await this.listProjected();
        listOk = true;
        return list;
      },
      false,
    );
    this.informer = informer;
    const upsert = (obj: V1Node): void => {
      const node = observeNode(obj);
      if (node) q.push({ type: 'upsert', node });
    };
    informer.on('add', upsert);
    informer.on('update', upsert);
    informer.on('delete', (obj: V1Node) => {
      if (obj.metadata?.name) q.push({ type: 'delete', name: obj.metadata.name });
    });
    informer.on('error', (err: unknown) => {
      if (this.closed) return;
      const delay = this.backoff.next();
      this.log.warn({ err: describe(err), retryInMs: delay }, 'node informer stopped; restarting');
      this.scheduleRestart(delay);
    });
    const start = async (): Promise<void> => {
      listOk = false;
      await informer.start();
      // start() resolves after the list and the watch request; the adds were emitted synchronously.
      // It also resolves when the list or watch failed (the informer reports those as 'error'), so
      // only a list that answered resets the backoff (issue 12: a reset here on every restart kept
      // retries at 100-200 ms forever while the API server was down).
      if (listOk) this.backoff.reset();
      if (listOk && !this.isSynced && !this.closed) {
        this.isSynced = true;
        q.push({ type: 'synced' });
      }
    };
    this.startFn = start;
    void start().catch((err: unknown) => {
      this.log.warn({ err: describe(err) }, 'node informer start failed');
      this.scheduleRestart(this.backoff.next());
    });
    return q;
  }

  private startFn: (() => Promise<void>) | undefined;

  /**
   * Lists all Nodes in pages, projecting each page before fetching the next: with thousands of
   * nodes this keeps the peak (one decoded page, not the whole list) and the cache small.
   */
  private async listProjected(): Promise<V1NodeList> {
    // Raw JSON instead of the generated client: its ObjectSerializer turns every Node into class
    // instances (Dates, nested models) only for us to throw nearly all of it away.
    const cluster = this.opts.kubeConfig.getCurrentCluster();
    if (!cluster) throw new Error('kubeconfig has no current cluster');
    const items: V1Node[] = [];
    let resourceVersion: string | undefined;
    let cont: string | undefined;
    do {
      const url = new URL(`${cluster.server.replace(/\/$/, '')}/api/v1/nodes`);
      url.searchParams.set('limit', String(this.pageSize));
      if (cont) url.searchParams.set('continue', cont);
      const init = await this.opts.kubeConfig.applyToFetchOptions({ method: 'GET' });
      const res = await fetch(url.href, init);
      if (res.status !== 200) {
        const err = new Error(`list nodes: HTTP ${res.status} ${res.statusText}`) as Error & { statusCode: number };
        err.statusCode = res.status;
        throw err;
      }
      const page = (await res.json()) as { metadata?: { resourceVersion?: string; continue?: string }; items?: V1Node[] };
      resourceVersion ??= page.metadata?.resourceVersion;
      for (const n of page.items ?? []) items.push(projectNode(n));
      cont = page.metadata?.continue || undefined;
    } while (cont);
    return { apiVersion: 'v1', kind: 'NodeList', metadata: { resourceVersion }, items };
  }

  private scheduleRestart(delay: number): void {
    if (this.restartTimer || this.closed) return;
    this.restartTimer = setTimeout(() => {
      this.restartTimer = undefined;
      if (this.closed) return;
      this.restarts++;
      void this.startFn?.().catch((err: unknown) => {
        this.log.warn({ err: describe(err) }, 'node informer restart failed');
        this.scheduleRestart(this.backoff.next());
      });
    }, delay);
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.restartTimer) clearTimeout(this.restartTimer);
    this.restartTimer = undefined;
    await this.informer?.stop();
    this.queue?.end();
  }
}

/**
 * Keeps only what the distributor reads. The informer caches every object it sees: with full Node
 * objects (status.images, conditions, nodeInfo…) 5,000 nodes cost tens of MB for nothing.
 */
export function projectNode(n: V1Node): V1Node {
  const annotations: Record<string, string> = {};
  for (const [k, v] of Object.entries(n.metadata?.annotations ?? {})) if (k.startsWith(ANNOTATION_PREFIX)) annotations[k] = v;
  const out: V1Node = {
    // creationTimestamp decides conflicts between nodes (the older one wins).
    metadata: {
      name: n.metadata?.name,
      resourceVersion: n.metadata?.resourceVersion,
      creationTimestamp: n.metadata?.creationTimestamp,
      annotations,
    },
  };
  if (n.spec) out.spec = { podCIDR: n.spec.podCIDR, podCIDRs: n.spec.podCIDRs };
  if (n.status?.addresses) out.status = { addresses: n.status.addresses.filter((a) => a.type === 'InternalIP') };
  return out;
}

/** A Watch whose ADDED/MODIFIED/DELETED objects are projected before the informer caches them. */
class ProjectingWatch extends Watch {
  constructor(
    kubeConfig: KubeConfig,
    private readonly onAnswer: () => void,
  ) {
    super(kubeConfig);
  }

  override watch(
    path: string,
    queryParams: Record<string, string | number | boolean | undefined>,
    callback: (phase: string, apiObj: unknown, watchObj?: unknown) => void,
    done: (err: unknown) => void,
  ): Promise<AbortController> {
    return super.watch(
      path,
      queryParams,
      (phase, obj, watchObj) => {
        if (phase !== 'ERROR') this.onAnswer();
        callback(
          phase,
          phase === 'ADDED' || phase === 'MODIFIED' || phase === 'DELETED' ? projectNode(obj as V1Node) : obj,
          watchObj,
        );
      },
      done,
    );
  }
}

function describe(err: unknown): string {
  if (err instanceof Error) return `${err.name}: ${err.message}`;
  return String(err);
}
