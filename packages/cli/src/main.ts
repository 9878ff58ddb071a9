#!/usr/bin/env node
/**
 * `veil`: the agent (`veil agent`), the status tools (`veil status | peers | bpf | keys`), the
 * IPsec key generator (`veil ipsec keygen`) and,
 * where the development package @veil/lab is installed, the lab (`veil lab …`). Heavy modules
 * are imported inside the actions, so a small command (the lab's probes) starts fast.
 */
import { createRequire } from 'node:module';
import { Command, CommanderError } from 'commander';
import { runAgent } from './agent-command.js';
import { register as registerBpf } from './commands/bpf.js';
import { register as registerEncrypt } from './commands/encrypt.js';
import { register as registerIpsec } from './commands/ipsec.js';
import { register as registerKeys } from './commands/keys.js';
import { register as registerPeers } from './commands/peers.js';
import { register as registerStatus } from './commands/status.js';
import { VeilCliError, formatError } from './errors.js';
import { registerLabCommand } from './lab-command.js';
import { writeFully } from './render/output.js';

/** This package's version (`veil --version`), read from its package.json (dist/ and src/ sit beside it). */
const VERSION = (createRequire(import.meta.url)('../package.json') as { version: string }).version;

/** Builds the program; `setExit` records the exit code an action wants. */
async function buildProgram(setExit: (code: number) => void): Promise<Command> {
  const program = new Command('veil')
    .description('Veil: transparent encryption of Kubernetes pod-to-pod traffic')
    .version(VERSION)
    .option('--debug', 'print stack traces on errors')
    .exitOverride();
  program
    .command('agent')
    .description(
      'run the node agent (flags: --config FILE, --kubeconfig FILE, --underlay-device IF, --tunnel-device IF, --bpf-pin-dir DIR, --bpffs-root DIR, --pod-cidrs LIST, --debug, and any config key as --key=value)',
    )
    .helpOption(false)
    .allowUnknownOption()
    .allowExcessArguments()
    .argument('[flags...]', 'agent and config flags')
    .action(async (flags: string[]) => {
      // `--debug` is also the program's own option, and commander takes it wherever it appears.
      const debug = program.opts<{ debug?: boolean }>().debug === true;
      setExit(await runAgent(debug ? [...flags, '--debug'] : flags));
    });
  await registerLabCommand(program, setExit);
  registerStatus(program);
  registerPeers(program);
  registerBpf(program);
  registerKeys(program);
  registerIpsec(program);
  registerEncrypt(program);
  return program;
}

async function main(argv: readonly string[]): Promise<number> {
  let code: number | undefined;
  try {
    const program = await buildProgram((c) => {
      code = c;
    });
    await program.parseAsync(argv);
  } catch (err) {
    if (err instanceof CommanderError) {
      // commander has printed the message; help/version are not errors, bad usage is exit 2.
      if (err.code === 'commander.helpDisplayed' || err.code === 'commander.version' || err.code === 'commander.help') return 0;
      return err.exitCode === 1 ? 2 : err.exitCode;
    }
    const debug = argv.includes('--debug');
    process.stderr.write(`veil: ${formatError(err, debug)}\n`);
    return err instanceof VeilCliError ? err.exitCode : 1;
  }
  return code ?? (typeof process.exitCode === 'number' ? process.exitCode : 0);
}

/**
 * Exits once stdout and stderr have handed everything to the OS: on a pipe, writes are
 * asynchronous and process.exit() would drop what the reader has not taken yet (`veil peers -o
 * json | jq` cut at 64 KiB).
 */
async function exitAfterFlush(code: number): Promise<never> {
  await Promise.all([writeFully(process.stdout, ''), writeFully(process.stderr, '')]);
  process.exit(code);
}

// Exit explicitly: the agent's and the lab's detached children must not keep us alive.
main(process.argv).then(
  (code) => exitAfterFlush(code),
  (err: unknown) => {
    process.stderr.write(`veil: ${formatError(err, true)}\n`);
    return exitAfterFlush(1);
  },
);
