import type { Command } from 'commander';
import { counterList, ipcacheList, renderCounters, renderIpcache } from '../render/bpf.js';
import { addQueryOptions, processIO, runQuery, type CommandIO, type QueryOptions } from '../render/io.js';

/** `veil bpf ipcache list`: prefix → node, node IP, flags, key index, node id, ifindex. */
export async function runIpcacheList(opts: QueryOptions, io: CommandIO = processIO()): Promise<number> {
  return runQuery(io, opts, (client) => client.ipcache(), ipcacheList, renderIpcache);
}

export interface CountersOptions extends QueryOptions {
  /** List zero counters too. */
  all?: boolean;
}

/** `veil bpf counters`: packets and bytes per reason, non-zero only unless `--all`. */
export async function runCounters(opts: CountersOptions, io: CommandIO = processIO()): Promise<number> {
  return runQuery(
    io,
    opts,
    (client) => client.counters(),
    (l) => counterList(l, opts.all === true),
    renderCounters,
  );
}

export function register(program: Command): void {
  const bpf = program.command('bpf').description("inspect the agent's BPF datapath maps");
  const ipcache = bpf.command('ipcache').description('the ipcache map (destination prefix → node and encryption state)');
  addQueryOptions(ipcache.command('list').alias('ls').description('list ipcache entries')).action(
    async (_opts: QueryOptions, cmd: Command) => {
      process.exitCode = await runIpcacheList(cmd.optsWithGlobals<QueryOptions>());
    },
  );
  addQueryOptions(bpf.command('counters').description('packets and bytes per datapath verdict reason'))
    .option('-a, --all', 'also list counters that are zero')
    .action(async (_opts: CountersOptions, cmd: Command) => {
      process.exitCode = await runCounters(cmd.optsWithGlobals<CountersOptions>());
    });
}
