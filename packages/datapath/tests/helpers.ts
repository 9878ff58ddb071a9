// The few agent-core test helpers the datapath suites use (agent-core's tests/helpers.ts has the
// rest); test helpers are not part of agent-core's public API.
import { Writable } from 'node:stream';
import { DEFAULT_CONFIG, createLogger, type AgentConfig, type Logger, type ObservedNode } from '@veil/agent-core';
import { FAKE_KEY_ANNOTATION } from '@veil/agent-core/fake';

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

export function testConfig(over: Partial<AgentConfig> = {}): AgentConfig {
  // Encryption on: with encryption.enabled=false (the default) the agent programs no peers (issue 12).
  return { ...DEFAULT_CONFIG, encryption: { ...DEFAULT_CONFIG.encryption, enabled: true }, nodeName: 'local', ...over };
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
