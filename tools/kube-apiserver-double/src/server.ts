import { randomUUID } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { URL } from 'node:url';
import { jsonPatch, mergePatch, PatchError, type Json } from './patch.js';

/** The resources this double serves. All live in the core/v1 group. */
export type ResourceName = 'nodes' | 'secrets' | 'events';

/** A Kubernetes object as stored: `metadata` is always present after creation. */
export interface KubeObject {
  apiVersion?: string;
  kind?: string;
  metadata: {
    name?: string;
    generateName?: string;
    namespace?: string;
    resourceVersion?: string;
    uid?: string;
    creationTimestamp?: string;
    [key: string]: unknown;
  };
  [key: string]: unknown;
}

/** Watch event types, as on the wire. */
export type WatchEventType = 'ADDED' | 'MODIFIED' | 'DELETED' | 'BOOKMARK' | 'ERROR';

const RESOURCES: Record<ResourceName, { kind: string; namespaced: boolean }> = {
  nodes: { kind: 'Node', namespaced: false },
  secrets: { kind: 'Secret', namespaced: true },
  events: { kind: 'Event', namespaced: true },
};

interface HistoryEntry {
  rv: number;
  type: 'ADDED' | 'MODIFIED' | 'DELETED';
  resource: ResourceName;
  object: KubeObject;
}

interface Watcher {
  resource: ResourceName;
  namespace: string | undefined;
  name: string | undefined;
  bookmarks: boolean;
  res: http.ServerResponse;
  timer: NodeJS.Timeout | undefined;
}

/** Options for {@link KubeApiServerDouble.start}. */
export interface KubeApiServerDoubleOptions {
  /** Listen port; 0 (default) picks a free one. Kept across {@link KubeApiServerDouble.restart}. */
  port?: number;
  /** Listen address; default 127.0.0.1. */
  host?: string;
  /** Interval between BOOKMARK events on watches that asked for them; default 1000 ms. */
  bookmarkIntervalMs?: number;
  /**
   * Called right before a watch event is written to a client, with the wall-clock send time
   * (`performance.timeOrigin + performance.now()`, ms). Benchmarks measure event latency with it.
   */
  onWatchEventSent?: (type: WatchEventType, object: KubeObject, sentAtMs: number) => void;
}

/** A Kubernetes `Status` failure object as the API server returns it. */
function status(code: number, reason: string, message: string, details?: Record<string, unknown>): KubeObject {
  return {
    kind: 'Status',
    apiVersion: 'v1',
    metadata: {},
    status: 'Failure',
    message,
    reason,
    ...(details ? { details } : {}),
    code,
  };
}

class HttpError extends Error {
  constructor(
    readonly code: number,
    readonly reason: string,
    message: string,
  ) {
    super(message);
  }
}

/**
 * An in-process Kubernetes API server speaking the real HTTP/JSON protocol for core/v1 Nodes,
 * Secrets and Events: list (with resourceVersion), watch (ADDED/MODIFIED/DELETED/BOOKMARK and 410
 * Gone as an ERROR event after compaction), get, create, update, delete, JSON merge patch and JSON
 * patch with resourceVersion preconditions (409 Conflict). Tests drive it through the real
 * `@kubernetes/client-node` and mutate state directly through the programmatic API.
 *
 * Not done (the real kube-apiserver, tools/kube-cluster, is where these are tested): label
 * selectors (ignored), strategic merge patch semantics (treated as a JSON merge patch),
 * authentication, authorization (anyone may patch any Node), admission, and validation (it stores
 * objects the real server refuses, such as a Node's Event outside `default`).
 */
export class KubeApiServerDouble {
  private readonly objects = new Map<string, KubeObject>();
  private history: HistoryEntry[] = [];
  /** Oldest resourceVersion still answerable by a watch; older ones get 410 Gone. */
  private compactedRv = 0;
  private rv = 0;
  private readonly watchers = new Set<Watcher>();
  private readonly sockets = new Set<Socket>();
  private server: http.Server | undefined;
  private portNumber: number;
  private readonly host: string;
  private readonly bookmarkIntervalMs: number;
  private readonly onSent: KubeApiServerDoubleOptions['onWatchEventSent'];
  /** Number of HTTP requests served, by verb (for tests asserting client behaviour). */
  readonly requestCounts = new Map<string, number>();

