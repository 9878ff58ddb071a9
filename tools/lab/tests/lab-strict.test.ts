import { existsSync } from 'node:fs';
import { describePrivileged, type Capability } from '@veil/test-utils';
import { afterAll, expect, it } from 'vitest';
import type { LabSummary } from '../src/up.js';
import { LAB_STATE, labNamespaces, veil } from './host-lab.js';

// Strict mode is the agents' datapath, not the control plane: the API double keeps this run short.
const NEEDS: Capability[] = ['root', 'netns', 'bpf', 'tun', 'wireguard-go', 'tcpdump'];

describePrivileged('veil lab up --strict --withhold-key (a node without a key gets no plaintext)', NEEDS, () => {
  afterAll(async () => {
    if (labNamespaces().length > 0 || existsSync(LAB_STATE)) await veil(['lab', 'down']);
  });

  it(
    '3 nodes × 1 pod, n3 publishes no key: every probe from n1/n2 pods to n3 pods is dropped and counted, nothing in clear; n1↔n2 still pass',
    { timeout: 600_000 },
    async () => {
      const up = await veil(
        [
          'lab',
          'up',
          '--nodes',
          '3',
          '--pods-per-node',
          '1',
          '--strict',
          '--withhold-key',
          'n3',
          '--control-plane',
          'double',
          '-o',
          'json',
        ],
        500_000,
      );
      expect(up.stderr).toContain('result: PASS');
      expect(up.code).toBe(0);
      const s = JSON.parse(up.stdout) as LabSummary;
      // The pairs between the nodes holding keys still connect, encrypted.
      expect(s.pairs).toEqual({ total: 2, pingOk: 2, tcpOk: 2, ok: 2 });
      expect(s.capture.encryptedPackets).toBeGreaterThan(0);
      const w = s.withheld;
      expect(w?.node).toBe('n3');
      expect(w?.how).toMatch(/encryption\.enabled=false/);
      // n3's pods are no sources (no Veil datapath there); both strict agents see n3 pending (no key published).
      expect(w?.sources).toEqual(['n1', 'n2']);
      expect(w?.excludedSources).toEqual(['n3-p1']);
      expect(w?.peerStates).toEqual({ n1: 'pending', n2: 'pending' });
      // 2 pairs × (3 pings + 1 TCP connect): none answered.
      expect(w?.probes).toEqual({ sent: 8, answered: 0 });
      for (const p of w?.pairs ?? []) {
        expect(p.ping).toEqual({ sent: 3, received: 0 });
        expect(p.tcp.dropped).toBe(true);
      }
      // Each strict node counted at least one strict drop per probe its pod sent.
      expect(w?.drops.map((d) => [d.node, d.required, d.ok])).toEqual([
        ['n1', 4, true],
        ['n2', 4, true],
      ]);
      // n3 has no ipcache entry (from-pod: pass-unknown), so to-wire's backstop is what drops them.
      for (const d of w?.drops ?? []) expect(d.delta['to-wire-drop-clear']).toBeGreaterThanOrEqual(d.required);
      // Nothing in clear, the marker nowhere, over the whole run's capture.
      expect(w?.capture).toEqual({ plaintextPackets: 0, markerPackets: 0 });
      expect(s.capture.plaintextPackets).toBe(0);
      expect(s.capture.markerPackets).toBe(0);
      expect(s.capture.health.problems).toEqual([]);
      expect(w?.failures).toEqual([]);
      expect(s.failures).toEqual([]);
      expect(up.stderr).toMatch(/strict mode, n3 withholds its key .*: 8\/8 probes from n1,n2 dropped, drops counted n1 \+\d+/);
      expect(labNamespaces()).toEqual([]);
    },
  );
});
