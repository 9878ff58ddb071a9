/** ANSI styling that collapses to plain text when colour is off. */
export interface Palette {
  readonly enabled: boolean;
  green(s: string): string;
  red(s: string): string;
  yellow(s: string): string;
  bold(s: string): string;
  dim(s: string): string;
}

const wrap = (open: number, close: number) => (s: string) => `\u001b[${open}m${s}\u001b[${close}m`;

/** Colours only on a TTY and never when `NO_COLOR` is set to anything non-empty (no-color.org). */
export function wantColor(stream: { isTTY?: boolean }, env: NodeJS.ProcessEnv = process.env): boolean {
  if (env.NO_COLOR !== undefined && env.NO_COLOR !== '') return false;
  return stream.isTTY === true;
}

export function palette(enabled: boolean): Palette {
  const id = (s: string): string => s;
  return enabled
    ? { enabled, green: wrap(32, 39), red: wrap(31, 39), yellow: wrap(33, 39), bold: wrap(1, 22), dim: wrap(2, 22) }
    : { enabled, green: id, red: id, yellow: id, bold: id, dim: id };
}

export const PLAIN: Palette = palette(false);

// eslint-disable-next-line no-control-regex
const ANSI = /\u001b\[[0-9;]*m/g;

/** Printed width of a string (ANSI sequences take no room). */
export function visibleLength(s: string): number {
  return s.replace(ANSI, '').length;
}
