import type { Command } from 'commander';
import { peerList, renderPeers } from '../render/peers.js';
import { addQueryOptions, processIO, runQuery, type CommandIO, type QueryOptions } from '../render/io.js';

/** `veil peers`: one row per peer node with endpoint, allowed IPs, key, handshake, traffic, state. */
export async function runPeers(opts: QueryOptions, io: CommandIO = processIO()): Promise<number> {
  return runQuery(io, opts, (client) => client.status(), peerList, renderPeers);
}

export function register(program: Command): void {
  addQueryOptions(
    program.command('peers').description('list the peers the local agent knows, with their encryption state'),
  ).action(async (_opts: QueryOptions, cmd: Command) => {
    process.exitCode = await runPeers(cmd.optsWithGlobals<QueryOptions>());
  });
}
