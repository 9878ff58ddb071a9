import type { AgentStatus } from '@veil/agent-core';
import type { Palette } from './color.js';
import { groupDigits, humanDuration, toNumber } from './format.js';
import { renderKeyValues, renderTable } from './table.js';

/** One key the backend holds (IPsec: per key index). Fingerprints only, never keys. */
export interface EncryptionKeyRow {
  readonly index: number;
  readonly algorithm: string | null;
  readonly fingerprint: string | null;
  /** Per node pair and direction (derived), as opposed to one global key. */
  readonly perTunnel: boolean | null;
}

/** A peer's encryption state. */
export interface EncryptionPeerRow {
  readonly node: string;
  readonly nodeId: number | null;
  /** Key index its outbound traffic uses; null for backends without one. */
  readonly keyIndex: number | null;
  /** XFRM states for this peer (IPsec). */
  readonly states: number | null;
  /** Highest ESP sequence number of its SAs, as a decimal string (64-bit). */
  readonly highestSeq: string | null;
  readonly packets: number | null;
  readonly detail: string | null;
}

/** Key rotation in progress (IPsec). */
export interface EncryptionRotation {
  readonly from: number;
  readonly to: number;
  readonly peersReady: number;
  readonly peersTotal: number;
  readonly waitingFor: readonly string[];
  /** Seconds until the previous index's states are reclaimed. */
  readonly reclaimInSeconds: number | null;
}

/** `veil encrypt status -o json`: what `cilium-dbg encrypt status` shows, and more. */
export interface EncryptionStatus {
  readonly kind: 'EncryptionStatus';
  readonly node: string;
  /** This node's ID (`veil.io/node-id`); null when it has none. */
  readonly nodeId: number | null;
  readonly enabled: boolean;
  readonly backend: string;
  readonly driver: string;
  readonly keys: {
    readonly current: number | null;
    readonly previous: number | null;
    readonly inUse: readonly EncryptionKeyRow[];
  };
  readonly rotation: EncryptionRotation | null;
  /** Highest ESP sequence number of any SA of this node (decimal string); null when not IPsec. */
  readonly highestSeq: string | null;
  /** This backend's XFRM objects; null when not IPsec. */
  readonly xfrm: {
    readonly states: { readonly total: number; readonly out: number; readonly in: number } | null;
    readonly policies: number | null;
    /** /proc/net/xfrm_stat, every counter. */
    readonly errors: Readonly<Record<string, number>>;
  } | null;
  /** XFRM objects repaired after drift (changed or removed behind the agent). */
  readonly driftRepairs: number | null;
  readonly mtu: number | null;
  readonly peers: readonly EncryptionPeerRow[];
  /** Backend-level problems (key file refused, dump failed, sequence numbers high, …). */
  readonly errors: readonly string[];
}

type Obj = Readonly<Record<string, unknown>>;
const obj = (v: unknown): Obj | undefined => (v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Obj) : undefined);
const num = (v: unknown): number | null => toNumber(v) ?? null;
const str = (v: unknown): string | null => (typeof v === 'string' ? v : typeof v === 'number' ? String(v) : null);

/** Builds the view from `GET /v1/status` (backend details are read defensively: any backend may answer). */
export function encryptionStatus(st: AgentStatus): EncryptionStatus {
  const d = obj(st.backendDetails) ?? {};
  const keys = Array.isArray(d.keysInUse) ? d.keysInUse : [];
  const rot = obj(d.rotation);
  const states = obj(d.states);
  const xfrmStat = obj(d.xfrmStat);
  const isXfrm = xfrmStat !== undefined || states !== undefined;
  const errors: Record<string, number> = {};
  for (const [k, v] of Object.entries(xfrmStat ?? {})) {
    const n = toNumber(v);
    if (n !== undefined) errors[k] = n;
  }
  const nodeId = typeof st.nodeId === 'number' && st.nodeId > 0 ? st.nodeId : num(d.nodeId);
  return {
    kind: 'EncryptionStatus',
    node: st.node,
    nodeId: nodeId !== null && nodeId > 0 ? nodeId : null,
    enabled: st.encryption.enabled,
    backend: st.backend,
    driver: st.driver,
    keys: {
      current: num(d.currentIndex) ?? (typeof st.keyIndex === 'number' ? st.keyIndex : null),
      previous: num(d.previousIndex),
      inUse: keys.flatMap((k): EncryptionKeyRow[] => {
        const o = obj(k);
        const index = o ? num(o.index) : null;
        if (!o || index === null) return [];
        return [
          {
            index,
            algorithm: str(o.algorithm),
            fingerprint: str(o.fingerprint),
            perTunnel: typeof o.perTunnel === 'boolean' ? o.perTunnel : null,
          },
        ];
      }),
    },
    rotation:
      rot && num(rot.from) !== null && num(rot.to) !== null
        ? {
            from: num(rot.from)!,
            to: num(rot.to)!,
            peersReady: num(rot.peersReady) ?? 0,
            peersTotal: num(rot.peersTotal) ?? 0,
            waitingFor: Array.isArray(rot.waitingFor) ? rot.waitingFor.filter((n): n is string => typeof n === 'string') : [],
            reclaimInSeconds: num(rot.reclaimInMs) === null ? null : Math.ceil(num(rot.reclaimInMs)! / 1000),
          }
        : null,
    highestSeq: str(d.highestSeq),
    xfrm: isXfrm
      ? {
          states: states ? { total: num(states.total) ?? 0, out: num(states.out) ?? 0, in: num(states.in) ?? 0 } : null,
          policies: num(d.policies),
          errors,
        }
      : null,
    driftRepairs: num(d.driftRepairs),
    mtu: num(d.mtu),
    peers: st.peers.map((p): EncryptionPeerRow => {
      const s = p.backend?.stats ?? {};
      return {
        node: p.name,
        nodeId: num(s.nodeId) ?? (p.nodeId > 0 ? p.nodeId : null),
        keyIndex: p.programmed ? (p.backend?.keyIndex ?? (st.keyIndex !== undefined ? p.keyIndex : null)) : null,
        states: num(s.states),
        highestSeq: str(s.highestSeq),
        packets: num(s.packets),
        detail: p.backend?.detail ?? null,
      };
    }),
    // Only the backend's own problems (what `veil status` lists in full).
    errors: st.errors.filter((e) => /^(key file|drift repair|xfrm|highest ESP|node ID)/.test(e)),
  };
}

