import { chmod, lstat, mkdir, rm } from 'node:fs/promises';
import http from 'node:http';
import { connect, type AddressInfo } from 'node:net';
import { dirname } from 'node:path';
import { StatusSocketError } from '../errors.js';
import type { Registry } from 'prom-client';
import { errorMessage } from '../errors.js';
import { StatusRouteError, type StatusErrorBody } from './status-api.js';

/**
 * Bounds of an HTTP listener. Unbounded, ~21,000 idle connections exhausted the agent's file
 * descriptors (issue 12): WireGuard updates then failed with EMFILE and /readyz stopped answering.
 */
export interface HttpLimits {
  /** Connections held at once; more are closed on accept. */
  maxConnections: number;
  /** A connection idle (no bytes either way) this long is closed. */
  idleTimeoutMs: number;
  /** Time to receive the request headers. */
  headersTimeoutMs: number;
  /** Time to receive the whole request. */
  requestTimeoutMs: number;
  /** Idle time of a kept-alive connection between requests. */
  keepAliveTimeoutMs: number;
}

const DEFAULT_LIMITS: Readonly<HttpLimits> = Object.freeze({
  maxConnections: 64,
  idleTimeoutMs: 30_000,
  headersTimeoutMs: 10_000,
  requestTimeoutMs: 30_000,
  keepAliveTimeoutMs: 5_000,
});

function boundedServer(limits: Partial<HttpLimits> | undefined, handler: http.RequestListener): http.Server {
  const l = { ...DEFAULT_LIMITS, ...limits };
  const server = http.createServer(
    {
      requestTimeout: l.requestTimeoutMs,
      headersTimeout: Math.min(l.headersTimeoutMs, l.requestTimeoutMs),
      keepAliveTimeout: l.keepAliveTimeoutMs,
      // How often the two timeouts above are checked (Node's default is 30 s).
      connectionsCheckingInterval: Math.max(50, Math.min(1_000, l.headersTimeoutMs / 2)),
    },
    handler,
  );
  server.maxConnections = l.maxConnections;
  // Without a 'timeout' listener, an idle socket is destroyed.
  server.timeout = l.idleTimeoutMs;
  return server;
}

/** Serves `/metrics`, `/healthz` and `/readyz` on a TCP port (GET/HEAD only, bounded). */
export class HealthMetricsServer {
  static readonly DEFAULT_LIMITS = DEFAULT_LIMITS;
  private server: http.Server | undefined;

  constructor(
    private readonly opts: {
      registry: Registry;
      /** Liveness: the process is working. */
      healthy: () => boolean;
      /** Readiness: returns undefined when ready, else the reason. */
      notReadyReason: () => string | undefined;
      /** Overrides of {@link HealthMetricsServer.DEFAULT_LIMITS}. */
      limits?: Partial<HttpLimits>;
    },
  ) {}

  async listen(port: number, host: string): Promise<number> {
    const server = boundedServer(this.opts.limits, (req, res) => void this.handle(req, res));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, () => {
        server.off('error', reject);
        resolve();
      });
    });
    this.server = server;
    return (server.address() as AddressInfo).port;
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const path = (req.url ?? '/').split('?')[0];
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      req.resume();
      res.writeHead(405, { 'Content-Type': 'text/plain', Allow: 'GET, HEAD' }).end('method not allowed\n');
      return;
    }
    try {
      if (path === '/metrics') {
        const body = await this.opts.registry.metrics();
        res.writeHead(200, { 'Content-Type': this.opts.registry.contentType }).end(body);
      } else if (path === '/healthz') {
        const ok = this.opts.healthy();
        res.writeHead(ok ? 200 : 503, { 'Content-Type': 'text/plain' }).end(ok ? 'ok\n' : 'unhealthy\n');
      } else if (path === '/readyz') {
        const reason = this.opts.notReadyReason();
        res
          .writeHead(reason === undefined ? 200 : 503, { 'Content-Type': 'text/plain' })
          .end(reason === undefined ? 'ok\n' : `not ready: ${reason}\n`);
      } else {
        res.writeHead(404, { 'Content-Type': 'text/plain' }).end('not found\n');
      }
    } catch (err) {
      res.writeHead(500, { 'Content-Type': 'text/plain' }).end(`error: ${errorMessage(err)}\n`);
    }
  }

  async close(): Promise<void> {
    const s = this.server;
    this.server = undefined;
    if (!s) return;
    s.closeAllConnections();
    await new Promise<void>((r) => s.close(() => r()));
  }
}

/**
 * Extra status-socket endpoints, keyed `"<METHOD> <path>"` (e.g. `"GET /v1/agent"`); the handler's
 * result is the 200 JSON body. Throw {@link StatusRouteError} for another status code.
 */
export type StatusRoutes = Readonly<Record<string, () => Promise<unknown>>>;

