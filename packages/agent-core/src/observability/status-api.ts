import { createHash } from 'node:crypto';
import { ipFamily, ipToBigInt, tryParsePrefix } from '@veil/ip';
import { DEFAULT_CONFIG } from '../config/schema.js';
import { VeilAgentError } from '../errors.js';
import type { IpcacheEntry, IpcachePrefixEntry, LocalMaterial } from '../types/index.js';
import { IpcacheFlags } from '../types/index.js';

// The status socket's wire format beyond `GET /v1/status` (which is `AgentStatus` in agent.ts).
// This module is importable on its own (`@veil/agent-core/status-api`) so the CLI does not load
// the whole agent (client-node alone takes seconds to import) just to read a socket.

/** Default unix socket of the status server (`status.socketPath`). */
export const DEFAULT_STATUS_SOCKET: string = DEFAULT_CONFIG.status.socketPath;

/** Endpoints served on the status socket. */
export const STATUS_API = {
  status: { method: 'GET', path: '/v1/status' },
  agent: { method: 'GET', path: '/v1/agent' },
  ipcache: { method: 'GET', path: '/v1/bpf/ipcache' },
  counters: { method: 'GET', path: '/v1/bpf/counters' },
  rotateKeys: { method: 'POST', path: '/v1/keys/rotate' },
} as const;

/** The node's public key material and its fingerprint (never private keys). */
export interface LocalKeyInfo {
  /** Public annotations the backend publishes (e.g. `veil.io/wireguard-public-key`). */
  readonly annotations: Readonly<Record<string, string>>;
  /** `sha256:` + first 16 hex digits over the sorted `key=value` lines; stable across restarts. */
  readonly fingerprint: string;
}

/** `GET /v1/agent`: who is running and how it is configured (status beyond encryption). */
export interface AgentInfo {
  readonly version: string;
  readonly node: string;
  readonly pid: number;
  /** ISO-8601. */
  readonly startedAt: string;
  readonly uptimeSeconds: number;
  readonly encryption: {
    readonly enabled: boolean;
    readonly type: string;
    readonly nodeEncryption: boolean;
    readonly strictMode: { readonly enabled: boolean; readonly cidrs: readonly string[] };
  };
  /** undefined before the backend is initialised. */
  readonly localKey: LocalKeyInfo | null;
  readonly datapath: {
    readonly attached: boolean;
    /** `attachments`: what the datapath reports; `requested`: the targets the agent asked for. */
    readonly interfacesSource: 'attachments' | 'requested';
    readonly interfaces: readonly {
      readonly ifname: string;
      readonly ifindex?: number;
      readonly role?: string;
      readonly direction?: string;
    }[];
  };
}

/** One ipcache row on the wire. */
export interface IpcacheRow {
  readonly prefix: string;
  readonly node: string | null;
  readonly nodeIP: string | null;
  /** Flag names, in bit order (`LOCAL`, `REMOTE`, `ENCRYPT_READY`, `IS_NODE`, or `0x..` for unknown bits). */
  readonly flags: readonly string[];
  readonly flagBits: number;
  readonly keyIndex: number;
  readonly nodeId: number;
  readonly ifindex: number;
}

/** `GET /v1/bpf/ipcache`. */
export interface IpcacheListing {
  /** `map`: read from the kernel map; `derived`: computed from the datapath's per-node entries. */
  readonly source: 'map' | 'derived';
  readonly entries: readonly IpcacheRow[];
}

/** `GET /v1/bpf/counters`; u64 values travel as decimal strings. */
export interface CounterListing {
  /** `details`: packets and bytes per reason; `verdicts`: packets only (`bytes` null). */
  readonly source: 'details' | 'verdicts';
  readonly counters: readonly { readonly reason: string; readonly packets: string; readonly bytes: string | null }[];
}

/** `POST /v1/keys/rotate` (200). */
export interface KeyRotationResponse {
  readonly backend: string;
  readonly previousFingerprint: string | null;
  readonly fingerprint: string;
  readonly annotations: Readonly<Record<string, string>>;
  readonly keyIndex: number | null;
  /** True once the new material was published on the local Node. */
  readonly published: boolean;
  /** Why publishing failed (the agent keeps retrying in the background). */
  readonly publishError: string | null;
}

/** Error body of any non-2xx answer on the status socket. */
export interface StatusErrorBody {
  readonly error: string;
  readonly code?: string;
}

/**
 * A status-socket handler failure with an HTTP status (`501` NOT_IMPLEMENTED when the backend
 * cannot do what was asked, `409`, …). Other errors become `500`.
 */
