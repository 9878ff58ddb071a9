import { execFileSync, spawn } from 'node:child_process';
import { VEIL_MAIN } from '@veil/cli';

/** Where the host lab keeps its state (fixed: two host labs at once collide). */
export const LAB_STATE = '/run/veil-lab/state.json';

/** `veil …` as a user types it (the CLI's dist/main.js loads this package), killed after `timeoutMs`. */
export function veil(args: string[], timeoutMs = 200_000): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [VEIL_MAIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/** The host lab's network namespaces (`veil-lab-*`) that exist now. */
export function labNamespaces(): string[] {
  return execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' })
    .split('\n')
    .map((l) => l.split(' ')[0] ?? '')
    .filter((n) => n.startsWith('veil-lab-'));
}
