/** Issue 12, defect 6: bounded HTTP endpoints, safe bind defaults, a status socket nobody else can use. */
import { connect, type Socket } from 'node:net';
import { lstatSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Registry } from 'prom-client';
import { afterEach, describe, expect, it } from 'vitest';
import { DEFAULT_CONFIG, StatusSocketError } from '../src/index.js';
import { HealthMetricsServer, StatusSocketServer } from '../src/observability/http.js';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

describe('health/metrics HTTP server limits', () => {
  let server: HealthMetricsServer | undefined;
  const sockets: Socket[] = [];
  afterEach(async () => {
    for (const s of sockets.splice(0)) s.destroy();
    await server?.close();
    server = undefined;
  });

  function make(limits?: ConstructorParameters<typeof HealthMetricsServer>[0]['limits']): HealthMetricsServer {
    server = new HealthMetricsServer({
      registry: new Registry(),
      healthy: () => true,
      notReadyReason: () => undefined,
      ...(limits ? { limits } : {}),
    });
    return server;
  }

  function open(port: number): Promise<{ socket: Socket; closed: Promise<void> }> {
    return new Promise((resolve, reject) => {
      const socket = connect(port, '127.0.0.1');
      sockets.push(socket);
      const closed = new Promise<void>((r) => socket.once('close', () => r()));
      socket.once('connect', () => resolve({ socket, closed }));
      socket.once('error', reject);
    });
  }

  it('answers only GET and HEAD (405 with Allow otherwise)', async () => {
    const port = await make().listen(0, '127.0.0.1');
    for (const method of ['POST', 'PUT', 'DELETE', 'OPTIONS']) {
      const res = await fetch(`http://127.0.0.1:${port}/metrics`, { method });
      expect(res.status, method).toBe(405);
      expect(res.headers.get('allow')).toBe('GET, HEAD');
    }
    expect((await fetch(`http://127.0.0.1:${port}/readyz`, { method: 'HEAD' })).status).toBe(200);
    expect((await fetch(`http://127.0.0.1:${port}/healthz`)).status).toBe(200);
  });

  it('closes idle connections and caps how many it holds', async () => {
    const port = await make({ idleTimeoutMs: 300, maxConnections: 4 }).listen(0, '127.0.0.1');
    const idle = await open(port);
    const t0 = Date.now();
    await Promise.race([idle.closed, sleep(5_000)]);
    expect(Date.now() - t0).toBeLessThan(3_000);
    // Over the cap, further connections are dropped at once instead of piling up.
    const conns = await Promise.all(Array.from({ length: 10 }, () => open(port)));
    const closedSoon = await Promise.all(
      conns.map((c) => Promise.race([c.closed.then(() => true), sleep(150).then(() => false)])),
    );
    expect(closedSoon.filter((x) => x).length).toBeGreaterThanOrEqual(6);
    // It still serves once connections are released.
    for (const c of conns) c.socket.destroy();
    await sleep(50);
    expect((await fetch(`http://127.0.0.1:${port}/healthz`)).status).toBe(200);
  });

  it('has bounded defaults (timeouts and a connection cap)', async () => {
    make();
    const l = HealthMetricsServer.DEFAULT_LIMITS;
    expect(l.maxConnections).toBeGreaterThan(0);
    expect(l.maxConnections).toBeLessThanOrEqual(1024);
    expect(l.idleTimeoutMs).toBeLessThanOrEqual(60_000);
    expect(l.headersTimeoutMs).toBeLessThanOrEqual(60_000);
    expect(l.requestTimeoutMs).toBeLessThanOrEqual(60_000);
  });

  it('metrics and health bind to loopback by default, not 0.0.0.0', () => {
    expect(DEFAULT_CONFIG.metrics.host).toBe('127.0.0.1');
    expect(DEFAULT_CONFIG.health.host).toBe('127.0.0.1');
  });
});

describe('status socket', () => {
  let dir: string | undefined;
  let server: StatusSocketServer | undefined;
  afterEach(async () => {
    await server?.close();
    server = undefined;
    if (dir) rmSync(dir, { recursive: true, force: true });
    dir = undefined;
  });

  it('is created with mode 0600 whatever the umask (umask 000)', async () => {
    dir = mkdtempSync(join(tmpdir(), 'veil-sock-'));
    const path = join(dir, 'status.sock');
    const old = process.umask(0o000);
    try {
      server = new StatusSocketServer(async () => ({ ok: true }));
      await server.listen(path);
    } finally {
      process.umask(old);
    }
    const st = lstatSync(path);
    expect(st.isSocket()).toBe(true);
    expect(st.mode & 0o777).toBe(0o600);
  });

  it('refuses, and keeps, an existing file at its path that is not a socket', async () => {
    dir = mkdtempSync(join(tmpdir(), 'veil-sock-'));
    const path = join(dir, 'status.sock');
    writeFileSync(path, 'precious');
    server = new StatusSocketServer(async () => ({ ok: true }));
    const err = await server.listen(path).catch((e: unknown) => e);
    server = undefined;
    expect(err).toBeInstanceOf(StatusSocketError);
    expect((err as Error).message).toContain(path);
    expect(readFileSync(path, 'utf8')).toBe('precious');
  });

  it('replaces a stale socket left by a crashed agent, but not one another agent serves', async () => {
    dir = mkdtempSync(join(tmpdir(), 'veil-sock-'));
    const path = join(dir, 'status.sock');
    const first = new StatusSocketServer(async () => ({ ok: 1 }));
    await first.listen(path);
    const second = new StatusSocketServer(async () => ({ ok: 2 }));
    const err = await second.listen(path).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(StatusSocketError);
    expect((err as Error).message).toMatch(/in use/);
    await first.close();
    // A leftover socket file with nobody listening is stale.
    const { createServer } = await import('node:net');
    const ghost = createServer();
    await new Promise<void>((r) => ghost.listen(path, () => r()));
    await new Promise<void>((r) => {
      // Close without unlinking: what a crash leaves behind.
      (ghost as unknown as { _handle: { close(): void } | null })._handle?.close();
      r();
    });
    server = new StatusSocketServer(async () => ({ ok: 3 }));
    await server.listen(path);
    expect(lstatSync(path).isSocket()).toBe(true);
  });
});
