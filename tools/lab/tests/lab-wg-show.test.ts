// `wg show` just works in the lab: each node has its own /run/wireguard (its agent, its
// wireguard-go and `veil lab exec <node> -- …` see it), so `veil lab exec n1 -- wg show` shows n1's
// device, whose peers are the other nodes' public keys. Host lab: run under
// `flock /tmp/veil-hostlab.lock`.
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { describePrivileged } from '@veil/test-utils';
import { afterAll, expect, it } from 'vitest';
import type { LabState } from '../src/state.js';
import { LAB_STATE, labNamespaces, veil } from './host-lab.js';

describePrivileged('veil lab exec <node> -- wg show', ['root', 'netns', 'bpf', 'tun', 'wireguard-go', 'wg', 'tcpdump'], () => {
  afterAll(async () => {
    if (labNamespaces().length > 0 || existsSync(LAB_STATE)) await veil(['lab', 'down']);
  });

  it("shows that node's device; its peers are exactly the other nodes' published public keys", { timeout: 420_000 }, async () => {
    const hostRunDir = existsSync('/run/wireguard') ? execFileSync('ls', ['-A', '/run/wireguard'], { encoding: 'utf8' }) : '';
    const up = await veil(['lab', 'up', '--nodes', '3', '--pods-per-node', '1', '--backend', 'wireguard', '--keep']);
    // What this test is about is the WireGuard view, not the capture (lab-e2e checks that).
    expect(up.stderr, up.stderr).toContain('agents ready with all peers active: 3/3');
    // 6 pairs, each over IPv4 and IPv6 (the lab is dual-stack).
    expect(up.stderr).toMatch(/ping: 12\/12 probes OK/);

    const state = JSON.parse(readFileSync(LAB_STATE, 'utf8')) as LabState;
    const publicKeys = new Map<string, string>();
    for (const n of state.nodes) {
      // The key each agent publishes (its status socket), independent of wg(8).
      const st = await veil(['status', '-o', 'json', '--socket', n.statusSocket]);
      expect(st.code, st.stderr).toBe(0);
      const key = (JSON.parse(st.stdout) as { nodeKey: { annotations: Record<string, string> } }).nodeKey.annotations[
        'veil.io/wireguard-public-key'
      ];
      expect(key).toMatch(/^[A-Za-z0-9+/]{43}=$/);
      publicKeys.set(n.name, key!);
    }
    expect(new Set(publicKeys.values()).size).toBe(3);

    for (const [self, others] of [
      ['n1', ['n2', 'n3']],
      ['n2', ['n1', 'n3']],
    ] as const) {
      const wg = await veil(['lab', 'exec', self, '--', 'wg', 'show']);
      expect(wg.code, wg.stderr).toBe(0);
      expect([...wg.stdout.matchAll(/^interface: (\S+)$/gm)].map((m) => m[1])).toEqual(['veil_wg0']);
      expect(/^ {2}public key: (\S+)$/m.exec(wg.stdout)?.[1]).toBe(publicKeys.get(self));
      const peers = [...wg.stdout.matchAll(/^peer: (\S+)$/gm)].map((m) => m[1]);
      expect(peers.sort()).toEqual(others.map((o) => publicKeys.get(o)).sort());
    }
    // The sockets are the nodes' own: the host's /run/wireguard is as it was.
    expect(existsSync('/run/wireguard') ? execFileSync('ls', ['-A', '/run/wireguard'], { encoding: 'utf8' }) : '').toBe(
      hostRunDir,
    );

    const down = await veil(['lab', 'down']);
    expect(down.code).toBe(0);
    expect(labNamespaces()).toEqual([]);
  });
});