  private constructor(opts: KubeApiServerDoubleOptions) {
    this.portNumber = opts.port ?? 0;
    this.host = opts.host ?? '127.0.0.1';
    this.bookmarkIntervalMs = opts.bookmarkIntervalMs ?? 1000;
    this.onSent = opts.onWatchEventSent;
  }

  /** Creates the server and starts listening. */
  static async start(opts: KubeApiServerDoubleOptions = {}): Promise<KubeApiServerDouble> {
    const s = new KubeApiServerDouble(opts);
    await s.listen();
    return s;
  }

  /** The bound port (stable across stop/restart). */
  get port(): number {
    return this.portNumber;
  }

  /** Base URL, e.g. `http://127.0.0.1:34567`. */
  get url(): string {
    return `http://${this.host}:${this.portNumber}`;
  }

  /** True while listening. */
  get running(): boolean {
    return this.server !== undefined;
  }

  /** Current (latest) resourceVersion. */
  get resourceVersion(): string {
    return String(this.rv);
  }

  /** Number of open watch streams. */
  get openWatches(): number {
    return this.watchers.size;
  }

  /**
   * Options for `KubeConfig.loadFromOptions()` pointing at this server (plain HTTP, no auth),
   * so callers need no import of the client here.
   */
  kubeConfigOptions(): {
    clusters: { name: string; server: string; skipTLSVerify: boolean }[];
    users: { name: string }[];
    contexts: { name: string; cluster: string; user: string }[];
    currentContext: string;
  } {
    return {
      clusters: [{ name: 'double', server: this.url, skipTLSVerify: true }],
      users: [{ name: 'double' }],
      contexts: [{ name: 'double', cluster: 'double', user: 'double' }],
      currentContext: 'double',
    };
  }

