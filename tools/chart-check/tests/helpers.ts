import { fileURLToPath } from 'node:url';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';

/** charts/veil, from this package's tests/. */
export const CHART_DIR = fileURLToPath(new URL('../../../charts/veil', import.meta.url));
export const FIXTURES = fileURLToPath(new URL('./fixtures', import.meta.url));

/** ci/*.yaml, full paths, sorted. */
export function ciValueFiles(): string[] {
  return readdirSync(join(CHART_DIR, 'ci'))
    .filter((f) => f.endsWith('.yaml'))
    .sort()
    .map((f) => join(CHART_DIR, 'ci', f));
}
