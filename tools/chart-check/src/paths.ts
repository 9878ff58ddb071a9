import { isMap } from './chart.js';

/** A `.Values.a.b` reference found in a template. */
export interface ValuesRef {
  template: string;
  line: number;
  path: string;
}

/**
 * Every `.Values.x.y` path in the templates (also via `$.Values`). Paths used after a `with` /
 * `range` rebinding (`.` relative) are not seen; those templates reference the parent path.
 */
export function valuesRefs(templates: ReadonlyMap<string, string>): ValuesRef[] {
  const out: ValuesRef[] = [];
  for (const [template, src] of templates) {
    src.split('\n').forEach((line, idx) => {
      for (const m of line.matchAll(/\.Values((?:\.[A-Za-z_][A-Za-z0-9_]*)+)/g)) {
        out.push({ template, line: idx + 1, path: (m[1] as string).slice(1) });
      }
    });
  }
  return out;
}

/** The path's first segment that does not exist in `values` (undefined when all exist). */
export function missingSegment(values: unknown, path: string): string | undefined {
  let cur = values;
  const parts = path.split('.');
  for (let i = 0; i < parts.length; i++) {
    const p = parts[i] as string;
    if (!isMap(cur) || !Object.prototype.hasOwnProperty.call(cur, p)) return parts.slice(0, i + 1).join('.');
    cur = cur[p];
  }
  return undefined;
}
