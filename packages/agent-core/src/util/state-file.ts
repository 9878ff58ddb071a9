import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';

/**
 * Reads a versioned JSON state file (`{ version, … }`). Absent → `{}`; unreadable, corrupt or of
 * another version → `{ problem }` naming the path. Never throws: state files are advisory, and a
 * bad one must not keep the agent from starting.
 */
export function readVersionedJson<T extends { version: number }>(
  path: string,
  version: number,
): { value?: Partial<T>; problem?: string } {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return {};
    return { problem: `cannot read ${path}: ${(e as Error).message}` };
  }
  let value: Partial<T>;
  try {
    value = JSON.parse(text) as Partial<T>;
  } catch (e) {
    return { problem: `${path}: ${(e as Error).message}` };
  }
  if (typeof value !== 'object' || value === null || value.version !== version) {
    return { problem: `${path}: unknown format (version ${String((value as Partial<T> | null)?.version)})` };
  }
  return { value };
}

/** Writes JSON atomically (temp file + rename) with mode 0600, creating the directory 0700. */
export function writeJsonAtomic(path: string, body: unknown): void {
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  const tmp = `${path}.${process.pid}.tmp`;
  writeFileSync(tmp, JSON.stringify(body), { mode: 0o600 });
  renameSync(tmp, path);
}
