/**
 * Small processes the lab runs inside its namespaces: the API server double (underlay netns),
 * a TCP echo server (each pod) and a TCP probe (a pod's client side).
 */
import { randomBytes } from 'node:crypto';
import { readFileSync, rmSync } from 'node:fs';
import { createConnection, createServer, type Server } from 'node:net';
import { errorMessage } from '@veil/agent-core/errors';

/** `veil lab apiserver`: the Kubernetes API double holding the lab's Node objects until SIGTERM. */
export async function runApiserver(opts: {
  host: string;
  port: number;
  nodesFile: string;
  controlSocket?: string;
}): Promise<number> {
  const { KubeApiServerDouble } = await import('@veil/kube-apiserver-double');
  const nodes = JSON.parse(readFileSync(opts.nodesFile, 'utf8')) as { metadata: { name: string } }[];
  const api = await KubeApiServerDouble.start({ host: opts.host, port: opts.port, bookmarkIntervalMs: 5_000 });
  for (const n of nodes) api.apply('nodes', n);
  process.stdout.write(`apiserver listening on ${api.url} with ${nodes.length} nodes\n`);
  // Chaos hooks (veil lab chaos): SIGUSR1 = the API server restarts (state kept, like etcd);
  // SIGUSR2 = the node list file changed: create new nodes, delete the ones gone (others untouched,
  // so the annotations agents published stay).
  process.on('SIGUSR1', () => {
    void (async () => {
      await api.stop();
      process.stdout.write('apiserver stopped (SIGUSR1)\n');
      await new Promise((r) => setTimeout(r, 2_000));
      await api.restart();
      process.stdout.write('apiserver restarted\n');
    })();
  });
  process.on('SIGUSR2', () => {
    try {
      const want = JSON.parse(readFileSync(opts.nodesFile, 'utf8')) as { metadata: { name: string } }[];
      const names = new Set(want.map((n) => n.metadata.name));
      for (const n of want) if (!api.get('nodes', n.metadata.name)) api.create('nodes', n);
      for (const o of api.list('nodes'))
        if (o.metadata?.name && !names.has(o.metadata.name)) api.delete('nodes', o.metadata.name);
      process.stdout.write(`apiserver nodes synced: ${[...names].join(',')}\n`);
    } catch (err) {
      process.stdout.write(`apiserver nodes sync failed: ${errorMessage(err)}\n`);
    }
  });
  const control = opts.controlSocket ? await serveControl(opts.controlSocket, api, opts.nodesFile) : undefined;
  await new Promise<void>((resolve) => {
    process.once('SIGTERM', () => resolve());
    process.once('SIGINT', () => resolve());
  });
  control?.close();
  await api.close();
  return 0;
}

/** A request to the lab API server's control socket (one JSON line each way). */
export type ApiControlRequest =
  | { op: 'annotations'; node: string }
  /** Replaces the node's annotations (a MODIFIED event, as a user editing the Node would cause). */
  | { op: 'set-annotations'; node: string; annotations: Record<string, string> }
  /**
   * The API server restarts without its state (etcd lost): every open watch is cut, the Node
   * objects come back as first registered (no annotations), the watch history is gone.
   */
  | { op: 'lose-state' };
export type ApiControlReply = { ok: true; annotations?: Record<string, string> } | { ok: false; error: string };

type Double = Awaited<ReturnType<(typeof import('@veil/kube-apiserver-double'))['KubeApiServerDouble']['start']>>;

