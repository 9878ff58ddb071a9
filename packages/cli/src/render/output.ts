import type { Command } from 'commander';
import { UsageError } from '../errors.js';

/**
 * `-o` values every command that prints data accepts (kubectl's convention): `table` (the
 * default), `wide` (the table with every column the command has), `json` and `yaml` (the same
 * document: one `kind`, stable keys).
 */
export const OUTPUT_FORMATS = ['table', 'wide', 'json', 'yaml'] as const;
export type OutputFormat = (typeof OUTPUT_FORMATS)[number];

/** What a text renderer is told besides the document. */
export interface RenderOptions {
  /** `-o wide`: every column and every detail, nothing summarised. */
  readonly wide: boolean;
}

/** Validates `-o`; a bad value is a usage error (exit 2) naming the flag and the choices. */
export function parseOutputFormat(v: string | undefined): OutputFormat {
  if (v === undefined || v === '') return 'table';
  if ((OUTPUT_FORMATS as readonly string[]).includes(v)) return v as OutputFormat;
  throw new UsageError('--output', `unknown format '${v}' (use one of: ${OUTPUT_FORMATS.join(', ')})`);
}

/**
 * Adds `-o, --output <format>` (default `table`) to a command: the one output flag of every
 * command that prints data. `json: true` also adds `--json`, kept as a deprecated alias of
 * `-o json` where a command had it before.
 */
export function addOutputOption<C extends Command>(cmd: C, opts: { json?: boolean } = {}): C {
  cmd.option('-o, --output <format>', `output format: ${OUTPUT_FORMATS.join(', ')}`, 'table');
  if (opts.json) cmd.option('--json', 'deprecated: the same as -o json');
  return cmd;
}

/** The format a command was asked for: `-o`, or `--json` (deprecated alias) when given. */
export function outputFormatOf(opts: { output?: string; json?: boolean }): OutputFormat {
  const format = parseOutputFormat(opts.output);
  if (opts.json === true) {
    if (format !== 'table' && format !== 'json')
      throw new UsageError('--json', `conflicts with -o ${format} (--json is the deprecated form of -o json)`);
    return 'json';
  }
  return format;
}

/** The machine-readable form of a document (JSON pretty-printed, YAML via `yaml`, loaded only when asked for). */
export async function renderStructured(doc: unknown, format: 'json' | 'yaml'): Promise<string> {
  if (format === 'json') return `${JSON.stringify(doc, null, 2)}\n`;
  const { stringify } = await import('yaml');
  return stringify(doc);
}

/**
 * A document in the requested format: `render` for table and wide, JSON/YAML otherwise. Every
 * command goes through here, so a new view gets all four formats by writing one renderer.
 */
export async function formatOutput<D>(
  doc: D,
  format: OutputFormat,
  render: (doc: D, opts: RenderOptions) => string,
): Promise<string> {
  if (format === 'json' || format === 'yaml') return renderStructured(doc, format);
  return render(doc, { wide: format === 'wide' });
}

/**
 * Writes `text` and resolves once the stream has handed all of it (and anything queued before)
 * to the OS, so a process.exit() after it loses nothing on a pipe. A closed reader (EPIPE, as
 * with `| head`) ends the wait too.
 */
export function writeFully(stream: NodeJS.WritableStream, text: string): Promise<void> {
  return new Promise((resolve) => {
    const done = (): void => {
      stream.off('error', done);
      resolve();
    };
    stream.once('error', done);
    stream.write(text, () => done());
  });
}
