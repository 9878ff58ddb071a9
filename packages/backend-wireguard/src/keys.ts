import { randomBytes } from 'node:crypto';
import { chmod, lstat, mkdir, open, readFile, rename, rm, stat, type FileHandle } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { inspect } from 'node:util';
import { KeyFileError, WgValidationError } from './errors.js';
import { Key, WG_KEY_LEN } from './wgtypes/key.js';

/** Options of KeyStore.open. */
export interface KeyStoreOptions {
  /** State directory; created with mode 0700 when missing. */
  dir: string;
  /** File name of the private key inside `dir`. Default `wireguard.key`. */
  fileName?: string;
}

// A key file holds the base64 private key, as `wg genkey` prints it (one line). Base64 keeps the
// file usable by `wg set <dev> private-key <file>` when debugging by hand.
const B64_RE = /^[A-Za-z0-9+/]{43}=\n?$/;

/**
 * The node's WireGuard key pair, persisted in a state directory (like Cilium's agent):
 * loaded when present, generated (X25519 via node:crypto) and written with mode 0600 otherwise.
 *
 * - A file that exists but is not exactly one 32-byte key is a KeyFileError and is never
 *   overwritten: an operator must look at it (replacing it would silently change the node's
 *   identity for every peer).
 * - Writes are atomic (temporary file, fsync, rename, fsync of the directory).
 * - `rotate()` writes a new key and keeps the previous one in `<file>.prev` until
 *   `confirmRotation()`; an agent restarting mid-rotation sees both.
 * - The private key is reachable only through `privateKey()`; toString/toJSON/inspect show the
 *   public key and the path, never private material.
 */
export class KeyStore {
  readonly path: string;
  readonly previousPath: string;
  #current: Key;
  #previous: Key | undefined;
  /** True when `open` generated the key (first start on this node). */
  readonly created: boolean;

  /**
   * What `open()` found wrong and fixed: a key file or state dir others could read was tightened.
   * The caller logs them (a key that was readable by others may have leaked: rotate it).
   */
  readonly warnings: readonly string[];

  private constructor(path: string, current: Key, previous: Key | undefined, created: boolean, warnings: readonly string[]) {
    this.path = path;
    this.warnings = warnings;
    this.previousPath = `${path}.prev`;
    this.#current = current;
    this.#previous = previous;
    this.created = created;
  }

  /** Loads the key pair from `dir`, or creates it. */
  static async open(opts: KeyStoreOptions): Promise<KeyStore> {
    if (typeof opts?.dir !== 'string' || opts.dir.length === 0) throw new WgValidationError('dir', 'must be a directory path');
    const fileName = opts.fileName ?? 'wireguard.key';
    if (typeof fileName !== 'string' || !/^[^/\0]+$/.test(fileName) || fileName === '.' || fileName === '..') {
      throw new WgValidationError('fileName', 'must be a plain file name');
    }
    const warnings: string[] = [];
    await ensureDir(opts.dir, warnings);
    const path = join(opts.dir, fileName);
    const previous = await readKeyFile(`${path}.prev`, warnings);
    const existing = await readKeyFile(path, warnings);
    if (existing) return new KeyStore(path, existing, previous, false, warnings);
    const key = Key.generatePrivate();
    await writeKeyFileAtomic(path, key);
    return new KeyStore(path, key, previous, true, warnings);
  }

  /** The current private key. Handle with care: never log it. */
  privateKey(): Key {
    return this.#current;
  }

  /** The current public key (what peers need). */
  get publicKey(): Key {
    return this.#current.publicKey();
  }

  /** The public key of the key kept aside by an unconfirmed rotation, if any. */
  get previousPublicKey(): Key | undefined {
    return this.#previous?.publicKey();
  }

  /** True while a rotation awaits confirmation. */
  get rotating(): boolean {
    return this.#previous !== undefined;
  }

