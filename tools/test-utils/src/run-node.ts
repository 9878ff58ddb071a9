import { spawnSync } from 'node:child_process';

/**
 * Runs a Node script the way a user would (`node <script> …args`), with only PATH and `env` in its
 * environment, and returns its exit code and output. For CLI tests: the real entry point, no mocks.
 */
export function runNode(
  script: string,
  args: readonly string[],
  env: NodeJS.ProcessEnv = {},
  timeoutMs = 30_000,
): { code: number | null; stderr: string; stdout: string } {
  const r = spawnSync(process.execPath, [script, ...args], {
    encoding: 'utf8',
    env: { PATH: process.env.PATH, ...env },
    timeout: timeoutMs,
  });
  return { code: r.status, stderr: r.stderr, stdout: r.stdout };
}
