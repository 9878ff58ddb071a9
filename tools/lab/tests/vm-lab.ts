import { spawn } from 'node:child_process';
import { VEIL_MAIN } from '@veil/cli';
import type { ChaosReport } from '../src/chaos.js';
import type { LabSummary } from '../src/up.js';

/**
 * Runs `veil lab up --kernel vm …` as a user types it (the CLI loads this package; one qemu boot)
 * and returns its exit code, its output, and the JSON summary the guest printed last (the guest's
 * stdout reaches us through the VM console), undefined when there is none.
 */
export function runVmLab(
  args: readonly string[],
  timeoutMs: number,
): Promise<{ code: number | null; out: string; summary: LabSummary | undefined }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [VEIL_MAIN, 'lab', 'up', '--kernel', 'vm', ...args, '--json'], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString()));
    child.stderr.on('data', (c: Buffer) => (out += c.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('exit', (code) => {
      clearTimeout(timer);
      const line = out
        .split('\n')
        .map((l) => l.trim())
        .filter((l) => l.startsWith('{') && l.includes('"pairs"'))
        .pop();
      resolve({ code, out, summary: line === undefined ? undefined : (JSON.parse(line) as LabSummary) });
    });
  });
}

/**
 * Runs `veil lab chaos --kernel vm …` (one qemu boot: `lab up --keep`, chaos, `lab down`) and
 * returns its exit code, its output, the lab's JSON summary and the chaos report the guest printed.
 */
export function runVmChaos(
  args: readonly string[],
  timeoutMs: number,
): Promise<{ code: number | null; out: string; summary: LabSummary | undefined; report: ChaosReport | undefined }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [VEIL_MAIN, 'lab', 'chaos', '--kernel', 'vm', ...args, '--json'], {
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
      const summary = lines.filter((l) => l.includes('"pairs"')).pop();
      const report = lines.filter((l) => l.includes('"pings"')).pop();
      resolve({
        code,
        out,
        summary: summary === undefined ? undefined : (JSON.parse(summary) as LabSummary),
        report: report === undefined ? undefined : (JSON.parse(report) as ChaosReport),
      });
    });
  });
}
