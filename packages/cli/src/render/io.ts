import type { Command } from 'commander';
import { VeilCliError } from '../errors.js';
import { AgentUnreachableError, DEFAULT_SOCKET, resolveSocketPath, StatusClient } from '../status-client.js';
import { palette, wantColor, type Palette } from './color.js';
import { addOutputOption, formatOutput, parseOutputFormat, type RenderOptions } from './output.js';

// Shared plumbing of the status commands: flags, output format, colour and error → exit code.

/** Where a command writes; tests pass buffers, the CLI passes the process streams. */
export interface CommandIO {
  readonly stdout: { write(s: string): unknown; readonly isTTY?: boolean };
  readonly stderr: { write(s: string): unknown };
  readonly env: NodeJS.ProcessEnv;
}

export function processIO(): CommandIO {
  return { stdout: process.stdout, stderr: process.stderr, env: process.env };
}

/** Flags every status command takes. */
export interface QueryOptions {
  output?: string;
  socket?: string;
  /** Request timeout in seconds. */
  timeout?: string;
  /** `veil --debug`: stack traces on errors (also `VEIL_DEBUG=1`). */
  debug?: boolean;
}

/** Adds `-o/--output` (table, wide, json, yaml), `--socket` and `--timeout` to a command. */
export function addQueryOptions(cmd: Command): Command {
  return addOutputOption(cmd)
    .option('--socket <path>', `the agent's status socket (env VEIL_STATUS_SOCKET; default ${DEFAULT_SOCKET})`)
    .option('--timeout <seconds>', 'give up waiting for the agent after this many seconds', '5');
}

/** Exit codes: 0 the query worked, 1 the agent is unreachable or failed, 2 bad usage. */
const EXIT = { ok: 0, error: 1, usage: 2 } as const;

function timeoutMs(v: string | undefined): number {
  if (v === undefined) return 5000;
  const n = Number(v);
  if (!Number.isFinite(n) || n <= 0)
    throw new VeilCliError(`--timeout: needs a positive number of seconds, got '${v}'`, { exitCode: EXIT.usage });
  return Math.round(n * 1000);
}

/**
 * Runs one query: validates flags, asks the agent, prints the document as JSON/YAML (`toDoc`)
 * or as text (`render`; `opts.wide` for `-o wide`), and turns every failure into ONE `Error: …` line on stderr plus an exit
 * code (never a stack trace; `VEIL_DEBUG=1` adds it).
 */
export async function runQuery<T, D>(
  io: CommandIO,
  opts: QueryOptions,
  fetch: (client: StatusClient) => Promise<T>,
  toDoc: (data: T) => D,
  render: (doc: D, c: Palette, opts: RenderOptions) => string,
): Promise<number> {
  try {
    const format = parseOutputFormat(opts.output);
    const client = new StatusClient({ socketPath: resolveSocketPath(opts.socket, io.env), timeoutMs: timeoutMs(opts.timeout) });
    const doc = toDoc(await fetch(client));
    const c = palette(wantColor(io.stdout, io.env));
    io.stdout.write(await formatOutput(doc, format, (d, ro) => render(d, c, ro)));
    return EXIT.ok;
  } catch (err) {
    return reportError(io, err, opts.debug === true);
  }
}

/** Prints `Error: <message>` and returns the exit code the error asks for. */
function reportError(io: CommandIO, err: unknown, debugFlag = false): number {
  const debug = debugFlag || (io.env.VEIL_DEBUG !== undefined && io.env.VEIL_DEBUG !== '' && io.env.VEIL_DEBUG !== '0');
  if (err instanceof VeilCliError) {
    io.stderr.write(`Error: ${err.message}\n`);
    if (debug && err.stack) io.stderr.write(`${err.stack}\n`);
    return err instanceof AgentUnreachableError ? EXIT.error : err.exitCode;
  }
  const e = err instanceof Error ? err : new Error(String(err));
  io.stderr.write(`Error: ${e.name === 'Error' ? '' : `${e.name}: `}${e.message}\n`);
  if (debug && e.stack) io.stderr.write(`${e.stack}\n`);
  return EXIT.error;
}