/** The control socket `veil lab chaos` uses to tamper with Node objects and to wipe the API server. */
async function serveControl(path: string, api: Double, nodesFile: string): Promise<Server> {
  rmSync(path, { force: true });
  const handle = async (req: ApiControlRequest): Promise<ApiControlReply> => {
    switch (req.op) {
      case 'annotations': {
        const o = api.get('nodes', req.node);
        if (!o) return { ok: false, error: `node ${req.node} not found` };
        return { ok: true, annotations: { ...((o.metadata.annotations ?? {}) as Record<string, string>) } };
      }
      case 'set-annotations':
        api.modify('nodes', req.node, (o) => {
          o.metadata.annotations = { ...req.annotations };
        });
        return { ok: true };
      case 'lose-state': {
        await api.stop();
        const want = JSON.parse(readFileSync(nodesFile, 'utf8')) as { metadata: { name: string } }[];
        for (const o of api.list('nodes')) if (o.metadata?.name) api.delete('nodes', o.metadata.name);
        for (const n of want) api.create('nodes', n);
        api.compact(); // watches resuming from before the loss get 410 Gone and must list again
        await api.restart();
        process.stdout.write('apiserver restarted without its state\n');
        return { ok: true };
      }
    }
  };
  const server = createServer((sock) => {
    let buf = '';
    sock.on('error', () => sock.destroy());
    sock.on('data', (c: Buffer) => {
      buf += c.toString();
      const nl = buf.indexOf('\n');
      if (nl < 0) return;
      void (async () => {
        let reply: ApiControlReply;
        try {
          reply = await handle(JSON.parse(buf.slice(0, nl)) as ApiControlRequest);
        } catch (err) {
          reply = { ok: false, error: errorMessage(err) };
        }
        sock.end(JSON.stringify(reply) + '\n');
      })();
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(path, () => resolve());
  });
  return server;
}

/** Sends one request to the lab API server's control socket. */
export function apiControl(path: string, req: ApiControlRequest, timeoutMs = 10_000): Promise<ApiControlReply> {
  return new Promise((resolve) => {
    let buf = '';
    const sock = createConnection(path, () => sock.write(JSON.stringify(req) + '\n'));
    const timer = setTimeout(() => {
      sock.destroy();
      resolve({ ok: false, error: `no reply from ${path} in ${timeoutMs} ms` });
    }, timeoutMs);
    sock.on('data', (c: Buffer) => (buf += c.toString()));
    sock.on('error', (err) => {
      clearTimeout(timer);
      resolve({ ok: false, error: err.message });
    });
    sock.on('end', () => {
      clearTimeout(timer);
      try {
        resolve(JSON.parse(buf) as ApiControlReply);
      } catch {
        resolve({ ok: false, error: `bad reply from ${path}: ${buf.slice(0, 200)}` });
      }
    });
  });
}

/** `veil lab _echo`: echoes every TCP connection back to its sender. */
export async function runEcho(port: number): Promise<number> {
  const server = createServer((sock) => {
    sock.on('error', () => sock.destroy());
    sock.pipe(sock);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '0.0.0.0', () => resolve());
  });
  process.stdout.write(`echo listening on ${port}\n`);
  await new Promise<void>((resolve) => {
    process.once('SIGTERM', () => resolve());
    process.once('SIGINT', () => resolve());
  });
  server.close();
  return 0;
}

/** One TCP probe result. */
export interface ProbeResult {
  target: string;
  ok: boolean;
  bytes: number;
  ms: number;
  error?: string;
}

/**
 * `size` random bytes with `marker` at every KiB boundary, so each TCP segment on the wire (MSS
 * well above 1 KiB) holds a whole copy that an underlay search would find were it sent in clear.
 */
export function markedPayload(size: number, marker: Buffer): Buffer {
  const payload = randomBytes(size);
  if (marker.length > 0) for (let off = 0; off + marker.length <= size; off += 1024) marker.copy(payload, off);
  return payload;
}

/** Sends `size` random bytes to an echo server and checks every byte comes back. */
function probeOnce(host: string, port: number, size: number, timeoutMs: number, marker: Buffer): Promise<ProbeResult> {
  const target = `${host}:${port}`;
  const payload = markedPayload(size, marker);
  const started = Date.now();
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let got = 0;
    let done = false;
    const finish = (error?: string): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      sock.destroy();
      const back = Buffer.concat(chunks);
      const ok = error === undefined && back.length === size && back.equals(payload);
      resolve({ target, ok, bytes: back.length, ms: Date.now() - started, ...(ok ? {} : { error: error ?? 'echo mismatch' }) });
    };
    const timer = setTimeout(() => finish(`timeout after ${timeoutMs} ms (${got}/${size} bytes back)`), timeoutMs);
    const sock = createConnection({ host, port }, () => sock.write(payload));
    sock.on('data', (c: Buffer) => {
      chunks.push(c);
      got += c.length;
      if (got >= size) finish();
    });
    sock.on('error', (err) => finish((err as NodeJS.ErrnoException).code ?? err.message));
    sock.on('close', () => finish(got >= size ? undefined : `closed after ${got}/${size} bytes`));
  });
}

/** `veil lab _probe`: probes every target concurrently, prints a JSON array of {@link ProbeResult}. */
export async function runProbe(targets: readonly string[], size: number, timeoutMs: number, markerHex = ''): Promise<number> {
  const marker = Buffer.from(markerHex, 'hex');
  const results = await Promise.all(
    targets.map((t) => {
      const i = t.lastIndexOf(':');
      return probeOnce(t.slice(0, i), Number(t.slice(i + 1)), size, timeoutMs, marker);
    }),
  );
  process.stdout.write(JSON.stringify(results) + '\n');
  return results.every((r) => r.ok) ? 0 : 1;
}
