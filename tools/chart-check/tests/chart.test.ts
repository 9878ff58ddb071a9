import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { loadConfig, type AgentConfig } from '@veil/agent-core';
import { wireguardConfig } from '@veil/backend-wireguard';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { IServiceMonitor } from '@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/ServiceMonitor';
import type { IDaemonSet } from 'kubernetes-models/apps/v1/DaemonSet';
import type { IConfigMap } from 'kubernetes-models/v1/ConfigMap';
import type { IService } from 'kubernetes-models/v1/Service';
import type { IServiceAccount } from 'kubernetes-models/v1/ServiceAccount';
import type { IPodDisruptionBudget } from 'kubernetes-models/policy/v1/PodDisruptionBudget';
import type { IClusterRole } from 'kubernetes-models/rbac.authorization.k8s.io/v1/ClusterRole';
import type { IClusterRoleBinding } from 'kubernetes-models/rbac.authorization.k8s.io/v1/ClusterRoleBinding';
import type { IRole } from 'kubernetes-models/rbac.authorization.k8s.io/v1/Role';
import type { IRoleBinding } from 'kubernetes-models/rbac.authorization.k8s.io/v1/RoleBinding';
import { parse as parseYaml } from 'yaml';
import { loadChart, mergeValueFiles, renderChart, ValuesValidator, type Chart, type Rendered } from '../src/index.js';
import { CHART_DIR, ciValueFiles } from './helpers.js';

const RELEASE = { name: 'veil', namespace: 'kube-system' };
let chart: Chart;
let tmp: string;

beforeAll(async () => {
  chart = await loadChart(CHART_DIR);
  tmp = await mkdtemp(join(tmpdir(), 'veil-chart-check-'));
});
afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

/** The values these tests read (values.schema.json has validated them before they are used). */
interface ChartValues {
  updateStrategy: unknown;
  serviceAccount: { create: boolean; name: string };
  securityContext: { extraCapabilities: string[] };
  bpf: { autoMount: boolean };
  health: { port: number };
  metrics: { enabled: boolean; port: number; serviceMonitor: { enabled: boolean; interval: string; labels: Record<string, string> } };
  encryption: { type: string; ipsec: { secretName: string; keyFile: string }; wireguard: { userspaceFallback: boolean } };
  podDisruptionBudget: { enabled: boolean; maxUnavailable: unknown };
  stateDir: string;
  podVethPatterns: string[];
  logLevel: string;
}

/**
 * A rendered manifest as these tests read it: every field present. A field the chart leaves out reads as
 * undefined, and the assertion (or the property access) on it fails the test.
 */
type Present<T> = T extends readonly (infer U)[] ? Present<U>[] : T extends object ? { [K in keyof T]-?: Present<T[K]> } : T;
interface Kinds {
  DaemonSet: IDaemonSet;
  ConfigMap: IConfigMap;
  Service: IService;
  ServiceAccount: IServiceAccount;
  ServiceMonitor: IServiceMonitor;
  PodDisruptionBudget: IPodDisruptionBudget;
  ClusterRole: IClusterRole;
  ClusterRoleBinding: IClusterRoleBinding;
  Role: IRole;
  RoleBinding: IRoleBinding;
}

async function renderWith(files: string[], extra: Record<string, unknown> = {}): Promise<{ values: ChartValues; out: Rendered }> {
  const merged = await mergeValueFiles(chart, files);
  const values = { ...merged, ...extra };
  new ValuesValidator(chart.schema as Record<string, unknown>).validate(values, files.join(',') || 'values.yaml');
  return { values: values as unknown as ChartValues, out: renderChart(chart, values, RELEASE) };
}

function all<K extends keyof Kinds>(out: Rendered, kind: K): Present<Kinds[K]>[] {
  return out.manifests.filter((m) => m.kind === kind) as unknown as Present<Kinds[K]>[];
}

function one<K extends keyof Kinds>(out: Rendered, kind: K): Present<Kinds[K]> {
  const found = all(out, kind);
  expect(found, `exactly one ${kind}`).toHaveLength(1);
  return found[0] as Present<Kinds[K]>;
}

/** `list.find(...)` that must find something (the test fails here, naming what is missing, if not). */
function must<T>(v: T | undefined, what: string): T {
  if (v === undefined) throw new Error(`${what} not found`);
  return v;
}