  /**
   * Generates a new key and makes it current; the old one is kept in `<file>.prev` until
   * confirmRotation(). A second rotate() before confirmation keeps the ORIGINAL previous key
   * (the one peers may still hold). Returns the new public key.
   */
  async rotate(): Promise<Key> {
    const next = Key.generatePrivate();
    if (!this.#previous) {
      await writeKeyFileAtomic(this.previousPath, this.#current);
      this.#previous = this.#current;
    }
    await writeKeyFileAtomic(this.path, next);
    this.#current = next;
    return next.publicKey();
  }

  /** Forgets the previous key (peers have the new one). Idempotent. */
  async confirmRotation(): Promise<void> {
    await rm(this.previousPath, { force: true });
    this.#previous = undefined;
  }

  toString(): string {
    return `KeyStore(${this.path}, public ${this.publicKey.toBase64()})`;
  }

  toJSON(): { path: string; publicKey: string; rotating: boolean } {
    return { path: this.path, publicKey: this.publicKey.toBase64(), rotating: this.rotating };
  }

  [inspect.custom](): string {
    return this.toString();
  }
}

const octal = (mode: number): string => `0${(mode & 0o777).toString(8).padStart(3, '0')}`;

async function ensureDir(dir: string, warnings: string[]): Promise<void> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const st = await stat(dir);
  if (!st.isDirectory()) throw new WgValidationError('dir', `${dir} is not a directory`);
  // A pre-existing state dir may have been made with a looser umask.
  if ((st.mode & 0o077) !== 0) {
    await chmod(dir, 0o700);
    warnings.push(`state dir ${dir} had mode ${octal(st.mode)} (open to others); tightened to 0700`);
  }
}

/** Reads a key file; undefined when absent. Never includes the file's content in errors. */
async function readKeyFile(path: string, warnings: string[]): Promise<Key | undefined> {
  let st;
  try {
    st = await lstat(path);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new KeyFileError(path, `cannot stat (${(e as NodeJS.ErrnoException).code ?? 'error'})`);
  }
  if (!st.isFile()) throw new KeyFileError(path, 'is not a regular file');
  if (st.size > 128) throw new KeyFileError(path, `has ${st.size} bytes; expected one base64 ${WG_KEY_LEN}-byte key`);
  let text: string;
  try {
    text = await readFile(path, 'latin1');
  } catch (e) {
    throw new KeyFileError(path, `cannot read (${(e as NodeJS.ErrnoException).code ?? 'error'})`);
  }
  if (!B64_RE.test(text)) {
    throw new KeyFileError(path, `is not one base64 ${WG_KEY_LEN}-byte key (44 characters, as \`wg genkey\` writes)`);
  }
  const raw = Buffer.from(text.trim(), 'base64');
  if (raw.length !== WG_KEY_LEN || raw.toString('base64') !== text.trim()) {
    throw new KeyFileError(path, `does not decode to exactly ${WG_KEY_LEN} bytes`);
  }
  if (raw.every((b) => b === 0)) throw new KeyFileError(path, 'holds the all-zero key');
  if ((st.mode & 0o077) !== 0) {
    await chmod(path, 0o600);
    warnings.push(
      `key file ${path} had mode ${octal(st.mode)}: the private key was readable by others; tightened to 0600 (consider rotating the key: veil keys rotate)`,
    );
  }
  return Key.fromBytes(raw);
}

function writeKeyFileAtomic(path: string, key: Key): Promise<void> {
  return writeFileAtomic0600(path, `${key.toBase64()}\n`);
}

/** tmp file (0600, exclusive) → fsync → rename → fsync(dir): for the key files and what goes with them. */
export async function writeFileAtomic0600(path: string, text: string): Promise<void> {
  const tmp = `${path}.tmp-${randomBytes(4).toString('hex')}`;
  let fh: FileHandle | undefined;
  try {
    fh = await open(tmp, 'wx', 0o600);
    await fh.writeFile(text, 'utf8');
    await fh.sync();
    await fh.close();
    fh = undefined;
    await rename(tmp, path);
  } catch (e) {
    await fh?.close().catch(() => undefined);
    await rm(tmp, { force: true });
    throw new KeyFileError(path, `cannot write (${(e as NodeJS.ErrnoException).code ?? 'error'})`);
  }
  const dh = await open(dirname(path), 'r');
  try {
    await dh.sync();
  } finally {
    await dh.close();
  }
}
