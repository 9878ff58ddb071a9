import type { CounterListing, IpcacheListing } from '@veil/agent-core/status-api';
import type { Palette } from './color.js';
import type { RenderOptions } from './output.js';
import { groupDigits, humanBytes } from './format.js';
import { renderTable } from './table.js';

/** `veil bpf ipcache list -o json`. */
export interface IpcacheList {
  readonly kind: 'IpcacheList';
  /** `map`: the kernel map itself; `derived`: computed from the agent's per-node entries. */
  readonly source: 'map' | 'derived';
  readonly items: readonly {
    readonly prefix: string;
    readonly node: string | null;
    readonly nodeIP: string | null;
    readonly flags: readonly string[];
    readonly keyIndex: number;
    readonly nodeId: number;
    readonly ifindex: number;
  }[];
}

export function ipcacheList(l: IpcacheListing): IpcacheList {
  return {
    kind: 'IpcacheList',
    source: l.source,
    items: l.entries.map((e) => ({
      prefix: e.prefix,
      node: e.node,
      nodeIP: e.nodeIP,
      flags: [...e.flags],
      keyIndex: e.keyIndex,
      nodeId: e.nodeId,
      ifindex: e.ifindex,
    })),
  };
}

export function renderIpcache(l: IpcacheList, c: Palette): string {
  if (l.items.length === 0) return 'The ipcache is empty.\n';
  const rows = l.items.map((e) => [
    e.prefix,
    e.node ?? '-',
    e.nodeIP ?? '-',
    e.flags.length === 0 ? '-' : e.flags.map((f) => (f === 'ENCRYPT_READY' ? c.green(f) : f)).join('|'),
    String(e.keyIndex),
    String(e.nodeId),
    e.ifindex === 0 ? '-' : String(e.ifindex),
  ]);
  const note =
    l.source === 'derived' ? c.dim("(derived from the agent's per-node entries: this datapath cannot dump its map)\n") : '';
  return renderTable(['PREFIX', 'NODE', 'NODE IP', 'FLAGS', 'KEY', 'NODE ID', 'IFINDEX'], rows) + note;
}

/** `veil bpf counters -o json`: u64 as JSON numbers (exact up to 2^53). */
export interface CounterList {
  readonly kind: 'CounterList';
  readonly source: 'details' | 'verdicts';
  /** False: only non-zero reasons are listed (`--all` lists every reason). */
  readonly all: boolean;
  readonly items: readonly { readonly reason: string; readonly packets: number; readonly bytes: number | null }[];
}

export function counterList(l: CounterListing, all: boolean): CounterList {
  const items = l.counters
    .map((x) => ({ reason: x.reason, packets: Number(x.packets), bytes: x.bytes === null ? null : Number(x.bytes) }))
    .filter((x) => all || x.packets !== 0 || (x.bytes ?? 0) !== 0);
  return { kind: 'CounterList', source: l.source, all, items };
}

/** REASON, PACKETS, BYTES (`-o wide`: exact byte counts instead of KiB/MiB). */
export function renderCounters(l: CounterList, c: Palette, opts: RenderOptions = { wide: false }): string {
  if (l.items.length === 0) return l.all ? 'No counters.\n' : 'All counters are zero (--all lists them).\n';
  const rows = l.items.map((x) => [
    x.reason.startsWith('drop') && x.packets > 0 ? c.red(x.reason) : x.reason,
    groupDigits(x.packets),
    x.bytes === null ? '-' : opts.wide ? groupDigits(x.bytes) : humanBytes(x.bytes),
  ]);
  return renderTable(['REASON', 'PACKETS', 'BYTES'], rows);
}
