// `veil ipsec keygen`: the command function with buffers, and the built CLI as a user runs it.
// Every printed line must be accepted by the backend's own key-file parser.
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { parseKeyLine } from '@veil/backend-ipsec';
import { runIpsecKeygen } from '../src/commands/ipsec.js';
import { UsageError } from '../src/errors.js';
import type { CommandIO } from '../src/render/io.js';

const run = promisify(execFile);
const MAIN = join(import.meta.dirname, '..', 'dist', 'main.js');

function bufferIO(): CommandIO & { out: () => string } {
  let out = '';
  return { stdout: { write: (s: string) => (out += s) }, stderr: { write: () => undefined }, env: {}, out: () => out };
}

describe('veil ipsec keygen', () => {
  it('defaults to index 1, AES-128-GCM with a 128-bit ICV, per tunnel', async () => {
    const io = bufferIO();
    expect(await runIpsecKeygen({}, io)).toBe(0);
    const text = io.out();
    expect(text.endsWith('\n')).toBe(true);
    const key = parseKeyLine(text.trim());
    expect(key).toMatchObject({ spi: 1, perTunnel: true, algorithm: { kind: 'aead', name: 'rfc4106(gcm(aes))', icvBits: 128 } });
    expect(key.material).toHaveLength(20);
  });

  it('--spi and --algorithm choose the index and the cipher; two runs give different keys', async () => {
    const a = bufferIO();
    const b = bufferIO();
    await runIpsecKeygen({ spi: '7', algorithm: 'chacha20-poly1305' }, a);
    await runIpsecKeygen({ spi: '7', algorithm: 'chacha20-poly1305' }, b);
    const key = parseKeyLine(a.out().trim());
    expect(key).toMatchObject({ spi: 7, algorithm: { kind: 'aead', name: 'rfc7539esp(chacha20,poly1305)', icvBits: 128 } });
    expect(a.out()).not.toBe(b.out());
    const gcm256 = bufferIO();
    await runIpsecKeygen({ spi: '15', algorithm: 'gcm-256' }, gcm256);
    expect(parseKeyLine(gcm256.out().trim()).material).toHaveLength(36);
  });

  it('refuses an index outside 1..15 and an unknown algorithm as usage errors naming the flag', async () => {
    for (const spi of ['0', '16', 'x', '1.5']) {
      await expect(runIpsecKeygen({ spi }, bufferIO())).rejects.toThrow(
        new UsageError('--spi', `needs a key index in 1..15, got "${spi}"`),
      );
    }
    await expect(runIpsecKeygen({ algorithm: 'des' }, bufferIO())).rejects.toBeInstanceOf(UsageError);
  });

  it('the built CLI prints one parseable line and exits 0; a bad flag exits 2', async () => {
    const r = await run(process.execPath, [MAIN, 'ipsec', 'keygen', '--spi', '3', '--algorithm', 'gcm-256']);
    const lines = r.stdout.trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(parseKeyLine(lines[0] ?? '')).toMatchObject({ spi: 3, algorithm: { name: 'rfc4106(gcm(aes))' } });
    const bad = await run(process.execPath, [MAIN, 'ipsec', 'keygen', '--spi', '99']).catch(
      (e: { code: number; stderr: string }) => e,
    );
    expect(bad).toMatchObject({ code: 2 });
    expect((bad as { stderr: string }).stderr).toContain('--spi');
  });
});
