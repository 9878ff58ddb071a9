import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parse as parseYaml, parseAllDocuments } from 'yaml';
import { ChartCheckError, ManifestError } from './errors.js';
import { TemplateSet } from './template/exec.js';
import { GoStruct, isMap } from './template/values.js';

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

/** Release options, like `helm template NAME -n NAMESPACE`. */
export interface ReleaseOptions {
  name: string;
  namespace: string;
}

/** One rendered Kubernetes object. */
export interface Manifest {
  template: string;
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  [key: string]: unknown;
}

/** The result of rendering: raw text per template, parsed manifests, and NOTES.txt. */
export interface Rendered {
  files: Map<string, string>;
  manifests: Manifest[];
  notes: string;
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
 * Helm's coalescing of user values over chart defaults: maps merge key by key, anything else
 * replaces, and a user `null` deletes the default.
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

/** The top-level object templates see (`.Values`, `.Release`, `.Chart`). */
export function templateData(chart: Chart, values: Record<string, unknown>, release: ReleaseOptions): GoStruct {
  const m = chart.metadata;
  return new GoStruct('chartutil.Values', {
    Values: values,
    Release: new GoStruct('chartutil.Release', {
      Name: release.name,
      Namespace: release.namespace,
      Service: 'Helm',
      IsInstall: true,
      IsUpgrade: false,
      Revision: 1,
    }),
    Chart: new GoStruct('chart.Metadata', {
      Name: m.name,
      Version: m.version,
      AppVersion: m.appVersion ?? '',
      Description: m.description ?? '',
      APIVersion: m.apiVersion,
      Type: m.type ?? 'application',
      KubeVersion: m.kubeVersion ?? '',
    }),
  });
}

/**
 * Renders every template like `helm template`: files starting with `_` only contribute
 * `define`s; each other file's output is split into YAML documents, empty ones dropped.
 * NOTES.txt is rendered separately.
 */
export function renderChart(chart: Chart, values: Record<string, unknown>, release: ReleaseOptions): Rendered {
  const set = new TemplateSet();
  for (const [name, src] of chart.templates) set.add(name, src);
  const data = templateData(chart, values, release);
  const files = new Map<string, string>();
  const manifests: Manifest[] = [];
  let notes = '';
  for (const name of chart.templates.keys()) {
    if (name.startsWith('_')) continue;
    const text = set.render(name, data);
    if (name === 'NOTES.txt') {
      notes = text;
      continue;
    }
    files.set(name, text);
    // YAML 1.1, as Kubernetes reads manifests (go-yaml): `0400` is octal, `yes`/`on` are booleans.
    for (const doc of parseAllDocuments(text, { version: '1.1' })) {
      if (doc.errors.length > 0) throw new ManifestError(name, `not valid YAML: ${doc.errors[0]?.message}\n---\n${text}`);
      const obj: unknown = doc.toJS();
      if (obj === null || obj === undefined) continue;
      if (!isMap(obj)) throw new ManifestError(name, 'a document is not a mapping');
      const md = obj.metadata;
      if (typeof obj.apiVersion !== 'string' || typeof obj.kind !== 'string' || !isMap(md) || typeof md.name !== 'string') {
        throw new ManifestError(name, 'object lacks apiVersion, kind or metadata.name');
      }
      manifests.push({ ...(obj as unknown as Omit<Manifest, 'template'>), template: name } as Manifest);
    }
  }
  return { files, manifests, notes };
}
