import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { beforeAll, describe, expect, inject, it } from 'vitest';
import { fixtureIn, jsonLine, nodeIn } from './helpers.js';

interface AgentRun {
  backendFrom: string;
  section: Record<string, unknown>;
  status: {
    backend: string;
    driver: string;
    synced: boolean;
    details: Record<string, unknown>;
    peers: { name: string; state: string; lastError?: string }[];
  };
  steering: unknown;
  published: Record<string, string>;
}
interface AgentFailure {
  error: string;
  message: string;
  issues?: { key: string; message: string }[];
}

/**
 * examples/backend-null, packed and installed from its tarball into the scratch project, loaded by
 * the agent by package name (`encryption.type: veil-backend-null`), with its own config section.
 */
describe('a contributor backend installed from its tarball, loaded by package name', () => {
  const { project } = inject('packCheck');
  let script: string;
  let n = 0;
  /** Writes a config file in the scratch project and runs the agent on it. */
  async function runAgent(
    yaml: string,
    env: NodeJS.ProcessEnv = {},
  ): Promise<{ code: number | null; stdout: string; stderr: string }> {
    const file = join(project, `config-${++n}.yaml`);
    await writeFile(file, `nodeName: local\nstateDir: ${join(project, `state-${n}`)}\n${yaml}`);
    return nodeIn(project, [script, file], env);
  }

  beforeAll(async () => {
    script = await fixtureIn(project, 'agent-with-backend.mjs');
  });

  it('runs the agent with it: its section from the config file, peers programmed, its material published', async () => {
    const r = await runAgent(
      [
        'encryption:',
        '  enabled: true',
        '  type: veil-backend-null',
        '  nullBackend:',
        '    label: set in config.yaml',
        '    maxPeers: 1',
        '',
      ].join('\n'),
    );
    expect(r.code, r.stderr).toBe(0);
    const out = jsonLine<AgentRun>(r.stdout);
    // Resolved inside the scratch project's node_modules, from the installed tarball.
    expect(out.backendFrom).toBe(`file://${join(project, 'node_modules', 'veil-backend-null', 'index.js')}`);
    expect(out.section).toEqual({ label: 'set in config.yaml', maxPeers: 1 });
    expect(out.status).toMatchObject({ backend: 'null', driver: 'none', synced: true });
    expect(out.status.details).toEqual({ label: 'set in config.yaml', maxPeers: 1 });
    // maxPeers: 1 is the backend's own setting at work: one peer programmed, the other refused by it.
    const states = out.status.peers.map((p) => p.state).sort();
    expect(states).toEqual(['active', 'error']);
    expect(out.status.peers.find((p) => p.state === 'error')?.lastError).toContain('encryption.nullBackend.maxPeers (1) reached');
    expect(out.steering).toEqual({ kind: 'none' });
    expect(out.published).toMatchObject({ 'veil.io/null-backend': 'true' });
  });

  it('defaults fill the section; env VEIL_ENCRYPTION_NULL_BACKEND_LABEL overrides the file', async () => {
    const r = await runAgent('encryption:\n  enabled: true\n  type: veil-backend-null\n', {
      VEIL_ENCRYPTION_NULL_BACKEND_LABEL: 'from the environment',
    });
    expect(r.code, r.stderr).toBe(0);
    const out = jsonLine<AgentRun>(r.stdout);
    expect(out.section).toEqual({ label: 'from the environment', maxPeers: 1000 });
    expect(out.status.peers.map((p) => p.state)).toEqual(['active', 'active']);
  });

  it('a bad value and an unknown key in its section are refused, each named by its full path', async () => {
    const r = await runAgent(
      [
        'encryption:',
        '  enabled: true',
        '  type: veil-backend-null',
        '  nullBackend:',
        '    maxPeers: 0',
        '    colour: blue',
        '',
      ].join('\n'),
    );
    expect(r.code).toBe(1);
    const out = jsonLine<AgentFailure>(r.stdout);
    expect(out.error).toBe('ConfigError');
    expect(out.issues?.map((i) => i.key).sort()).toEqual(['encryption.nullBackend.colour', 'encryption.nullBackend.maxPeers']);
  });

  it('a package name that is not installed is a BackendLoadError naming it', async () => {
    const r = await runAgent('encryption:\n  enabled: true\n  type: veil-backend-not-installed\n');
    expect(r.code).toBe(1);
    const out = jsonLine<AgentFailure & { code: string }>(r.stdout);
    expect(out).toMatchObject({ error: 'BackendLoadError', code: 'MODULE_NOT_FOUND' });
    expect(out.message).toContain('veil-backend-not-installed');
  });
});
