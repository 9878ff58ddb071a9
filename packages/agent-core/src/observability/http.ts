import { mkdir, rm } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { dirname } from 'node:path';
import type { Registry } from 'prom-client';
import { errorMessage } from '../errors.js';
import { StatusRouteError, type StatusErrorBody } from './status-api.js';

/** Serves `/metrics`, `/healthz` and `/readyz` on a TCP port. */
export class HealthMetricsServer {
  private server: http.Server | undefined;

  constructor(
    private readonly opts: {
      registry: Registry;
      /** Liveness: the process is working. */
      healthy: () => boolean;
      /** Readiness: returns undefined when ready, else the reason. */
      notReadyReason: () => string | undefined;
    },
  ) {}

  async listen(port: number, host: string): Promise<number> {
    const server = http.createServer((req, res) => void this.handle(req, res));
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
    try {
      if (path === '/metrics') {
        const body = await this.opts.registry.metrics();
        res.writeHead(200, { 'Content-Type': this.opts.registry.contentType }).end(body);
      } else if (path === '/healthz') {
        const ok = this.opts.healthy();
        res.writeHead(ok ? 200 : 503, { 'Content-Type': 'text/plain' }).end(ok ? 'ok\n' : 'unhealthy\n');
      } else if (path === '/readyz') {
        const reason = this.opts.notReadyReason();
        res.writeHead(reason === undefined ? 200 : 503, { 'Content-Type': 'text/plain' }).end(reason === undefined ? 'ok\n' : `not ready: ${reason}\n`);
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

  async listen(socketPath: string): Promise<void> {
    await mkdir(dirname(socketPath), { recursive: true });
    // A socket left by a previous (crashed) agent would make listen fail with EADDRINUSE.
    await rm(socketPath, { force: true });
    const server = http.createServer((req, res) => void this.handle(req, res));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(socketPath, () => {
        server.off('error', reject);
        resolve();
      });
    });
    this.server = server;
    this.path = socketPath;
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const path = (req.url ?? '/').split('?')[0];
    const route = this.routes[`${req.method ?? 'GET'} ${path}`];
    if (route) {
      await this.serveRoute(req, res, route);
      return;
    }
    if (path !== undefined && Object.keys(this.routes).some((k) => k.endsWith(` ${path}`))) {
      const allow = Object.keys(this.routes).filter((k) => k.endsWith(` ${path}`)).map((k) => k.split(' ')[0]);
      res.writeHead(405, { 'Content-Type': 'application/json', Allow: allow.join(', ') }).end(JSON.stringify({ error: `method ${req.method} not allowed on ${path}`, code: 'METHOD_NOT_ALLOWED' }));
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
          reject(err);
        }
      });
      res.on('error', reject);
    });
    req.on('error', reject);
  });
}
