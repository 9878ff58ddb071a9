import { spawn } from 'node:child_process';
import { VEIL_MAIN } from '@veil/cli';
import { describePrivileged } from '@veil/test-utils';
import { expect, it } from 'vitest';
import type { LabSummary } from '../src/up.js';

// The `veil` CLI's dist/main.js: `veil lab` as a user types it (the CLI loads this package).
const MAIN = VEIL_MAIN;

// One qemu boot: the whole lab re-runs inside Debian's 6.1 kernel, where WireGuard is the kernel's.
describePrivileged('veil lab --kernel vm (kernel WireGuard under qemu)', ['root', 'qemu', 'netns', 'bpf', 'tcpdump'], () => {
  it('2 nodes × 1 pod: the kernel driver carries every pair, nothing in clear', { timeout: 900_000 }, async () => {
    const r = await new Promise<{ code: number | null; out: string }>((resolve) => {
      const child = spawn(
        process.execPath,
        [MAIN, 'lab', 'up', '--kernel', 'vm', '--nodes', '2', '--pods-per-node', '1', '--backend', 'wireguard', '--json'],
        {
          stdio: ['ignore', 'pipe', 'pipe'],
        },
      );
      let out = '';
      child.stdout.on('data', (c: Buffer) => (out += c.toString()));
      child.stderr.on('data', (c: Buffer) => (out += c.toString()));
      const timer = setTimeout(() => child.kill('SIGKILL'), 880_000);
      child.on('exit', (code) => {
        clearTimeout(timer);
        resolve({ code, out });
      });
    });
    // The guest's stdout reaches us through the VM console; the JSON summary is its last JSON line.
    const line = r.out
      .split('\n')
      .map((l) => l.trim())
      .filter((l) => l.startsWith('{') && l.includes('"pairs"'))
      .pop();
    expect(line, r.out.slice(-3000)).toBeDefined();
    const s = JSON.parse(line ?? '{}') as LabSummary;
    expect(s.driver).toContain('kernel');
    expect(s.pairs).toMatchObject({ total: 2, ok: 2 });
    expect(s.capture.encryptedPackets).toBeGreaterThan(0);
    expect(s.capture.plaintextPackets).toBe(0);
    expect(s.ok).toBe(true);
    expect(r.code).toBe(0);
  });
});
