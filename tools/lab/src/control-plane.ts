/**
 * Which control plane `veil lab up` runs, and what it takes from the chart: the real etcd +
 * kube-apiserver when tools/k8s-bins has built them (with helm, which renders the chart's RBAC),
 * else the API double, said plainly in the lab's first lines.
 */
import { writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { LabUnsupportedError } from './errors.js';
import { LAB_CHART_KINDS, LAB_RELEASE_NAMESPACE, type ControlPlaneKind } from './apiserver.js';

/** `--control-plane`: `auto` takes the real programs when they are built. */
export type ControlPlaneChoice = 'auto' | 'kube-apiserver' | 'double';

/** The chart in this source checkout (the lab only exists in one). */
export const CHART_DIR = fileURLToPath(new URL('../../../charts/veil', import.meta.url));

/** The programs the real control plane needs. */
const PROGRAMS = ['etcd', 'kube-apiserver', 'helm'] as const;

export interface ControlPlaneDecision {
  kind: ControlPlaneKind;
  /** One line for the lab's output: what runs, and why when it is the double. */
  note: string;
}

/** Picks the control plane; `kube-apiserver` when the programs are missing is a {@link LabUnsupportedError}. */
export async function chooseControlPlane(choice: ControlPlaneChoice): Promise<ControlPlaneDecision> {
  if (choice === 'double')
    return {
      kind: 'double',
      note: 'control plane: the Kubernetes API double (--control-plane double): no authentication, RBAC or admission',
    };
  const { k8sBinary, k8sVersions } = await import('@veil/test-utils/k8s-bins');
  const missing = PROGRAMS.filter((p) => k8sBinary(p) === undefined);
  // In the qemu lane (--kernel vm) node runs 5–20x slower under emulation: the double keeps the VM lab in minutes.
  const inVm = process.env.VEIL_KERNEL_LANE === '1';
  if (choice === 'kube-apiserver') {
    if (missing.length > 0)
      throw new LabUnsupportedError(
        `--control-plane kube-apiserver: ${missing.map((p) => `${p} ${k8sVersions()[p]}`).join(', ')} not built: run bash tools/k8s-bins/build.sh (about 40 min the first time)`,
      );
    return { kind: 'kube-apiserver', note: realNote(k8sVersions()) };
  }
  if (inVm)
    return {
      kind: 'double',
      note: 'control plane: the Kubernetes API double (inside the qemu lane the real kube-apiserver would take minutes to start under emulation; --control-plane kube-apiserver forces it)',
    };
  if (missing.length > 0)
    return {
      kind: 'double',
      note:
        `control plane: FALLING BACK to the Kubernetes API double (no authentication, RBAC or admission): ` +
        `${missing.join(', ')} not built. bash tools/k8s-bins/build.sh builds them (about 40 min the first time, cached after); then the lab uses the real kube-apiserver`,
    };
  return { kind: 'kube-apiserver', note: realNote(k8sVersions()) };
}

function realNote(v: Record<(typeof PROGRAMS)[number], string>): string {
  return `control plane: kube-apiserver ${v['kube-apiserver']} + etcd ${v.etcd}, the chart's RBAC and node restriction rendered by helm ${v.helm}, a node-bound ServiceAccount token per agent`;
}

/**
 * Renders the chart with helm (release `veil` in kube-system, default values) and writes the
 * objects the lab applies (ServiceAccount, RBAC, the node-restriction policy) as a JSON array.
 */
export async function writeChartObjects(file: string): Promise<number> {
  const { renderChart } = await import('@veil/chart-check');
  const { manifests } = await renderChart(CHART_DIR, { release: { name: 'veil', namespace: LAB_RELEASE_NAMESPACE } });
  const objects = manifests.filter((m) => LAB_CHART_KINDS.has(m.kind)).map(({ template: _t, ...o }) => o);
  writeFileSync(file, JSON.stringify(objects, null, 2));
  return objects.length;
}

/** The chart's default `podVethPatterns`: what the lab's agents match CNI-made veths with. */
export async function chartPodVethPatterns(): Promise<string[]> {
  const { loadChart } = await import('@veil/chart-check');
  const patterns = (await loadChart(CHART_DIR)).values.podVethPatterns;
  if (!Array.isArray(patterns) || !patterns.every((p) => typeof p === 'string'))
    throw new LabUnsupportedError(`${CHART_DIR}/values.yaml: podVethPatterns is not a list of strings`);
  return patterns;
}