/** Feeds the rendered ConfigMap's config.yaml to the agent's own loader, env as the DaemonSet sets it. */
async function agentConfigFrom(out: Rendered, tag: string): Promise<AgentConfig> {
  const cm = one(out, 'ConfigMap');
  const ds = one(out, 'DaemonSet');
  const file = join(tmp, `${tag}-config.yaml`);
  await writeFile(file, must(cm.data['config.yaml'], 'config.yaml in the ConfigMap'));
  const agent = must(ds.spec.template.spec.containers.find((c) => c.name === 'agent'), 'agent container');
  const env: Record<string, string> = {};
  for (const e of agent.env) {
    if (e.valueFrom?.fieldRef?.fieldPath === 'spec.nodeName') env[e.name] = 'node-a';
    else if (typeof e.value === 'string') env[e.name] = e.value;
  }
  // The same command line the container runs: `agent --config <path>` minus the subcommand.
  const args = agent.args;
  expect(args.slice(0, 2)).toEqual(['agent', '--config']);
  expect(args[2]).toBe(agent.volumeMounts.find((m) => m.name === 'config')?.mountPath);
  // Core's keys plus the built-in backends' own sections, each validated by its backend's schema;
  // a contributor backend's section (not installed here) passes through as rendered.
  return loadConfig({ argv: ['--config', file], env }, { backends: [wireguardConfig] });
}