export class StatusRouteError extends VeilAgentError {
  override name = 'StatusRouteError';
  constructor(
    readonly statusCode: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

const FLAG_NAMES: readonly [number, string][] = [
  [IpcacheFlags.LOCAL, 'LOCAL'],
  [IpcacheFlags.REMOTE, 'REMOTE'],
  [IpcacheFlags.ENCRYPT_READY, 'ENCRYPT_READY'],
  [IpcacheFlags.IS_NODE, 'IS_NODE'],
];

/** Names of the set flag bits; bits without a name show as hex. */
export function ipcacheFlagNames(flags: number): string[] {
  const out: string[] = [];
  let rest = flags;
  for (const [bit, name] of FLAG_NAMES) {
    if ((flags & bit) !== 0) out.push(name);
    rest &= ~bit;
  }
  if (rest !== 0) out.push(`0x${rest.toString(16)}`);
  return out;
}

/** Only the string values (null = "remove this annotation" is not material). */
export function publicAnnotations(material: LocalMaterial): Record<string, string> {
  const out: Record<string, string> = {};
  for (const k of Object.keys(material).sort()) {
    const v = material[k];
    if (typeof v === 'string') out[k] = v;
  }
  return out;
}

/** Fingerprint of public key material: `sha256:` + 16 hex digits over sorted `key=value\n` lines. */
export function materialFingerprint(material: LocalMaterial): string {
  const pub = publicAnnotations(material);
  const h = createHash('sha256');
  for (const [k, v] of Object.entries(pub)) h.update(`${k}=${v}\n`);
  return `sha256:${h.digest('hex').slice(0, 16)}`;
}

export function localKeyInfo(material: LocalMaterial): LocalKeyInfo {
  return { annotations: publicAnnotations(material), fingerprint: materialFingerprint(material) };
}

function hostPrefix(ip: string): string {
  return `${ip}/${ipFamily(ip) === 4 ? 32 : 128}`;
}

/**
 * The per-prefix ipcache a datapath holds for these per-node entries (same layout as the BPF
 * datapath writes: every pod CIDR with the entry's flags, every node IP as a host prefix with
 * IS_NODE) plus the local pod endpoints. For datapaths without `ipcacheDump()`.
 */
export function deriveIpcache(
  entries: Iterable<IpcacheEntry>,
  local: { nodeName: string; endpoints: ReadonlyMap<string, number> | undefined },
): IpcachePrefixEntry[] {
  const out = new Map<string, IpcachePrefixEntry>();
  for (const e of entries) {
    const v4 = e.nodeIPs.find((ip) => ipFamily(ip) === 4);
    const v6 = e.nodeIPs.find((ip) => ipFamily(ip) !== 4);
    for (const c of e.podCIDRs) {
      const nodeIP = (c.includes(':') ? v6 : v4) ?? e.nodeIPs[0];
      out.set(c, {
        prefix: c,
        nodeName: e.nodeName,
        ...(nodeIP ? { nodeIP } : {}),
        flags: e.flags,
        keyIndex: e.keyIndex,
        nodeId: e.nodeId,
        ifindex: 0,
      });
    }
    for (const ip of e.nodeIPs) {
      out.set(hostPrefix(ip), {
        prefix: hostPrefix(ip),
        nodeName: e.nodeName,
        nodeIP: ip,
        flags: e.flags | IpcacheFlags.IS_NODE,
        keyIndex: e.keyIndex,
        nodeId: e.nodeId,
        ifindex: 0,
      });
    }
  }
  for (const [prefix, ifindex] of local.endpoints ?? []) {
    out.set(prefix, { prefix, nodeName: local.nodeName, flags: IpcacheFlags.LOCAL, keyIndex: 0, nodeId: 0, ifindex });
  }
  return [...out.values()];
}

/** Wire rows, sorted by address family then prefix (numerically). */
export function ipcacheRows(entries: Iterable<IpcachePrefixEntry>): IpcacheRow[] {
  const rows = [...entries].map((e): IpcacheRow => ({
    prefix: e.prefix,
    node: e.nodeName ?? null,
    nodeIP: e.nodeIP ?? null,
    flags: ipcacheFlagNames(e.flags),
    flagBits: e.flags,
    keyIndex: e.keyIndex,
    nodeId: e.nodeId,
    ifindex: e.ifindex,
  }));
  return rows.sort((a, b) => comparePrefix(a.prefix, b.prefix));
}

function prefixKey(p: string): [number, bigint, number] {
  const prefix = tryParsePrefix(p);
  // Rows come from the kernel's map, so they parse; anything else sorts last.
  if (!prefix) return [7, 0n, 0];
  return [prefix.family, ipToBigInt(prefix.bytes), prefix.prefixLen];
}

function comparePrefix(a: string, b: string): number {
  const ka = prefixKey(a);
  const kb = prefixKey(b);
  if (ka[0] !== kb[0]) return ka[0] - kb[0];
  if (ka[1] !== kb[1]) return ka[1] < kb[1] ? -1 : 1;
  return ka[2] - kb[2];
}
