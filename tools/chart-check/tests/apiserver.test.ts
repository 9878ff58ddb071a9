import { basename } from 'node:path';
import type { V1DaemonSet, V1DaemonSetList, V1Status } from '@kubernetes/client-node';
import { KubeCluster } from '@veil/kube-cluster';
import { describePrivileged } from '@veil/test-utils';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { renderChart, type Manifest } from '../src/index.js';
import { CHART_DIR, ciValueFiles } from './helpers.js';

const RELEASE = { name: 'veil', namespace: 'kube-system' };
// ServiceMonitor is a prometheus-operator CRD this apiserver does not serve (kube-schema.test.ts).
const NOT_SERVED = new Set(['monitoring.coreos.com/v1/ServiceMonitor']);
const cases: [string, string[], Record<string, unknown> | undefined][] = [
  ['values.yaml (defaults)', [], undefined],
  // Every optional object switched on, so each is judged at least once.
  [
    'values.yaml + metrics, PDB, dashboard',
    [],
    { podDisruptionBudget: { enabled: true }, metrics: { serviceMonitor: { enabled: true }, dashboard: { enabled: true } } },
  ],
  ...ciValueFiles().map((f): [string, string[], undefined] => [`ci/${basename(f)}`, [f], undefined]),
];

describePrivileged(
  'the chart judged by the real kube-apiserver (server-side dry run)',
  ['helm', 'etcd', 'kube-apiserver'],
  () => {
    let cluster: KubeCluster;
    beforeAll(async () => {
      cluster = await KubeCluster.start({ log: (l) => process.stderr.write(`[kube-cluster] ${l}\n`) });
    }, 300_000);
    afterAll(async () => {
      await cluster?.stop();
    });

    /** POST with dryRun=All and strict field validation: the server's full validation and admission, nothing stored. */
    async function dryRunCreate(m: Manifest): Promise<{ status: number; message: string; warnings: string[] }> {
      const { template: _t, ...obj } = m;
      const path = await cluster.collectionPath(m.apiVersion, m.kind, m.metadata.namespace);
      const res = await cluster.request<V1Status>('POST', `${path}?dryRun=All&fieldValidation=Strict`, obj);
      return { status: res.status, message: String(res.body?.message ?? ''), warnings: res.warnings };
    }

    it.each(cases)('%s: every object is accepted, with no warnings', async (_n, files, values) => {
      const { manifests } = await renderChart(CHART_DIR, { release: RELEASE, valueFiles: files, ...(values ? { values } : {}) });
      const judged = manifests.filter((m) => !NOT_SERVED.has(`${m.apiVersion}/${m.kind}`));
      expect(judged.map((m) => m.kind)).toEqual(
        expect.arrayContaining(['DaemonSet', 'ConfigMap', 'ClusterRole', 'Role', 'ValidatingAdmissionPolicy']),
      );
      const refused: string[] = [];
      for (const m of judged) {
        const r = await dryRunCreate(m);
        if (r.status !== 201 || r.warnings.length > 0)
          refused.push(`${m.kind}/${m.metadata.name} (${m.template}): HTTP ${r.status} ${r.message} ${r.warnings.join('; ')}`);
      }
      expect(refused).toEqual([]);
    });

    it('nothing was stored by the dry runs', async () => {
      const res = await cluster.request<V1DaemonSetList>('GET', '/apis/apps/v1/namespaces/kube-system/daemonsets', undefined, {
        expect: [200],
      });
      expect(res.body.items).toEqual([]);
    });

    it('the server really judges: a bad mountPropagation and a too-long port name are refused', async () => {
      const { manifests } = await renderChart(CHART_DIR, { release: RELEASE });
      const ds = structuredClone<(Manifest & V1DaemonSet) | undefined>(manifests.find((m) => m.kind === 'DaemonSet'));
      const container = ds?.spec?.template.spec?.containers[0];
      const [mount, port] = [container?.volumeMounts?.[0], container?.ports?.[0]];
      if (!ds || !mount || !port)
        throw new Error('the default render has no DaemonSet whose first container has a volume mount and a port');
      mount.mountPropagation = 'Sideways';
      port.name = 'a-port-name-too-long';
      const r = await dryRunCreate(ds);
      expect(r.status).toBe(422);
      expect(r.message).toContain('mountPropagation');
      expect(r.message).toContain('ports[0].name');
    });
  },
);
