/**
 * Small processes the lab runs inside its namespaces: the API server double (underlay netns),
 * a TCP echo server (each pod) and a TCP probe (a pod's client side).
 */
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createConnection, createServer } from 'node:net';
import { errorMessage } from '@veil/agent-core/errors';

/** `veil lab apiserver`: the Kubernetes API double holding the lab's Node objects until SIGTERM. */
export async function runApiserver(opts: { host: string; port: number; nodesFile: string }): Promise<number> {
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
      for (const o of api.list('nodes')) if (o.metadata?.name && !names.has(o.metadata.name)) api.delete('nodes', o.metadata.name);
      process.stdout.write(`apiserver nodes synced: ${[...names].join(',')}\n`);
    } catch (err) {
      process.stdout.write(`apiserver nodes sync failed: ${errorMessage(err)}\n`);
    }
  });
  await new Promise<void>((resolve) => {
    process.once('SIGTERM', () => resolve());
    process.once('SIGINT', () => resolve());
  });
  await api.close();
  return 0;
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

/** Sends `size` random bytes to an echo server and checks every byte comes back. */
function probeOnce(host: string, port: number, size: number, timeoutMs: number): Promise<ProbeResult> {
  const target = `${host}:${port}`;
  const payload = randomBytes(size);
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
export async function runProbe(targets: readonly string[], size: number, timeoutMs: number): Promise<number> {
  const results = await Promise.all(
    targets.map((t) => {
      const i = t.lastIndexOf(':');
      return probeOnce(t.slice(0, i), Number(t.slice(i + 1)), size, timeoutMs);
    }),
  );
  process.stdout.write(JSON.stringify(results) + '\n');
  return results.every((r) => r.ok) ? 0 : 1;
}
