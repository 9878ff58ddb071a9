import { spawn } from 'node:child_process';
import { VEIL_MAIN } from '@veil/cli';
import { describePrivileged } from '@veil/test-utils';
import { expect, it } from 'vitest';
import type { LabSummary } from '../src/up.js';

// The `veil` CLI's dist/main.js: `veil lab` as a user types it (the CLI loads this package).
const MAIN = VEIL_MAIN;

// One qemu boot: the whole lab re-runs inside Debian's 6.1 kernel, which has ESP (the host has not).
describePrivileged('veil lab --backend ipsec --kernel vm (ESP under qemu)', ['root', 'qemu', 'netns', 'bpf', 'tcpdump'], () => {
  it(
    '3 nodes × 1 pod: XFRM carries every pair, the underlay shows ESP between nodes and nothing in clear',
    { timeout: 1_200_000 },
    async () => {
      const r = await new Promise<{ code: number | null; out: string }>((resolve) => {
        const child = spawn(
          process.execPath,
          [
            MAIN,
            'lab',
            'up',
            '--kernel',
            'vm',
            '--nodes',
            '3',
            '--pods-per-node',
            '1',
            '--backend',
            'ipsec',
            '--ready-timeout',
            '600',
            '--json',
          ],
          {
            stdio: ['ignore', 'pipe', 'pipe'],
          },
        );
        let out = '';
        child.stdout.on('data', (c: Buffer) => (out += c.toString()));
        child.stderr.on('data', (c: Buffer) => (out += c.toString()));
        const timer = setTimeout(() => child.kill('SIGKILL'), 1_180_000);
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
      expect(s.backend).toBe('ipsec');
      expect(s.driver).toBe('xfrm');
      // 3 nodes: 6 ordered pod pairs, each with ping and TCP echo.
      expect(s.pairs).toMatchObject({ total: 6, pingOk: 6, tcpOk: 6, ok: 6 });
      // ESP (IP protocol 50) between node addresses is the only thing counted as encrypted.
      expect(s.capture.encryptedPackets).toBeGreaterThan(0);
      expect(s.capture.plaintextPackets).toBe(0);
      // The run's probe marker is in no captured frame, and the capture is whole.
      expect(s.capture.markerPackets).toBe(0);
      expect(s.capture.health.problems).toEqual([]);
      expect(s.failures).toEqual([]);
      expect(s.ok).toBe(true);
      expect(r.code).toBe(0);
    },
  );
});
