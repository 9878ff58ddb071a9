import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { VEIL_MAIN } from '@veil/cli';
import { afterEach, describe, expect, it } from 'vitest';
import { apiControl } from '../src/apiserver.js';

/** A free loopback port (listen on 0, read it, close). */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

async function until(check: () => boolean, ms: number): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 50));
  }
}

const node = (name: string): object => ({
  apiVersion: 'v1',
  kind: 'Node',
  metadata: { name, annotations: {} },
  spec: { podCIDR: '10.244.1.0/24' },
});

// The chaos actions' plumbing: `veil lab apiserver --control` on loopback, driven like `veil lab chaos` does.
describe('lab API server control socket', () => {
  let dir: string | undefined;
  let child: ChildProcess | undefined;
  afterEach(async () => {
    if (child?.pid !== undefined && child.exitCode === null) {
      const gone = new Promise((r) => child?.once('exit', r));
      child.kill('SIGTERM');
      await gone;
    }
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it(
    "reads and replaces a node's annotations, and loses its state (nodes back as first registered)",
    { timeout: 30_000 },
    async () => {
      dir = mkdtempSync(join(tmpdir(), 'veil-lab-ctl-'));
      const nodesFile = join(dir, 'nodes.json');
      const sock = join(dir, 'apiserver.sock');
      writeFileSync(nodesFile, JSON.stringify([node('n1'), node('n2')]));
      const port = await freePort();
      child = spawn(
        process.execPath,
        [VEIL_MAIN, 'lab', 'apiserver', '--host', '127.0.0.1', '--port', String(port), '--nodes', nodesFile, '--control', sock],
        { stdio: ['ignore', 'pipe', 'pipe'] },
      );
      let out = '';
      child.stdout?.on('data', (c: Buffer) => (out += c.toString()));
      child.stderr?.on('data', (c: Buffer) => (out += c.toString()));
      await until(() => out.includes('apiserver listening') && existsSync(sock), 15_000);

      expect(await apiControl(sock, { op: 'annotations', node: 'n1' })).toEqual({ ok: true, annotations: {} });
      const published = { 'veil.io/wireguard-public-key': 'k1', 'veil.io/node-id': '1', other: 'x' };
      expect(await apiControl(sock, { op: 'set-annotations', node: 'n1', annotations: published })).toEqual({ ok: true });
      expect(await apiControl(sock, { op: 'annotations', node: 'n1' })).toEqual({ ok: true, annotations: published });
      // Through the HTTP API too: what the agents see.
      const viaHttp = (await (await fetch(`http://127.0.0.1:${port}/api/v1/nodes/n1`)).json()) as {
        metadata: { annotations: Record<string, string> };
      };
      expect(viaHttp.metadata.annotations).toEqual(published);

      expect(await apiControl(sock, { op: 'lose-state' }, 20_000)).toEqual({ ok: true });
      expect(await apiControl(sock, { op: 'annotations', node: 'n1' })).toEqual({ ok: true, annotations: {} });
      const list = (await (await fetch(`http://127.0.0.1:${port}/api/v1/nodes`)).json()) as {
        items: { metadata: { name: string } }[];
      };
      expect(list.items.map((i) => i.metadata.name).sort()).toEqual(['n1', 'n2']);
      expect(out).toContain('apiserver restarted without its state');

      expect(await apiControl(sock, { op: 'annotations', node: 'n9' })).toEqual({ ok: false, error: 'node n9 not found' });
      expect(JSON.parse(readFileSync(nodesFile, 'utf8'))).toHaveLength(2); // the node list file is only read
    },
  );
});
