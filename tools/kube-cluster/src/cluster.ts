import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { request as httpsRequest } from 'node:https';
import { request as httpRequest } from 'node:http';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  KubeConfig,
  type AuthenticationV1TokenRequest,
  type V1APIResourceList,
  type V1Pod,
  type V1SelfSubjectReview,
} from '@kubernetes/client-node';
import { requireK8sBinary } from '@veil/test-utils/k8s-bins';
import { KubeApiError, KubeClusterError } from './errors.js';
import { generatePki, readClientPem, type Pki } from './pki.js';

/** Options for {@link KubeCluster.start}. */
export interface KubeClusterOptions {
  /** Paths of the programs; default: the pinned builds (tools/k8s-bins, or $VEIL_ETCD/$VEIL_KUBE_APISERVER). */
  etcdBinary?: string;
  apiserverBinary?: string;
  /** Extra kube-apiserver flags, e.g. `--watch-cache=false`. */
  apiserverArgs?: string[];
  /** How long etcd and then the apiserver may take to become ready; default 180 s (shared 2-core machines). */
  readyTimeoutMs?: number;
  /** Progress lines (which process, how long it took). */
  log?: (line: string) => void;
  /**
   * The directory for the data dir, logs and PKI (created; deleted by `stop()`), instead of a
   * fresh `$TMPDIR/veil-kube-*` (a lab keeps it under its own directory).
   */
  dir?: string;
  /**
   * Where the apiserver listens, default 127.0.0.1. `0.0.0.0` in a network namespace of its own
   * (the lab's underlay) lets other namespaces reach it; etcd always stays on 127.0.0.1.
   */
  bindAddress?: string;
  /** The address the apiserver advertises (and puts in its serving certificate), default 127.0.0.1. */
  advertiseAddress?: string;
  /** The apiserver's port, default a free one. */
  apiserverPort?: number;
}

/** Whom a request or kubeconfig authenticates as: the admin client certificate, or a bearer token. */
export type Credentials = { admin: true } | { token: string };

/**
 * An answer from the apiserver: status code and the JSON (or text) body. `T` is what the caller
 * expects the body to be (a @kubernetes/client-node model); the body is not checked against it.
 */
export interface ApiResponse<T = unknown> {
  status: number;
  body: T;
  /** The apiserver's `Warning` headers (deprecations, unknown fields, bad values it still takes). */
  warnings: string[];
}

const ADMIN: Credentials = { admin: true };
/** The ServiceAccount token issuer and default audience of every harness cluster. */
export const SERVICE_ACCOUNT_ISSUER = 'https://kubernetes.default.svc.cluster.local';

/** A free TCP port on 127.0.0.1 (the kernel picks it; we release it just before the child binds it). */
async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      srv.close(() => (typeof addr === 'object' && addr ? resolve(addr.port) : reject(new Error('no port'))));
    });
  });
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** A child process with its log file, stopped by PID. */
class Proc {
  private exited: Promise<number | null>;
  exitCode: number | null | undefined;
  /** Why the process could not be started at all (ENOENT, EACCES). */
  spawnError: string | undefined;

  constructor(
    readonly component: 'etcd' | 'kube-apiserver',
    readonly child: ChildProcess,
    readonly logFile: string,
  ) {
    this.exited = new Promise((resolve) => {
      child.once('exit', (code, signal) => {
        this.exitCode = code ?? (signal ? -1 : null);
        resolve(this.exitCode);
      });
      child.once('error', (err) => {
        if (this.exitCode !== undefined) return;
        this.spawnError = `${child.spawnfile}: ${err.message}`;
        this.exitCode = -1;
        resolve(this.exitCode);
      });
    });
  }

  get pid(): number {
    return this.child.pid ?? -1;
  }

  get running(): boolean {
    return this.exitCode === undefined;
  }

  /** SIGTERM, then SIGKILL after `graceMs`; resolves when the process is gone. */
  async stop(graceMs = 10_000): Promise<void> {
    if (!this.running || this.child.pid === undefined) return;
    process.kill(this.child.pid, 'SIGTERM');
    const t = setTimeout(() => {
      if (this.running && this.child.pid !== undefined) process.kill(this.child.pid, 'SIGKILL');
    }, graceMs);
    await this.exited;
    clearTimeout(t);
  }
}

