import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import type { IServiceMonitor } from '@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/ServiceMonitor';
import type {
  V1ClusterRole,
  V1ClusterRoleBinding,
  V1ConfigMap,
  V1Container,
  V1DaemonSet,
  V1PodDisruptionBudget,
  V1PodSpec,
  V1PolicyRule,
  V1Role,
  V1RoleBinding,
  V1Service,
  V1ServiceAccount,
  V1ValidatingAdmissionPolicy,
  V1ValidatingAdmissionPolicyBinding,
} from '@kubernetes/client-node';
import { loadConfig, type AgentConfig } from '@veil/agent-core';
import { ipsecConfig } from '@veil/backend-ipsec';
import { wireguardConfig } from '@veil/backend-wireguard';
import { describePrivileged } from '@veil/test-utils';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import {
  coalesceValues,
  loadChart,
  mergeValueFiles,
  renderChart,
  ValuesValidator,
  type Chart,
  type Manifest,
  type Rendered,
} from '../src/index.js';
import { CHART_DIR, ciValueFiles } from './helpers.js';

const RELEASE = { name: 'veil', namespace: 'kube-system' };
let chart: Chart;
let tmp: string;

/** The chart's values (values.yaml under values.schema.json), as far as the expectations read them. */
interface ChartValues {
  encryption: {
    type: string;
    ipsec: { secretName: string; keyFile: string; keyRotationDuration: string };
    wireguard: { port: number; userspaceFallback: boolean; persistentKeepalive: number; mtu: number };
    [key: string]: unknown;
  };
  stateDir: string;
  podVethPatterns: string[];
  bpf: { autoMount: boolean };
  health: { port: number };
  metrics: {
    enabled: boolean;
    port: number;
    serviceMonitor: { enabled: boolean; interval: string; labels: Record<string, string> };
  };
  logLevel: string;
  securityContext: { privileged: boolean; extraCapabilities: string[] };
  podDisruptionBudget: { enabled: boolean; maxUnavailable: number | string };
  updateStrategy: { type: string; rollingUpdate?: { maxUnavailable: number | string } };
  serviceAccount: { create: boolean; name: string };
  [key: string]: unknown;
}

/** The model of each kind the chart renders. */
interface Kinds {
  ClusterRole: V1ClusterRole;
  ClusterRoleBinding: V1ClusterRoleBinding;
  ConfigMap: V1ConfigMap;
  DaemonSet: V1DaemonSet;
  PodDisruptionBudget: V1PodDisruptionBudget;
  Role: V1Role;
  RoleBinding: V1RoleBinding;
  Service: V1Service;
  ServiceAccount: V1ServiceAccount;
  ServiceMonitor: IServiceMonitor;
  ValidatingAdmissionPolicy: V1ValidatingAdmissionPolicy;
  ValidatingAdmissionPolicyBinding: V1ValidatingAdmissionPolicyBinding;
}
type Kind = keyof Kinds;
/** A rendered object typed by its kind (apiserver.test.ts has the real apiserver check that it is one). */
type Typed<K extends Kind> = Manifest & Kinds[K];

/** `value`, or a failure that names what the rendered object lacks. */
function must<T>(value: T | undefined | null, what: string): T {
  if (value === undefined || value === null) throw new Error(`missing: ${what}`);
  return value;
}

beforeAll(async () => {
  chart = await loadChart(CHART_DIR);
  tmp = await mkdtemp(join(tmpdir(), 'veil-chart-check-'));
});
afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

/** Renders with the real helm; `values` are what the templates saw (for the expectations). */
async function renderWith(files: string[], extra?: Record<string, unknown>): Promise<{ values: ChartValues; out: Rendered }> {
  const merged = await mergeValueFiles(chart, files);
  // Checked against values.schema.json just below.
  const values = coalesceValues(merged, extra ?? {}) as ChartValues;
  new ValuesValidator(must(chart.schema, 'values.schema.json')).validate(values, files.join(',') || 'values.yaml');
  return {
    values,
    out: await renderChart(CHART_DIR, { release: RELEASE, valueFiles: files, ...(extra ? { values: extra } : {}) }),
  };
}

/** Every rendered object of `kind`, typed as that kind. */
function all<K extends Kind>(out: Rendered, kind: K): Typed<K>[] {
  return out.manifests.filter((m) => m.kind === kind) as Typed<K>[];
}

