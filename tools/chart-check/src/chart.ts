import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { ChartCheckError } from './errors.js';

/** A plain (YAML/JSON) mapping. */
export function isMap(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** A chart read from disk. */
export interface Chart {
  dir: string;
  /** Chart.yaml, as parsed. */
  metadata: Record<string, unknown>;
  /** values.yaml, as parsed. */
  values: Record<string, unknown>;
  /** values.schema.json, if present. */
  schema: Record<string, unknown> | undefined;
  /** templates/<file> → source. */
  templates: Map<string, string>;
}

async function readYamlMap(path: string): Promise<Record<string, unknown>> {
  const v: unknown = parseYaml(await readFile(path, 'utf8')) ?? {};
  if (!isMap(v)) throw new ChartCheckError(`${path}: must contain a mapping`);
  return v;
}

/** Reads Chart.yaml, values.yaml, values.schema.json and templates/*. */
export async function loadChart(dir: string): Promise<Chart> {
  const metadata = await readYamlMap(join(dir, 'Chart.yaml'));
  for (const k of ['apiVersion', 'name', 'version']) {
    if (typeof metadata[k] !== 'string') throw new ChartCheckError(`${dir}/Chart.yaml: ${k} must be a string`);
  }
  const values = await readYamlMap(join(dir, 'values.yaml'));
  let schema: Record<string, unknown> | undefined;
  try {
    schema = JSON.parse(await readFile(join(dir, 'values.schema.json'), 'utf8')) as Record<string, unknown>;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
  }
  const templates = new Map<string, string>();
  for (const f of (await readdir(join(dir, 'templates'))).sort()) {
    templates.set(f, await readFile(join(dir, 'templates', f), 'utf8'));
  }
  return { dir, metadata, values, schema, templates };
}

/**
 * Helm's coalescing of user values over chart defaults (maps merge key by key, anything else
 * replaces, a user `null` deletes the default), for the tests' expectations; helm renders.
 */
export function coalesceValues(defaults: unknown, over: unknown): unknown {
  if (!isMap(defaults) || !isMap(over)) return over === undefined ? defaults : over;
  const out: Record<string, unknown> = { ...defaults };
  for (const [k, v] of Object.entries(over)) {
    if (v === null) delete out[k];
    else out[k] = coalesceValues(out[k], v);
  }
  return out;
}

/** Reads one or more values files (like `-f a.yaml -f b.yaml`) over the chart's defaults. */
export async function mergeValueFiles(chart: Chart, files: readonly string[]): Promise<Record<string, unknown>> {
  let values: unknown = chart.values;
  for (const f of files) values = coalesceValues(values, await readYamlMap(f));
  return values as Record<string, unknown>;
}
