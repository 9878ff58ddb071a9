import type { Command } from 'commander';
import { encryptionStatus, renderEncryptionStatus } from '../render/encrypt.js';
import { addQueryOptions, processIO, runQuery, type CommandIO, type QueryOptions } from '../render/io.js';

/**
 * `veil encrypt status`: the encryption view (like `cilium-dbg encrypt status`): backend, keys in
 * use (current/previous index), key index per peer, highest sequence number, XFRM error counters
 * from /proc/net/xfrm_stat, drift repairs, rotation progress. Exit codes as `veil status`.
 */
export async function runEncryptStatus(opts: QueryOptions, io: CommandIO = processIO()): Promise<number> {
  return runQuery(io, opts, (client) => client.status(), encryptionStatus, renderEncryptionStatus);
}

export function register(program: Command): void {
  const encrypt = program.command('encrypt').description('encryption state of the local node');
  addQueryOptions(
    encrypt
      .command('status')
      .description(
        'keys in use, key index per peer, highest ESP sequence number, XFRM error counters, drift repairs, rotation progress',
      )
      .addHelpText('after', '\nExit status is 0 when the agent answered, 1 when it cannot be reached, 2 on bad usage.'),
  ).action(async (_opts: QueryOptions, cmd: Command) => {
    process.exitCode = await runEncryptStatus(cmd.optsWithGlobals<QueryOptions>());
  });
}
