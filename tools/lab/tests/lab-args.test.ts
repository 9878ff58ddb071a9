import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runNode } from '@veil/test-utils';
import { UsageError, VEIL_MAIN } from '@veil/cli';
import { afterAll, describe, expect, it } from 'vitest';
import { planLab, writeState } from '../src/state.js';
import { checkWithholdKey } from '../src/withheld.js';
import { onlyPendingOn } from '../src/up.js';

// `veil lab` as a user types it: through the CLI's dist/main.js, which loads this package.
const MAIN = VEIL_MAIN;

function veil(args: string[], env: NodeJS.ProcessEnv = {}): { code: number | null; stderr: string; stdout: string } {
  return runNode(MAIN, args, env);
}

describe('veil lab argument errors', () => {
  it('--backend ipsec on the host kernel says it needs --kernel vm (exit 2)', () => {
    const r = veil(['lab', 'up', '--backend', 'ipsec']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/needs ESP.*--kernel vm/);
  });

  it('bad numbers and unknown options are usage errors (exit 2) before anything is created', () => {
    const r = veil(['lab', 'up', '--nodes', '1']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/--nodes needs an integer in \[2, 50\]/);
    const u = veil(['lab', 'up', '--bogus']);
    expect(u.code).toBe(2);
    expect(u.stderr).toMatch(/unknown option '--bogus'/);
    expect(veil(['lab', 'chaos', '--duration', 'soon']).stderr).toMatch(/--duration: needs a duration/);
    const a = veil(['lab', 'chaos', '--actions', 'key-rotate,xfrm-melt']);
    expect(a.code).toBe(2);
    expect(a.stderr).toMatch(/unknown disturbance xfrm-melt .*xfrm-flush/);
    // Before any VM boots: the flush is an IPsec disturbance.
    const f = veil(['lab', 'chaos', '--kernel', 'vm', '--backend', 'wireguard', '--actions', 'xfrm-flush']);
    expect(f.code).toBe(2);
    expect(f.stderr).toMatch(/xfrm-flush needs an IPsec lab/);
    expect(veil(['--help']).code).toBe(0);
  });

  it('lab up and lab chaos take -o like every command (a bad one, or --json with -o yaml, is exit 2 before anything runs)', () => {
    for (const cmd of ['up', 'chaos']) {
      const bad = veil(['lab', cmd, '-o', 'xml']);
      expect(bad.code).toBe(2);
      expect(bad.stderr).toContain("--output: unknown format 'xml' (use one of: table, wide, json, yaml)");
      const both = veil(['lab', cmd, '--json', '-o', 'yaml']);
      expect(both.code).toBe(2);
      expect(both.stderr).toContain('--json: conflicts with -o yaml');
    }
  });
});

describe('veil lab up --withhold-key: refused before anything is created (exit 2), naming the flag', () => {
  it('an unknown node, no --strict, or fewer than 3 nodes', () => {
    const unknown = veil(['lab', 'up', '--strict', '--nodes', '3', '--withhold-key', 'n9']);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toContain('--withhold-key: no node "n9" in this lab (--nodes 3: n1..n3)');
    // Without strict mode traffic to a keyless node is sent in clear by design: nothing for the lab to prove.
    const lax = veil(['lab', 'up', '--withhold-key', 'n3']);
    expect(lax.code).toBe(2);
    expect(lax.stderr).toMatch(/--withhold-key: needs --strict: .*sent in clear \(pass-unknown\)/);
    const two = veil(['lab', 'up', '--strict', '--nodes', '2', '--withhold-key', 'n2']);
    expect(two.code).toBe(2);
    expect(two.stderr).toContain('--withhold-key: needs --nodes 3 or more');
    // Also before a VM boots.
    const vm = veil(['lab', 'up', '--kernel', 'vm', '--withhold-key', 'n1']);
    expect(vm.code).toBe(2);
    expect(vm.stderr).toContain('--withhold-key: needs --strict');
    expect(veil(['lab', 'up', '--help']).stdout).toMatch(/--withhold-key <node>/);
  });

  it('checkWithholdKey accepts a lab node with --strict and 3+ nodes, and no flag at all', () => {
    expect(() => checkWithholdKey({ withholdKey: 'n3', strict: true, nodes: 3 })).not.toThrow();
    expect(() => checkWithholdKey({ strict: false, nodes: 2 })).not.toThrow();
    expect(() => checkWithholdKey({ withholdKey: 'n0', strict: true, nodes: 3 })).toThrow(UsageError);
  });
});

