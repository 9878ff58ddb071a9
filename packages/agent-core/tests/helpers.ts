import { mkdtempSync, rmSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach } from 'vitest';
import { Registry } from 'prom-client';
import { DEFAULT_CONFIG, type Agent, type AgentConfig } from '../src/index.js';

export { fakeKey as keyFor, fakeNode as node, captureLogger } from '../src/fake/index.js';

const stateDirs: string[] = [];
// Registered in the root suite of each test file that imports this module.
afterAll(() => {
  for (const d of stateDirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function tempStateDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'veil-test-state-'));
  stateDirs.push(d);
  return d;
}

/** A config for tests; stateDir is a fresh temporary directory (the agent saves peer state there). */
export function testConfig(over: Partial<AgentConfig> = {}): AgentConfig {
  // Encryption on: with it off the agent publishes and steers nothing (see disabled.test.ts).
  return {
    ...DEFAULT_CONFIG,
    encryption: { ...DEFAULT_CONFIG.encryption, enabled: true },
    nodeName: 'local',
    stateDir: tempStateDir(),
    ...over,
  };
}

/**
 * One agent per test with its status socket in a fresh directory (named after `prefix`): registers an
 * afterEach that stops the agent `track` was given and removes the directory.
 */
export function agentPerTest(prefix: string): { statusSocket(): Promise<string>; track(agent: Agent): Agent } {
  let agent: Agent | undefined;
  let dir: string | undefined;
  afterEach(async () => {
    await agent?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
    agent = dir = undefined;
  });
  return {
    async statusSocket() {
      dir = await mkdtemp(join(tmpdir(), prefix));
      return join(dir, 'status.sock');
    },
    track(a) {
      agent = a;
      return a;
    },
  };
}

export function newRegistry(): Registry {
  return new Registry();
}

export async function until(cond: () => boolean | Promise<boolean>, timeoutMs = 10_000, what = 'condition'): Promise<void> {
  const start = Date.now();
  while (!(await cond())) {
    if (Date.now() - start > timeoutMs) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}
