/**
 * Small processes the lab runs inside its pods: a TCP echo server and a TCP probe (a pod's client
 * side). The control plane helper is in apiserver.ts.
 */
import { randomBytes } from 'node:crypto';
import { createConnection, createServer } from 'node:net';
import { VEIL_MAIN } from '@veil/cli';
import { run } from './exec.js';

/** `veil lab _echo`: echoes every TCP connection back to its sender. */
export async function runEcho(port: number): Promise<number> {
  const server = createServer((sock) => {
    sock.on('error', () => sock.destroy());
    sock.pipe(sock);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    // '::' takes IPv4 too (IPv4-mapped): one server for both of a dual-stack pod's addresses.
    server.listen(port, '::', () => resolve());
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

/** `host:port`, `[v6]:port` (or `v6:port`) → host (no brackets) and port. */
export function splitHostPort(target: string): { host: string; port: number } {
  const i = target.lastIndexOf(':');
  return { host: target.slice(0, i).replace(/^\[(.*)\]$/, '$1'), port: Number(target.slice(i + 1)) };
}

/** A probe target for `ip` (IPv6 in brackets). */
export function hostPort(ip: string, port: number): string {
  return ip.includes(':') ? `[${ip}]:${port}` : `${ip}:${port}`;
}

/** Sends `size` random bytes to an echo server and checks every byte comes back. */
function probeOnce(host: string, port: number, size: number, timeoutMs: number, marker: Buffer): Promise<ProbeResult> {
  const target = hostPort(host, port);
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
      const { host, port } = splitHostPort(t);
      return probeOnce(host, port, size, timeoutMs, marker);
    }),
  );
  process.stdout.write(JSON.stringify(results) + '\n');
  return results.every((r) => r.ok) ? 0 : 1;
}

/**
 * Runs `veil lab _probe` inside `netns` (the pod's side of the TCP echo probe) and reads its
 * results; a probe process that printed nothing readable fails every target with its last error line.
 */
export async function probeFromNetns(
  netns: string,
  targets: readonly string[],
  o: { size: number; marker: Buffer; timeoutMs: number; runTimeoutMs: number },
): Promise<ProbeResult[]> {
  const r = await run(
    'ip',
    [
      'netns',
      'exec',
      netns,
      process.execPath,
      VEIL_MAIN,
      'lab',
      '_probe',
      '--size',
      String(o.size),
      '--marker',
      o.marker.toString('hex'),
      '--timeout',
      String(o.timeoutMs),
      ...targets,
    ],
    { timeoutMs: o.runTimeoutMs },
  );
  try {
    return JSON.parse(r.stdout.trim().split('\n').pop() ?? '[]') as ProbeResult[];
  } catch {
    const error = `probe failed: ${r.stderr.trim().split('\n').pop() ?? r.code}`;
    return targets.map((target) => ({ target, ok: false, bytes: 0, ms: 0, error }));
  }
}
