import { pino, type DestinationStream, type Logger as PinoLogger } from 'pino';

/** The agent's logger type (pino). */
export type Logger = PinoLogger;

/**
 * Field names whose values are never logged, at any of the first three nesting levels.
 * Backends additionally keep private keys in `Secret`, which serializes as `[REDACTED]`.
 */
const REDACTED_FIELDS = [
  'privateKey',
  'presharedKey',
  'secret',
  'secrets',
  'key',
  'keys',
  'aead',
  'authKey',
  'encKey',
  'password',
  'token',
];

function redactPaths(): string[] {
  const out: string[] = [];
  for (const f of REDACTED_FIELDS) out.push(f, `*.${f}`, `*.*.${f}`);
  return out;
}

/** Creates the agent's root logger (JSON lines on stdout unless a destination is given). */
export function createLogger(opts: { level?: string; name?: string } = {}, destination?: DestinationStream): Logger {
  const options = {
    level: opts.level ?? 'info',
    name: opts.name ?? 'veil-agent',
    redact: { paths: redactPaths(), censor: '[REDACTED]' },
    serializers: { err: pino.stdSerializers.err },
  };
  return destination ? pino(options, destination) : pino(options);
}
