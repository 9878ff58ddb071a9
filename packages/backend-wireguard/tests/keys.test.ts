import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { chmodSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { inspect } from 'node:util';
import { Key } from '../src/index.js';
import { KeyFileError, KeyStore } from '../src/index.js';

let root: string;
beforeEach(() => {
  root = mkdtempSync(join(tmpdir(), 'wgb-keys-'));
});
afterEach(() => {
  rmSync(root, { recursive: true, force: true });
});

const mode = (p: string) => statSync(p).mode & 0o777;

describe('KeyStore', () => {
  it('creates a key with mode 0600 in a 0700 dir, and reuses it on restart', async () => {
    const dir = join(root, 'state', 'wg');
    const a = await KeyStore.open({ dir });
    expect(a.created).toBe(true);
    expect(mode(dir)).toBe(0o700);
    expect(mode(a.path)).toBe(0o600);
    const text = readFileSync(a.path, 'utf8');
    expect(text).toMatch(/^[A-Za-z0-9+/]{43}=\n$/);
    expect(Key.parse(text.trim()).equals(a.privateKey())).toBe(true);
    expect(a.publicKey.equals(a.privateKey().publicKey())).toBe(true);

    const b = await KeyStore.open({ dir });
    expect(b.created).toBe(false);
    expect(b.privateKey().equals(a.privateKey())).toBe(true);
    // No temporary files are left behind.
    expect(readdirSync(dir)).toEqual(['wireguard.key']);
  });

  it('tightens a too-open key file and state dir', async () => {
    const a = await KeyStore.open({ dir: root });
    chmodSync(a.path, 0o644);
    chmodSync(root, 0o755);
    await KeyStore.open({ dir: root });
    expect(mode(a.path)).toBe(0o600);
    expect(mode(root)).toBe(0o700);
  });

  it('warns, instead of silently fixing, a key file or state dir others could read (issue 12)', async () => {
    const a = await KeyStore.open({ dir: root });
    expect(a.warnings).toEqual([]);
    chmodSync(a.path, 0o644);
    chmodSync(root, 0o755);
    const b = await KeyStore.open({ dir: root });
    expect(b.warnings).toEqual([
      expect.stringMatching(new RegExp(`^state dir ${root} had mode 0755.*tightened to 0700`)),
      expect.stringMatching(new RegExp(`^key file ${a.path} had mode 0644.*readable by others.*tightened to 0600.*rotat`)),
    ]);
    expect(mode(a.path)).toBe(0o600);
  });

  it.each([
    ['wrong size (16 bytes)', Buffer.alloc(16, 7).toString('base64') + '\n'],
    ['garbage', 'hello world, not a key\n'],
    ['hex instead of base64', 'ab'.repeat(32) + '\n'],
    ['two keys', `${Key.generatePrivate().toBase64()}\n${Key.generatePrivate().toBase64()}\n`],
    ['empty file', ''],
    ['all-zero key', `${Buffer.alloc(32).toString('base64')}\n`],
    ['huge file', 'A'.repeat(10_000)],
  ])('refuses a corrupt key file (%s) with a typed error and leaves it untouched', async (_n, content) => {
    const path = join(root, 'wireguard.key');
    writeFileSync(path, content, { mode: 0o600 });
    const before = statSync(path);
    await expect(KeyStore.open({ dir: root })).rejects.toBeInstanceOf(KeyFileError);
    const err = (await KeyStore.open({ dir: root }).catch((e: unknown) => e)) as KeyFileError;
    expect(err.path).toBe(path);
    expect(err.message).toContain('left untouched');
    expect(readFileSync(path, 'utf8')).toBe(content);
    expect(statSync(path).mtimeMs).toBe(before.mtimeMs);
    expect(statSync(path).ino).toBe(before.ino);
  });

  it('rotates: new key current, previous kept aside until confirmed, survives restart', async () => {
    const ks = await KeyStore.open({ dir: root });
    const oldPriv = ks.privateKey();
    const newPub = await ks.rotate();
    expect(ks.publicKey.equals(newPub)).toBe(true);
    expect(ks.rotating).toBe(true);
    expect(ks.previousPublicKey?.equals(oldPriv.publicKey())).toBe(true);
    expect(mode(ks.previousPath)).toBe(0o600);

    const reopened = await KeyStore.open({ dir: root });
    expect(reopened.publicKey.equals(newPub)).toBe(true);
    expect(reopened.previousPublicKey?.equals(oldPriv.publicKey())).toBe(true);

    // A second rotation before confirmation keeps the original previous key.
    await ks.rotate();
    expect(ks.previousPublicKey?.equals(oldPriv.publicKey())).toBe(true);

    await ks.confirmRotation();
    expect(ks.rotating).toBe(false);
    expect(readdirSync(root)).toEqual(['wireguard.key']);
  });

  it('never shows private key material in toString, JSON, inspect or errors', async () => {
    const ks = await KeyStore.open({ dir: root });
    await ks.rotate();
    const secrets = [ks.privateKey(), (await KeyStore.open({ dir: root })).privateKey()].flatMap((k) => [
      k.toBase64(),
      k.toHex(),
    ]);
    const prevText = readFileSync(ks.previousPath, 'utf8').trim();
    secrets.push(prevText, Key.parse(prevText).toHex());
    const shown = [
      String(ks),
      // eslint-disable-next-line @typescript-eslint/restrict-template-expressions -- what a template literal shows is the point
      `${ks}`,
      JSON.stringify(ks),
      JSON.stringify({ ks }),
      inspect(ks),
      inspect({ nested: { ks } }, { depth: 10, showHidden: true }),
    ];
    for (const s of shown) for (const secret of secrets) expect(s).not.toContain(secret);
    expect(JSON.stringify(ks)).toContain(ks.publicKey.toBase64());

    // A corrupt file whose content looks like a key fragment: the error does not echo it.
    const leaky = `${ks.privateKey().toBase64().slice(0, 40)}!!!!\n`;
    writeFileSync(join(root, 'other.key'), leaky, { mode: 0o600 });
    const err = (await KeyStore.open({ dir: root, fileName: 'other.key' }).catch((e: unknown) => e)) as Error;
    expect(err).toBeInstanceOf(KeyFileError);
    expect(`${err.message} ${JSON.stringify(err)} ${inspect(err)}`).not.toContain(leaky.trim());
  });

  it('validates its options', async () => {
    await expect(KeyStore.open({ dir: '' })).rejects.toMatchObject({ name: 'WgValidationError', field: 'dir' });
    await expect(KeyStore.open({ dir: root, fileName: '../x' })).rejects.toMatchObject({
      name: 'WgValidationError',
      field: 'fileName',
    });
  });
});
