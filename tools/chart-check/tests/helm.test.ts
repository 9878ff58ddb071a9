import { basename, join } from 'node:path';
import { describePrivileged } from '@veil/test-utils';
import { expect, it } from 'vitest';
import { HelmError, helmLint, renderChart } from '../src/index.js';
import { CHART_DIR, FIXTURES, ciValueFiles } from './helpers.js';

const cases: [string, string[]][] = [
  ['values.yaml (defaults)', []],
  ...ciValueFiles().map((f): [string, string[]] => [`ci/${basename(f)}`, [f]]),
];

describePrivileged('helm lint --strict', ['helm'], () => {
  it.each(cases)('%s: no findings', async (_n, files) => {
    const out = await helmLint(CHART_DIR, files);
    expect(out).toContain('1 chart(s) linted, 0 chart(s) failed');
  });

  it('refuses the deliberately bad values file, naming each bad key (values.schema.json)', async () => {
    const err = await helmLint(CHART_DIR, [join(FIXTURES, 'bad-values.yaml')]).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(HelmError);
    const out = (err as HelmError).output;
    expect(out).toMatch(/encryption\/type|encryption\.type/);
    expect(out).toMatch(/encryption\/wireguard\/port|encryption\.wireguard\.port/);
    expect(out).toContain('keepalive');
  });

  it('helm install refuses a value the schema forbids, before rendering anything', async () => {
    const err = await renderChart(CHART_DIR, {
      release: { name: 'veil', namespace: 'kube-system' },
      values: { encryption: { wireguard: { port: 0 } } },
    }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(HelmError);
    expect((err as HelmError).output).toMatch(/wireguard[./]port/);
  });
});