function one<K extends Kind>(out: Rendered, kind: K): Typed<K> {
  const found = all(out, kind);
  expect(found, `exactly one ${kind}`).toHaveLength(1);
  return must(found[0], kind);
}

/** The DaemonSet's pod spec. */
function podOf(out: Rendered): V1PodSpec {
  return must(one(out, 'DaemonSet').spec?.template.spec, 'DaemonSet spec.template.spec');
}

function containerNamed(pod: V1PodSpec, name: string): V1Container {
  return must(
    pod.containers.find((c) => c.name === name),
    `container ${name}`,
  );
}

function firstContainer(out: Rendered): V1Container {
  return must(podOf(out).containers[0], 'the first container');
}

/** The rules of every Role and ClusterRole, in render order. */
function rbacRules(out: Rendered): V1PolicyRule[] {
  const roles = out.manifests.filter((m) => m.kind === 'Role' || m.kind === 'ClusterRole') as Typed<'Role' | 'ClusterRole'>[];
  return roles.flatMap((m) => must(m.rules, `${m.kind}/${m.metadata.name} rules`));
}

/** Feeds the rendered ConfigMap's config.yaml to the agent's own loader, env as the DaemonSet sets it. */
async function agentConfigFrom(out: Rendered, tag: string): Promise<AgentConfig> {
  const cm = one(out, 'ConfigMap');
  const pod = podOf(out);
  const file = join(tmp, `${tag}-config.yaml`);
  await writeFile(file, must(cm.data?.['config.yaml'], 'ConfigMap data config.yaml'));
  const agent = containerNamed(pod, 'agent');
  const env: Record<string, string> = {};
  for (const e of must(agent.env, 'agent env')) {
    if (e.valueFrom?.fieldRef?.fieldPath === 'spec.nodeName') env[e.name] = 'node-a';
    else if (typeof e.value === 'string') env[e.name] = e.value;
  }
  // The same command line the container runs: `agent --config <path>` minus the subcommand.
  const args: string[] = must(agent.args, 'agent args');
  expect(args.slice(0, 2)).toEqual(['agent', '--config']);
  expect(args[2]).toBe(
    must(
      agent.volumeMounts?.find((m) => m.name === 'config'),
      'agent mount config',
    ).mountPath,
  );
  // Core's keys plus the built-in backends' own sections, each validated by its backend's schema;
  // a contributor backend's section (not installed here) passes through as rendered.
  return loadConfig({ argv: ['--config', file], env }, { backends: [wireguardConfig, ipsecConfig] });
}