function spawnLogged(component: 'etcd' | 'kube-apiserver', bin: string, args: string[], logFile: string): Proc {
  const fd = openSync(logFile, 'a');
  try {
    const child = spawn(bin, args, { stdio: ['ignore', fd, fd] });
    return new Proc(component, child, logFile);
  } finally {
    closeSync(fd);
  }
}

async function tail(file: string, lines = 30): Promise<string> {
  try {
    return (await readFile(file, 'utf8')).split('\n').slice(-lines).join('\n');
  } catch {
    return '';
  }
}

/**
 * The real control plane for one test file: etcd and kube-apiserver on 127.0.0.1 (ephemeral ports),
 * a temporary directory with the data dir and a fresh PKI, an admin kubeconfig, and ServiceAccount
 * tokens issued through the TokenRequest API. `stop()` ends both processes by PID and deletes the
 * directory.
 *
 * The apiserver runs with RBAC and Node authorization, the default admission plugins and
 * `--allow-privileged` (the chart's init container is privileged, as on kubeadm clusters).
 */
export class KubeCluster {
  private apiserver: Proc | undefined;
  private stopped = false;
  private pem: { ca: string; cert: string; key: string } | undefined;

  private constructor(
    readonly dir: string,
    readonly pki: Pki,
    private readonly etcd: Proc,
    /** The etcd client URL (plain HTTP on loopback; its /v3 JSON gateway is on). */
    readonly etcdUrl: string,
    readonly apiserverPort: number,
    private readonly apiserverBinary: string,
    private readonly apiserverArgs: string[],
    private readonly readyTimeoutMs: number,
    private readonly log: (line: string) => void,
  ) {}

  /** https://127.0.0.1:<port> */
  get server(): string {
    return `https://127.0.0.1:${this.apiserverPort}`;
  }

  /** The admin kubeconfig file (client certificate in system:masters). */
  get kubeconfigPath(): string {
    return join(this.dir, 'admin.kubeconfig');
  }

  /** PIDs of the running processes (for tests that check the stop). */
  get pids(): { etcd: number; apiserver: number | undefined } {
    return { etcd: this.etcd.pid, apiserver: this.apiserver?.pid };
  }

