import type { AgentStatus } from '@veil/agent-core';
import type { Palette } from './color.js';
import type { RenderOptions } from './output.js';
import { humanBytes, humanDuration, toNumber } from './format.js';
import { renderTable } from './table.js';

/** A peer's state for humans and scripts: `active` is reported as `ready`. */
export type PeerRowState = 'ready' | 'pending' | 'refused' | 'error';

/** One row of `veil peers -o json`. */
export interface PeerRow {
  readonly node: string;
  /** The node IPs used as tunnel endpoints (v4 first). */
  readonly endpoints: readonly string[];
  /** What the peer may send from: its pod CIDRs. */
  readonly allowedIPs: readonly string[];
  /** Key index (IPsec SPI generation); null for backends without one. */
  readonly keyIndex: number | null;
  /** The backend's own per-peer words, e.g. `handshake 12s ago`. */
  readonly backendDetail: string | null;
  /** Seconds since the last handshake when the backend reports one, else null. */
  readonly handshakeAgeSeconds: number | null;
  readonly rxBytes: number | null;
  readonly txBytes: number | null;
  readonly state: PeerRowState;
  /** Why pending/refused/failing, else null. */
  readonly reason: string | null;
  /** Programmed in backend + datapath (a refused peer may keep its last good state). */
  readonly programmed: boolean;
}

/** `veil peers -o json`. */
export interface PeerList {
  readonly kind: 'PeerList';
  readonly node: string;
  readonly backend: string;
  readonly items: readonly PeerRow[];
}

const HANDSHAKE = /^handshake (\d+)s ago$/;

export function peerList(st: AgentStatus): PeerList {
  const backendHasKeyIndex = st.keyIndex !== undefined && st.keyIndex !== null;
  return {
    kind: 'PeerList',
    node: st.node,
    backend: st.backend,
    items: st.peers.map((p): PeerRow => {
      const detail = p.backend?.detail ?? null;
      const hs = detail !== null ? HANDSHAKE.exec(detail) : null;
      const stats = p.backend?.stats ?? {};
      const state: PeerRowState = p.state === 'active' ? 'ready' : p.state;
      let reason: string | null = null;
      if (p.refusal)
        reason = `${p.refusal.reason}: ${p.refusal.field}${p.refusal.conflictsWith ? ` (conflicts with ${p.refusal.conflictsWith})` : ''}`;
      else if (p.state === 'pending') reason = p.pendingOn ?? null;
      else if (p.lastError) reason = p.lastError;
      // A peer that was never programmed has no key yet, whatever the backend's current index.
      const keyIndex = p.programmed ? (p.backend?.keyIndex ?? (backendHasKeyIndex ? p.keyIndex : undefined)) : undefined;
      return {
        node: p.name,
        endpoints: [...p.internalIPs],
        allowedIPs: [...p.podCIDRs],
        keyIndex: keyIndex ?? null,
        backendDetail: detail,
        handshakeAgeSeconds: hs ? Number(hs[1]) : null,
        rxBytes: toNumber(stats.rxBytes) ?? null,
        txBytes: toNumber(stats.txBytes) ?? null,
        state,
        reason,
        programmed: p.programmed,
      };
    }),
  };
}

function handshakeCell(r: PeerRow): string {
  if (r.handshakeAgeSeconds !== null) return `${humanDuration(r.handshakeAgeSeconds)} ago`;
  if (r.backendDetail === 'no handshake yet') return 'never';
  return r.backendDetail ?? '-';
}

/**
 * The table: NODE, ENDPOINT, ALLOWED IPS, KEY, HANDSHAKE (or KEY STATE for backends without
 * handshakes, e.g. IPsec: the backend's own per-peer words), RX, TX, STATE. `-o wide` adds
 * PROGRAMMED (in backend and datapath) and DETAIL (the backend's own per-peer words), and shows
 * RX/TX as exact byte counts.
 */
export function renderPeers(list: PeerList, c: Palette, opts: RenderOptions = { wide: false }): string {
  const bytes = (n: number | null): string => (n === null ? '-' : opts.wide ? String(n) : humanBytes(n));
  if (list.items.length === 0) return `No peers (node ${list.node}, backend ${list.backend}).\n`;
  const rows = list.items.map((r) => {
    const state = r.state === 'ready' ? c.green('ready') : r.state === 'pending' ? c.yellow('pending') : c.red(r.state);
    return [
      r.node,
      r.endpoints.join(',') || '-',
      r.allowedIPs.join(',') || '-',
      r.keyIndex === null ? '-' : String(r.keyIndex),
      handshakeCell(r),
      bytes(r.rxBytes),
      bytes(r.txBytes),
      r.reason ? `${state} (${r.reason})` : state,
      ...(opts.wide ? [r.programmed ? 'yes' : 'no', r.backendDetail ?? '-'] : []),
    ];
  });
  const handshakes = list.items.some((r) => r.handshakeAgeSeconds !== null || r.backendDetail === 'no handshake yet');
  return renderTable(
    [
      'NODE',
      'ENDPOINT',
      'ALLOWED IPS',
      'KEY',
      handshakes ? 'HANDSHAKE' : 'KEY STATE',
      'RX',
      'TX',
      'STATE',
      ...(opts.wide ? ['PROGRAMMED', 'DETAIL'] : []),
    ],
    rows,
  );
}