describePrivileged('the chart rendered by the real helm', ['helm'], () => {
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
        // Cluster-scoped: Cluster*, the admission policy; the events Role lives where Node events may.
        if (m.kind.startsWith('Cluster') || m.kind.startsWith('ValidatingAdmissionPolicy'))
          expect(m.metadata.namespace).toBeUndefined();
        else if (m.metadata.name === 'veil-events') expect(m.metadata.namespace).toBe('default');
        else expect(m.metadata.namespace).toBe('kube-system');
      }
      const names = out.manifests.map((m) => `${m.kind}/${m.metadata.name}`);
      expect(new Set(names).size).toBe(names.length);
    });

    it('DaemonSet: selector matches pod labels; host network; scheduling defaults', () => {
      const ds = one(out, 'DaemonSet');
      const spec = must(ds.spec, 'DaemonSet spec');
      const sel = must(spec.selector.matchLabels, 'DaemonSet selector.matchLabels');
      expect(sel).toEqual({ 'app.kubernetes.io/name': 'veil', 'app.kubernetes.io/instance': 'veil' });
      const podMeta = must(spec.template.metadata, 'pod template metadata');
      for (const [k, v] of Object.entries(sel)) expect(must(podMeta.labels, 'pod labels')[k]).toBe(v);
      const pod = must(spec.template.spec, 'pod spec');
      expect(pod.hostNetwork).toBe(true);
      expect(pod.dnsPolicy).toBe('ClusterFirstWithHostNet');
      expect(pod.priorityClassName).toBe('system-node-critical');
      expect(pod.tolerations).toEqual([{ operator: 'Exists' }]);
      expect(spec.updateStrategy).toEqual(values.updateStrategy);
      expect(must(podMeta.annotations, 'pod annotations')['checksum/config']).toMatch(/^[0-9a-f]{64}$/);
      const sa = values.serviceAccount.create ? one(out, 'ServiceAccount').metadata.name : values.serviceAccount.name;
      expect(pod.serviceAccountName).toBe(sa);
    });

    it('agent container: capabilities, not privileged, mounts, probes, node name env', () => {
      const pod = podOf(out);
      const agent = containerNamed(pod, 'agent');
      const sc = must(agent.securityContext, 'agent securityContext');
      expect(sc.privileged).toBe(false);
      const caps = must(sc.capabilities, 'agent capabilities');
      expect(caps.drop).toEqual(['ALL']);
      expect(must(caps.add, 'capabilities.add').slice(0, 4)).toEqual(['NET_ADMIN', 'BPF', 'PERFMON', 'SYS_ADMIN']);
      expect(must(caps.add, 'capabilities.add').slice(4)).toEqual(values.securityContext.extraCapabilities);

      const agentMounts = must(agent.volumeMounts, 'agent volumeMounts');
      const mounts = new Map(agentMounts.map((m) => [m.mountPath, m]));
      const volumes = new Map(must(pod.volumes, 'pod volumes').map((v) => [v.name, v]));
      const mountAt = (mountPath: string) => must(mounts.get(mountPath), `mount at ${mountPath}`);
      const hostPathOf = (mountPath: string): string | undefined => {
        const name = mounts.get(mountPath)?.name;
        return name === undefined ? undefined : volumes.get(name)?.hostPath?.path;
      };
      expect(hostPathOf('/sys/fs/bpf')).toBe('/sys/fs/bpf');
      expect(mountAt('/sys/fs/bpf').mountPropagation).toBe('HostToContainer');
      expect(hostPathOf('/var/lib/veil')).toBe('/var/lib/veil');
      expect(hostPathOf('/run/wireguard')).toBe('/run/wireguard');
      expect(hostPathOf('/run/veil')).toBe('/run/veil');
      expect(hostPathOf('/lib/modules')).toBe('/lib/modules');
      expect(mountAt('/lib/modules').readOnly).toBe(true);
      const configVolume = must(volumes.get(mountAt('/etc/veil/config.yaml').name), 'the config volume');
      expect(must(configVolume.configMap, 'config volume configMap').name).toBe(one(out, 'ConfigMap').metadata.name);
      // Every mount has a volume.
      for (const m of agentMounts) expect(volumes.has(m.name), m.name).toBe(true);

      if (values.bpf.autoMount) {
        const init = must(
          must(pod.initContainers, 'initContainers').find((c) => c.name === 'mount-bpf-fs'),
          'init container mount-bpf-fs',
        );
        expect(must(init.securityContext, 'mount-bpf-fs securityContext').privileged).toBe(true);
        expect(init.volumeMounts).toEqual([{ name: 'bpf-maps', mountPath: '/sys/fs/bpf', mountPropagation: 'Bidirectional' }]);
      } else {
        expect(pod.initContainers).toBeUndefined();
      }

      const ports = new Map(must(agent.ports, 'agent ports').map((p) => [p.name, p]));
      expect(must(ports.get('health'), 'port health').containerPort).toBe(values.health.port);
      expect(must(agent.livenessProbe, 'livenessProbe').httpGet).toMatchObject({ path: '/healthz', port: 'health' });
      expect(must(agent.readinessProbe, 'readinessProbe').httpGet).toMatchObject({ path: '/readyz', port: 'health' });
      expect(must(agent.startupProbe, 'startupProbe').httpGet).toMatchObject({ path: '/healthz', port: 'health' });
      expect(ports.has('metrics')).toBe(values.metrics.enabled);

      const nodeEnv = must(
        must(agent.env, 'agent env').find((e) => e.valueFrom?.fieldRef?.fieldPath === 'spec.nodeName'),
        'the env var from spec.nodeName',
      );
      expect(['VEIL_NODE_NAME', 'K8S_NODE_NAME']).toContain(nodeEnv.name);
    });

    it('IPsec Secret mount only for type=ipsec, and no Secret RBAC (the kubelet mounts it); TUN only for the userspace fallback', () => {
      const pod = podOf(out);
      const agent = containerNamed(pod, 'agent');
      const ipsec = values.encryption.type === 'ipsec';
      const volumes = must(pod.volumes, 'pod volumes');
      const secretVol = volumes.find((v) => v.secret);
      // The agent reads the keys from the mounted file, never through the API.
      const rules = rbacRules(out);
      expect(rules.filter((r) => must(r.resources, `resources in ${JSON.stringify(r)}`).includes('secrets'))).toEqual([]);
      if (ipsec) {
        const vol = must(secretVol, 'the Secret volume');
        const secret = must(vol.secret, 'the Secret volume source');
        expect(secret.secretName).toBe(values.encryption.ipsec.secretName);
        // Owner read-only; YAML 1.1 (Kubernetes) reads 0400 as octal.
        expect(secret.defaultMode).toBe(0o400);
        const mount = must(
          must(agent.volumeMounts, 'agent volumeMounts').find((m) => m.name === vol.name),
          'the Secret mount',
        );
        expect(`${mount.mountPath}/keys`).toBe(values.encryption.ipsec.keyFile);
        expect(out.notes).toContain('create secret generic veil-ipsec-keys');
        expect(out.notes).toContain('<keyIndex>[+] <algo> <hexkey> <icvbits>');
      } else {
        expect(secretVol).toBeUndefined();
        expect(out.notes).not.toContain('create secret');
      }
      const tun = volumes.find((v) => v.hostPath?.path === '/dev/net/tun');
      expect(tun !== undefined).toBe(values.encryption.type === 'wireguard' && values.encryption.wireguard.userspaceFallback);
      if (tun) expect(must(tun.hostPath, 'TUN hostPath').type).toBe('CharDevice');
    });

    it('RBAC: least privilege, no wildcards, bound to the agent ServiceAccount', () => {
      const rules = rbacRules(out);
      for (const r of rules) {
        for (const field of ['apiGroups', 'resources', 'verbs', 'resourceNames'] as const) {
          for (const v of r[field] ?? []) expect(v, `${field} in ${JSON.stringify(r)}`).not.toContain('*');
        }
      }
      // Exactly what the agent calls: list/watch/get Nodes, patch its own; create Events in `default`;
      // node-ID Leases in the release namespace for backends other than WireGuard (which needs no IDs).
      const cr = one(out, 'ClusterRole');
      expect(cr.rules).toEqual([{ apiGroups: [''], resources: ['nodes'], verbs: ['get', 'list', 'watch', 'patch'] }]);
      const roles = all(out, 'Role');
      const bindings = all(out, 'RoleBinding');
      const role = must(
        roles.find((r) => r.metadata.name === 'veil-events'),
        'events Role',
      );
      expect(role.metadata.namespace).toBe('default');
      expect(role.rules).toEqual([{ apiGroups: [''], resources: ['events'], verbs: ['create'] }]);
      const nodeIds = roles.find((r) => r.metadata.name === 'veil-node-ids');
      expect(nodeIds !== undefined).toBe(values.encryption.type !== 'wireguard');
      if (nodeIds) {
        expect(nodeIds.metadata.namespace).toBe('kube-system');
        expect(nodeIds.rules).toEqual([
          { apiGroups: ['coordination.k8s.io'], resources: ['leases'], verbs: ['get', 'list', 'create', 'patch', 'delete'] },
        ]);
      }
      expect(roles).toHaveLength(nodeIds ? 2 : 1);
      expect(bindings).toHaveLength(roles.length);
      for (const r of roles)
        expect(bindings.find((b) => b.metadata.name === r.metadata.name)?.roleRef).toEqual({
          apiGroup: 'rbac.authorization.k8s.io',
          kind: 'Role',
          name: r.metadata.name,
        });
      const sa = podOf(out).serviceAccountName;
      for (const b of out.manifests.filter((m) => m.kind.endsWith('RoleBinding')) as Typed<
        'RoleBinding' | 'ClusterRoleBinding'
      >[]) {
        expect(b.subjects).toEqual([{ kind: 'ServiceAccount', name: sa, namespace: 'kube-system' }]);
      }
      expect(one(out, 'ClusterRoleBinding').roleRef).toEqual({
        apiGroup: 'rbac.authorization.k8s.io',
        kind: 'ClusterRole',
        name: cr.metadata.name,
      });
    });

    it('metrics Service / ServiceMonitor and PDB follow their switches and select the pods', () => {
      const podLabels = must(one(out, 'DaemonSet').spec?.template.metadata?.labels, 'pod labels');
      const svc = all(out, 'Service');
      expect(svc).toHaveLength(values.metrics.enabled ? 1 : 0);
      if (svc[0]) {
        const spec = must(svc[0].spec, 'Service spec');
        for (const [k, v] of Object.entries(must(spec.selector, 'Service selector'))) expect(podLabels[k]).toBe(v);
        expect(spec.ports).toEqual([{ name: 'metrics', port: values.metrics.port, targetPort: 'metrics', protocol: 'TCP' }]);
      }
      const sm = all(out, 'ServiceMonitor');
      expect(sm).toHaveLength(values.metrics.enabled && values.metrics.serviceMonitor.enabled ? 1 : 0);
      if (sm[0]) {
        const service = must(svc[0], 'the metrics Service');
        const selector = must(service.spec?.selector, 'Service selector');
        expect(sm[0].spec.selector.matchLabels).toEqual(
          Object.fromEntries(Object.entries(must(service.metadata.labels, 'Service labels')).filter(([k]) => k in selector)),
        );
        expect(must(sm[0].spec.endpoints, 'ServiceMonitor endpoints')[0]).toMatchObject({
          port: 'metrics',
          interval: values.metrics.serviceMonitor.interval,
        });
        for (const [k, v] of Object.entries(values.metrics.serviceMonitor.labels))
          expect(must(sm[0].metadata.labels, 'ServiceMonitor labels')[k]).toBe(v);
      }
      const pdb = all(out, 'PodDisruptionBudget');
      expect(pdb).toHaveLength(values.podDisruptionBudget.enabled ? 1 : 0);
      if (pdb[0]) {
        const spec = must(pdb[0].spec, 'PDB spec');
        expect(spec.maxUnavailable).toBe(values.podDisruptionBudget.maxUnavailable);
        for (const [k, v] of Object.entries(must(spec.selector?.matchLabels, 'PDB selector.matchLabels')))
          expect(podLabels[k]).toBe(v);
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
      const agent = firstContainer(out);
      expect(
        must(
          must(agent.env, 'agent env').find((e) => e.name === 'VEIL_STATUS_SOCKET'),
          'env VEIL_STATUS_SOCKET',
        ).value,
      ).toBe(cfg.status.socketPath);
      expect(
        cfg.status.socketPath.startsWith(
          must(
            must(agent.volumeMounts, 'agent volumeMounts').find((m) => m.name === 'run-veil'),
            'mount run-veil',
          ).mountPath + '/',
        ),
      ).toBe(true);
      expect(cfg.logLevel).toBe(values.logLevel);
      // Events about Nodes (cluster-scoped) are legal only in `default`; the Role is there too.
      expect(cfg.eventsNamespace).toBe('default');
    });

    it('node restriction: the admission policy matches only the agent ServiceAccount and is bound', () => {
      const vap = one(out, 'ValidatingAdmissionPolicy');
      const spec = must(vap.spec, 'policy spec');
      const sa = podOf(out).serviceAccountName;
      expect(spec.failurePolicy).toBe('Fail');
      expect(spec.matchConditions).toEqual([
        { name: 'veil-agent', expression: `request.userInfo.username == "system:serviceaccount:kube-system:${sa}"` },
      ]);
      expect(must(spec.matchConstraints?.resourceRules?.[0], 'policy resourceRules[0]').resources).toEqual([
        'nodes',
        'nodes/status',
      ]);
      expect(one(out, 'ValidatingAdmissionPolicyBinding').spec).toEqual({
        policyName: vap.metadata.name,
        validationActions: ['Deny'],
      });
    });

    it('metrics bind to the node address (status.hostIP) or loopback, never 0.0.0.0 (issue 12)', async () => {
      const cfg = await agentConfigFrom(out, `${basename(file, '.yaml')}-bind`);
      expect(cfg.metrics.host).toBe('127.0.0.1');
      const agent = podOf(out).containers[0];
      expect(agent?.env?.find((e: { name: string }) => e.name === 'VEIL_METRICS_HOST')?.valueFrom?.fieldRef?.fieldPath).toBe(
        'status.hostIP',
      );
      expect(one(out, 'ConfigMap').data?.['config.yaml']).not.toContain('0.0.0.0');
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
      // nodeId 0: allocated as a Lease in the release namespace (the Role above allows exactly that).
      expect(cfg.nodeId).toBe(0);
      expect(cfg.nodeIdNamespace).toBe('kube-system');
      expect(cfg.encryption.ipsec).toEqual({
        secretName: 'veil-ipsec-keys',
        keyFile: '/etc/veil/ipsec/keys',
        keyRotationDuration: '10m',
      });
    });

    it('wireguard userspace + strict: port, fallback, keepalive, MTU, strict CIDRs', async () => {
      const { out } = await renderWith([join(CHART_DIR, 'ci/wireguard-userspace-strict.yaml')]);
      const cfg = await agentConfigFrom(out, 'flow-wg');
      expect(cfg.encryption.wireguard).toEqual({ port: 51999, userspaceFallback: true, persistentKeepalive: 25, mtu: 1380 });
      expect(cfg.encryption.strictMode).toEqual({
        enabled: true,
        cidrs: ['10.244.0.0/16', 'fd00:10:244::/56'],
        allowRemoteNodeIdentities: true,
      });
      expect(cfg.encryption.nodeEncryption).toBe(true);
      const agent = firstContainer(out);
      expect(must(agent.ports, 'agent ports').find((p) => p.name === 'wireguard')).toEqual({
        name: 'wireguard',
        containerPort: 51999,
        protocol: 'UDP',
      });
    });

    it('contributor backend: the package name reaches the agent verbatim', async () => {
      const { out } = await renderWith([join(CHART_DIR, 'ci/contributor-backend.yaml')]);
      const cfg = await agentConfigFrom(out, 'flow-contrib');
      expect(cfg.encryption.type).toBe('@acme/veil-backend-macsec');
      expect(firstContainer(out).image).toBe('registry.example.com/acme/veil-macsec:0.1.0-acme.1');
    });

    it('strings that need quoting stay intact through toJson (YAML-safe)', async () => {
      const { out } = await renderWith([], {
        podVethPatterns: ['*', 'cali*'],
        stateDir: '/var/lib/veil: #x "y"',
        logLevel: 'warn',
      });
      const cfg = await agentConfigFrom(out, 'flow-quote');
      expect(cfg.podVethPatterns).toEqual(['*', 'cali*']);
      expect(cfg.stateDir).toBe('/var/lib/veil: #x "y"');
      expect(cfg.logLevel).toBe('warn');
    });

    it('a config change changes checksum/config (rolls the pods); an unrelated change does not', async () => {
      const base = await renderWith([]);
      const changed = await renderWith([join(CHART_DIR, 'ci/ipsec.yaml')]);
      const unrelated = await renderWith([], { podAnnotations: { a: 'b' } });
      const sum = (r: { out: Rendered }): string | undefined =>
        one(r.out, 'DaemonSet').spec?.template.metadata?.annotations?.['checksum/config'];
      expect(sum(changed)).not.toBe(sum(base));
      expect(sum(unrelated)).toBe(sum(base));
      // The agent's config file is a mapping (loadConfig reads it as one in the tests above).
      const cm = parseYaml(must(one(base.out, 'ConfigMap').data?.['config.yaml'], 'ConfigMap data config.yaml')) as Record<
        string,
        unknown
      >;
      expect(cm.nodeName).toBeUndefined();
    });

    it('updateStrategy: rollingUpdate only with type RollingUpdate', async () => {
      const { out } = await renderWith([], { updateStrategy: { type: 'OnDelete', rollingUpdate: { maxUnavailable: 3 } } });
      expect(must(one(out, 'DaemonSet').spec, 'DaemonSet spec').updateStrategy).toEqual({ type: 'OnDelete' });
    });

    it('fullname: release "veil" → veil, other releases → <release>-veil, override wins', async () => {
      const name = async (rel: string, values?: Record<string, unknown>): Promise<string> =>
        one(await renderChart(CHART_DIR, { release: { name: rel, namespace: 'x' }, ...(values ? { values } : {}) }), 'DaemonSet')
          .metadata.name;
      expect(await name('veil')).toBe('veil');
      expect(await name('prod')).toBe('prod-veil');
      expect(await name('prod', { fullnameOverride: 'enc' })).toBe('enc');
    });

    it('rbac.nodeRestriction=false leaves the admission policy out; rbac.create=false leaves all RBAC out', async () => {
      const kinds = async (rbac: Record<string, unknown>): Promise<string[]> =>
        (await renderWith([], { rbac })).out.manifests.map((m) => m.kind);
      const off = await kinds({ nodeRestriction: false });
      expect(off).toContain('ClusterRole');
      expect(off).not.toContain('ValidatingAdmissionPolicy');
      const none = await kinds({ create: false });
      for (const k of [
        'ClusterRole',
        'ClusterRoleBinding',
        'Role',
        'RoleBinding',
        'ValidatingAdmissionPolicy',
        'ValidatingAdmissionPolicyBinding',
      ])
        expect(none).not.toContain(k);
    });
  });
});
