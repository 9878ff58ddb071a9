import { loadDatapath } from '@veil/bpf';
import { describePrivileged } from '@veil/test-utils';
import { expect, it } from 'vitest';
import { fillDemoIpcache, runScenarios, scenarios } from '../src/scenarios.js';

describePrivileged('datapath-demo scenarios', ['root', 'bpf'], () => {
  it('every scenario the demo prints comes out as it expects', () => {
    const dp = loadDatapath({ trace: true, ipcacheMaxEntries: 1024 });
    try {
      fillDemoIpcache(dp);
      const results = runScenarios(dp);
      expect(results).toHaveLength(scenarios().length);
      for (const r of results)
        expect({ name: r.scenario.name, ok: r.ok, reason: r.reason }).toEqual({
          name: r.scenario.name,
          ok: true,
          reason: r.scenario.expect.reason,
        });
      // Every program is exercised.
      expect(new Set(results.map((r) => r.scenario.program))).toEqual(new Set(['from-pod', 'from-tunnel', 'to-wire']));
    } finally {
      dp.close();
    }
  });
});