  static async start(opts: KubeClusterOptions = {}): Promise<KubeCluster> {
    const etcdBin = opts.etcdBinary ?? requireK8sBinary('etcd');
    const apiserverBin = opts.apiserverBinary ?? requireK8sBinary('kube-apiserver');
    const log = opts.log ?? (() => undefined);
    const readyTimeoutMs = opts.readyTimeoutMs ?? 180_000;
    const dir = opts.dir ?? (await mkdtemp(join(tmpdir(), 'veil-kube-')));
    if (opts.dir) await mkdir(opts.dir, { recursive: true, mode: 0o700 });
    const advertise = opts.advertiseAddress ?? '127.0.0.1';
    let etcd: Proc | undefined;
    let cluster: KubeCluster | undefined;
    try {
      const pki = await generatePki(dir, advertise === '127.0.0.1' ? {} : { servingIPs: [advertise] });
      const [clientPort, peerPort, apiPort] = [await freePort(), await freePort(), opts.apiserverPort ?? (await freePort())];
      const etcdUrl = `http://127.0.0.1:${clientPort}`;
      const peerUrl = `http://127.0.0.1:${peerPort}`;
      const t0 = Date.now();
      etcd = spawnLogged(
        'etcd',
        etcdBin,
        [
          '--name=veil-test',
          `--data-dir=${join(dir, 'etcd')}`,
          `--listen-client-urls=${etcdUrl}`,
          `--advertise-client-urls=${etcdUrl}`,
          `--listen-peer-urls=${peerUrl}`,
          `--initial-advertise-peer-urls=${peerUrl}`,
          `--initial-cluster=veil-test=${peerUrl}`,
          '--log-level=warn',
        ],
        join(dir, 'etcd.log'),
      );
      await waitFor(etcd, readyTimeoutMs, async () => {
        const res = await plainGet(`${etcdUrl}/health`);
        return res.status === 200 && /"health":\s*"true"/.test(res.body);
      });
      log(`etcd ready on ${etcdUrl} in ${Date.now() - t0} ms (pid ${etcd.pid})`);
      const args = [
        `--bind-address=${opts.bindAddress ?? '127.0.0.1'}`,
        `--advertise-address=${advertise}`,
        // The `kubernetes` Service's endpoints may not be loopback; nothing here needs them.
        '--endpoint-reconciler-type=none',
        `--secure-port=${apiPort}`,
        `--etcd-servers=${etcdUrl}`,
        `--cert-dir=${join(dir, 'certs')}`,
        `--tls-cert-file=${pki.servingCert}`,
        `--tls-private-key-file=${pki.servingKey}`,
        `--client-ca-file=${pki.caCert}`,
        `--service-account-issuer=${SERVICE_ACCOUNT_ISSUER}`,
        `--service-account-key-file=${pki.saPub}`,
        `--service-account-signing-key-file=${pki.saKey}`,
        '--service-cluster-ip-range=10.96.0.0/16',
        '--authorization-mode=Node,RBAC',
        '--allow-privileged=true',
        '--profiling=false',
        '--enable-priority-and-fairness=false',
        ...(opts.apiserverArgs ?? []),
      ];
      cluster = new KubeCluster(dir, pki, etcd, etcdUrl, apiPort, apiserverBin, args, readyTimeoutMs, log);
      cluster.pem = await readClientPem(pki);
      await writeFile(cluster.kubeconfigPath, cluster.kubeconfigYaml(ADMIN), { mode: 0o600 });
      await cluster.startApiserver();
      return cluster;
    } catch (e) {
      if (cluster) await cluster.stop();
      else {
        await etcd?.stop();
        await rm(dir, { recursive: true, force: true });
      }
      throw e;
    }
  }

  private async startApiserver(): Promise<void> {
    const t0 = Date.now();
    const proc = spawnLogged('kube-apiserver', this.apiserverBinary, this.apiserverArgs, join(this.dir, 'kube-apiserver.log'));
    this.apiserver = proc;
    await waitFor(proc, this.readyTimeoutMs, async () => (await this.request('GET', '/readyz')).status === 200);
    // The bootstrap controller creates the system namespaces just after /readyz turns ok.
    await waitFor(proc, this.readyTimeoutMs, async () => {
      for (const ns of ['default', 'kube-system'])
        if ((await this.request('GET', `/api/v1/namespaces/${ns}`)).status !== 200) return false;
      return true;
    });
    this.log(`kube-apiserver ready on ${this.server} in ${Date.now() - t0} ms (pid ${proc.pid})`);
  }

  /** Stops and starts the apiserver on the same port and etcd (chaos: clients see it go away). */
  async restartApiserver(): Promise<void> {
    await this.apiserver?.stop();
    await this.startApiserver();
  }

  /** Stops only the apiserver (until {@link startApiserverAgain}). */
  async stopApiserver(): Promise<void> {
    await this.apiserver?.stop();
  }

  async startApiserverAgain(): Promise<void> {
    if (this.apiserver?.running) return;
    await this.startApiserver();
  }

  /**
   * Compacts etcd's history up to its current revision (through etcd's JSON gateway). Watches that
   * resume from an older resourceVersion then get 410 Gone once the watch cache has moved on.
   * Returns the revision compacted to.
   */
  async compactEtcd(): Promise<number> {
    const status = await plainPost(`${this.etcdUrl}/v3/kv/range`, { key: Buffer.from('\0').toString('base64'), limit: 1 });
    // etcd's gateway encodes int64 as a JSON string.
    const range = JSON.parse(status.body) as { header?: { revision?: string } } | null;
    const rev = Number(range?.header?.revision);
    if (!Number.isFinite(rev)) throw new KubeClusterError(`no revision in ${status.body}`, 'etcd', this.etcd.logFile);
    const res = await plainPost(`${this.etcdUrl}/v3/kv/compaction`, { revision: String(rev), physical: true });
    if (res.status !== 200)
      throw new KubeClusterError(`compaction to ${rev}: HTTP ${res.status} ${res.body}`, 'etcd', this.etcd.logFile);
    return rev;
  }

