import { Writable } from 'node:stream';
import { createLogger, type Logger } from '../observability/logger.js';
import type { ObservedNode } from '../types/index.js';
import { FAKE_KEY_ANNOTATION } from './backend.js';

/** A deterministic, valid 44-char base64 key for node i (variant v); `tag` keeps suites' keys apart. */
export function fakeKey(i: number, v = 0, tag = 'veil-test-key'): string {
  const raw = Buffer.alloc(32);
  raw.writeUInt32BE(i, 0);
  raw.writeUInt32BE(v, 4);
  raw.write(tag, 8);
  return raw.toString('base64');
}

/**
 * Node i as the distributor would observe it: `node-<i>`, one InternalIP, one /24 pod CIDR and the
 * fake backend's key annotation (`key: undefined` publishes none, a string publishes that one).
 */
export function fakeNode(i: number, over: Partial<ObservedNode> & { key?: string | undefined } = {}): ObservedNode {
  const annotations: Record<string, string> = { ...(over.annotations ?? {}) };
  if (!('key' in over)) annotations[FAKE_KEY_ANNOTATION] = fakeKey(i);
  else if (over.key !== undefined) annotations[FAKE_KEY_ANNOTATION] = over.key;
  return {
    name: over.name ?? `node-${i}`,
    internalIPs: over.internalIPs ?? [`192.168.${(i >> 8) & 255}.${i & 255}`],
    podCIDRs: over.podCIDRs ?? [`10.${(i >> 8) & 255}.${i & 255}.0/24`],
    annotations,
  };
}

/** A logger writing its JSON lines into `lines` (for assertions on what was logged). */
export function captureLogger(level = 'debug'): { logger: Logger; lines: string[]; text: () => string } {
  const lines: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, cb) {
      lines.push(
        ...chunk
          .toString('utf8')
          .split('\n')
          .filter((l) => l.length > 0),
      );
      cb();
    },
  });
  const logger = createLogger({ level }, stream);
  return { logger, lines, text: () => lines.join('\n') };
}
