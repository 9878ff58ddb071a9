import { runNode } from '@veil/test-utils';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const MAIN = fileURLToPath(new URL('../dist/main.js', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'veil-lab-agent-'));

function veil(args: string[], env: NodeJS.ProcessEnv = {}): { code: number | null; stderr: string; stdout: string } {
  return runNode(MAIN, args, env);
}

describe('veil agent start-up errors', () => {
  it('a bad config file: exit 1, one line naming every bad key, no stack trace', () => {
    const cfg = join(dir, 'bad.yaml');
    writeFileSync(cfg, 'nodeName: n1\nencryption:\n  wireguard:\n    port: 70000\n  typo: true\n');
    const r = veil(['agent', '--config', cfg]);
    expect(r.code).toBe(1);
    const lines = r.stderr.trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/^veil agent: ConfigError: /);
    expect(lines[0]).toContain('encryption.wireguard.port');
    expect(lines[0]).toContain('encryption.typo: unknown key');
    expect(r.stderr).not.toMatch(/\n\s+at /);
  });

  it('a bad flag value names the key; --debug adds the stack', () => {
    const r = veil(['agent', '--nodeName=n1', '--encryption.wireguard.port=abc']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/encryption\.wireguard\.port: expected a number, got "abc" \(from flag\)/);
    const d = veil(['agent', '--nodeName=n1', '--encryption.wireguard.port=abc', '--debug']);
    expect(d.code).toBe(1);
    expect(d.stderr).toMatch(/\n\s+at /);
  });

  it('an unreadable kubeconfig names --kubeconfig', () => {
    const r = veil(['agent', '--nodeName=n1', '--kubeconfig', join(dir, 'missing.yaml')]);
    expect(r.code).toBe(1);
    expect(r.stderr.trim()).toMatch(/^veil agent: UsageError: --kubeconfig: cannot load .*missing\.yaml/);
  });

  it('an unknown backend is a BackendLoadError naming it', () => {
    const kc = join(dir, 'kc.json');
    writeFileSync(
      kc,
      JSON.stringify({
        apiVersion: 'v1',
        kind: 'Config',
        clusters: [{ name: 'c', cluster: { server: 'http://127.0.0.1:1', 'insecure-skip-tls-verify': true } }],
        users: [{ name: 'u', user: {} }],
        contexts: [{ name: 'x', context: { cluster: 'c', user: 'u' } }],
        'current-context': 'x',
      }),
    );
    const r = veil([
      'agent',
      '--nodeName=n1',
      '--kubeconfig',
      kc,
      '--pod-cidrs',
      '10.9.0.0/24',
      '--encryption.type=no-such-backend-pkg',
      '--stateDir',
      join(dir, 's'),
      '--status.socketPath',
      join(dir, 'st.sock'),
      '--health.port=0',
      '--metrics.port=0',
      '--bpf-pin-dir',
      join(dir, 'pins'),
      '--bpffs-root',
      join(dir, 'bpffs'),
    ]);
    expect(r.code).toBe(1);
    expect(r.stderr.trim()).toMatch(/^veil agent: BackendLoadError: backend "no-such-backend-pkg" not found/);
  });
});
