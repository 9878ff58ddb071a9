import type { Command } from 'commander';
import { renderStatus, statusView } from '../render/status.js';
import { addQueryOptions, processIO, runQuery, type CommandIO, type QueryOptions } from '../render/io.js';

/**
 * `veil status`: one screen of agent health (like `cilium-dbg status` + `encrypt status`).
 * Exit code 0 whenever the agent answered, ready or not (kubectl habit: the query worked; read
 * `.ready` in `-o json`); 1 when it cannot be reached or fails; 2 on bad flags.
 */
export async function runStatus(opts: QueryOptions, io: CommandIO = processIO()): Promise<number> {
  return runQuery(
    io,
    opts,
    async (client) => {
      const [st, info] = await Promise.all([client.status(), client.agentInfo()]);
      return { st, info };
    },
    ({ st, info }) => statusView(st, info),
    renderStatus,
  );
}

export function register(program: Command): void {
  addQueryOptions(
    program
      .command('status')
      .description("show the local agent's health: readiness, backend, node key, peers, datapath, errors")
      .addHelpText(
        'after',
        '\nExit status is 0 when the agent answered (ready or not), 1 when it cannot be reached, 2 on bad usage.',
      ),
  ).action(async (_opts: QueryOptions, cmd: Command) => {
    process.exitCode = await runStatus(cmd.optsWithGlobals<QueryOptions>());
  });
}
