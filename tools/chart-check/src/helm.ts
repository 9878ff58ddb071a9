import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { requireK8sBinary } from '@veil/test-utils/k8s-bins';
import { parseAllDocuments } from 'yaml';
import { isMap } from './chart.js';
import { HelmError, ManifestError } from './errors.js';

const run = promisify(execFile);

/** Release options, like `helm template NAME -n NAMESPACE`. */
export interface ReleaseOptions {
  name: string;
  namespace: string;
}

/** One rendered Kubernetes object, with the template it came from (helm's `# Source:` line). */
export interface Manifest {
  template: string;
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  [key: string]: unknown;
}

/** What helm rendered: the objects and NOTES.txt. */
export interface Rendered {
  manifests: Manifest[];
  notes: string;
}

/** What to render: values files (`-f`, in order) and then a values object on top. */
export interface RenderOptions {
  release: ReleaseOptions;
  valueFiles?: readonly string[];
  values?: Record<string, unknown>;
}

/** The pinned helm (tools/k8s-bins), or $VEIL_HELM. */
export function helmBinary(): string {
  return requireK8sBinary('helm');
}

async function helm(args: string[]): Promise<string> {
  try {
    // No cluster is contacted: a throwaway HELM_* home keeps the user's repositories/config out.
    const { stdout } = await run(helmBinary(), args, {
      timeout: 60_000,
      maxBuffer: 32 << 20,
      env: { ...process.env, KUBECONFIG: '/dev/null' },
    });
    return stdout;
  } catch (e) {
    const err = e as { stderr?: string; stdout?: string; message: string };
    throw new HelmError(args, `${err.stderr ?? ''}${err.stdout ?? ''}`.trim() || err.message);
  }
}

async function withValuesFile<T>(values: Record<string, unknown> | undefined, fn: (extra: string[]) => Promise<T>): Promise<T> {
  if (!values) return fn([]);
  const dir = await mkdtemp(join(tmpdir(), 'veil-helm-values-'));
  try {
    const file = join(dir, 'values.json'); // JSON is YAML
    await writeFile(file, JSON.stringify(values));
    return await fn(['-f', file]);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** `helm lint --strict`; resolves with its output, throws {@link HelmError} on any finding. */
export async function helmLint(
  chartDir: string,
  valueFiles: readonly string[] = [],
  values?: Record<string, unknown>,
): Promise<string> {
  return withValuesFile(values, (extra) =>
    helm(['lint', '--strict', chartDir, ...valueFiles.flatMap((f) => ['-f', f]), ...extra]),
  );
}

/**
 * Renders the chart with helm, the way `helm install` would (values schema checked, `required`
 * enforced), without a cluster: `helm install --dry-run=client -o json` gives the manifest and
 * the rendered NOTES.txt.
 */
export async function renderChart(chartDir: string, opts: RenderOptions): Promise<Rendered> {
  return withValuesFile(opts.values, async (extra) => {
    const out = await helm([
      'install',
      opts.release.name,
      chartDir,
      '--namespace',
      opts.release.namespace,
      '--dry-run=client',
      '-o',
      'json',
      ...(opts.valueFiles ?? []).flatMap((f) => ['-f', f]),
      ...extra,
    ]);
    const release = JSON.parse(out) as { manifest?: string; info?: { notes?: string } };
    return { manifests: parseManifests(release.manifest ?? ''), notes: release.info?.notes ?? '' };
  });
}

/** Splits helm's manifest stream into objects, keeping each one's `# Source:` template name. */
export function parseManifests(text: string): Manifest[] {
  const manifests: Manifest[] = [];
  // YAML 1.1, as Kubernetes reads manifests (go-yaml): `0400` is octal, `yes`/`on` are booleans.
  for (const doc of parseAllDocuments(text, { version: '1.1' })) {
    const source = /# Source: [^/]+\/templates\/(\S+)/.exec(doc.commentBefore ?? '')?.[1] ?? '(unknown)';
    if (doc.errors.length > 0) throw new ManifestError(source, `not valid YAML: ${doc.errors[0]?.message}`);
    const obj: unknown = doc.toJS();
    if (obj === null || obj === undefined) continue;
    if (!isMap(obj)) throw new ManifestError(source, 'a document is not a mapping');
    const md = obj.metadata;
    if (typeof obj.apiVersion !== 'string' || typeof obj.kind !== 'string' || !isMap(md) || typeof md.name !== 'string') {
      throw new ManifestError(source, 'object lacks apiVersion, kind or metadata.name');
    }
    manifests.push({ ...(obj as unknown as Omit<Manifest, 'template'>), template: source } as Manifest);
  }
  return manifests;
}
