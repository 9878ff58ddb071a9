import { describe, expect, it } from 'vitest';
import { loadChart, missingSegment, valuesRefs } from '../src/index.js';
import { CHART_DIR } from './helpers.js';

describe('.Values references in templates', () => {
  it('every .Values path used by a template exists in values.yaml', async () => {
    const chart = await loadChart(CHART_DIR);
    const refs = valuesRefs(chart.templates);
    // The templates really are scanned: the DaemonSet alone uses dozens of values.
    expect(refs.length).toBeGreaterThan(40);
    const missing = refs
      .map((r) => ({ ...r, missing: missingSegment(chart.values, r.path) }))
      .filter((r) => r.missing !== undefined)
      .map((r) => `${r.template}:${r.line}: .Values.${r.path} (no ${r.missing})`);
    expect(missing).toEqual([]);
  });

  it('finds references, including $.Values, and reports the first missing segment', () => {
    const refs = valuesRefs(new Map([['t.yaml', 'a: {{ .Values.a.b }}\nb: {{ $.Values.c | quote }}']]));
    expect(refs).toEqual([
      { template: 't.yaml', line: 1, path: 'a.b' },
      { template: 't.yaml', line: 2, path: 'c' },
    ]);
    expect(missingSegment({ a: { b: 1 } }, 'a.b')).toBeUndefined();
    expect(missingSegment({ a: { b: 1 } }, 'a.c.d')).toBe('a.c');
    expect(missingSegment({ a: 'x' }, 'a.b')).toBe('a.b');
  });
});