/** Serves the status JSON over HTTP on a unix socket (`GET /v1/status`, plus `routes`). */
export class StatusSocketServer {
  private server: http.Server | undefined;
  private path: string | undefined;

  constructor(
    private readonly status: () => Promise<unknown>,
    private readonly routes: StatusRoutes = {},
  ) {}

  /**
   * Listens on `socketPath` with mode 0600 whatever the process umask (the socket rotates keys).
   * A socket a crashed agent left is replaced; a live one, or any file that is not a socket, is
   * refused with {@link StatusSocketError}, never deleted.
   */
  async listen(socketPath: string): Promise<void> {
    await mkdir(dirname(socketPath), { recursive: true, mode: 0o700 });
    await this.clearStale(socketPath);
    const server = boundedServer(undefined, (req, res) => void this.handle(req, res));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      // bind(2) runs inside listen() for a unix socket: a umask of 0177 there creates it 0600
      // with no window in which others could connect. (umask is unavailable in worker threads:
      // the chmod below still applies.)
      let old: number | undefined;
      try {
        old = process.umask(0o177);
      } catch {
        old = undefined;
      }
      try {
        server.listen(socketPath, () => {
          server.off('error', reject);
          resolve();
        });
      } finally {
        if (old !== undefined) process.umask(old);
      }
    });
    await chmod(socketPath, 0o600);
    this.server = server;
    this.path = socketPath;
  }

  private async clearStale(socketPath: string): Promise<void> {
    let st;
    try {
      st = await lstat(socketPath);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
      throw new StatusSocketError(socketPath, `cannot inspect: ${(err as Error).message}`);
    }
    if (!st.isSocket())
      throw new StatusSocketError(
        socketPath,
        'exists and is not a socket; refusing to replace it (remove it or set status.socketPath)',
      );
    const live = await new Promise<boolean>((resolve) => {
      const c = connect(socketPath);
      c.once('connect', () => {
        c.destroy();
        resolve(true);
      });
      c.once('error', () => resolve(false));
    });
    if (live) throw new StatusSocketError(socketPath, 'in use by another process (is another agent running on this node?)');
    // Left by an agent that crashed: nobody answers on it.
    await rm(socketPath, { force: true });
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const path = (req.url ?? '/').split('?')[0];
    const route = this.routes[`${req.method ?? 'GET'} ${path}`];
    if (route) {
      await this.serveRoute(req, res, route);
      return;
    }
    if (path !== undefined && Object.keys(this.routes).some((k) => k.endsWith(` ${path}`))) {
      const allow = Object.keys(this.routes)
        .filter((k) => k.endsWith(` ${path}`))
        .map((k) => k.split(' ')[0]);
      res
        .writeHead(405, { 'Content-Type': 'application/json', Allow: allow.join(', ') })
        .end(JSON.stringify({ error: `method ${req.method} not allowed on ${path}`, code: 'METHOD_NOT_ALLOWED' }));
      return;
    }
    if (req.method !== 'GET' || (path !== '/v1/status' && path !== '/')) {
      res.writeHead(404, { 'Content-Type': 'application/json' }).end(JSON.stringify({ error: 'not found' }));
      return;
    }
    try {
      const body = JSON.stringify(await this.status(), null, 2);
      res.writeHead(200, { 'Content-Type': 'application/json' }).end(body);
    } catch (err) {
      res.writeHead(500, { 'Content-Type': 'application/json' }).end(JSON.stringify({ error: errorMessage(err) }));
    }
  }

  private async serveRoute(req: http.IncomingMessage, res: http.ServerResponse, route: () => Promise<unknown>): Promise<void> {
    // Request bodies are not used by any route; drain so keep-alive clients are not stuck.
    req.resume();
    try {
      const body = JSON.stringify(await route(), null, 2);
      res.writeHead(200, { 'Content-Type': 'application/json' }).end(body);
    } catch (err) {
      const status = err instanceof StatusRouteError ? err.statusCode : 500;
      const body: StatusErrorBody = {
        error: errorMessage(err),
        ...(err instanceof StatusRouteError ? { code: err.code } : { code: 'INTERNAL' }),
      };
      res.writeHead(status, { 'Content-Type': 'application/json' }).end(JSON.stringify(body));
    }
  }

  async close(): Promise<void> {
    const s = this.server;
    this.server = undefined;
    if (s) {
      s.closeAllConnections();
      await new Promise<void>((r) => s.close(() => r()));
    }
    if (this.path) await rm(this.path, { force: true });
  }
}

/** GETs `path` over a unix-socket HTTP server and parses JSON (what `veil status` does). */
export function getJsonOverUnixSocket(socketPath: string, path = '/v1/status'): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const req = http.get({ socketPath, path }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        try {
          resolve(JSON.parse(Buffer.concat(chunks).toString('utf8')));
        } catch (err) {
          reject(err instanceof Error ? err : new Error(String(err)));
        }
      });
      res.on('error', reject);
    });
    req.on('error', reject);
  });
}
