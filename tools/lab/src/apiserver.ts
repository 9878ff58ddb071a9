/**
 * `veil lab apiserver`: the lab's control plane, run in the underlay namespace until SIGTERM, and
 * its control socket (`veil lab chaos` reads and tampers with Node objects, restarts the API
 * server, makes it lose its state). Two kinds behind one interface:
 *
 * - `kube-apiserver`: the real etcd + kube-apiserver (`@veil/kube-cluster`, the pinned builds of
 *   tools/k8s-bins) with the chart's ServiceAccount, RBAC and node-restriction policy applied, and
 *   one TokenRequest token per node bound to a Pod on that node (what a kubelet gives the
 *   DaemonSet's pod). An audit log records every call of the agents' ServiceAccount, so a call
 *   outside the chart's RBAC or policy (a 403) is seen and fails the lab.
 * - `double`: the in-process API double (tools/kube-apiserver-double): no authentication, RBAC or
 *   admission. The fallback when the real programs are not built.
 */
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createConnection, createServer, type Server } from 'node:net';
import { join } from 'node:path';
import { errorMessage } from '@veil/agent-core/errors';

/** The lab's control plane kinds. */
export type ControlPlaneKind = 'kube-apiserver' | 'double';

/** A Node object as the lab registers it (nodes.json). */
export interface LabNodeObject {
  metadata: { name: string; labels?: Record<string, string>; annotations?: Record<string, string>; [key: string]: unknown };
  spec?: object;
  status?: { addresses?: { type: string; address: string }[] };
  [key: string]: unknown;
}

/** A call of an agent the real apiserver refused (from its audit log). */
export interface AgentDenial {
  user: string;
  verb: string;
  uri: string;
  code: number;
  message?: string;
  /**
   * Received while the apiserver was starting (from its process start until /readyz): it serves
   * requests before its RBAC informers have synced and refuses them meanwhile. Not a call outside
   * the RBAC; reported, not failed on.
   */
  duringStartup: boolean;
}

/** When the apiserver was starting: epoch ms, `to` unset while it still is. */
export interface StartupWindow {
  from: number;
  to?: number;
}

/** What the helper process offers, whatever the kind. */
interface LabApi {
  readonly url: string;
  readonly description: string;
  kubeconfig(node: string): Promise<string>;
  annotations(node: string): Promise<Record<string, string> | undefined>;
  setAnnotations(node: string, annotations: Record<string, string>): Promise<void>;
  /** Creates the Nodes in `want` that do not exist, deletes the lab's Nodes not in it (others untouched). */
  syncNodes(want: readonly LabNodeObject[]): Promise<void>;
  restart(): Promise<void>;
  /** The state is lost: every watch cut, Nodes back as first registered, the watch history gone. */
  loseState(want: readonly LabNodeObject[]): Promise<void>;
  denials(): AgentDenial[];
  close(): Promise<void>;
}

/** The agents' kubeconfig for a server without TLS or authentication (the double). */
function plainKubeconfig(url: string, node: string): string {
  return JSON.stringify(
    {
      apiVersion: 'v1',
      kind: 'Config',
      // client-node refuses http:// unless TLS verification is off.
      clusters: [{ name: 'veil-lab', cluster: { server: url, 'insecure-skip-tls-verify': true } }],
      users: [{ name: node, user: {} }],
      contexts: [{ name: 'veil-lab', context: { cluster: 'veil-lab', user: node } }],
      'current-context': 'veil-lab',
    },
    null,
    2,
  );
}

