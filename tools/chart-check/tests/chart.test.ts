import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { loadConfig, type AgentConfig } from '@veil/agent-core';
import { ipsecConfig } from '@veil/backend-ipsec';
import { wireguardConfig } from '@veil/backend-wireguard';
import { describePrivileged } from '@veil/test-utils';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { coalesceValues, loadChart, mergeValueFiles, renderChart, ValuesValidator, type Chart, type Manifest, type Rendered } from '../src/index.js';
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

/** Renders with the real helm; `values` are what the templates saw (for the expectations). */
async function renderWith(files: string[], extra?: Record<string, unknown>): Promise<{ values: Record<string, any>; out: Rendered }> {
  const merged = await mergeValueFiles(chart, files);
  const values = coalesceValues(merged, extra ?? {}) as Record<string, any>;
  new ValuesValidator(chart.schema as Record<string, unknown>).validate(values, files.join(',') || 'values.yaml');
  return { values, out: await renderChart(CHART_DIR, { release: RELEASE, valueFiles: files, ...(extra ? { values: extra } : {}) }) };
}

function one(out: Rendered, kind: string): Manifest & Record<string, any> {
  const all = out.manifests.filter((m) => m.kind === kind);
  expect(all, `exactly one ${kind}`).toHaveLength(1);
  return all[0] as Manifest & Record<string, any>;
}

/** Feeds the rendered ConfigMap's config.yaml to the agent's own loader, env as the DaemonSet sets it. */
async function agentConfigFrom(out: Rendered, tag: string): Promise<AgentConfig> {
  const cm = one(out, 'ConfigMap');
  const ds = one(out, 'DaemonSet');
  const file = join(tmp, `${tag}-config.yaml`);
  await writeFile(file, cm.data['config.yaml']);
  const agent = ds.spec.template.spec.containers.find((c: any) => c.name === 'agent');
  const env: Record<string, string> = {};
  for (const e of agent.env) {
    if (e.valueFrom?.fieldRef?.fieldPath === 'spec.nodeName') env[e.name] = 'node-a';
    else if (typeof e.value === 'string') env[e.name] = e.value;
  }
  // The same command line the container runs: `agent --config <path>` minus the subcommand.
  const args: string[] = agent.args;
  expect(args.slice(0, 2)).toEqual(['agent', '--config']);
  expect(args[2]).toBe(agent.volumeMounts.find((m: any) => m.name === 'config').mountPath);
  // Core's keys plus the built-in backends' own sections, each validated by its backend's schema;
  // a contributor backend's section (not installed here) passes through as rendered.
  return loadConfig({ argv: ['--config', file], env }, { backends: [wireguardConfig, ipsecConfig] });
}

