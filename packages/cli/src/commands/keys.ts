import type { Command } from 'commander';
import { keyRotation, renderKeyRotation } from '../render/keys.js';
import { addQueryOptions, processIO, runQuery, type CommandIO, type QueryOptions } from '../render/io.js';

/** `veil keys rotate`: the agent replaces the node key and publishes the new public key. */
export async function runKeysRotate(opts: QueryOptions, io: CommandIO = processIO()): Promise<number> {
  return runQuery(io, opts, (client) => client.rotateKeys(), keyRotation, renderKeyRotation);
}

export function register(program: Command): void {
  const keys = program.command('keys').description("manage the node's encryption key");
  addQueryOptions(
    keys.command('rotate').description('generate a new node key, reprogram the backend and publish the new public key'),
  ).action(async (_opts: QueryOptions, cmd: Command) => {
    process.exitCode = await runKeysRotate(cmd.optsWithGlobals<QueryOptions>());
  });
}
