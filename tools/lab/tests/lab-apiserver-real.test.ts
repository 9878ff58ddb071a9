import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:https';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { VEIL_MAIN } from '@veil/cli';
import { describePrivileged } from '@veil/test-utils';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { apiControl, type ApiControlReply } from '../src/apiserver.js';
import { writeChartObjects } from '../src/control-plane.js';

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

async function until<T>(check: () => T | undefined | Promise<T | undefined>, ms: number, what: string): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await check();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

const node = (name: string, i: number, labels: Record<string, string> = { 'veil.io/lab': 'true' }): object => ({
  apiVersion: 'v1',
  kind: 'Node',
  metadata: { name, labels, annotations: {} },
  spec: { podCIDR: `10.244.${i}.0/24`, podCIDRs: [`10.244.${i}.0/24`] },
  status: { addresses: [{ type: 'InternalIP', address: `198.18.0.${i}` }] },
});

/** One HTTPS call with a kubeconfig's CA and bearer token (what the agent's client does). */
function call(
  kubeconfig: string,
  method: string,
  path: string,
  body?: unknown,
): Promise<{
  status: number;
  body: { metadata?: { annotations?: Record<string, string>; resourceVersion?: string } } & Record<string, unknown>;
}> {
  const server = /server: (\S+)/.exec(kubeconfig)?.[1] ?? '';
  const ca = Buffer.from(/certificate-authority-data: (\S+)/.exec(kubeconfig)?.[1] ?? '', 'base64').toString();
  const token = /token: (\S+)/.exec(kubeconfig)?.[1] ?? '';
  const url = new URL(path, server);
  return new Promise((resolve, reject) => {
    const req = request(
      url,
      {
        method,
        ca,
        headers: {
          Authorization: `Bearer ${token}`,
          Accept: 'application/json',
          ...(body ? { 'Content-Type': method === 'PATCH' ? 'application/merge-patch+json' : 'application/json' } : {}),
        },
        timeout: 30_000,
      },
      (res) => {
        let text = '';
        res.on('data', (c: Buffer) => (text += c.toString()));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(text || '{}') as never }));
      },
    );
    req.on('error', reject);
    req.end(body ? JSON.stringify(body) : undefined);
  });
}