async function startDouble(host: string, port: number, nodes: readonly LabNodeObject[]): Promise<LabApi> {
  const { KubeApiServerDouble } = await import('@veil/kube-apiserver-double');
  const api = await KubeApiServerDouble.start({ host, port, bookmarkIntervalMs: 5_000 });
  for (const n of nodes) api.apply('nodes', n);
  const sync = (want: readonly LabNodeObject[]): void => {
    const names = new Set(want.map((n) => n.metadata.name));
    for (const n of want) if (!api.get('nodes', n.metadata.name)) api.create('nodes', n);
    for (const o of api.list('nodes')) if (o.metadata?.name && !names.has(o.metadata.name)) api.delete('nodes', o.metadata.name);
  };
  return {
    url: api.url,
    description: 'the Kubernetes API double (tools/kube-apiserver-double: no authentication, RBAC or admission)',
    kubeconfig: (node) => Promise.resolve(plainKubeconfig(api.url, node)),
    annotations: (node) => {
      const o = api.get('nodes', node);
      return Promise.resolve(o ? { ...((o.metadata.annotations ?? {}) as Record<string, string>) } : undefined);
    },
    setAnnotations: (node, annotations) => {
      api.modify('nodes', node, (o) => {
        o.metadata.annotations = { ...annotations };
      });
      return Promise.resolve();
    },
    syncNodes: (want) => Promise.resolve(sync(want)),
    restart: async () => {
      await api.stop();
      await new Promise((r) => setTimeout(r, 2_000));
      await api.restart();
    },
    loseState: async (want) => {
      await api.stop();
      for (const o of api.list('nodes')) if (o.metadata?.name) api.delete('nodes', o.metadata.name);
      for (const n of want) api.create('nodes', n);
      api.compact(); // watches resuming from before the loss get 410 Gone and must list again
      await api.restart();
    },
    denials: () => [],
    close: () => api.close(),
  };
}

/** Namespace of the chart's release in the lab (where its ServiceAccount lives). */
export const LAB_RELEASE_NAMESPACE = 'kube-system';
/** Lifetime of the agents' tokens: a kept lab outlives a kubelet's hourly rotation, which the lab does not do. */
const TOKEN_SECONDS = 7 * 24 * 3600;
const MERGE = 'application/merge-patch+json';
/** Objects of the rendered chart the lab applies: identity, RBAC and the node-restriction policy. */
export const LAB_CHART_KINDS = new Set([
  'ServiceAccount',
  'ClusterRole',
  'ClusterRoleBinding',
  'Role',
  'RoleBinding',
  'ValidatingAdmissionPolicy',
  'ValidatingAdmissionPolicyBinding',
]);

/** Audit policy: the calls of ServiceAccounts in the release namespace, metadata only; nothing else. */
function auditPolicy(): string {
  return [
    'apiVersion: audit.k8s.io/v1',
    'kind: Policy',
    'omitStages: ["RequestReceived"]',
    'rules:',
    '  - level: Metadata',
    `    userGroups: ["system:serviceaccounts:${LAB_RELEASE_NAMESPACE}"]`,
    '  - level: None',
    '',
  ].join('\n');
}

/**
 * Refused calls of `user` in an audit log (JSON lines): any 401/403 answer, marked `duringStartup`
 * when received inside one of `startups`. Dry runs are left out: the lab's own probe of the node
 * restriction is one, and the agent makes none.
 */
export function deniedCalls(auditLog: string, user: string, startups: readonly StartupWindow[] = []): AgentDenial[] {
  const out: AgentDenial[] = [];
  for (const line of auditLog.split('\n')) {
    if (!line.includes(user)) continue;
    let e: {
      user?: { username?: string };
      verb?: string;
      requestURI?: string;
      requestReceivedTimestamp?: string;
      responseStatus?: { code?: number; message?: string };
    };
    try {
      e = JSON.parse(line) as typeof e;
    } catch {
      continue;
    }
    const code = e.responseStatus?.code ?? 0;
    if (e.user?.username !== user || (code !== 401 && code !== 403) || e.requestURI?.includes('dryRun=')) continue;
    const at = Date.parse(e.requestReceivedTimestamp ?? '');
    out.push({
      user,
      verb: e.verb ?? '?',
      uri: e.requestURI ?? '?',
      code,
      ...(e.responseStatus?.message ? { message: e.responseStatus.message } : {}),
      duringStartup: startups.some((w) => at >= w.from && at <= (w.to ?? Infinity)),
    });
  }
  return out;
}

