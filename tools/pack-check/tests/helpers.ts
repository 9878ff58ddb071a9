import { spawnSync } from 'node:child_process';
import { copyFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const FIXTURES = fileURLToPath(new URL('./fixtures/', import.meta.url));

/** Copies a fixture script into the scratch project, so its imports resolve there and only there. */
export async function fixtureIn(project: string, name: string): Promise<string> {
  const dest = join(project, name);
  await copyFile(join(FIXTURES, name), dest);
  return dest;
}

/**
 * Runs `node <args>` in `cwd` with a minimal environment (PATH, HOME and `env`): no NODE_PATH, no
 * workspace on the way up from /tmp, so every import is resolved from the scratch project.
 */
export function nodeIn(
  cwd: string,
  args: readonly string[],
  env: NodeJS.ProcessEnv = {},
  timeoutMs = 120_000,
): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, args, {
    cwd,
    encoding: 'utf8',
    env: { PATH: process.env.PATH, HOME: process.env.HOME, ...env },
    timeout: timeoutMs,
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** The single JSON line a fixture prints. */
export function jsonLine<T>(stdout: string): T {
  const line = stdout.trim().split('\n').pop() ?? '';
  return JSON.parse(line) as T;
}
