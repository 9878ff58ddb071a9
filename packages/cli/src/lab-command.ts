/**
 * `veil lab`: the lab lives in its own package (@veil/lab, tools/lab), a development tool the
 * product does not depend on and the image does not ship. The CLI registers its commands when the
 * package is installed (a source checkout) and otherwise a `lab` command that says why it is
 * missing. The lab imports the CLI (errors, status client, VEIL_MAIN), never the other way round:
 * this is the only place that names it, by string, like agent-core's backend loading.
 */
import { createRequire } from 'node:module';
import type { Command } from 'commander';
import { errorMessage } from '@veil/agent-core/errors';
import { VeilCliError } from './errors.js';

/** Sets the exit code for the whole program (main.ts exits with it after the action). */
export type ExitSetter = (code: number) => void;

/** What the lab package's entry exports for the CLI to call. */
export interface LabPlugin {
  registerLab(program: Command, setExit: ExitSetter): void;
}

/** The package holding `veil lab`. */
const LAB_PACKAGE = '@veil/lab';

/** `veil lab …` where @veil/lab is not installed (the container image); exit code 2. */
export class LabNotInstalledError extends VeilCliError {
  override name = 'LabNotInstalledError';
  constructor(readonly packageName: string) {
    super(
      `the lab is a development tool (${packageName}, tools/lab in the Veil repository) and is not installed here: the image ships the agent and the status tools only. Run it from a source checkout: npm start, or node packages/cli/dist/main.js lab …`,
      { exitCode: 2 },
    );
  }
}

/** @veil/lab is installed but cannot be loaded (not built, or not a lab package); exit code 1. */
export class LabLoadError extends VeilCliError {
  override name = 'LabLoadError';
  constructor(
    readonly packageName: string,
    cause: unknown,
  ) {
    super(`${packageName} is installed but cannot be loaded (build it: npm run build): ${errorMessage(cause)}`, { cause });
  }
}

/** True when `pkg` resolves from this module (its package.json is exported for exactly this). */
function installed(pkg: string): boolean {
  try {
    createRequire(import.meta.url).resolve(`${pkg}/package.json`);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'MODULE_NOT_FOUND') return false;
    throw err;
  }
}

/**
 * Registers `veil lab` from @veil/lab when it is installed. Otherwise, or when it is installed but
 * cannot be loaded (not built yet), a `lab` command that fails with the reason: the other commands
 * must keep working either way.
 */
export async function registerLabCommand(program: Command, setExit: ExitSetter, pkg = LAB_PACKAGE): Promise<void> {
  let failure: LabLoadError | LabNotInstalledError = new LabNotInstalledError(pkg);
  if (installed(pkg)) {
    try {
      const mod = (await import(pkg)) as Partial<LabPlugin>;
      if (typeof mod.registerLab !== 'function') throw new Error(`${pkg} does not export registerLab()`);
      mod.registerLab(program, setExit);
      return;
    } catch (err) {
      failure = new LabLoadError(pkg, err);
    }
  }
  const installedHere = failure instanceof LabLoadError;
  program
    .command('lab')
    .description(
      `a multi-node Veil lab in network namespaces (development tool, ${pkg}: ${installedHere ? 'cannot be loaded' : 'not installed here'})`,
    )
    .helpOption(false)
    .allowUnknownOption()
    .allowExcessArguments()
    .argument('[args...]')
    .action(() => {
      throw failure;
    });
}
