import { describePrivileged } from '@veil/test-utils';
import { expect, it } from 'vitest';
import type { LabSummary } from '../src/up.js';
import { runVmLab } from './vm-lab.js';

// One qemu boot: the whole lab re-runs inside Debian's 6.1 kernel, where WireGuard is the kernel's.
describePrivileged('veil lab --kernel vm (kernel WireGuard under qemu)', ['root', 'qemu', 'netns', 'bpf', 'tcpdump'], () => {
  it('2 nodes × 1 pod: the kernel driver carries every pair, nothing in clear', { timeout: 900_000 }, async () => {
    const r = await runVmLab(['--nodes', '2', '--pods-per-node', '1', '--backend', 'wireguard'], 880_000);
    expect(r.summary, r.out.slice(-3000)).toBeDefined();
    const s = r.summary as LabSummary;
    expect(s.driver).toContain('kernel');
    expect(s.pairs).toMatchObject({ total: 2, ok: 2 });
    expect(s.capture.encryptedPackets).toBeGreaterThan(0);
    expect(s.capture.plaintextPackets).toBe(0);
    expect(s.ok).toBe(true);
    expect(r.code).toBe(0);
  });
});
