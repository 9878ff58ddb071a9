// `npx veil …` after `npm ci` at the repository root: npm links the package's "bin" into
// node_modules/.bin. It links only a file that exists when it installs, before any build, so the
// bin is a committed shim that loads dist/main.js.
import { execFile, execFileSync } from 'node:child_process';
import { cpSync, mkdtempSync, readFileSync, realpathSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';

const run = promisify(execFile);
const PKG_DIR = join(import.meta.dirname, '..');
const ROOT = join(PKG_DIR, '..', '..');
const pkg = JSON.parse(readFileSync(join(PKG_DIR, 'package.json'), 'utf8')) as { version: string; bin: Record<string, string> };

describe('npx veil', () => {
  const scratch = mkdtempSync(join(tmpdir(), 'veil-cli-bin-'));
  afterAll(() => rmSync(scratch, { recursive: true, force: true }));

  it('the bin is a committed, executable file (npm ci links it before anything is built)', () => {
    expect(Object.keys(pkg.bin)).toEqual(['veil']);
    const bin = pkg.bin.veil!;
    const tracked = execFileSync('git', ['ls-files', '--stage', bin], { cwd: PKG_DIR, encoding: 'utf8' });
    expect(tracked).toMatch(/^100755 /); // in git, with the executable bit
    expect(readFileSync(join(PKG_DIR, bin), 'utf8')).toMatch(/^#!\/usr\/bin\/env node\n/);
  });

  it('node_modules/.bin/veil at the repository root is that file, and `npx veil --version` prints the package version', async () => {
    expect(realpathSync(join(ROOT, 'node_modules', '.bin', 'veil'))).toBe(realpathSync(join(PKG_DIR, pkg.bin.veil!)));
    const r = await run('npx', ['--no-install', 'veil', '--version'], { cwd: ROOT, timeout: 60_000 });
    expect(r.stdout.trim()).toBe(pkg.version);
    const help = await run('npx', ['--no-install', 'veil', 'peers', '--help'], { cwd: ROOT, timeout: 60_000 });
    expect(help.stdout).toContain('Usage: veil peers [options]');
  });

  it('the version comes from package.json, not from the code', async () => {
    // The same dist/ beside a package.json with another version.
    const copy = join(scratch, 'cli');
    cpSync(join(PKG_DIR, 'bin'), join(copy, 'bin'), { recursive: true });
    cpSync(join(PKG_DIR, 'dist'), join(copy, 'dist'), { recursive: true });
    symlinkSync(join(ROOT, 'node_modules'), join(copy, 'node_modules'));
    writeFileSync(join(copy, 'package.json'), JSON.stringify({ ...pkg, version: '9.8.7-test' }));
    const r = await run(process.execPath, [join(copy, 'bin', 'veil.js'), '--version'], { timeout: 60_000 });
    expect(r.stdout.trim()).toBe('9.8.7-test');
  });

  it('before a build, the bin says what to do instead of a module-not-found trace', async () => {
    const copy = join(scratch, 'unbuilt');
    cpSync(join(PKG_DIR, 'bin'), join(copy, 'bin'), { recursive: true });
    const err = (await run(process.execPath, [join(copy, 'bin', 'veil.js'), '--version']).catch((e: unknown) => e)) as {
      code: number;
      stderr: string;
    };
    expect(err.code).toBe(1);
    expect(err.stderr).toBe(
      'veil: the CLI is not built yet (dist/main.js is missing): run `npm run build` at the repository root\n',
    );
  });
});