async function startReal(opts: {
  host: string;
  port: number;
  dir: string;
  chartObjectsFile: string;
  nodes: readonly LabNodeObject[];
  log: (l: string) => void;
}): Promise<LabApi> {
  const { KubeCluster } = await import('@veil/kube-cluster');
  const { k8sVersions } = await import('@veil/test-utils/k8s-bins');
  const chart = JSON.parse(readFileSync(opts.chartObjectsFile, 'utf8')) as {
    apiVersion: string;
    kind: string;
    metadata: { name: string; namespace?: string };
  }[];
  const sa = chart.find((o) => o.kind === 'ServiceAccount')?.metadata.name;
  if (!sa) throw new Error(`${opts.chartObjectsFile}: the rendered chart has no ServiceAccount`);
  const user = `system:serviceaccount:${LAB_RELEASE_NAMESPACE}:${sa}`;
  const policyFile = join(opts.dir, 'audit-policy.yaml');
  const auditFile = join(opts.dir, 'audit.log');
  mkdirSync(opts.dir, { recursive: true, mode: 0o700 });
  writeFileSync(policyFile, auditPolicy());
  const cluster = await KubeCluster.start({
    dir: join(opts.dir, 'cluster'),
    // In the lab's underlay namespace: its bridge address for the agents, loopback for this helper.
    bindAddress: opts.host === '127.0.0.1' ? '127.0.0.1' : '0.0.0.0',
    advertiseAddress: opts.host,
    apiserverPort: opts.port,
    apiserverArgs: [`--audit-policy-file=${policyFile}`, `--audit-log-path=${auditFile}`, '--audit-log-format=json'],
    log: opts.log,
  });
  const url = `https://${opts.host}:${opts.port}`;
  try {
    for (const o of chart) {
      if (!LAB_CHART_KINDS.has(o.kind)) continue;
      await cluster.request('POST', await cluster.collectionPath(o.apiVersion, o.kind, o.metadata.namespace), o, {
        expect: [201, 409],
      });
    }
    const createNode = async (n: LabNodeObject): Promise<void> => {
      const { status, ...rest } = n;
      await cluster.request('POST', '/api/v1/nodes', rest, { expect: [201, 409] });
      // Node status is not taken on create: a kubelet reports it through the status subresource.
      if (status)
        await cluster.request(
          'PATCH',
          `/api/v1/nodes/${n.metadata.name}/status`,
          { status },
          { contentType: MERGE, expect: [200] },
        );
    };
    for (const n of opts.nodes) await createNode(n);
    // The Nodes as first registered, raw from etcd: what a state loss restores.
    const firstRegistered = new Map<string, Buffer>();
    for (const kv of await cluster.etcdRange('/registry/minions/')) firstRegistered.set(kv.key, kv.value);
    const tokens = new Map<string, string>();
    for (const n of opts.nodes) {
      const { token } = await cluster.nodeBoundToken({
        namespace: LAB_RELEASE_NAMESPACE,
        serviceAccount: sa,
        node: n.metadata.name,
        podName: `veil-agent-${n.metadata.name}`,
        expirationSeconds: TOKEN_SECONDS,
      });
      tokens.set(n.metadata.name, token);
    }
    // The node restriction is live once the apiserver has compiled the policy: the first node's
    // token may not touch the second node (a dry run, nothing changes).
    const [a, b] = opts.nodes;
    if (a && b && chart.some((o) => o.kind === 'ValidatingAdmissionPolicy')) {
      const deadline = Date.now() + 120_000;
      for (;;) {
        const r = await cluster.request(
          'PATCH',
          `/api/v1/nodes/${b.metadata.name}?dryRun=All`,
          { metadata: { annotations: { 'veil.io/probe': 'x' } } },
          { creds: { token: tokens.get(a.metadata.name) ?? '' }, contentType: MERGE },
        );
        if (r.status === 403) break;
        if (Date.now() > deadline) throw new Error(`the node-restriction policy is not in force: ${r.status}`);
        await new Promise((res) => setTimeout(res, 500));
      }
      opts.log(`node restriction in force: ${a.metadata.name}'s token may not change ${b.metadata.name}`);
    }
    const nodeByName = async (node: string): Promise<{ annotations: Record<string, string> } | undefined> => {
      const r = await cluster.request<{ metadata?: { annotations?: Record<string, string> } }>('GET', `/api/v1/nodes/${node}`);
      if (r.status === 404) return undefined;
      if (r.status !== 200) throw new Error(`GET node ${node}: HTTP ${r.status}`);
      return { annotations: r.body.metadata?.annotations ?? {} };
    };
    const versions = k8sVersions();
    // Windows in which the apiserver was (re)starting, for telling its startup refusals apart.
    const startups: StartupWindow[] = [];
    const starting = async (fn: () => Promise<void>): Promise<void> => {
      const w: StartupWindow = { from: Date.now() };
      startups.push(w);
      try {
        await fn();
      } finally {
        w.to = Date.now();
      }
    };
    return {
      url,
      description: `kube-apiserver ${versions['kube-apiserver']} + etcd ${versions.etcd} (TLS, node-bound ServiceAccount tokens, the chart's RBAC and node restriction)`,
      kubeconfig: (node) => {
        const token = tokens.get(node);
        if (!token) return Promise.reject(new Error(`no token for node ${node}`));
        return Promise.resolve(cluster.kubeconfigYaml({ token }, url));
      },
      annotations: async (node) => (await nodeByName(node))?.annotations,
      setAnnotations: async (node, annotations) => {
        const cur = await nodeByName(node);
        if (!cur) throw new Error(`node ${node} not found`);
        const patch: Record<string, string | null> = { ...annotations };
        for (const k of Object.keys(cur.annotations)) if (!(k in annotations)) patch[k] = null;
        await cluster.request(
          'PATCH',
          `/api/v1/nodes/${node}`,
          { metadata: { annotations: patch } },
          {
            contentType: MERGE,
            expect: [200],
          },
        );
      },
      syncNodes: async (want) => {
        const names = new Set(want.map((n) => n.metadata.name));
        // Only the lab's Nodes (a label selector, served by the real server).
        const list = await cluster.request<{ items: { metadata: { name: string } }[] }>(
          'GET',
          '/api/v1/nodes?labelSelector=veil.io%2Flab',
          undefined,
          { expect: [200] },
        );
        const have = new Set(list.body.items.map((i) => i.metadata.name));
        for (const n of want) if (!have.has(n.metadata.name)) await createNode(n);
        for (const name of have)
          if (!names.has(name)) await cluster.request('DELETE', `/api/v1/nodes/${name}`, undefined, { expect: [200, 404] });
      },
      restart: () => starting(() => cluster.restartApiserver()),
      loseState: async (want) => {
        // Behind the stopped apiserver, etcd's Nodes become what they were at registration (a
        // restore from a backup taken then); Nodes registered later stay only if still wanted.
        // Compacting drops the history: watches resuming from before get 410 Gone and relist.
        await starting(async () => {
          await cluster.stopApiserver();
          try {
            const names = new Set(want.map((n) => `/registry/minions/${n.metadata.name}`));
            for (const kv of await cluster.etcdRange('/registry/minions/'))
              if (!firstRegistered.has(kv.key) && !names.has(kv.key)) await cluster.etcdDelete(kv.key);
            for (const [key, value] of firstRegistered) await cluster.etcdPut(key, value);
            await cluster.compactEtcd();
          } finally {
            await cluster.startApiserverAgain();
          }
        });
        const missing = want.filter((n) => !firstRegistered.has(`/registry/minions/${n.metadata.name}`));
        for (const n of missing) if (!(await nodeByName(n.metadata.name))) await createNode(n);
      },
      denials: () => deniedCalls(readAudit(auditFile), user, startups),
      close: () => cluster.stop(),
    };
  } catch (e) {
    await cluster.stop();
    throw e;
  }
}

