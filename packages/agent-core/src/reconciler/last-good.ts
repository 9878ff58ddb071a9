import { parseCidrCached as parseCidr } from '../util/ip.js';
import { readVersionedJson, writeJsonAtomic } from '../util/state-file.js';
import type { Cidr, IpcacheEntry, PeerNode } from '../types/index.js';

// What the reconciler last programmed for each remote node, so a restarted agent keeps exactly
// that (issue 12, defect 3). Backends like WireGuard carry no node names and the ipcache carries no
// keys: after a refused update, only this file still knows the node's last good peer.
//
// Writes are coalesced (one per `delayMs`) and flushed on stop; a crash loses at most the last
// window, after which the reconciler falls back to adoption by diff as before.

const VERSION = 1;

/** One node's last good state. */
export interface LastGood {
  readonly peer: PeerNode;
  readonly entry: IpcacheEntry;
  /** The node's creationTimestamp, so conflict seniority holds before it is listed again. */
  readonly createdAt?: string;
}

interface SavedPeer {
  name: string;
  internalIPv4?: string;
  internalIPv6?: string;
  podCIDRs: string[];
  nodeId: number;
  backend: Record<string, string>;
}

interface FileV1 {
  version: 1;
  nodes: { peer: SavedPeer; entry: IpcacheEntry; createdAt?: string }[];
}

/** Reads the saved state; empty when absent. A corrupt or foreign file is reported, never thrown. */
export function readLastGood(path: string): { nodes: LastGood[]; problem?: string } {
  const { value: j, problem } = readVersionedJson<FileV1>(path, VERSION);
  if (problem !== undefined) return { nodes: [], problem };
  if (j === undefined) return { nodes: [] };
  if (!Array.isArray(j.nodes)) return { nodes: [], problem: `${path}: unknown format (no nodes)` };
  const nodes: LastGood[] = [];
  for (const n of j.nodes) {
    const p = n?.peer;
    if (!p || typeof p.name !== 'string' || !Array.isArray(p.podCIDRs) || typeof n.entry !== 'object' || n.entry === null) {
      return { nodes: [], problem: `${path}: malformed node record` };
    }
    const podCIDRs: Cidr[] = [];
    for (const t of p.podCIDRs) {
      const c = parseCidr(String(t));
      if (typeof c === 'string') return { nodes: [], problem: `${path}: node ${p.name}: ${c}` };
      podCIDRs.push(c);
    }
    nodes.push({
      peer: {
        name: p.name,
        internalIPv4: p.internalIPv4,
        internalIPv6: p.internalIPv6,
        podCIDRs,
        nodeId: Number(p.nodeId) || 0,
        backend: { ...p.backend },
      },
      entry: n.entry,
      ...(typeof n.createdAt === 'string' ? { createdAt: n.createdAt } : {}),
    });
  }
  return { nodes };
}

/** Writes atomically (temp file + rename), mode 0600, creating the directory. */
export function writeLastGood(path: string, nodes: Iterable<LastGood>): void {
  const body: FileV1 = {
    version: VERSION,
    nodes: [...nodes].map((n) => ({
      peer: {
        name: n.peer.name,
        ...(n.peer.internalIPv4 !== undefined ? { internalIPv4: n.peer.internalIPv4 } : {}),
        ...(n.peer.internalIPv6 !== undefined ? { internalIPv6: n.peer.internalIPv6 } : {}),
        podCIDRs: n.peer.podCIDRs.map((c) => c.text),
        nodeId: n.peer.nodeId,
        backend: { ...n.peer.backend },
      },
      entry: n.entry,
      ...(n.createdAt !== undefined ? { createdAt: n.createdAt } : {}),
    })),
  };
  writeJsonAtomic(path, body);
}