const dash = (v: number | string | null): string => (v === null ? '-' : typeof v === 'number' ? groupDigits(v) : v);

/** The human form: key/value summary, then peers, then non-zero XFRM error counters. */
export function renderEncryptionStatus(v: EncryptionStatus, c: Palette): string {
  const pairs: [string, string][] = [];
  pairs.push(['Node', v.nodeId !== null ? `${v.node} (node ID ${v.nodeId})` : v.node]);
  pairs.push(['Encryption', v.enabled ? `${c.green('enabled')}: ${v.backend}, driver ${v.driver}` : c.yellow('disabled')]);
  if (v.keys.current !== null || v.keys.inUse.length > 0) {
    const idx = [`current ${dash(v.keys.current)}`];
    if (v.keys.previous !== null) idx.push(`previous ${v.keys.previous}`);
    pairs.push(['Key index', idx.join(', ')]);
    for (const k of v.keys.inUse)
      pairs.push([
        `Key ${k.index}`,
        [k.algorithm ?? '?', k.fingerprint ?? '', k.perTunnel ? 'per node pair and direction' : '']
          .filter((s) => s !== '')
          .join(', '),
      ]);
  }
  if (v.rotation) {
    const r = v.rotation;
    const waiting = r.waitingFor.length > 0 ? `, waiting for ${r.waitingFor.join(', ')}` : '';
    const reclaim = r.reclaimInSeconds !== null ? `, old key reclaimed in ${humanDuration(r.reclaimInSeconds)}` : '';
    pairs.push(['Rotation', `${r.from} → ${r.to}: ${r.peersReady}/${r.peersTotal} peers ready${waiting}${reclaim}`]);
  } else if (v.xfrm) pairs.push(['Rotation', 'none in progress']);
  if (v.highestSeq !== null) pairs.push(['Max seq. number', v.highestSeq]);
  if (v.xfrm) {
    const s = v.xfrm.states;
    pairs.push(['XFRM states', s ? `${s.total} (${s.out} out, ${s.in} in)` : '-']);
    pairs.push(['XFRM policies', dash(v.xfrm.policies)]);
    const nonzero = Object.values(v.xfrm.errors).filter((n) => n > 0).length;
    pairs.push(['XFRM errors', nonzero === 0 ? c.green('none') : c.red(`${nonzero} counters non-zero (below)`)]);
  }
  if (v.driftRepairs !== null) pairs.push(['Drift repairs', groupDigits(v.driftRepairs)]);
  if (v.mtu !== null) pairs.push(['MTU', String(v.mtu)]);
  pairs.push(['Errors', v.errors.length === 0 ? c.green('0') : c.red(String(v.errors.length))]);
  let out = renderKeyValues(pairs);
  for (const e of v.errors) out += `  ${c.red('-')} ${e}\n`;
  if (v.peers.length > 0) {
    out +=
      '\n' +
      renderTable(
        ['PEER', 'NODE ID', 'KEY INDEX', 'STATES', 'MAX SEQ', 'PACKETS', 'DETAIL'],
        v.peers.map((p) => [
          p.node,
          dash(p.nodeId),
          dash(p.keyIndex),
          dash(p.states),
          dash(p.highestSeq),
          dash(p.packets),
          p.detail ?? '-',
        ]),
      );
  }
  const errs = Object.entries(v.xfrm?.errors ?? {}).filter(([, n]) => n > 0);
  if (errs.length > 0)
    out +=
      '\n' +
      renderTable(
        ['XFRM ERROR', 'COUNT'],
        errs.map(([k, n]) => [k, c.red(groupDigits(n))]),
      );
  return out;
}