function readAudit(file: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return '';
  }
}

/** Runs the control plane until SIGTERM; `kind` decides which. */
export async function runApiserver(opts: {
  kind: ControlPlaneKind;
  host: string;
  port: number;
  nodesFile: string;
  controlSocket?: string;
  /** kube-apiserver: where its data, PKI, logs and audit log go. */
  dir?: string;
  /** kube-apiserver: the rendered chart's objects (JSON array). */
  chartObjectsFile?: string;
}): Promise<number> {
  const readNodes = (): LabNodeObject[] => JSON.parse(readFileSync(opts.nodesFile, 'utf8')) as LabNodeObject[];
  const nodes = readNodes();
  const log = (l: string): void => void process.stdout.write(`${l}\n`);
  let api: LabApi;
  if (opts.kind === 'kube-apiserver') {
    if (!opts.dir || !opts.chartObjectsFile) throw new Error('kube-apiserver needs --dir and --chart-objects');
    api = await startReal({ ...opts, dir: opts.dir, chartObjectsFile: opts.chartObjectsFile, nodes, log });
  } else {
    api = await startDouble(opts.host, opts.port, nodes);
  }
  // One operation at a time: a node sync or a state loss waits for a restart in progress.
  let queue: Promise<unknown> = Promise.resolve();
  const serial = <T>(fn: () => Promise<T>): Promise<T> => {
    const p = queue.then(fn);
    queue = p.catch(() => undefined);
    return p;
  };
  process.stdout.write(`apiserver listening on ${api.url} with ${nodes.length} nodes: ${api.description}\n`);
  // Chaos hooks (veil lab chaos): SIGUSR1 = the API server restarts (state kept, like etcd);
  // SIGUSR2 = the node list file changed: create new nodes, delete the ones gone (others untouched,
  // so the annotations agents published stay).
  process.on('SIGUSR1', () => {
    void serial(async () => {
      log('apiserver restarting (SIGUSR1)');
      await api.restart();
      log('apiserver restarted');
    }).catch((err: unknown) => log(`apiserver restart failed: ${errorMessage(err)}`));
  });
  process.on('SIGUSR2', () => {
    void serial(async () => {
      const want = readNodes();
      await api.syncNodes(want);
      log(`apiserver nodes synced: ${want.map((n) => n.metadata.name).join(',')}`);
    }).catch((err: unknown) => log(`apiserver nodes sync failed: ${errorMessage(err)}`));
  });
  const control = opts.controlSocket
    ? await serveControl(opts.controlSocket, (req) => serial(() => handle(api, req, readNodes)))
    : undefined;
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
  | { op: 'lose-state' }
  /** The kubeconfig the agent of `node` uses (with the real server: its node-bound token). */
  | { op: 'kubeconfig'; node: string }
  /** The agents' calls the server refused so far (always none with the double). */
  | { op: 'denials' };
export type ApiControlReply =
  { ok: true; annotations?: Record<string, string>; kubeconfig?: string; denials?: AgentDenial[] } | { ok: false; error: string };

async function handle(api: LabApi, req: ApiControlRequest, readNodes: () => LabNodeObject[]): Promise<ApiControlReply> {
  switch (req.op) {
    case 'annotations': {
      const a = await api.annotations(req.node);
      return a ? { ok: true, annotations: a } : { ok: false, error: `node ${req.node} not found` };
    }
    case 'set-annotations':
      await api.setAnnotations(req.node, req.annotations);
      return { ok: true };
    case 'lose-state':
      await api.loseState(readNodes());
      process.stdout.write('apiserver restarted without its state\n');
      return { ok: true };
    case 'kubeconfig':
      return { ok: true, kubeconfig: await api.kubeconfig(req.node) };
    case 'denials':
      return { ok: true, denials: api.denials() };
  }
}

/** The control socket `veil lab up` and `veil lab chaos` use. */
async function serveControl(path: string, handler: (req: ApiControlRequest) => Promise<ApiControlReply>): Promise<Server> {
  rmSync(path, { force: true });
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
          reply = await handler(JSON.parse(buf.slice(0, nl)) as ApiControlRequest);
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
