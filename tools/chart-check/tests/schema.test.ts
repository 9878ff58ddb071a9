import { basename, join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { loadChart, mergeValueFiles, ValuesSchemaError, ValuesValidator, type Chart } from '../src/index.js';
import { CHART_DIR, FIXTURES, ciValueFiles } from './helpers.js';

let chart: Chart;
let validator: ValuesValidator;

type Doc = Record<string, unknown>;

function withValues(over: (v: Doc) => void): Doc {
  const v = structuredClone(chart.values);
  over(v);
  return v;
}

/** The mapping at a dotted path of a values document (the chart's values.yaml has every one these tests use). */
function at(v: Doc, path: string): Doc {
  let o = v;
  for (const k of path.split('.').filter(Boolean)) o = o[k] as Doc;
  return o;
}

/** A mutation that sets `path` (dotted) to `value`, whatever its type: these tests break values on purpose. */
function set(path: string, value: unknown): (v: Doc) => void {
  const keys = path.split('.');
  const last = keys.pop() ?? '';
  return (v) => void (at(v, keys.join('.'))[last] = value);
}

beforeAll(async () => {
  chart = await loadChart(CHART_DIR);
  if (!chart.schema) throw new Error('values.schema.json missing');
  validator = new ValuesValidator(chart.schema);
});

describe('values.schema.json', () => {
  it('is a draft-07 schema that closes the top level and encryption.*', () => {
    expect(chart.schema?.$schema).toBe('http://json-schema.org/draft-07/schema#');
    expect(chart.schema?.additionalProperties).toBe(false);
  });

  it('accepts the chart defaults (values.yaml)', () => {
    expect(validator.issues(chart.values)).toEqual([]);
  });

  it('has the documented defaults', () => {
    const v = chart.values;
    expect(at(v, 'encryption.wireguard').port).toBe(51871);
    expect(at(v, 'encryption.ipsec').keyRotationDuration).toBe('5m');
    expect(v.tolerations).toEqual([{ operator: 'Exists' }]);
    expect(v.priorityClassName).toBe('system-node-critical');
    expect(v.updateStrategy).toEqual({ type: 'RollingUpdate', rollingUpdate: { maxUnavailable: 1 } });
  });

  const ciFiles = ciValueFiles();
  it('has the four example values files', () => {
    expect(ciFiles.map((f) => basename(f))).toEqual([
      'contributor-backend.yaml',
      'ipsec.yaml',
      'wireguard-userspace-strict.yaml',
      'wireguard.yaml',
    ]);
  });

  it.each(ciFiles.map((f) => [basename(f), f]))('accepts ci/%s merged over the defaults', async (_n, file) => {
    const values = await mergeValueFiles(chart, [file]);
    expect(validator.issues(values)).toEqual([]);
  });

  it.each([
    ['encryption.type as a number', set('encryption.type', 42), 'encryption.type', 'must be string'],
    ['encryption.type not a package name', set('encryption.type', 'Wire Guard'), 'encryption.type', 'must match'],
    ['wireguard port 0', set('encryption.wireguard.port', 0), 'encryption.wireguard.port', 'must be >= 1'],
    ['wireguard port 65536', set('encryption.wireguard.port', 65536), 'encryption.wireguard.port', 'must be <= 65535'],
    ['wireguard port as a string', set('encryption.wireguard.port', '51871'), 'encryption.wireguard.port', 'must be integer'],
    ['unknown key under wireguard', set('encryption.wireguard.listenPort', 1), 'encryption.wireguard.listenPort', 'unknown key'],
    ['unknown top-level key', set('encryptoin', {}), 'encryptoin', 'unknown key'],
    ['mtu below the IPv6 minimum', set('encryption.wireguard.mtu', 1000), 'encryption.wireguard.mtu', ''],
    [
      'rotation not a Go duration',
      set('encryption.ipsec.keyRotationDuration', '5 minutes'),
      'encryption.ipsec.keyRotationDuration',
      'must match',
    ],
    ['strict CIDR not a CIDR', set('encryption.strictMode.cidrs', ['10.0.0.0']), 'encryption.strictMode.cidrs.0', 'must match'],
    ['log level', set('logLevel', 'verbose'), 'logLevel', 'must be equal to one of the allowed values'],
    ['pull policy', set('image.pullPolicy', 'Sometimes'), 'image.pullPolicy', 'allowed values'],
    ['update strategy type', set('updateStrategy.type', 'Recreate'), 'updateStrategy.type', 'allowed values'],
    [
      'keyFile directly in /etc/veil',
      set('encryption.ipsec.keyFile', '/etc/veil/keys'),
      'encryption.ipsec.keyFile',
      'must NOT be valid',
    ],
    [
      'capability ALL',
      set('securityContext.extraCapabilities', ['ALL']),
      'securityContext.extraCapabilities.0',
      'must NOT be valid',
    ],
  ] as const)('rejects %s', (_name, mutate, path, message) => {
    const issues = validator.issues(withValues(mutate));
    const atPath = issues.filter((i) => i.path === path);
    expect(atPath.length, JSON.stringify(issues)).toBeGreaterThan(0);
    expect(
      atPath.some((i) => i.message.includes(message)),
      JSON.stringify(atPath),
    ).toBe(true);
  });

  it('accepts a contributor backend package name', () => {
    for (const type of ['@acme/veil-backend-macsec', 'veil-backend-null', 'wireguard', 'ipsec']) {
      expect(validator.issues(withValues(set('encryption.type', type)))).toEqual([]);
    }
  });

  it('fails the deliberately bad values file naming every bad key', async () => {
    const file = join(FIXTURES, 'bad-values.yaml');
    const values = await mergeValueFiles(chart, [file]);
    let err: unknown;
    try {
      validator.validate(values, file);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ValuesSchemaError);
    const e = err as ValuesSchemaError;
    expect(e.issues.map((i) => i.path)).toEqual(
      expect.arrayContaining(['encryption.type', 'encryption.wireguard.port', 'encryption.wireguard.keepalive']),
    );
    expect(e.message).toContain('encryption.wireguard.keepalive: unknown key');
    expect(e.source).toBe(file);
  });
});