describe.each(ciValueFiles().map((f) => [basename(f), f]))('ci/%s', (_name, file) => {
  let values: ChartValues;
  let out: Rendered;
  beforeAll(async () => {
    ({ values, out } = await renderWith([file]));
  });

  it('renders only valid objects, all named and labelled by the chart', () => {
    expect(out.manifests.length).toBeGreaterThanOrEqual(4);
    for (const m of out.manifests) {
      const labels = m.metadata.labels ?? {};
      expect(labels['app.kubernetes.io/name'], `${m.kind} labels`).toBe('veil');
      expect(labels['app.kubernetes.io/instance']).toBe('veil');
      expect(labels['app.kubernetes.io/managed-by']).toBe('Helm');
      expect(labels['helm.sh/chart']).toBe('veil-0.1.0');
      expect(m.metadata.name).toMatch(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/);
      if (!m.kind.startsWith('Cluster')) expect(m.metadata.namespace).toBe('kube-system');
    }
    const names = out.manifests.map((m) => `${m.kind}/${m.metadata.name}`);
    expect(new Set(names).size).toBe(names.length);
  });

  it('DaemonSet: selector matches pod labels; host network; scheduling defaults', () => {
    const ds = one(out, 'DaemonSet');
    const sel = ds.spec.selector.matchLabels;
    expect(sel).toEqual({ 'app.kubernetes.io/name': 'veil', 'app.kubernetes.io/instance': 'veil' });
    for (const [k, v] of Object.entries(sel)) expect(ds.spec.template.metadata.labels[k]).toBe(v);
    const pod = ds.spec.template.spec;
    expect(pod.hostNetwork).toBe(true);
    expect(pod.dnsPolicy).toBe('ClusterFirstWithHostNet');
    expect(pod.priorityClassName).toBe('system-node-critical');
    expect(pod.tolerations).toEqual([{ operator: 'Exists' }]);
    expect(ds.spec.updateStrategy).toEqual(values.updateStrategy);
    expect(ds.spec.template.metadata.annotations['checksum/config']).toMatch(/^[0-9a-f]{64}$/);
    const sa = values.serviceAccount.create ? one(out, 'ServiceAccount').metadata.name : values.serviceAccount.name;
    expect(pod.serviceAccountName).toBe(sa);
  });

  it('agent container: capabilities, not privileged, mounts, probes, node name env', () => {
    const pod = one(out, 'DaemonSet').spec.template.spec;
    const agent = must(pod.containers.find((c) => c.name === 'agent'), 'agent container');
    const sc = agent.securityContext;
    expect(sc.privileged).toBe(false);
    expect(sc.capabilities.drop).toEqual(['ALL']);
    expect(sc.capabilities.add.slice(0, 4)).toEqual(['NET_ADMIN', 'BPF', 'PERFMON', 'SYS_ADMIN']);
    expect(sc.capabilities.add.slice(4)).toEqual(values.securityContext.extraCapabilities);

    const mounts = new Map(agent.volumeMounts.map((m) => [m.mountPath, m]));
    const volumes = new Map(pod.volumes.map((v) => [v.name, v]));
    const volumeOf = (mountPath: string): (typeof pod.volumes)[number] | undefined => {
      const name = mounts.get(mountPath)?.name;
      return name === undefined ? undefined : volumes.get(name);
    };
    const hostPathOf = (mountPath: string): string | undefined => volumeOf(mountPath)?.hostPath?.path;
    expect(hostPathOf('/sys/fs/bpf')).toBe('/sys/fs/bpf');
    expect(mounts.get('/sys/fs/bpf')?.mountPropagation).toBe('HostToContainer');
    expect(hostPathOf('/var/lib/veil')).toBe('/var/lib/veil');
    expect(hostPathOf('/run/wireguard')).toBe('/run/wireguard');
    expect(hostPathOf('/run/veil')).toBe('/run/veil');
    expect(hostPathOf('/lib/modules')).toBe('/lib/modules');
    expect(mounts.get('/lib/modules')?.readOnly).toBe(true);
    expect(volumeOf('/etc/veil/config.yaml')?.configMap?.name).toBe(one(out, 'ConfigMap').metadata.name);
    // Every mount has a volume.
    for (const m of agent.volumeMounts) expect(volumes.has(m.name), m.name).toBe(true);

    if (values.bpf.autoMount) {
      const init = must(pod.initContainers.find((c) => c.name === 'mount-bpf-fs'), 'mount-bpf-fs init container');
      expect(init.securityContext.privileged).toBe(true);
      expect(init.volumeMounts).toEqual([{ name: 'bpf-maps', mountPath: '/sys/fs/bpf', mountPropagation: 'Bidirectional' }]);
    } else {
      expect(pod.initContainers).toBeUndefined();
    }

    const ports = new Map(agent.ports.map((p) => [p.name, p]));
    expect(ports.get('health')?.containerPort).toBe(values.health.port);
    expect(agent.livenessProbe.httpGet).toMatchObject({ path: '/healthz', port: 'health' });
    expect(agent.readinessProbe.httpGet).toMatchObject({ path: '/readyz', port: 'health' });
    expect(agent.startupProbe.httpGet).toMatchObject({ path: '/healthz', port: 'health' });
    expect(ports.has('metrics')).toBe(values.metrics.enabled);

    const nodeEnv = agent.env.find((e) => e.valueFrom?.fieldRef?.fieldPath === 'spec.nodeName');
    expect(['VEIL_NODE_NAME', 'K8S_NODE_NAME']).toContain(nodeEnv?.name);
  });

  it('IPsec Secret mount and Role exist only for type=ipsec; TUN only for the userspace fallback', () => {
    const pod = one(out, 'DaemonSet').spec.template.spec;
    const agent = must(pod.containers.find((c) => c.name === 'agent'), 'agent container');
    const ipsec = values.encryption.type === 'ipsec';
    const secretVol = pod.volumes.find((v) => v.secret);
    const roles = all(out, 'Role');
    if (ipsec) {
      if (!secretVol) throw new Error('no Secret volume for type=ipsec');
      expect(secretVol.secret.secretName).toBe(values.encryption.ipsec.secretName);
      // Owner read-only; YAML 1.1 (Kubernetes) reads 0400 as octal.
      expect(secretVol.secret.defaultMode).toBe(0o400);
      const mount = must(agent.volumeMounts.find((m) => m.name === secretVol.name), 'Secret volume mount');
      expect(`${mount.mountPath}/keys`).toBe(values.encryption.ipsec.keyFile);
      expect(roles).toHaveLength(1);
      expect(roles[0]?.rules).toEqual([
        { apiGroups: [''], resources: ['secrets'], resourceNames: [values.encryption.ipsec.secretName], verbs: ['get', 'watch'] },
      ]);
      expect(one(out, 'RoleBinding').roleRef.name).toBe(roles[0]?.metadata.name);
      expect(out.notes).toContain('create secret generic veil-ipsec-keys');
      expect(out.notes).toContain('<keyIndex>[+] <algo> <hexkey> <icvbits>');
    } else {
      expect(secretVol).toBeUndefined();
      expect(roles).toHaveLength(0);
      expect(out.notes).not.toContain('create secret');
    }
    const tun = pod.volumes.find((v) => v.hostPath?.path === '/dev/net/tun');
    expect(tun !== undefined).toBe(values.encryption.type === 'wireguard' && values.encryption.wireguard.userspaceFallback);
    if (tun) expect(tun.hostPath.type).toBe('CharDevice');
  });

  it('RBAC: least privilege, no wildcards, bound to the agent ServiceAccount', () => {
    const rules = [...all(out, 'ClusterRole'), ...all(out, 'Role')].flatMap((m) => m.rules);
    for (const r of rules) {
      for (const field of ['apiGroups', 'resources', 'verbs', 'resourceNames'] as const) {
        for (const v of r[field] ?? []) expect(v, `${field} in ${JSON.stringify(r)}`).not.toContain('*');
      }
    }
    const cr = one(out, 'ClusterRole');
    expect(cr.rules).toEqual([
      { apiGroups: [''], resources: ['nodes'], verbs: ['get', 'list', 'watch', 'patch'] },
      { apiGroups: [''], resources: ['events'], verbs: ['create', 'patch'] },
    ]);
    const sa = one(out, 'DaemonSet').spec.template.spec.serviceAccountName;
    for (const b of [...all(out, 'ClusterRoleBinding'), ...all(out, 'RoleBinding')]) {
      expect(b.subjects).toEqual([{ kind: 'ServiceAccount', name: sa, namespace: 'kube-system' }]);
    }
    expect(one(out, 'ClusterRoleBinding').roleRef).toEqual({ apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: cr.metadata.name });
  });

  it('metrics Service / ServiceMonitor and PDB follow their switches and select the pods', () => {
    const podLabels = one(out, 'DaemonSet').spec.template.metadata.labels;
    const svc = all(out, 'Service');
    expect(svc).toHaveLength(values.metrics.enabled ? 1 : 0);
    if (svc[0]) {
      for (const [k, v] of Object.entries(svc[0].spec.selector)) expect(podLabels[k]).toBe(v);
      expect(svc[0].spec.ports).toEqual([{ name: 'metrics', port: values.metrics.port, targetPort: 'metrics', protocol: 'TCP' }]);
    }
    const sm = all(out, 'ServiceMonitor');
    expect(sm).toHaveLength(values.metrics.enabled && values.metrics.serviceMonitor.enabled ? 1 : 0);
    if (sm[0]) {
      const service = must(svc[0], 'metrics Service');
      expect(sm[0].spec.selector.matchLabels).toEqual(Object.fromEntries(Object.entries(service.metadata.labels).filter(([k]) => k in service.spec.selector)));
      expect(sm[0].spec.endpoints[0]).toMatchObject({ port: 'metrics', interval: values.metrics.serviceMonitor.interval });
      for (const [k, v] of Object.entries(values.metrics.serviceMonitor.labels)) expect(sm[0].metadata.labels[k]).toBe(v);
    }
    const pdb = all(out, 'PodDisruptionBudget');
    expect(pdb).toHaveLength(values.podDisruptionBudget.enabled ? 1 : 0);
    if (pdb[0]) {
      expect(pdb[0].spec.maxUnavailable).toBe(values.podDisruptionBudget.maxUnavailable);
      for (const [k, v] of Object.entries(pdb[0].spec.selector.matchLabels)) expect(podLabels[k]).toBe(v);
    }
  });

  it("the ConfigMap's config.yaml is accepted by the agent's loadConfig, with the values flowed through", async () => {
    const cfg = await agentConfigFrom(out, basename(file, '.yaml'));
    expect(cfg.nodeName).toBe('node-a');
    expect(cfg.encryption).toEqual(values.encryption);
    expect(cfg.stateDir).toBe(values.stateDir);
    expect(cfg.podVethPatterns).toEqual(values.podVethPatterns);
    expect(cfg.metrics).toMatchObject({ enabled: values.metrics.enabled, port: values.metrics.port });
    expect(cfg.health).toEqual({ port: values.health.port, host: '127.0.0.1' });
    expect(cfg.status.socketPath).toBe('/run/veil/status.sock');
    // `veil status` (exec'd in the pod) looks where the agent listens, and that is on the hostPath.
    const agent = must(one(out, 'DaemonSet').spec.template.spec.containers[0], 'first container');
    expect(agent.env.find((e) => e.name === 'VEIL_STATUS_SOCKET')?.value).toBe(cfg.status.socketPath);
    expect(cfg.status.socketPath.startsWith(must(agent.volumeMounts.find((m) => m.name === 'run-veil'), 'run-veil mount').mountPath + '/')).toBe(true);
    expect(cfg.logLevel).toBe(values.logLevel);
  });

  it('metrics bind to the node address (status.hostIP) or loopback, never 0.0.0.0 (issue 12)', async () => {
    const cfg = await agentConfigFrom(out, `${basename(file, '.yaml')}-bind`);
    expect(cfg.metrics.host).toBe('127.0.0.1');
    const agent = one(out, 'DaemonSet').spec.template.spec.containers[0];
    expect(agent?.env?.find((e: any) => e.name === 'VEIL_METRICS_HOST')?.valueFrom?.fieldRef?.fieldPath).toBe('status.hostIP');
    expect(one(out, 'ConfigMap').data['config.yaml']).not.toContain('0.0.0.0');
  });

  it('NOTES.txt tells how to check status', () => {
    expect(out.notes).toContain('kubectl -n kube-system exec ds/veil -c agent -- veil status');
    expect(out.notes).not.toMatch(/<no value>|\{\{/);
  });
});

describe('values flow into the agent config', () => {
  it('ipsec: type, secret, key file and rotation', async () => {
    const { out } = await renderWith([join(CHART_DIR, 'ci/ipsec.yaml')]);
    const cfg = await agentConfigFrom(out, 'flow-ipsec');
    expect(cfg.encryption.type).toBe('ipsec');
    expect(cfg.encryption.ipsec).toEqual({ secretName: 'veil-ipsec-keys', keyFile: '/etc/veil/ipsec/keys', keyRotationDuration: '10m' });
  });

  it('wireguard userspace + strict: port, fallback, keepalive, MTU, strict CIDRs', async () => {
    const { out } = await renderWith([join(CHART_DIR, 'ci/wireguard-userspace-strict.yaml')]);
    const cfg = await agentConfigFrom(out, 'flow-wg');
    expect(cfg.encryption.wireguard).toEqual({ port: 51999, userspaceFallback: true, persistentKeepalive: 25, mtu: 1380 });
    expect(cfg.encryption.strictMode).toEqual({ enabled: true, cidrs: ['10.244.0.0/16', 'fd00:10:244::/56'], allowRemoteNodeIdentities: true });
    expect(cfg.encryption.nodeEncryption).toBe(true);
    const agent = must(one(out, 'DaemonSet').spec.template.spec.containers[0], 'first container');
    expect(agent.ports.find((p) => p.name === 'wireguard')).toEqual({ name: 'wireguard', containerPort: 51999, protocol: 'UDP' });
  });

  it('contributor backend: the package name reaches the agent verbatim', async () => {
    const { out } = await renderWith([join(CHART_DIR, 'ci/contributor-backend.yaml')]);
    const cfg = await agentConfigFrom(out, 'flow-contrib');
    expect(cfg.encryption.type).toBe('@acme/veil-backend-macsec');
    expect(one(out, 'DaemonSet').spec.template.spec.containers[0]?.image).toBe('registry.example.com/acme/veil-macsec:0.1.0-acme.1');
  });

  it('strings that need quoting stay intact through toJson (YAML-safe)', async () => {
    const { out } = await renderWith([], { podVethPatterns: ['*', 'cali*'], stateDir: '/var/lib/veil: #x "y"', logLevel: 'warn' });
    const cfg = await agentConfigFrom(out, 'flow-quote');
    expect(cfg.podVethPatterns).toEqual(['*', 'cali*']);
    expect(cfg.stateDir).toBe('/var/lib/veil: #x "y"');
    expect(cfg.logLevel).toBe('warn');
  });

  it('a config change changes checksum/config (rolls the pods); an unrelated change does not', async () => {
    const base = await renderWith([]);
    const changed = await renderWith([join(CHART_DIR, 'ci/ipsec.yaml')]);
    const unrelated = await renderWith([], { podAnnotations: { a: 'b' } });
    const sum = (r: { out: Rendered }): string => must(one(r.out, 'DaemonSet').spec.template.metadata.annotations['checksum/config'], 'checksum/config');
    expect(sum(changed)).not.toBe(sum(base));
    expect(sum(unrelated)).toBe(sum(base));
    const cm = parseYaml(must(one(base.out, 'ConfigMap').data['config.yaml'], 'config.yaml')) as Record<string, unknown>;
    expect(cm.nodeName).toBeUndefined();
  });

  it('updateStrategy: rollingUpdate only with type RollingUpdate', async () => {
    const { out } = await renderWith([], { updateStrategy: { type: 'OnDelete', rollingUpdate: { maxUnavailable: 3 } } });
    expect(one(out, 'DaemonSet').spec.updateStrategy).toEqual({ type: 'OnDelete' });
  });

  it('fullname: release "veil" → veil, other releases → <release>-veil, override wins', async () => {
    const values = await mergeValueFiles(chart, []);
    const name = (rel: string, v = values): string => one(renderChart(chart, v, { name: rel, namespace: 'x' }), 'DaemonSet').metadata.name;
    expect(name('veil')).toBe('veil');
    expect(name('prod')).toBe('prod-veil');
    expect(name('prod', { ...values, fullnameOverride: 'enc' })).toBe('enc');
  });
});
