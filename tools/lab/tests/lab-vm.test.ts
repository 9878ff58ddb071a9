import { describePrivileged } from '@veil/test-utils';
import { expect, it } from 'vitest';
import type { LabSummary } from '../src/up.js';
import { runVmLab } from './vm-lab.js';

// One qemu boot: the whole lab re-runs inside Debian's 6.1 kernel, where WireGuard is the kernel's.
describePrivileged('veil lab --kernel vm (kernel WireGuard under qemu)', ['root', 'qemu', 'netns', 'bpf', 'tcpdump'], () => {
  it(
    "2 nodes × 1 pod, strict mode and node encryption: the kernel driver carries every pod pair (IPv4 and IPv6) and the nodes' own pings, nothing in clear",
    { timeout: 900_000 },
    async () => {
      const r = await runVmLab(
        ['--nodes', '2', '--pods-per-node', '1', '--backend', 'wireguard', '--strict', '--node-encryption'],
        880_000,
      );
      expect(r.summary, r.out.slice(-3000)).toBeDefined();
      const s = r.summary as LabSummary;
      expect(s.driver).toContain('kernel');
      expect(s.pairs).toMatchObject({ total: 2, ok: 2 });
      // Dual-stack pods: the same pairs over IPv6, inside kernel WireGuard between the IPv4 node addresses.
      expect(s.pairsIPv6).toMatchObject({ total: 2, ok: 2 });
      expect(s.capture.encryptedPackets).toBeGreaterThan(0);
      expect(s.capture.plaintextPackets).toBe(0);
      // Node to node (host traffic, steered by to-wire): both pings answered, and their marker payload
      // never on the wire in clear.
      expect(s.nodePairs).toEqual({ total: 2, ok: 2 });
      expect(s.capture.markerPackets).toBe(0);
      expect(s.ok).toBe(true);
      expect(r.code).toBe(0);
    },
  );
});
