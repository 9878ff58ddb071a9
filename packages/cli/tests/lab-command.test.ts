import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Command } from 'commander';
import { describe, expect, it } from 'vitest';
import { LabLoadError, LabNotInstalledError, registerLabCommand } from '../src/lab-command.js';

const MAIN = join(import.meta.dirname, '..', 'dist', 'main.js');

describe('veil lab without the lab package (the image)', () => {
  it('registers a lab command that exits 2 saying the lab is a development tool', async () => {
    const program = new Command('veil').exitOverride();
    await registerLabCommand(program, () => undefined, '@veil/no-such-lab-package');
    const err = await program.parseAsync(['node', 'veil', 'lab', 'up', '--nodes', '3']).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(LabNotInstalledError);
    expect((err as LabNotInstalledError).exitCode).toBe(2);
    expect((err as LabNotInstalledError).packageName).toBe('@veil/no-such-lab-package');
    expect((err as Error).message).toMatch(/development tool .*not installed here.*npm start/);
  });

  it('a package that is installed but is no lab (or not built) fails only `veil lab`, with the reason', async () => {
    const program = new Command('veil').exitOverride();
    // @veil/cli resolves from here and loads, but exports no registerLab().
    await registerLabCommand(program, () => undefined, '@veil/cli');
    const err = await program.parseAsync(['node', 'veil', 'lab', 'up']).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(LabLoadError);
    expect((err as LabLoadError).exitCode).toBe(1);
    expect((err as Error).message).toBe(
      '@veil/cli is installed but cannot be loaded (build it: npm run build): @veil/cli does not export registerLab()',
    );
  });
});

describe('veil --version', () => {
  it("prints the CLI package's version", () => {
    const { version } = JSON.parse(readFileSync(join(import.meta.dirname, '..', 'package.json'), 'utf8')) as { version: string };
    const r = spawnSync(process.execPath, [MAIN, '--version'], { encoding: 'utf8', timeout: 30_000 });
    expect(r.status).toBe(0);
    expect(r.stdout.trim()).toBe(version);
  });
});