describePrivileged('the chart rendered by the real helm', ['helm'], () => {
  describe.each(ciValueFiles().map((f) => [basename(f), f]))('ci/%s', (_name, file) => {
    let values: Record<string, any>;
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
        if (m.kind.startsWith('Cluster') || m.kind.startsWith('ValidatingAdmissionPolicy')) expect(m.metadata.namespace).toBeUndefined();
        else if (m.metadata.name === 'veil-events') expect(m.metadata.namespace).toBe('default');
        else expect(m.metadata.namespace).toBe('kube-system');
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
      const agent = pod.containers.find((c: any) => c.name === 'agent');
      const sc = agent.securityContext;
      expect(sc.privileged).toBe(false);
      expect(sc.capabilities.drop).toEqual(['ALL']);
      expect(sc.capabilities.add.slice(0, 4)).toEqual(['NET_ADMIN', 'BPF', 'PERFMON', 'SYS_ADMIN']);
      expect(sc.capabilities.add.slice(4)).toEqual(values.securityContext.extraCapabilities);

      const mounts = new Map<string, any>(agent.volumeMounts.map((m: any) => [m.mountPath, m]));
      const volumes = new Map<string, any>(pod.volumes.map((v: any) => [v.name, v]));
      const hostPathOf = (mountPath: string): string | undefined => volumes.get(mounts.get(mountPath)?.name)?.hostPath?.path;
      expect(hostPathOf('/sys/fs/bpf')).toBe('/sys/fs/bpf');
      expect(mounts.get('/sys/fs/bpf').mountPropagation).toBe('HostToContainer');
      expect(hostPathOf('/var/lib/veil')).toBe('/var/lib/veil');
      expect(hostPathOf('/run/wireguard')).toBe('/run/wireguard');
      expect(hostPathOf('/run/veil')).toBe('/run/veil');
      expect(hostPathOf('/lib/modules')).toBe('/lib/modules');
      expect(mounts.get('/lib/modules').readOnly).toBe(true);
      expect(volumes.get(mounts.get('/etc/veil/config.yaml').name).configMap.name).toBe(one(out, 'ConfigMap').metadata.name);
      // Every mount has a volume.
      for (const m of agent.volumeMounts) expect(volumes.has(m.name), m.name).toBe(true);

      if (values.bpf.autoMount) {
        const init = pod.initContainers.find((c: any) => c.name === 'mount-bpf-fs');
        expect(init.securityContext.privileged).toBe(true);
        expect(init.volumeMounts).toEqual([{ name: 'bpf-maps', mountPath: '/sys/fs/bpf', mountPropagation: 'Bidirectional' }]);
      } else {
        expect(pod.initContainers).toBeUndefined();
      }

      const ports = new Map<string, any>(agent.ports.map((p: any) => [p.name, p]));
      expect(ports.get('health').containerPort).toBe(values.health.port);
      expect(agent.livenessProbe.httpGet).toMatchObject({ path: '/healthz', port: 'health' });
      expect(agent.readinessProbe.httpGet).toMatchObject({ path: '/readyz', port: 'health' });
      expect(agent.startupProbe.httpGet).toMatchObject({ path: '/healthz', port: 'health' });
      expect(ports.has('metrics')).toBe(values.metrics.enabled);

      const nodeEnv = agent.env.find((e: any) => e.valueFrom?.fieldRef?.fieldPath === 'spec.nodeName');
      expect(['VEIL_NODE_NAME', 'K8S_NODE_NAME']).toContain(nodeEnv.name);
    });

    it('IPsec Secret mount only for type=ipsec, and no Secret RBAC (the kubelet mounts it); TUN only for the userspace fallback', () => {
      const pod = one(out, 'DaemonSet').spec.template.spec;
      const agent = pod.containers.find((c: any) => c.name === 'agent');
      const ipsec = values.encryption.type === 'ipsec';
      const secretVol = pod.volumes.find((v: any) => v.secret);
      // The agent reads the keys from the mounted file, never through the API.
      const rules = out.manifests.filter((m) => m.kind === 'Role' || m.kind === 'ClusterRole').flatMap((m: any) => m.rules);
      expect(rules.filter((r: any) => r.resources.includes('secrets'))).toEqual([]);
      if (ipsec) {
        expect(secretVol.secret.secretName).toBe(values.encryption.ipsec.secretName);
        // Owner read-only; YAML 1.1 (Kubernetes) reads 0400 as octal.
        expect(secretVol.secret.defaultMode).toBe(0o400);
        const mount = agent.volumeMounts.find((m: any) => m.name === secretVol.name);
        expect(`${mount.mountPath}/keys`).toBe(values.encryption.ipsec.keyFile);
        expect(out.notes).toContain('create secret generic veil-ipsec-keys');
        expect(out.notes).toContain('<keyIndex>[+] <algo> <hexkey> <icvbits>');
      } else {
        expect(secretVol).toBeUndefined();
        expect(out.notes).not.toContain('create secret');
      }
      const tun = pod.volumes.find((v: any) => v.hostPath?.path === '/dev/net/tun');
      expect(tun !== undefined).toBe(values.encryption.type === 'wireguard' && values.encryption.wireguard.userspaceFallback);
      if (tun) expect(tun.hostPath.type).toBe('CharDevice');
    });

    it('RBAC: least privilege, no wildcards, bound to the agent ServiceAccount', () => {
      const rules = out.manifests.filter((m) => m.kind === 'ClusterRole' || m.kind === 'Role').flatMap((m: any) => m.rules);
      for (const r of rules) {
        for (const field of ['apiGroups', 'resources', 'verbs', 'resourceNames']) {
          for (const v of r[field] ?? []) expect(v, `${field} in ${JSON.stringify(r)}`).not.toContain('*');
        }
      }
      // Exactly what the agent calls: list/watch/get Nodes, patch its own; create Events in `default`.
      const cr = one(out, 'ClusterRole') as any;
      expect(cr.rules).toEqual([{ apiGroups: [''], resources: ['nodes'], verbs: ['get', 'list', 'watch', 'patch'] }]);
      const role = one(out, 'Role') as any;
      expect(role.metadata.namespace).toBe('default');
      expect(role.rules).toEqual([{ apiGroups: [''], resources: ['events'], verbs: ['create'] }]);
      expect(one(out, 'RoleBinding').roleRef).toEqual({ apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: role.metadata.name });
      const sa = one(out, 'DaemonSet').spec.template.spec.serviceAccountName;
      for (const b of out.manifests.filter((m) => m.kind.endsWith('RoleBinding')) as any[]) {
        expect(b.subjects).toEqual([{ kind: 'ServiceAccount', name: sa, namespace: 'kube-system' }]);
      }
      expect(one(out, 'ClusterRoleBinding').roleRef).toEqual({ apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: cr.metadata.name });
    });

    it('metrics Service / ServiceMonitor and PDB follow their switches and select the pods', () => {
      const podLabels = one(out, 'DaemonSet').spec.template.metadata.labels;
      const svc = out.manifests.filter((m) => m.kind === 'Service') as any[];
      expect(svc).toHaveLength(values.metrics.enabled ? 1 : 0);
      if (svc[0]) {
        for (const [k, v] of Object.entries(svc[0].spec.selector)) expect(podLabels[k]).toBe(v);
        expect(svc[0].spec.ports).toEqual([{ name: 'metrics', port: values.metrics.port, targetPort: 'metrics', protocol: 'TCP' }]);
      }
      const sm = out.manifests.filter((m) => m.kind === 'ServiceMonitor') as any[];
      expect(sm).toHaveLength(values.metrics.enabled && values.metrics.serviceMonitor.enabled ? 1 : 0);
      if (sm[0]) {
        expect(sm[0].spec.selector.matchLabels).toEqual(Object.fromEntries(Object.entries(svc[0].metadata.labels).filter(([k]) => k in svc[0].spec.selector)));
        expect(sm[0].spec.endpoints[0]).toMatchObject({ port: 'metrics', interval: values.metrics.serviceMonitor.interval });
        for (const [k, v] of Object.entries(values.metrics.serviceMonitor.labels)) expect(sm[0].metadata.labels[k]).toBe(v);
      }
      const pdb = out.manifests.filter((m) => m.kind === 'PodDisruptionBudget') as any[];
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
      const agent = one(out, 'DaemonSet').spec.template.spec.containers[0];
      expect(agent.env.find((e: any) => e.name === 'VEIL_STATUS_SOCKET').value).toBe(cfg.status.socketPath);
      expect(cfg.status.socketPath.startsWith(agent.volumeMounts.find((m: any) => m.name === 'run-veil').mountPath + '/')).toBe(true);
      expect(cfg.logLevel).toBe(values.logLevel);
      // Events about Nodes (cluster-scoped) are legal only in `default`; the Role is there too.
      expect(cfg.eventsNamespace).toBe('default');
    });

    it('node restriction: the admission policy matches only the agent ServiceAccount and is bound', () => {
      const vap = one(out, 'ValidatingAdmissionPolicy') as any;
      const sa = one(out, 'DaemonSet').spec.template.spec.serviceAccountName;
      expect(vap.spec.failurePolicy).toBe('Fail');
      expect(vap.spec.matchConditions).toEqual([{ name: 'veil-agent', expression: `request.userInfo.username == "system:serviceaccount:kube-system:${sa}"` }]);
      expect(vap.spec.matchConstraints.resourceRules[0].resources).toEqual(['nodes', 'nodes/status']);
      expect(one(out, 'ValidatingAdmissionPolicyBinding').spec).toEqual({ policyName: vap.metadata.name, validationActions: ['Deny'] });
    });

    it('metrics bind to the node address (status.hostIP) or loopback, never 0.0.0.0 (issue 12)', async () => {
    const cfg = await agentConfigFrom(out, `${basename(file, '.yaml')}-bind`);
    expect(cfg.metrics.host).toBe('127.0.0.1');
    const agent = one(out, 'DaemonSet').spec.template.spec.containers[0];
    expect(agent?.env?.find((e: { name: string }) => e.name === 'VEIL_METRICS_HOST')?.valueFrom?.fieldRef?.fieldPath).toBe('status.hostIP');
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
      const agent = one(out, 'DaemonSet').spec.template.spec.containers[0];
      expect(agent.ports.find((p: any) => p.name === 'wireguard')).toEqual({ name: 'wireguard', containerPort: 51999, protocol: 'UDP' });
    });

    it('contributor backend: the package name reaches the agent verbatim', async () => {
      const { out } = await renderWith([join(CHART_DIR, 'ci/contributor-backend.yaml')]);
      const cfg = await agentConfigFrom(out, 'flow-contrib');
      expect(cfg.encryption.type).toBe('@acme/veil-backend-macsec');
      expect(one(out, 'DaemonSet').spec.template.spec.containers[0].image).toBe('registry.example.com/acme/veil-macsec:0.1.0-acme.1');
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
      const sum = (r: { out: Rendered }): string => one(r.out, 'DaemonSet').spec.template.metadata.annotations['checksum/config'];
      expect(sum(changed)).not.toBe(sum(base));
      expect(sum(unrelated)).toBe(sum(base));
      const cm = parseYaml(one(base.out, 'ConfigMap').data['config.yaml']);
      expect(cm.nodeName).toBeUndefined();
    });

    it('updateStrategy: rollingUpdate only with type RollingUpdate', async () => {
      const { out } = await renderWith([], { updateStrategy: { type: 'OnDelete', rollingUpdate: { maxUnavailable: 3 } } });
      expect(one(out, 'DaemonSet').spec.updateStrategy).toEqual({ type: 'OnDelete' });
    });

    it('fullname: release "veil" → veil, other releases → <release>-veil, override wins', async () => {
      const name = async (rel: string, values?: Record<string, unknown>): Promise<string> =>
        one(await renderChart(CHART_DIR, { release: { name: rel, namespace: 'x' }, ...(values ? { values } : {}) }), 'DaemonSet').metadata.name;
      expect(await name('veil')).toBe('veil');
      expect(await name('prod')).toBe('prod-veil');
      expect(await name('prod', { fullnameOverride: 'enc' })).toBe('enc');
    });

    it('rbac.nodeRestriction=false leaves the admission policy out; rbac.create=false leaves all RBAC out', async () => {
      const kinds = async (rbac: Record<string, unknown>): Promise<string[]> => (await renderWith([], { rbac })).out.manifests.map((m) => m.kind);
      const off = await kinds({ nodeRestriction: false });
      expect(off).toContain('ClusterRole');
      expect(off).not.toContain('ValidatingAdmissionPolicy');
      const none = await kinds({ create: false });
      for (const k of ['ClusterRole', 'ClusterRoleBinding', 'Role', 'RoleBinding', 'ValidatingAdmissionPolicy', 'ValidatingAdmissionPolicyBinding']) expect(none).not.toContain(k);
    });
  });
});
