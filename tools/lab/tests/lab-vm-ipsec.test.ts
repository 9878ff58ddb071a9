import { describePrivileged } from '@veil/test-utils';
import { expect, it } from 'vitest';
import type { LabSummary } from '../src/up.js';
import { runVmLab } from './vm-lab.js';

// One qemu boot: the whole lab re-runs inside Debian's 6.1 kernel, which has ESP (the host has not).
describePrivileged('veil lab --backend ipsec --kernel vm (ESP under qemu)', ['root', 'qemu', 'netns', 'bpf', 'tcpdump'], () => {
  it(
    '3 nodes × 1 pod: XFRM carries every pair, the underlay shows ESP between nodes and nothing in clear',
    { timeout: 1_200_000 },
    async () => {
      const r = await runVmLab(
        ['--nodes', '3', '--pods-per-node', '1', '--backend', 'ipsec', '--ready-timeout', '600'],
        1_180_000,
      );
      expect(r.summary, r.out.slice(-3000)).toBeDefined();
      const s = r.summary as LabSummary;
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
