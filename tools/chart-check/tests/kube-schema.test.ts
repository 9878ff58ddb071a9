import { basename } from 'node:path';
import { ServiceMonitor } from '@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/ServiceMonitor';
import { DaemonSet } from 'kubernetes-models/apps/v1/DaemonSet';
import { ConfigMap } from 'kubernetes-models/v1/ConfigMap';
import { Service } from 'kubernetes-models/v1/Service';
import { ServiceAccount } from 'kubernetes-models/v1/ServiceAccount';
import { PodDisruptionBudget } from 'kubernetes-models/policy/v1/PodDisruptionBudget';
import { ClusterRole } from 'kubernetes-models/rbac.authorization.k8s.io/v1/ClusterRole';
import { ClusterRoleBinding } from 'kubernetes-models/rbac.authorization.k8s.io/v1/ClusterRoleBinding';
import { Role } from 'kubernetes-models/rbac.authorization.k8s.io/v1/Role';
import { RoleBinding } from 'kubernetes-models/rbac.authorization.k8s.io/v1/RoleBinding';
import { describe, expect, it } from 'vitest';
import { loadChart, mergeValueFiles, renderChart, type Manifest } from '../src/index.js';
import { CHART_DIR, ciValueFiles } from './helpers.js';

/** A model constructor as a factory over parsed YAML (the model's validate() is what judges it). */
function model<T>(Model: new (data: T) => { validate(): void }): (data: unknown) => { validate(): void } {
  return (data) => new Model(data as T);
}

/** Kubernetes OpenAPI models (kubernetes-models), keyed by apiVersion/kind. */
const MODELS: Record<string, (data: unknown) => { validate(): void }> = {
  'apps/v1/DaemonSet': model(DaemonSet),
  'v1/ConfigMap': model(ConfigMap),
  'v1/Service': model(Service),
  'v1/ServiceAccount': model(ServiceAccount),
  'policy/v1/PodDisruptionBudget': model(PodDisruptionBudget),
  'rbac.authorization.k8s.io/v1/ClusterRole': model(ClusterRole),
  'rbac.authorization.k8s.io/v1/ClusterRoleBinding': model(ClusterRoleBinding),
  'rbac.authorization.k8s.io/v1/Role': model(Role),
  'rbac.authorization.k8s.io/v1/RoleBinding': model(RoleBinding),
  'monitoring.coreos.com/v1/ServiceMonitor': model(ServiceMonitor),
};

function validateManifest(m: Manifest): void {
  const { template: _t, ...obj } = m;
  const Model = MODELS[`${m.apiVersion}/${m.kind}`];
  if (!Model) throw new Error(`${m.template}: no Kubernetes model for ${m.apiVersion} ${m.kind}`);
  Model(obj).validate();
}

describe('rendered objects against the Kubernetes OpenAPI schemas (kubernetes-models)', () => {
  it('the validator catches a bad object (an invalid mountPropagation)', () => {
    const bad = {
      template: 't',
      apiVersion: 'apps/v1',
      kind: 'DaemonSet',
      metadata: { name: 'x' },
      spec: {
        selector: { matchLabels: { a: 'b' } },
        template: { metadata: { labels: { a: 'b' } }, spec: { containers: [{ name: 'c', image: 'i', volumeMounts: [{ name: 'v', mountPath: '/x', mountPropagation: 'Sideways' }] }] } },
      },
    } as unknown as Manifest;
    expect(() => validateManifest(bad)).toThrow(/mountPropagation/);
  });

  it.each(ciValueFiles().map((f) => [basename(f), f]))('ci/%s: every object is schema-valid', async (_n, file) => {
    const chart = await loadChart(CHART_DIR);
    const values = await mergeValueFiles(chart, [file]);
    const { manifests } = renderChart(chart, values, { name: 'veil', namespace: 'kube-system' });
    expect(manifests.length).toBeGreaterThan(0);
    for (const m of manifests) expect(() => validateManifest(m), `${m.kind}/${m.metadata.name}`).not.toThrow();
  });
});