  /**
   * The keys and raw values under `prefix` in etcd (through its JSON gateway), e.g.
   * `/registry/minions/` for every Node as the apiserver stored it.
   */
  async etcdRange(prefix: string): Promise<{ key: string; value: Buffer }[]> {
    const b64 = (b: Buffer): string => b.toString('base64');
    const start = Buffer.from(prefix);
    // The range end of a prefix: the prefix with its last byte incremented.
    const end = Buffer.from(start);
    end[end.length - 1] = (end[end.length - 1] ?? 0) + 1;
    const res = await plainPost(`${this.etcdUrl}/v3/kv/range`, { key: b64(start), range_end: b64(end) });
    if (res.status !== 200)
      throw new KubeClusterError(`range ${prefix}: HTTP ${res.status} ${res.body}`, 'etcd', this.etcd.logFile);
    const body = JSON.parse(res.body) as { kvs?: { key: string; value?: string }[] };
    return (body.kvs ?? []).map((kv) => ({
      key: Buffer.from(kv.key, 'base64').toString(),
      value: Buffer.from(kv.value ?? '', 'base64'),
    }));
  }

  /** Writes one raw value into etcd (what a restore from a backup does behind the apiserver's back). */
  async etcdPut(key: string, value: Buffer): Promise<void> {
    const res = await plainPost(`${this.etcdUrl}/v3/kv/put`, {
      key: Buffer.from(key).toString('base64'),
      value: value.toString('base64'),
    });
    if (res.status !== 200) throw new KubeClusterError(`put ${key}: HTTP ${res.status} ${res.body}`, 'etcd', this.etcd.logFile);
  }

  /** Deletes one key from etcd. */
  async etcdDelete(key: string): Promise<void> {
    const res = await plainPost(`${this.etcdUrl}/v3/kv/deleterange`, { key: Buffer.from(key).toString('base64') });
    if (res.status !== 200)
      throw new KubeClusterError(`delete ${key}: HTTP ${res.status} ${res.body}`, 'etcd', this.etcd.logFile);
  }

  /** Whether the apiserver process is running (false between `stopApiserver` and `startApiserverAgain`). */
  get apiserverRunning(): boolean {
    return this.apiserver?.running ?? false;
  }

  /**
   * A kubeconfig document for these credentials (what `helm` or `kubectl --kubeconfig` reads).
   * `server` overrides the URL (a test's proxy in front of the apiserver); the CA stays.
   */
  kubeconfigYaml(creds: Credentials, server = this.server): string {
    if (!this.pem) throw new KubeClusterError('cluster not started', 'api');
    const b64 = (s: string): string => Buffer.from(s).toString('base64');
    const user =
      'token' in creds
        ? `    token: ${creds.token}`
        : `    client-certificate-data: ${b64(this.pem.cert)}\n    client-key-data: ${b64(this.pem.key)}`;
    return [
      'apiVersion: v1',
      'kind: Config',
      'clusters:',
      '- name: veil-test',
      '  cluster:',
      `    server: ${server}`,
      `    certificate-authority-data: ${b64(this.pem.ca)}`,
      'users:',
      '- name: veil-test-user',
      '  user:',
      user,
      'contexts:',
      '- name: veil-test',
      '  context:',
      '    cluster: veil-test',
      '    user: veil-test-user',
      'current-context: veil-test',
      '',
    ].join('\n');
  }

  /** A @kubernetes/client-node KubeConfig for these credentials. */
  kubeConfig(creds: Credentials = ADMIN, server = this.server): KubeConfig {
    const kc = new KubeConfig();
    kc.loadFromString(this.kubeconfigYaml(creds, server));
    return kc;
  }

