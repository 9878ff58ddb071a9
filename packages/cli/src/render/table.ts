import { visibleLength } from './color.js';

/** Gap between columns (kubectl uses 3 spaces). */
const GAP = '   ';

/**
 * A kubectl-style table: upper-case headers, left-aligned columns padded to the widest cell,
 * no borders, no trailing spaces. Cells may carry ANSI colour (width ignores it).
 */
export function renderTable(headers: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = headers.map((h, i) => Math.max(visibleLength(h), ...rows.map((r) => visibleLength(r[i] ?? ''))));
  const line = (cells: readonly string[]): string =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c + ' '.repeat((widths[i] ?? 0) - visibleLength(c))))
      .join(GAP)
      .replace(/\s+$/, '');
  return [line(headers), ...rows.map((r) => line(headers.map((_, i) => r[i] ?? '')))].join('\n') + '\n';
}

/** `Key:   value` lines aligned on the longest key (like `cilium-dbg status`). */
export function renderKeyValues(pairs: readonly (readonly [string, string])[]): string {
  const w = Math.max(0, ...pairs.map(([k]) => k.length + 1));
  return pairs.map(([k, v]) => `${`${k}:`.padEnd(w)}   ${v}`.replace(/\s+$/, '')).join('\n') + '\n';
}
