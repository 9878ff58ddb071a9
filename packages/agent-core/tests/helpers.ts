import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { afterAll } from 'vitest';
import { Registry } from 'prom-client';
import { DEFAULT_CONFIG, createLogger, type AgentConfig, type Logger, type ObservedNode } from '../src/index.js';
import { FAKE_KEY_ANNOTATION } from '../src/fake/index.js';

/** A deterministic, valid 44-char base64 key for node i (variant v). */
export function keyFor(i: number, v = 0): string {
  const raw = Buffer.alloc(32);
  raw.writeUInt32BE(i, 0);
  raw.writeUInt32BE(v, 4);
  raw.write('veil-test-key', 8);
  return raw.toString('base64');
}

export function node(i: number, over: Partial<ObservedNode> & { key?: string | undefined } = {}): ObservedNode {
  const annotations: Record<string, string> = { ...(over.annotations ?? {}) };
  if (!('key' in over)) annotations[FAKE_KEY_ANNOTATION] = keyFor(i);
  else if (over.key !== undefined) annotations[FAKE_KEY_ANNOTATION] = over.key;
  return {
    name: over.name ?? `node-${i}`,
    internalIPs: over.internalIPs ?? [`192.168.${(i >> 8) & 255}.${i & 255}`],
    podCIDRs: over.podCIDRs ?? [`10.${(i >> 8) & 255}.${i & 255}.0/24`],
    annotations,
  };
}

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
  return { ...DEFAULT_CONFIG, encryption: { ...DEFAULT_CONFIG.encryption, enabled: true }, nodeName: 'local', stateDir: tempStateDir(), ...over };
}

/** A logger writing JSON lines into `lines`. */
export function captureLogger(level = 'debug'): { logger: Logger; lines: string[]; text: () => string } {
  const lines: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, cb) {
      lines.push(...chunk.toString('utf8').split('\n').filter((l) => l.length > 0));
      cb();
    },
  });
  const logger = createLogger({ level }, stream);
  return { logger, lines, text: () => lines.join('\n') };
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
