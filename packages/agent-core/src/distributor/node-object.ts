import type { ObservedNode } from '../types/index.js';

/** The subset of a core/v1 Node the distributor reads. */
export interface NodeLike {
  metadata?: { name?: string; annotations?: Record<string, string> | undefined; creationTimestamp?: string | Date | undefined };
  spec?: { podCIDR?: string; podCIDRs?: string[] } | undefined;
  status?: { addresses?: { type: string; address: string }[] } | undefined;
}

/** Only annotations under this prefix are carried (keeps memory flat with 5k+ nodes). */
export const ANNOTATION_PREFIX = 'veil.io/';

/** Extracts the raw observation from a Node object; no validation. */
export function observeNode(node: NodeLike): ObservedNode | undefined {
  const name = node.metadata?.name;
  if (!name) return undefined;
  const annotations: Record<string, string> = {};
  for (const [k, v] of Object.entries(node.metadata?.annotations ?? {})) {
    if (k.startsWith(ANNOTATION_PREFIX)) annotations[k] = v;
  }
  const podCIDRs = node.spec?.podCIDRs?.length ? node.spec.podCIDRs : node.spec?.podCIDR ? [node.spec.podCIDR] : [];
  const internalIPs = (node.status?.addresses ?? []).filter((a) => a.type === 'InternalIP').map((a) => a.address);
  const created = node.metadata?.creationTimestamp;
  const createdAt = created instanceof Date ? created.toISOString() : created;
  return { name, internalIPs, podCIDRs: [...podCIDRs], annotations, ...(createdAt ? { createdAt } : {}) };
}