describe('veil lab up --withhold-key: readiness with a peer that has no key', () => {
  it("only agent-core's 'peers pending' reason naming the withheld node is excused", () => {
    expect(onlyPendingOn('peers pending with no encryption for over 60s: n3', 'n3')).toBe(true);
    expect(onlyPendingOn('peers pending with no encryption for over 60s: n2', 'n3')).toBe(false);
    expect(onlyPendingOn('datapath not attached; peers pending with no encryption for over 60s: n3', 'n3')).toBe(false);
    expect(onlyPendingOn('peers pending with no encryption for over 60s: n3', undefined)).toBe(false);
    expect(onlyPendingOn(undefined, 'n3')).toBe(false);
  });
});

describe('veil lab is registered by the CLI from this package', () => {
  it('veil lab --help lists the lab commands', () => {
    const r = veil(['lab', '--help']);
    expect(r.code).toBe(0);
    for (const c of ['up', 'down', 'status', 'exec', 'chaos']) expect(r.stdout).toMatch(new RegExp(`^  ${c}\\b`, 'm'));
  });
});

describe('veil lab status: -o table|wide|json|yaml, --json kept as a deprecated alias', () => {
  // A recorded lab (no namespaces needed): n1's "agent" is this test process (alive), n2's is gone;
  // neither answers on its status socket.
  const dir = mkdtempSync(join(tmpdir(), 'veil-lab-status-'));
  const nodes = planLab(2, 1, dir, join(dir, 'bpf'));
  nodes[0]!.agentPid = process.pid;
  writeState({
    version: 1,
    createdAt: '2026-01-02T03:04:05.000Z',
    labDir: dir,
    backend: 'wireguard',
    backendType: 'wireguard',
    wireguardPort: 51871,
    bpffsRoot: join(dir, 'bpf'),
    bpffsMounted: false,
    apiserver: { url: 'http://198.18.0.254:6443', logFile: join(dir, 'apiserver.log') },
    nodes,
    helperPids: [],
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const status = (...args: string[]) => veil(['lab', 'status', '--lab-dir', dir, ...args]);

  it('table (the default) and wide', { timeout: 180_000 }, () => {
    const table = status();
    expect(table.code).toBe(0);
    expect(status('-o', 'table').stdout).toBe(table.stdout);
    const lines = table.stdout.split('\n');
    expect(lines[0]).toBe(
      `lab ${dir} (backend wireguard, since 2026-01-02T03:04:05.000Z); API server http://198.18.0.254:6443 pid - NOT running`,
    );
    const agents = [`${process.pid} running`, '- NOT running'];
    const w = Math.max(...agents.map((a) => a.length));
    expect(lines.slice(1, 4)).toEqual([
      `NODE   UNDERLAY IP   POD CIDR                           ${'AGENT'.padEnd(w)}   STATUS      PEERS`,
      `n1     198.18.0.1    10.244.1.0/24,fd00:10:244:1::/64   ${agents[0]!.padEnd(w)}   no status   -`,
      `n2     198.18.0.2    10.244.2.0/24,fd00:10:244:2::/64   ${agents[1]!.padEnd(w)}   no status   -`,
    ]);
    const wide = status('-o', 'wide').stdout.split('\n');
    expect(wide[1]).toMatch(/^NODE +UNDERLAY IP +POD CIDR +AGENT +STATUS +PEERS +NETNS +DRIVER +PODS$/);
    // Dual-stack pods: both addresses.
    expect(wide[2]).toMatch(/ +veil-lab-n1 +- +n1-p1=10\.244\.1\.11,fd00:10:244:1::11$/);
  });

  it('json and yaml are one document (kind LabStatus); --json is -o json', { timeout: 180_000 }, () => {
    const json = status('-o', 'json');
    expect(json.code).toBe(0);
    const doc = JSON.parse(json.stdout) as {
      kind: string;
      backend: string;
      nodes: { node: string; alive: boolean; pods: string[] }[];
    };
    expect(doc.kind).toBe('LabStatus');
    expect(doc.backend).toBe('wireguard');
    expect(doc.nodes.map((n) => [n.node, n.alive, n.pods])).toEqual([
      ['n1', true, ['n1-p1=10.244.1.11,fd00:10:244:1::11']],
      ['n2', false, ['n2-p1=10.244.2.11,fd00:10:244:2::11']],
    ]);
    expect(status('--json').stdout).toBe(json.stdout);
    const yaml = status('-o', 'yaml');
    expect(yaml.code).toBe(0);
    expect(yaml.stdout).toMatch(/^kind: LabStatus$/m);
    expect([...yaml.stdout.matchAll(/^ {2}- node: (n\d)$/gm)].map((m) => m[1])).toEqual(['n1', 'n2']);
  });

  it('a bad format, or --json with another -o, is a usage error (exit 2)', { timeout: 180_000 }, () => {
    const bad = status('-o', 'xml');
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain("--output: unknown format 'xml' (use one of: table, wide, json, yaml)");
    const both = status('--json', '-o', 'yaml');
    expect(both.code).toBe(2);
    expect(both.stderr).toContain('--json: conflicts with -o yaml');
  });
});
