import { accessSync, constants, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The real Kubernetes programs `tools/k8s-bins/build.sh` builds. */
export type K8sProgram = 'helm' | 'kube-apiserver' | 'etcd';

/** The repository root, from this file (tools/test-utils/{src,dist}/k8s-bins.*). */
const REPO_ROOT = fileURLToPath(new URL('../../../', import.meta.url));

const VERSION_KEYS: Record<K8sProgram, string> = {
  helm: 'HELM_VERSION',
  'kube-apiserver': 'KUBERNETES_VERSION',
  etcd: 'ETCD_VERSION',
};
const ENV_OVERRIDES: Record<K8sProgram, string> = {
  helm: 'VEIL_HELM',
  'kube-apiserver': 'VEIL_KUBE_APISERVER',
  etcd: 'VEIL_ETCD',
};

/** The pinned versions in tools/k8s-bins/versions.env (KEY=VALUE lines). */
export function k8sVersions(): Record<K8sProgram, string> {
  const text = readFileSync(join(REPO_ROOT, 'tools/k8s-bins/versions.env'), 'utf8');
  const env = new Map<string, string>();
  for (const line of text.split('\n')) {
    const m = /^([A-Z_]+)=(\S+)\s*$/.exec(line);
    if (m) env.set(m[1]!, m[2]!);
  }
  const out = {} as Record<K8sProgram, string>;
  for (const [prog, key] of Object.entries(VERSION_KEYS) as [K8sProgram, string][]) {
    const v = env.get(key);
    if (!v) throw new Error(`tools/k8s-bins/versions.env: ${key} is not set`);
    out[prog] = v;
  }
  return out;
}

function executable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** Where build.sh may have put <name>-<version>/<name>, in the order it tries them. */
function cacheDirs(): string[] {
  const dirs = [process.env.VEIL_K8S_BINS, '/var/cache/veil/k8s-bins', join(REPO_ROOT, '.veil-cache/k8s-bins')];
  return dirs.filter((d): d is string => typeof d === 'string' && d.length > 0);
}

/**
 * The path of a pinned program: `$VEIL_HELM` / `$VEIL_KUBE_APISERVER` / `$VEIL_ETCD` if set, else
 * the build cache entry for the version in versions.env. Undefined when it is not built.
 */
export function k8sBinary(name: K8sProgram): string | undefined {
  const override = process.env[ENV_OVERRIDES[name]];
  if (override) return executable(override) ? override : undefined;
  const version = k8sVersions()[name];
  for (const dir of cacheDirs()) {
    const p = join(dir, `${name}-${version}`, name);
    if (executable(p)) return p;
  }
  return undefined;
}

/** Like {@link k8sBinary}, but throws a sentence saying how to build it. */
export function requireK8sBinary(name: K8sProgram): string {
  const p = k8sBinary(name);
  if (!p) {
    throw new Error(
      `${name} ${k8sVersions()[name]} is not built: run \`bash tools/k8s-bins/build.sh ${name}\` (or set ${ENV_OVERRIDES[name]})`,
    );
  }
  return p;
}
