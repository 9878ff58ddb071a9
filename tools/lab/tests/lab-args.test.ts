import { runNode } from '@veil/test-utils';
import { VEIL_MAIN } from '@veil/cli';
import { describe, expect, it } from 'vitest';

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
});

describe('veil lab is registered by the CLI from this package', () => {
  it('veil lab --help lists the lab commands', () => {
    const r = veil(['lab', '--help']);
    expect(r.code).toBe(0);
    for (const c of ['up', 'down', 'status', 'exec', 'chaos']) expect(r.stdout).toMatch(new RegExp(`^  ${c}\\b`, 'm'));
  });
});
