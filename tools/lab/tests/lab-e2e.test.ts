import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { getJsonOverUnixSocket } from '@veil/agent-core';
import { describePrivileged, type Capability } from '@veil/test-utils';
import { afterAll, expect, it } from 'vitest';
import type { LabSummary } from '../src/up.js';
import type { LabState } from '../src/state.js';
import { LAB_STATE, labNamespaces, veil } from './host-lab.js';
import { CHAOS_ACTIONS, type ChaosReport } from '../src/chaos.js';

function pidsIn(ns: string): number[] {
  return execFileSync('ip', ['netns', 'pids', ns], { encoding: 'utf8' }).split(/\s+/).filter(Boolean).map(Number);
}

function alive(pid: number): boolean {
  try {
    return !/\) Z /.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
}

function summaryOf(stdout: string): LabSummary {
  return JSON.parse(stdout.trim().split('\n').pop() ?? '{}') as LabSummary;
}

// The real control plane (kube-apiserver + etcd with the chart's RBAC): under CI these must run, so the programs
// are capabilities; `--control-plane kube-apiserver` makes `up` fail rather than fall back to the API double.
const NEEDS: Capability[] = ['root', 'netns', 'bpf', 'tun', 'wireguard-go', 'tcpdump', 'etcd', 'kube-apiserver', 'helm'];