// The lab's control plane helper with the real programs, on loopback, driven as `veil lab up` and `veil lab chaos` do.
describePrivileged(
  'lab control plane: the real kube-apiserver + etcd behind the control socket',
  ['etcd', 'kube-apiserver', 'helm'],
  () => {
    let dir: string;
    let child: ChildProcess;
    let out = '';
    let sock: string;
    let nodesFile: string;
    let n1: string;
    const ok = (r: ApiControlReply): Extract<ApiControlReply, { ok: true }> => {
      if (!r.ok) throw new Error(r.error);
      return r;
    };

    beforeAll(async () => {
      dir = mkdtempSync(join(tmpdir(), 'veil-lab-real-'));
      sock = join(dir, 'apiserver.sock');
      nodesFile = join(dir, 'nodes.json');
      writeFileSync(nodesFile, JSON.stringify([node('n1', 1), node('n2', 2)]));
      const chartObjects = join(dir, 'chart-objects.json');
      await writeChartObjects(chartObjects);
      const port = await freePort();
      child = spawn(
        process.execPath,
        [
          VEIL_MAIN,
          'lab',
          'apiserver',
          '--kind',
          'kube-apiserver',
          '--host',
          '127.0.0.1',
          '--port',
          String(port),
          '--nodes',
          nodesFile,
          '--control',
          sock,
          '--dir',
          join(dir, 'cp'),
          '--chart-objects',
          chartObjects,
        ],
        { stdio: ['ignore', 'pipe', 'pipe'] },
      );
      child.stdout?.on('data', (c: Buffer) => (out += c.toString()));
      child.stderr?.on('data', (c: Buffer) => (out += c.toString()));
      await until(
        () => {
          if (child.exitCode !== null) throw new Error(`helper exited ${child.exitCode}: ${out}`);
          return out.includes('apiserver listening') ? true : undefined;
        },
        300_000,
        'the helper',
      );
      n1 = ok(await apiControl(sock, { op: 'kubeconfig', node: 'n1' })).kubeconfig ?? '';
    }, 360_000);

    afterAll(async () => {
      if (child?.exitCode === null) {
        const gone = new Promise((r) => child.once('exit', r));
        child.kill('SIGTERM');
        await gone;
      }
      if (dir) rmSync(dir, { recursive: true, force: true });
    }, 60_000);

    it("hands each agent a kubeconfig with the server's CA and a node-bound token of the chart's ServiceAccount", async () => {
      expect(out).toContain('node restriction in force: n1');
      expect(n1).toContain('certificate-authority-data:');
      const who = await call(n1, 'POST', '/apis/authentication.k8s.io/v1/selfsubjectreviews', {
        apiVersion: 'authentication.k8s.io/v1',
        kind: 'SelfSubjectReview',
      });
      const user = (who.body.status as { userInfo: { username: string; extra: Record<string, string[]> } }).userInfo;
      expect(user.username).toBe('system:serviceaccount:kube-system:veil');
      expect(user.extra['authentication.kubernetes.io/node-name']).toEqual(['n1']);
    });

    it("n1's token publishes on n1; its patch of n2 is refused and shows up in the denials", async () => {
      expect(ok(await apiControl(sock, { op: 'denials' })).denials).toEqual([]);
      const own = await call(n1, 'PATCH', '/api/v1/nodes/n1', {
        metadata: { annotations: { 'veil.io/wireguard-public-key': 'k1' } },
      });
      expect(own.status).toBe(200);
      const other = await call(n1, 'PATCH', '/api/v1/nodes/n2', {
        metadata: { annotations: { 'veil.io/wireguard-public-key': 'evil' } },
      });
      expect(other.status).toBe(403);
      const denials = await until(
        async () => {
          const d = ok(await apiControl(sock, { op: 'denials' })).denials ?? [];
          return d.length > 0 ? d : undefined;
        },
        30_000,
        'the audit log',
      );
      expect(denials).toEqual([
        expect.objectContaining({ verb: 'patch', uri: '/api/v1/nodes/n2', code: 403, duringStartup: false }),
      ]);
      expect(ok(await apiControl(sock, { op: 'annotations', node: 'n1' })).annotations).toEqual({
        'veil.io/wireguard-public-key': 'k1',
      });
    });

    it('set-annotations replaces them (removed keys go), then lose-state brings the Nodes back as first registered', async () => {
      expect(ok(await apiControl(sock, { op: 'set-annotations', node: 'n1', annotations: { a: 'b' } }))).toEqual({ ok: true });
      expect(ok(await apiControl(sock, { op: 'annotations', node: 'n1' })).annotations).toEqual({ a: 'b' });
      const before = await call(n1, 'GET', '/api/v1/nodes');
      const oldRv = String(before.body.metadata?.resourceVersion);
      const uid = (
        (before.body.items as { metadata: { name: string; uid: string } }[]).find((i) => i.metadata.name === 'n1') ?? {}
      ).metadata?.uid;

      expect(await apiControl(sock, { op: 'lose-state' }, 300_000)).toEqual({ ok: true });
      expect(ok(await apiControl(sock, { op: 'annotations', node: 'n1' })).annotations ?? {}).toEqual({});
      const after = await call(n1, 'GET', '/api/v1/nodes/n1');
      expect((after.body.metadata as { uid?: string }).uid).toBe(uid); // the same Node, as first stored
      // The watch history is gone: resuming from before the loss is 410 Gone.
      const watch = await call(n1, 'GET', `/api/v1/nodes?watch=1&resourceVersion=${oldRv}&timeoutSeconds=2`);
      expect(JSON.stringify(watch.body)).toMatch(/"code":410|too old resource version|Expired/);
      // The tokens still work: the ServiceAccount and the agents' Pods were not lost.
      expect((await call(n1, 'PATCH', '/api/v1/nodes/n1', { metadata: { annotations: { 'veil.io/x': '1' } } })).status).toBe(200);
    });

    it('SIGUSR2 syncs the Nodes with the file (a ghost added, then deleted); SIGUSR1 restarts the apiserver', async () => {
      writeFileSync(nodesFile, JSON.stringify([node('n1', 1), node('n2', 2), node('ghost-1', 9, { 'veil.io/lab': 'ghost' })]));
      child.kill('SIGUSR2');
      await until(
        async () => ((await apiControl(sock, { op: 'annotations', node: 'ghost-1' })).ok ? true : undefined),
        60_000,
        'ghost-1',
      );
      writeFileSync(nodesFile, JSON.stringify([node('n1', 1), node('n2', 2)]));
      child.kill('SIGUSR2');
      await until(
        async () => ((await apiControl(sock, { op: 'annotations', node: 'ghost-1' })).ok ? undefined : true),
        60_000,
        'ghost-1 gone',
      );
      child.kill('SIGUSR1');
      await until(() => (out.includes('apiserver restarted\n') ? true : undefined), 300_000, 'the restart');
      expect((await call(n1, 'GET', '/api/v1/nodes/n1')).status).toBe(200);
      expect(existsSync(join(dir, 'cp', 'audit.log'))).toBe(true);
      expect(readFileSync(nodesFile, 'utf8')).not.toContain('ghost');
    });
  },
);