  /**
   * One API call. Resolves with any status (tests assert on denials); `expect` turns other
   * statuses into a {@link KubeApiError}.
   */
  async request<T = unknown>(
    method: string,
    path: string,
    body?: unknown,
    opts: { creds?: Credentials; contentType?: string; expect?: number[] } = {},
  ): Promise<ApiResponse<T>> {
    if (!this.pem) throw new KubeClusterError('cluster not started', 'api');
    const creds = opts.creds ?? ADMIN;
    const payload = body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body);
    const headers: Record<string, string> = { Accept: 'application/json' };
    if (payload !== undefined) headers['Content-Type'] = opts.contentType ?? 'application/json';
    if ('token' in creds) headers.Authorization = `Bearer ${creds.token}`;
    const res = await new Promise<ApiResponse<T>>((resolve, reject) => {
      const req = httpsRequest(
        {
          host: '127.0.0.1',
          port: this.apiserverPort,
          method,
          path,
          headers,
          ca: this.pem!.ca,
          ...('admin' in creds ? { cert: this.pem!.cert, key: this.pem!.key } : {}),
          timeout: 30_000,
        },
        (r) => {
          let text = '';
          r.setEncoding('utf8');
          r.on('data', (c: string) => (text += c));
          r.on('end', () => {
            let parsed: unknown = text;
            try {
              parsed = JSON.parse(text);
            } catch {
              /* plain text (readyz) */
            }
            const w = r.headers.warning;
            resolve({
              status: r.statusCode ?? 0,
              body: parsed as T,
              warnings: w === undefined ? [] : Array.isArray(w) ? w : [w],
            });
          });
        },
      );
      req.on('timeout', () => req.destroy(new Error(`${method} ${path}: timed out`)));
      req.on('error', reject);
      req.end(payload);
    });
    if (opts.expect && !opts.expect.includes(res.status)) throw new KubeApiError(method, path, res.status, res.body);
    return res;
  }

  /**
   * The REST path of a kind's collection, from the server's discovery (so a kind it does not serve
   * is an error, not a guess): `/apis/apps/v1/namespaces/ns/daemonsets`.
   */
  async collectionPath(apiVersion: string, kind: string, namespace?: string): Promise<string> {
    const base = apiVersion.includes('/') ? `/apis/${apiVersion}` : `/api/${apiVersion}`;
    let resources = this.discovery.get(base);
    if (!resources) {
      const res = await this.request<V1APIResourceList>('GET', base);
      if (res.status === 404) throw new KubeApiError('GET', base, 404, { message: `the server does not serve ${apiVersion}` });
      if (res.status !== 200) throw new KubeApiError('GET', base, res.status, res.body);
      resources = res.body.resources.filter((r) => !r.name.includes('/'));
      this.discovery.set(base, resources);
    }
    const r = resources.find((x) => x.kind === kind);
    if (!r) throw new KubeApiError('GET', base, 404, { message: `${apiVersion} has no kind ${kind}` });
    return r.namespaced ? `${base}/namespaces/${namespace ?? 'default'}/${r.name}` : `${base}/${r.name}`;
  }

  private readonly discovery = new Map<string, { name: string; kind: string; namespaced: boolean }[]>();

  /** Creates an object (POST) as admin; an existing one (409) is fine. */
  async ensure(path: string, body: unknown): Promise<void> {
    await this.request('POST', path, body, { expect: [201, 409] });
  }

  /**
   * A ServiceAccount token issued by the apiserver (TokenRequest). With `boundPod`, the token is
   * bound to that Pod, and the apiserver adds the Pod's node to the token: the authenticated user
   * then carries `authentication.kubernetes.io/node-name` in its extra info.
   */
  async issueToken(opts: {
    namespace: string;
    serviceAccount: string;
    boundPod?: { name: string; uid: string };
    expirationSeconds?: number;
    audiences?: string[];
  }): Promise<string> {
    const spec: Record<string, unknown> = { expirationSeconds: opts.expirationSeconds ?? 3600 };
    if (opts.audiences) spec.audiences = opts.audiences;
    if (opts.boundPod) spec.boundObjectRef = { kind: 'Pod', apiVersion: 'v1', name: opts.boundPod.name, uid: opts.boundPod.uid };
    const res = await this.request<AuthenticationV1TokenRequest>(
      'POST',
      `/api/v1/namespaces/${opts.namespace}/serviceaccounts/${opts.serviceAccount}/token`,
      { apiVersion: 'authentication.k8s.io/v1', kind: 'TokenRequest', spec },
      { expect: [201] },
    );
    const token = res.body?.status?.token;
    if (typeof token !== 'string') throw new KubeApiError('POST', 'TokenRequest', res.status, res.body);
    return token;
  }

  /**
   * What a kubelet gives a DaemonSet pod on `node`: a Pod of `serviceAccount` scheduled there (created
   * here, no kubelet runs it) and a token bound to that Pod. The Node must exist.
   */
  async nodeBoundToken(opts: {
    namespace: string;
    serviceAccount: string;
    node: string;
    podName?: string;
    /** The token's lifetime, default 3600 s. */
    expirationSeconds?: number;
  }): Promise<{ token: string; pod: { name: string; uid: string } }> {
    const name = opts.podName ?? `veil-agent-${opts.node}`;
    const res = await this.request<V1Pod>(
      'POST',
      `/api/v1/namespaces/${opts.namespace}/pods`,
      {
        apiVersion: 'v1',
        kind: 'Pod',
        metadata: { name, labels: { 'app.kubernetes.io/name': 'veil-test-agent' } },
        spec: {
          nodeName: opts.node,
          serviceAccountName: opts.serviceAccount,
          containers: [{ name: 'agent', image: 'veil.invalid/agent:test' }],
        },
      },
      { expect: [201] },
    );
    const pod = { name, uid: String(res.body.metadata?.uid) };
    const token = await this.issueToken({
      namespace: opts.namespace,
      serviceAccount: opts.serviceAccount,
      boundPod: pod,
      ...(opts.expirationSeconds ? { expirationSeconds: opts.expirationSeconds } : {}),
    });
    return { token, pod };
  }

  /** Who the apiserver says these credentials are (SelfSubjectReview): username, groups, extra. */
  async whoAmI(creds: Credentials): Promise<{ username: string; groups: string[]; extra: Record<string, string[]> }> {
    const res = await this.request<V1SelfSubjectReview>(
      'POST',
      '/apis/authentication.k8s.io/v1/selfsubjectreviews',
      { apiVersion: 'authentication.k8s.io/v1', kind: 'SelfSubjectReview' },
      { creds, expect: [201] },
    );
    const u = res.body.status?.userInfo;
    if (u?.username === undefined) throw new KubeApiError('POST', 'SelfSubjectReview', res.status, res.body);
    return { username: u.username, groups: u.groups ?? [], extra: u.extra ?? {} };
  }

  /** Stops the apiserver, then etcd (each by PID, SIGTERM then SIGKILL), and deletes the temp dir. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    try {
      await this.apiserver?.stop();
      await this.etcd.stop();
    } finally {
      await rm(this.dir, { recursive: true, force: true });
    }
  }
}

/** Polls `ready` until true; fails early (with the log's tail) if the process exits. */
async function waitFor(proc: Proc, timeoutMs: number, ready: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (proc.spawnError) throw new KubeClusterError(`could not start: ${proc.spawnError}`, proc.component, proc.logFile);
    if (!proc.running) {
      throw new KubeClusterError(
        `exited with code ${proc.exitCode} before it was ready:\n${await tail(proc.logFile)}`,
        proc.component,
        proc.logFile,
      );
    }
    try {
      if (await ready()) return;
    } catch {
      /* not listening yet */
    }
    await sleep(250);
  }
  throw new KubeClusterError(`not ready after ${timeoutMs} ms:\n${await tail(proc.logFile)}`, proc.component, proc.logFile);
}

function plainGet(url: string): Promise<{ status: number; body: string }> {
  return plain('GET', url);
}
function plainPost(url: string, body: unknown): Promise<{ status: number; body: string }> {
  return plain('POST', url, JSON.stringify(body));
}
function plain(method: string, url: string, payload?: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      url,
      { method, timeout: 10_000, headers: payload ? { 'Content-Type': 'application/json' } : {} },
      (r) => {
        let text = '';
        r.setEncoding('utf8');
        r.on('data', (c: string) => (text += c));
        r.on('end', () => resolve({ status: r.statusCode ?? 0, body: text }));
      },
    );
    req.on('timeout', () => req.destroy(new Error(`${method} ${url}: timed out`)));
    req.on('error', reject);
    req.end(payload);
  });
}