describePrivileged('veil lab (real agents in namespaces, real kube-apiserver, CNI-made pods)', NEEDS, () => {
  afterAll(async () => {
    if (labNamespaces().length > 0 || existsSync(LAB_STATE)) await veil(['lab', 'down']);
  });

  it(
    '3 nodes × 2 pods over WireGuard (wireguard-go): every pair connects, nothing in clear, chaos loses no traffic; down leaves nothing',
    { timeout: 1_200_000 },
    async () => {
      const up = await veil(
        [
          'lab',
          'up',
          '--nodes',
          '3',
          '--pods-per-node',
          '2',
          '--backend',
          'wireguard',
          '--control-plane',
          'kube-apiserver',
          '--keep',
          '--json',
        ],
        500_000,
      );
      expect(up.stderr).toContain('result: PASS');
      expect(up.code).toBe(0);
      const s = summaryOf(up.stdout);
      expect(s.pairs).toEqual({ total: 24, pingOk: 24, tcpOk: 24, ok: 24 });
      // Dual-stack pods: the same 24 pairs over IPv6, inside the IPv4 underlay's tunnels.
      expect(s.pairsIPv6).toEqual({ total: 24, pingOk: 24, tcpOk: 24, ok: 24 });
      expect(up.stderr).toContain('24/24 OK over IPv4 (ping 24/24, tcp echo 24/24), 24/24 OK over IPv6');
      // The plaintext count covers the pods' IPv6 addresses too (any frame with one, not counted as encrypted).
      expect(s.capture.plaintextPackets).toBe(0);
      expect(s.capture.plaintextIPv6Packets).toBe(0);
      expect(s.capture.plaintextBytes).toBe(0);
      expect(s.capture.encryptedPackets).toBeGreaterThan(0);
      // The probes' marker never crosses in clear; every tunnel-port packet is WireGuard between nodes; the capture is whole.
      expect(s.marker).toMatch(/^[0-9a-f]{32}$/);
      expect(s.capture.markerPackets).toBe(0);
      expect(s.capture.malformedTunnelPackets).toBe(0);
      expect(s.capture.health.problems).toEqual([]);
      expect(s.capture.health.droppedByKernel).toBe(0);
      expect(s.capture.health.captured).toBe(s.capture.packets);
      expect(s.driver).toMatch(/userspace|kernel/);
      expect(s.failures).toEqual([]);
      // The agents ran on the real apiserver with their node-bound tokens, and it refused none of their calls.
      expect(s.controlPlane.kind).toBe('kube-apiserver');
      expect(s.controlPlane.agentDenials).toEqual([]);
      expect(up.stderr).toContain('node restriction in force');

      // Every pod's node-side veth was made by the CNI plugin (ptp names them veth + 8 hex), and the agent's
      // datapath found and attached its from-pod program to exactly those (the chart's podVethPatterns).
      const labState = JSON.parse(readFileSync(LAB_STATE, 'utf8')) as LabState;
      expect(labState.apiserver.kind).toBe('kube-apiserver');
      for (const n of labState.nodes) for (const p of n.pods) expect(p.hostVeth).toMatch(/^veth[0-9a-f]{8}$/);
      expect(labState.nodes.map((n) => n.podCIDR6)).toEqual(['fd00:10:244:1::/64', 'fd00:10:244:2::/64', 'fd00:10:244:3::/64']);
      expect(labState.nodes.flatMap((n) => n.pods.map((p) => p.ip6))).toEqual([
        'fd00:10:244:1::11',
        'fd00:10:244:1::12',
        'fd00:10:244:2::11',
        'fd00:10:244:2::12',
        'fd00:10:244:3::11',
        'fd00:10:244:3::12',
      ]);

      const status = await veil(['lab', 'status', '--json']);
      expect(status.code).toBe(0);
      const st = JSON.parse(status.stdout) as {
        nodes: { node: string; alive: boolean; status?: { ready: boolean }; podCIDR: string; pods: string[] }[];
      };
      expect(st.nodes.map((n) => [n.node, n.alive, n.status?.ready])).toEqual([
        ['n1', true, true],
        ['n2', true, true],
        ['n3', true, true],
      ]);
      expect(st.nodes[0]?.podCIDR).toBe('10.244.1.0/24,fd00:10:244:1::/64');
      expect(st.nodes[0]?.pods).toEqual(['n1-p1=10.244.1.11,fd00:10:244:1::11', 'n1-p2=10.244.1.12,fd00:10:244:1::12']);
      for (const n of labState.nodes) {
        // The agent's own account of its tc attachments (`/v1/agent` on its status socket).
        const info = (await getJsonOverUnixSocket(n.statusSocket, '/v1/agent')) as {
          datapath: { interfacesSource: string; interfaces: { ifname: string; role?: string }[] };
        };
        expect(info.datapath.interfacesSource).toBe('attachments');
        const podIfs = info.datapath.interfaces.filter((x) => x.role === 'pod').map((x) => x.ifname);
        expect(podIfs.sort()).toEqual(n.pods.map((p) => p.hostVeth).sort());
      }
      const exec = await veil(['lab', 'exec', 'n1-p1', '--', 'ping', '-c', '1', '-W', '2', '10.244.3.12']);
      expect(exec.code).toBe(0);
      const exec6 = await veil(['lab', 'exec', 'n1-p1', '--', 'ping', '-6', '-c', '1', '-W', '2', 'fd00:10:244:3::12']);
      expect(exec6.code).toBe(0);

      // Chaos: agents killed (TERM and KILL) and restarted, API server restarted (with and without its state), a
      // hostile node publishing another's key while an agent restarts, nodes added and deleted, WireGuard key
      // rotations, a node's key replaced on its Node object by someone else (annotation tampering), under continuous
      // pings. A restart keeps kernel state, a rotated key is handshaken by whoever learns it, and a new key takes a
      // node's traffic only once it has handshaken (a forged one never does): no ping may be lost.
      // The real apiserver's restarts take the longest (tens of seconds on a loaded machine): they go last, so every
      // disturbance has started before the run's time is up.
      const zeroLoss = [...CHAOS_ACTIONS].sort((a, b) => Number(a.startsWith('apiserver')) - Number(b.startsWith('apiserver')));
      const chaos = await veil(
        ['lab', 'chaos', '--duration', '45s', '--interval', '1s', '--actions', zeroLoss.join(','), '--json'],
        600_000,
      );
      expect(chaos.stderr).toContain('result: PASS');
      expect(chaos.code).toBe(0);
      const report = JSON.parse(chaos.stdout.trim().split('\n').pop() ?? '{}') as ChaosReport;
      expect(new Set(report.actions.map((a) => a.action))).toEqual(new Set(zeroLoss));
      expect(report.actions.filter((a) => a.error !== undefined)).toEqual([]);
      expect(report.readyAtEnd).toBe(3);
      expect(report.capture.plaintextPackets).toBe(0);
      expect(report.capture.markerPackets).toBe(0);
      expect(report.capture.malformedTunnelPackets).toBe(0);
      expect(report.capture.health.problems).toEqual([]);
      expect(report.capture.encryptedPackets).toBeGreaterThan(0);
      expect(report.maxLostPings).toBe(0);
      // The failures include any agent call the real apiserver refused (its audit log): there must be none.
      expect(report.failures).toEqual([]);
      for (const p of report.pings) {
        expect(p.received).toBeGreaterThan(0);
        // A restart that tore the datapath or the tunnel down would lose pings.
        expect(p.lost).toBe(0);
      }

      const namespaces = labNamespaces();
      expect(namespaces).toHaveLength(1 + 3 + 6);
      const pids = namespaces.flatMap(pidsIn);
      expect(pids.length).toBeGreaterThanOrEqual(3 + 3 + 6 + 1); // agents, wireguard-go, echo servers, API server
      const down = await veil(['lab', 'down']);
      expect(down.code).toBe(0);
      expect(labNamespaces()).toEqual([]);
      expect(pids.filter(alive)).toEqual([]);
      expect(existsSync(LAB_STATE)).toBe(false);
    },
  );

  it(
    'up cleans up a crashed lab first (killed agents, stale namespaces); the plaintext backend shows up in the capture',
    { timeout: 1_100_000 },
    async () => {
      const first = await veil(
        [
          'lab',
          'up',
          '--nodes',
          '2',
          '--pods-per-node',
          '1',
          '--backend',
          'plaintext',
          '--control-plane',
          'kube-apiserver',
          '--keep',
          '--json',
        ],
        500_000,
      );
      expect(first.code, `${first.stdout}\n${first.stderr}`).toBe(0);
      const state = JSON.parse(readFileSync(LAB_STATE, 'utf8')) as LabState;
      // Simulate a crash: every lab process dies at once, nothing is cleaned.
      const killed = [...state.nodes.map((n) => n.agentPid), state.apiserver.pid].filter((p): p is number => p !== undefined);
      // The control plane helper's children (etcd, kube-apiserver) are orphaned by its SIGKILL: the next up must end them.
      const controlPlane = pidsIn('veil-lab-ul');
      expect(controlPlane.length).toBeGreaterThanOrEqual(3);
      for (const pid of killed) process.kill(pid, 'SIGKILL');
      execFileSync('ip', ['netns', 'add', 'veil-lab-n9']); // a stray namespace the state does not know

      const second = await veil(
        [
          'lab',
          'up',
          '--nodes',
          '2',
          '--pods-per-node',
          '2',
          '--backend',
          'plaintext',
          '--control-plane',
          'kube-apiserver',
          '--json',
        ],
        500_000,
      );
      expect(second.stderr).toContain('removed a previous lab');
      expect(second.code).toBe(0);
      const s = summaryOf(second.stdout);
      expect(s.pairs).toEqual({ total: 8, pingOk: 8, tcpOk: 8, ok: 8 });
      expect(s.pairsIPv6).toEqual({ total: 8, pingOk: 8, tcpOk: 8, ok: 8 });
      // No encryption: the capture must see the pod addresses, IPv6 ones too (this is what proves it can).
      expect(s.expectsEncryption).toBe(false);
      expect(s.capture.plaintextPackets).toBeGreaterThan(0);
      // Each family's pings (3 per pair, request and reply) in clear at least.
      expect(s.capture.plaintextIPv6Packets).toBeGreaterThanOrEqual(8 * 3 * 2);
      expect(s.capture.plaintextPackets - s.capture.plaintextIPv6Packets).toBeGreaterThanOrEqual(8 * 3 * 2);
      expect(s.capture.encryptedPackets).toBe(0);
      // …and the run's marker in the payloads (ping and TCP): the marker search sees a leak when there is one.
      expect(s.capture.markerPackets).toBeGreaterThanOrEqual(2 * 8 * 3);
      expect(s.capture.health.problems).toEqual([]);
      expect(labNamespaces()).toEqual([]);
      expect(killed.filter(alive)).toEqual([]);
      expect(controlPlane.filter(alive)).toEqual([]);
      expect(existsSync(LAB_STATE)).toBe(false);
    },
  );
});
