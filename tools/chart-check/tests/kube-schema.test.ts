import { basename } from 'node:path';
import {
  ServiceMonitor,
  type IServiceMonitor,
} from '@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/ServiceMonitor';
import { describePrivileged } from '@veil/test-utils';
import { describe, expect, it } from 'vitest';
import { renderChart, type Manifest } from '../src/index.js';
import { CHART_DIR, ciValueFiles } from './helpers.js';

// Every built-in kind is judged by the real kube-apiserver (apiserver.test.ts). The ServiceMonitor
// is a prometheus-operator CRD the test apiserver does not serve, so its OpenAPI model checks it.
function validateServiceMonitor(m: Manifest): void {
  // Typed by its kind only: validate() is what checks the shape.
  const { template: _t, ...obj } = m as Manifest & IServiceMonitor;
  new ServiceMonitor(obj).validate();
}

describe('ServiceMonitor model', () => {
  it('catches a bad object (an endpoint without a port name or number)', () => {
    const bad = {
      template: 't',
      apiVersion: 'monitoring.coreos.com/v1',
      kind: 'ServiceMonitor',
      metadata: { name: 'x' },
      spec: { selector: {}, endpoints: [{ interval: 5 }] },
    };
    expect(() => validateServiceMonitor(bad as unknown as Manifest)).toThrow();
  });
});

describePrivileged('the rendered ServiceMonitor against the prometheus-operator schema', ['helm'], () => {
  it.each(ciValueFiles().map((f) => [basename(f), f]))('ci/%s', async (_n, file) => {
    const { manifests } = await renderChart(CHART_DIR, {
      release: { name: 'veil', namespace: 'kube-system' },
      valueFiles: [file],
      values: { metrics: { enabled: true, serviceMonitor: { enabled: true } } },
    });
    const sm = manifests.filter((m) => m.kind === 'ServiceMonitor');
    expect(sm).toHaveLength(1);
    for (const m of sm) expect(() => validateServiceMonitor(m)).not.toThrow();
  });
});