  private async listen(): Promise<void> {
    const server = http.createServer((req, res) => {
      this.handle(req, res).catch((err: unknown) => {
        if (!res.headersSent) this.send(res, 500, status(500, 'InternalError', String(err)));
        else res.destroy();
      });
    });
    server.keepAliveTimeout = 5_000;
    server.on('connection', (sock) => {
      this.sockets.add(sock);
      sock.on('close', () => this.sockets.delete(sock));
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.portNumber, this.host, () => {
        server.off('error', reject);
        resolve();
      });
    });
    this.portNumber = (server.address() as AddressInfo).port;
    this.server = server;
  }

  /**
   * Stops listening and drops every connection abruptly (open watches see the stream cut, new
   * requests get connection refused). State and history are kept for {@link restart}.
   */
  async stop(): Promise<void> {
    const server = this.server;
    if (!server) return;
    this.server = undefined;
    for (const w of this.watchers) this.closeWatcher(w, false);
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  /** Listens again on the same port after {@link stop}. */
  async restart(): Promise<void> {
    if (this.server) return;
    await this.listen();
  }

  /** Clean shutdown: ends every open watch stream gracefully, then stops. */
  async close(): Promise<void> {
    for (const w of this.watchers) this.closeWatcher(w, true);
    await this.stop();
  }

  /**
   * Drops watch history up to (and including) `upToRv` (default: everything so far). Watches that
   * resume from an older resourceVersion then get 410 Gone. With `expireWatches`, every open watch
   * is also sent a 410 ERROR event and closed, as an API server does after etcd compaction.
   */
  compact(opts: { upToRv?: number; expireWatches?: boolean } = {}): void {
    const upTo = opts.upToRv ?? this.rv;
    this.history = this.history.filter((h) => h.rv > upTo);
    this.compactedRv = Math.max(this.compactedRv, upTo);
    if (opts.expireWatches) {
      for (const w of [...this.watchers]) {
        this.writeEvent(w, 'ERROR', this.goneStatus(0));
        this.closeWatcher(w, true);
      }
    }
  }

  // ---- programmatic object API ------------------------------------------------------------

  /** Creates an object; fails with an error if it exists. Returns the stored copy. */
  create(resource: ResourceName, obj: KubeObject): KubeObject {
    return this.doCreate(resource, obj.metadata.namespace, structuredClone(obj));
  }

  /** Creates or replaces an object (no resourceVersion precondition). */
  apply(resource: ResourceName, obj: KubeObject): KubeObject {
    const key = this.key(resource, obj.metadata.namespace, obj.metadata.name ?? '');
    if (this.objects.has(key)) return this.doReplace(resource, key, structuredClone(obj), false);
    return this.create(resource, obj);
  }

  /** Applies `mutate` to a copy of an object and stores it as a MODIFIED event. */
  modify(resource: ResourceName, name: string, mutate: (o: KubeObject) => void, namespace?: string): KubeObject {
    const key = this.key(resource, namespace, name);
    const cur = this.objects.get(key);
    if (!cur) throw new Error(`${resource} "${name}" not found`);
    const next = structuredClone(cur);
    mutate(next);
    return this.doReplace(resource, key, next, false);
  }

  /** Deletes an object; returns false if absent. */
  delete(resource: ResourceName, name: string, namespace?: string): boolean {
    const key = this.key(resource, namespace, name);
    if (!this.objects.has(key)) return false;
    this.doDelete(resource, key);
    return true;
  }

  /** A copy of one object, or undefined. */
  get(resource: ResourceName, name: string, namespace?: string): KubeObject | undefined {
    const o = this.objects.get(this.key(resource, namespace, name));
    return o ? structuredClone(o) : undefined;
  }

  /** Copies of every object of a resource (optionally one namespace). */
  list(resource: ResourceName, namespace?: string): KubeObject[] {
    const prefix = namespace === undefined ? `${resource}/` : `${resource}/${namespace}/`;
    const out: KubeObject[] = [];
    for (const [k, v] of this.objects) if (k.startsWith(prefix)) out.push(structuredClone(v));
    return out;
  }

  // ---- storage ----------------------------------------------------------------------------

  private key(resource: ResourceName, namespace: string | undefined, name: string): string {
    return RESOURCES[resource].namespaced ? `${resource}/${namespace ?? 'default'}/${name}` : `${resource}//${name}`;
  }

  private stamp(resource: ResourceName, obj: KubeObject): void {
    obj.apiVersion = 'v1';
    obj.kind = RESOURCES[resource].kind;
    obj.metadata.resourceVersion = String(++this.rv);
  }

  private doCreate(resource: ResourceName, namespace: string | undefined, obj: KubeObject): KubeObject {
    if (!obj || typeof obj !== 'object' || typeof obj.metadata !== 'object' || obj.metadata === null) {
      throw new HttpError(400, 'BadRequest', 'object has no metadata');
    }
    if (!obj.metadata.name && obj.metadata.generateName) {
      obj.metadata.name = obj.metadata.generateName + randomUUID().slice(0, 5);
    }
    const name = obj.metadata.name;
    if (!name) throw new HttpError(422, 'Invalid', `${RESOURCES[resource].kind} metadata.name: Required value`);
    if (RESOURCES[resource].namespaced) obj.metadata.namespace = namespace ?? obj.metadata.namespace ?? 'default';
    else delete obj.metadata.namespace;
    const key = this.key(resource, obj.metadata.namespace, name);
    if (this.objects.has(key)) {
      throw new HttpError(409, 'AlreadyExists', `${resource} "${name}" already exists`);
    }
    obj.metadata.uid = randomUUID();
    obj.metadata.creationTimestamp = new Date().toISOString().replace(/\.\d+Z$/, 'Z');
    this.stamp(resource, obj);
    this.objects.set(key, obj);
    this.record('ADDED', resource, obj);
    return structuredClone(obj);
  }

  private doReplace(resource: ResourceName, key: string, next: KubeObject, checkRv: boolean): KubeObject {
    const cur = this.objects.get(key);
    if (!cur) throw new HttpError(404, 'NotFound', `${resource} not found`);
    if (
      checkRv &&
      next.metadata.resourceVersion !== undefined &&
      next.metadata.resourceVersion !== cur.metadata.resourceVersion
    ) {
      throw new HttpError(
        409,
        'Conflict',
        `Operation cannot be fulfilled on ${resource} "${cur.metadata.name}": the object has been modified; please apply your changes to the latest version and try again`,
      );
    }
    // Identity fields are owned by the server.
    next.metadata = {
      ...next.metadata,
      name: cur.metadata.name,
      uid: cur.metadata.uid,
      creationTimestamp: cur.metadata.creationTimestamp,
    };
    if (cur.metadata.namespace !== undefined) next.metadata.namespace = cur.metadata.namespace;
    this.stamp(resource, next);
    this.objects.set(key, next);
    this.record('MODIFIED', resource, next);
    return structuredClone(next);
  }

  private doDelete(resource: ResourceName, key: string): KubeObject {
    const cur = this.objects.get(key);
    if (!cur) throw new HttpError(404, 'NotFound', `${resource} not found`);
    this.objects.delete(key);
    const tomb = structuredClone(cur);
    tomb.metadata.resourceVersion = String(++this.rv);
    this.record('DELETED', resource, tomb);
    return tomb;
  }

  private record(type: HistoryEntry['type'], resource: ResourceName, object: KubeObject): void {
    const entry: HistoryEntry = { rv: this.rv, type, resource, object };
    this.history.push(entry);
    for (const w of this.watchers) if (this.matches(w, entry)) this.writeEvent(w, type, object);
  }

  // ---- HTTP -------------------------------------------------------------------------------

  private send(res: http.ServerResponse, code: number, body: unknown): void {
    const text = JSON.stringify(body);
    res.writeHead(code, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(text) });
    res.end(text);
  }

  private async readBody(req: http.IncomingMessage): Promise<unknown> {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const text = Buffer.concat(chunks).toString('utf8');
    if (text.length === 0) return undefined;
    try {
      return JSON.parse(text) as unknown;
    } catch {
      throw new HttpError(400, 'BadRequest', 'request body is not valid JSON');
    }
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://double');
    const verb = req.method ?? 'GET';
    this.requestCounts.set(verb, (this.requestCounts.get(verb) ?? 0) + 1);
    const route = parsePath(url.pathname);
    try {
      if (url.pathname === '/version') {
        this.send(res, 200, { major: '1', minor: '31', gitVersion: 'v1.31.0-veil-double' });
        return;
      }
      if (url.pathname === '/healthz' || url.pathname === '/readyz') {
        res.writeHead(200, { 'Content-Type': 'text/plain' }).end('ok');
        return;
      }
      if (!route) throw new HttpError(404, 'NotFound', `the server could not find the requested resource (${url.pathname})`);
      const { resource, namespace, name } = route;
      const def = RESOURCES[resource];
      if (name === undefined) {
        if (verb === 'GET') {
          if (url.searchParams.get('watch') === 'true' || url.searchParams.get('watch') === '1') {
            this.startWatch(req, res, resource, namespace, url.searchParams);
            return;
          }
          const fieldName = parseNameSelector(url.searchParams.get('fieldSelector'));
          const page = this.listPage(resource, namespace, fieldName, url.searchParams);
          this.send(res, 200, { kind: `${def.kind}List`, apiVersion: 'v1', ...page });
          return;
        }
        if (verb === 'POST') {
          if (def.namespaced && namespace === undefined) throw new HttpError(405, 'MethodNotAllowed', 'create needs a namespace');
          const body = (await this.readBody(req)) as KubeObject;
          if (body?.metadata?.namespace !== undefined && namespace !== undefined && body.metadata.namespace !== namespace) {
            throw new HttpError(
              400,
              'BadRequest',
              'the namespace of the provided object does not match the namespace sent on the request',
            );
          }
          this.send(res, 201, this.doCreate(resource, namespace, body));
          return;
        }
        throw new HttpError(405, 'MethodNotAllowed', `${verb} is not allowed on a collection`);
      }
      const key = this.key(resource, namespace, name);
      switch (verb) {
        case 'GET': {
          const o = this.objects.get(key);
          if (!o) throw new HttpError(404, 'NotFound', `${resource} "${name}" not found`);
          this.send(res, 200, o);
          return;
        }
        case 'DELETE':
          this.send(res, 200, this.doDelete(resource, key));
          return;
        case 'PUT': {
          const body = (await this.readBody(req)) as KubeObject;
          if (!body?.metadata) throw new HttpError(400, 'BadRequest', 'object has no metadata');
          if (body.metadata.name !== name)
            throw new HttpError(400, 'BadRequest', 'the name of the object does not match the name on the URL');
          this.send(res, 200, this.doReplace(resource, key, body, true));
          return;
        }
        case 'PATCH': {
          const cur = this.objects.get(key);
          if (!cur) throw new HttpError(404, 'NotFound', `${resource} "${name}" not found`);
          const ctype = (req.headers['content-type'] ?? '').split(';')[0]?.trim();
          const body = await this.readBody(req);
          let next: Json;
          try {
            if (ctype === 'application/merge-patch+json' || ctype === 'application/strategic-merge-patch+json') {
              next = mergePatch(cur as unknown as Json, body as Json);
            } else if (ctype === 'application/json-patch+json') {
              next = jsonPatch(cur as unknown as Json, body);
            } else {
              throw new HttpError(
                415,
                'UnsupportedMediaType',
                `the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json`,
              );
            }
          } catch (e) {
            if (e instanceof PatchError) throw new HttpError(e.status, e.status === 400 ? 'BadRequest' : 'Invalid', e.message);
            throw e;
          }
          const nextObj = next as unknown as KubeObject;
          if (!nextObj || typeof nextObj.metadata !== 'object') throw new HttpError(422, 'Invalid', 'patch removed metadata');
          // A resourceVersion in the patched result that differs from the stored one is a
          // precondition the client asked for: answer 409 like the API server does.
          this.send(res, 200, this.doReplace(resource, key, nextObj, true));
          return;
        }
        default:
          throw new HttpError(405, 'MethodNotAllowed', `${verb} is not allowed`);
      }
    } catch (e) {
      if (e instanceof HttpError) {
        const details = route?.name === undefined ? undefined : { name: route.name, kind: route.resource };
        this.send(res, e.code, status(e.code, e.reason, e.message, details));
        return;
      }
      throw e;
    }
  }

  /**
   * One list page. `limit`/`continue` paginate over the objects sorted by key; every page reports
   * the first page's resourceVersion (later pages read current state, which a watch from that
   * resourceVersion then replays over, so clients converge). A continue token older than the
   * compaction point is 410 Gone, as on a real API server.
   */
  private listPage(
    resource: ResourceName,
    namespace: string | undefined,
    fieldName: string | undefined,
    q: URLSearchParams,
  ): { metadata: { resourceVersion: string; continue?: string }; items: KubeObject[] } {
    const limit = Number(q.get('limit') ?? '0');
    const token = q.get('continue');
    let rv = this.rv;
    let after = '';
    if (token) {
      let parsed: { rv?: unknown; after?: unknown };
      try {
        parsed = JSON.parse(Buffer.from(token, 'base64url').toString('utf8')) as { rv?: unknown; after?: unknown };
      } catch {
        throw new HttpError(400, 'BadRequest', 'invalid continue token');
      }
      if (typeof parsed.rv !== 'number' || typeof parsed.after !== 'string')
        throw new HttpError(400, 'BadRequest', 'invalid continue token');
      if (parsed.rv < this.compactedRv)
        throw new HttpError(410, 'Expired', 'The provided continue parameter is too old to display a consistent list result.');
      rv = parsed.rv;
      after = parsed.after;
    }
    const prefix = namespace === undefined ? `${resource}/` : `${resource}/${namespace}/`;
    const keys = [...this.objects.keys()].filter((k) => k.startsWith(prefix) && k > after).sort();
    const items: KubeObject[] = [];
    let last = '';
    for (const k of keys) {
      const o = this.objects.get(k)!;
      if (fieldName !== undefined && o.metadata.name !== fieldName) continue;
      if (limit > 0 && items.length >= limit) {
        const next = Buffer.from(JSON.stringify({ rv, after: last })).toString('base64url');
        return { metadata: { resourceVersion: String(rv), continue: next }, items };
      }
      items.push(o);
      last = k;
    }
    return { metadata: { resourceVersion: String(rv) }, items };
  }

  private goneStatus(rv: number): KubeObject {
    return status(410, 'Expired', `too old resource version: ${rv} (${this.compactedRv})`);
  }

  private startWatch(
    req: http.IncomingMessage,
    res: http.ServerResponse,
    resource: ResourceName,
    namespace: string | undefined,
    q: URLSearchParams,
  ): void {
    const w: Watcher = {
      resource,
      namespace,
      name: parseNameSelector(q.get('fieldSelector')),
      bookmarks: q.get('allowWatchBookmarks') === 'true',
      res,
      timer: undefined,
    };
    res.writeHead(200, { 'Content-Type': 'application/json', 'Transfer-Encoding': 'chunked' });
    res.flushHeaders();
    const rvParam = q.get('resourceVersion') ?? '';
    if (rvParam === '' || rvParam === '0') {
      // "Start at most recent" (unset) and "any" (0): synthetic ADDED for current state first.
      for (const [k, o] of this.objects) {
        if (!k.startsWith(`${resource}/`)) continue;
        if (!this.matches(w, { rv: 0, type: 'ADDED', resource, object: o })) continue;
        this.writeEvent(w, 'ADDED', o);
      }
    } else {
      const from = Number(rvParam);
      if (!Number.isInteger(from) || from < 0) {
        this.writeEvent(w, 'ERROR', status(400, 'BadRequest', `invalid resourceVersion "${rvParam}"`));
        res.end();
        return;
      }
      if (from < this.compactedRv) {
        this.writeEvent(w, 'ERROR', this.goneStatus(from));
        res.end();
        return;
      }
      for (const h of this.history) if (h.rv > from && this.matches(w, h)) this.writeEvent(w, h.type, h.object);
    }
    this.watchers.add(w);
    if (w.bookmarks) {
      w.timer = setInterval(() => {
        this.writeEvent(w, 'BOOKMARK', {
          kind: RESOURCES[resource].kind,
          apiVersion: 'v1',
          metadata: { resourceVersion: String(this.rv) },
        });
      }, this.bookmarkIntervalMs);
      w.timer.unref();
    }
    const timeout = Number(q.get('timeoutSeconds') ?? '0');
    if (timeout > 0) {
      const t = setTimeout(() => this.closeWatcher(w, true), timeout * 1000);
      t.unref();
      res.on('close', () => clearTimeout(t));
    }
    req.on('close', () => this.closeWatcher(w, false));
  }

  private matches(w: Watcher, h: HistoryEntry): boolean {
    if (h.resource !== w.resource) return false;
    if (w.namespace !== undefined && h.object.metadata.namespace !== w.namespace) return false;
    if (w.name !== undefined && h.object.metadata.name !== w.name) return false;
    return true;
  }

  private writeEvent(w: Watcher, type: WatchEventType, object: KubeObject): void {
    if (w.res.writableEnded || w.res.destroyed) return;
    this.onSent?.(type, object, performance.timeOrigin + performance.now());
    w.res.write(JSON.stringify({ type, object }) + '\n');
  }

  private closeWatcher(w: Watcher, graceful: boolean): void {
    if (w.timer) clearInterval(w.timer);
    this.watchers.delete(w);
    if (graceful) w.res.end();
    else w.res.destroy();
  }
}

function parseNameSelector(sel: string | null): string | undefined {
  if (!sel) return undefined;
  for (const part of sel.split(',')) {
    const m = /^metadata\.name==?(.*)$/.exec(part.trim());
    if (m) return m[1];
  }
  return undefined;
}

function parsePath(
  pathname: string,
): { resource: ResourceName; namespace: string | undefined; name: string | undefined } | undefined {
  const parts = pathname
    .split('/')
    .filter((p) => p.length > 0)
    .map(decodeURIComponent);
  if (parts[0] !== 'api' || parts[1] !== 'v1') return undefined;
  let rest = parts.slice(2);
  let namespace: string | undefined;
  if (rest[0] === 'namespaces' && rest.length >= 3) {
    namespace = rest[1];
    rest = rest.slice(2);
  }
  const resource = rest[0];
  if (resource !== 'nodes' && resource !== 'secrets' && resource !== 'events') return undefined;
  if (resource === 'nodes' && namespace !== undefined) return undefined;
  if (rest.length > 2) return undefined;
  return { resource, namespace, name: rest[1] };
}
