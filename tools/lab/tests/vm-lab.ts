import { spawn } from 'node:child_process';
import { VEIL_MAIN } from '@veil/cli';
import type { ChaosReport } from '../src/chaos.js';
import type { LabSummary } from '../src/up.js';

/**
 * Runs `veil lab <sub> --kernel vm … --json` as a user types it (the CLI loads this package; one
 * qemu boot) and returns its exit code, its output, and the JSON lines the guest printed (the
 * guest's stdout reaches us through the VM console).
 */
function runVm(
  sub: 'up' | 'chaos',
  args: readonly string[],
  timeoutMs: number,
): Promise<{ code: number | null; out: string; json: (key: string) => string | undefined }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [VEIL_MAIN, 'lab', sub, '--kernel', 'vm', ...args, '--json'], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString()));
    child.stderr.on('data', (c: Buffer) => (out += c.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('exit', (code) => {
      clearTimeout(timer);
      const lines = out
        .split('\n')
        .map((l) => l.trim())
        .filter((l) => l.startsWith('{'));
      // The last JSON line holding `key`: "pairs" marks a lab summary, "pings" a chaos report.
      resolve({ code, out, json: (key) => lines.filter((l) => l.includes(`"${key}"`)).pop() });
    });
  });
}

/** `veil lab up --kernel vm …`: exit code, output and the lab's JSON summary (undefined when none). */
export async function runVmLab(
  args: readonly string[],
  timeoutMs: number,
): Promise<{ code: number | null; out: string; summary: LabSummary | undefined }> {
  const r = await runVm('up', args, timeoutMs);
  const summary = r.json('pairs');
  return { code: r.code, out: r.out, summary: summary === undefined ? undefined : (JSON.parse(summary) as LabSummary) };
}

/**
 * `veil lab chaos --kernel vm …` (one qemu boot: `lab up --keep`, chaos, `lab down`): exit code,
 * output, the lab's JSON summary and the chaos report the guest printed.
 */
export async function runVmChaos(
  args: readonly string[],
  timeoutMs: number,
): Promise<{ code: number | null; out: string; summary: LabSummary | undefined; report: ChaosReport | undefined }> {
  const r = await runVm('chaos', args, timeoutMs);
  const summary = r.json('pairs');
  const report = r.json('pings');
  return {
    code: r.code,
    out: r.out,
    summary: summary === undefined ? undefined : (JSON.parse(summary) as LabSummary),
    report: report === undefined ? undefined : (JSON.parse(report) as ChaosReport),
  };
}
