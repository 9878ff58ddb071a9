import type { RefusalReason } from '../observability/metrics.js';
import { parseCidrCached as parseCidr, parseIPCached as parseIP } from '../util/ip.js';
import {
  INTERNAL_IPS_ANNOTATION,
  NODE_ID_ANNOTATION,
  type Cidr,
  type ObservedNode,
  type PeerAnnotationSpec,
  type PeerNode,
} from '../types/index.js';

/** Outcome of validating one observed node on its own (no cross-node checks). */
export type ValidationResult =
  | { readonly kind: 'ok'; readonly peer: PeerNode }
  /** Bad input: refused with a reason naming the field. */
  | { readonly kind: 'refused'; readonly reason: RefusalReason; readonly field: string; readonly message: string }
  /** Not ready yet (e.g. the node has not published its key). Not an error. */
  | { readonly kind: 'pending'; readonly field: string; readonly message: string };

/**
 * The parts of two observations that core parses (addresses, pod CIDRs, node ID) are the same
 * strings: a node that validated before validates again to the same addresses, CIDRs and ID.
 */
export function sameTopology(a: ObservedNode, b: ObservedNode): boolean {
  return (
    sameStrings(a.internalIPs, b.internalIPs) &&
    sameStrings(a.podCIDRs, b.podCIDRs) &&
    a.annotations[INTERNAL_IPS_ANNOTATION] === b.annotations[INTERNAL_IPS_ANNOTATION] &&
    a.annotations[NODE_ID_ANNOTATION] === b.annotations[NODE_ID_ANNOTATION]
  );
}

function sameStrings(a: readonly string[], b: readonly string[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** The backend's annotations of `node`, each checked by its spec; or the verdict that they are not usable (yet). */
function backendAnnotations(
  node: ObservedNode,
  specs: readonly PeerAnnotationSpec[],
): { backend: Record<string, string> } | { verdict: Exclude<ValidationResult, { kind: 'ok' }> } {
  const backend: Record<string, string> = {};
  for (const spec of specs) {
    const value = node.annotations[spec.key];
    if (value === undefined) {
      if (spec.required) return { verdict: { kind: 'pending', field: `annotations[${spec.key}]`, message: 'not published yet' } };
      continue;
    }
    const problem = spec.validate(value);
    if (problem !== undefined)
      return {
        verdict: { kind: 'refused', reason: 'malformed-annotation', field: `annotations[${spec.key}]`, message: problem },
      };
    backend[spec.key] = value;
  }
  return { backend };
}

/**
 * Validates only the backend's annotations of `node`, whose topology is that of `known` (see
 * {@link sameTopology}): the addresses, CIDRs and node ID are taken from `known` unparsed.
 */
export function validateAnnotations(node: ObservedNode, specs: readonly PeerAnnotationSpec[], known: PeerNode): ValidationResult {
  const checked = backendAnnotations(node, specs);
  if ('verdict' in checked) return checked.verdict;
  const { backend } = checked;
  return {
    kind: 'ok',
    peer: {
      name: node.name,
      internalIPv4: known.internalIPv4,
      internalIPv6: known.internalIPv6,
      podCIDRs: known.podCIDRs,
      nodeId: known.nodeId,
      backend,
    },
  };
}

/** Validates an observed node against core rules and the backend's annotation specs. */
export function validateNode(node: ObservedNode, specs: readonly PeerAnnotationSpec[]): ValidationResult {
  // Internal IPs: the annotation override wins over Node status.
  const override = node.annotations[INTERNAL_IPS_ANNOTATION];
  const ipField = override !== undefined ? `annotations[${INTERNAL_IPS_ANNOTATION}]` : 'status.addresses[InternalIP]';
  const rawIPs = override !== undefined ? override.split(',').map((s) => s.trim()) : node.internalIPs;
  let v4: string | undefined;
  let v6: string | undefined;
  for (const raw of rawIPs) {
    const ip = parseIP(raw);
    if (!ip) return { kind: 'refused', reason: 'malformed-ip', field: ipField, message: `"${raw}" is not an IP address` };
    if (ip.family === 4) v4 ??= raw;
    else v6 ??= raw;
  }
  if (v4 === undefined && v6 === undefined) {
    return { kind: 'pending', field: ipField, message: 'node has no internal IP yet' };
  }
  const podCIDRs: Cidr[] = [];
  for (const raw of node.podCIDRs) {
    const c = parseCidr(raw);
    if (typeof c === 'string') return { kind: 'refused', reason: 'malformed-cidr', field: 'spec.podCIDRs', message: c };
    podCIDRs.push(c);
  }
  let nodeId = 0;
  const idText = node.annotations[NODE_ID_ANNOTATION];
  if (idText !== undefined) {
    const n = Number(idText);
    if (!/^\d+$/.test(idText) || n < 1 || n > 65535) {
      return {
        kind: 'refused',
        reason: 'malformed-annotation',
        field: `annotations[${NODE_ID_ANNOTATION}]`,
        message: `"${idText}" is not a node ID in 1..65535`,
      };
    }
    nodeId = n;
  }
  const checked = backendAnnotations(node, specs);
  if ('verdict' in checked) return checked.verdict;
  const { backend } = checked;
  return { kind: 'ok', peer: { name: node.name, internalIPv4: v4, internalIPv6: v6, podCIDRs, nodeId, backend } };
}

/** Structural equality of two peers (what decides whether a backend write is needed). */
export function samePeer(a: PeerNode, b: PeerNode): boolean {
  if (a.name !== b.name || a.internalIPv4 !== b.internalIPv4 || a.internalIPv6 !== b.internalIPv6 || a.nodeId !== b.nodeId)
    return false;
  if (a.podCIDRs.length !== b.podCIDRs.length || a.podCIDRs.some((c, i) => c.text !== b.podCIDRs[i]?.text)) return false;
  const ka = Object.keys(a.backend);
  if (ka.length !== Object.keys(b.backend).length) return false;
  return ka.every((k) => a.backend[k] === b.backend[k]);
}
