import { UsageError } from '../errors.js';

/** `-o` values every status command accepts. */
export const OUTPUT_FORMATS = ['table', 'json', 'yaml'] as const;
export type OutputFormat = (typeof OUTPUT_FORMATS)[number];

/** Validates `-o`; a bad value is a usage error (exit 2). `wide` is accepted as `table`. */
export function parseOutputFormat(v: string | undefined): OutputFormat {
  if (v === undefined || v === '' || v === 'wide') return 'table';
  if ((OUTPUT_FORMATS as readonly string[]).includes(v)) return v as OutputFormat;
  throw new UsageError('--output', `unknown format '${v}' (use one of: ${OUTPUT_FORMATS.join(', ')})`);
}

/** The machine-readable form of a document (JSON pretty-printed, YAML via `yaml`, loaded only when asked for). */
export async function renderStructured(doc: unknown, format: 'json' | 'yaml'): Promise<string> {
  if (format === 'json') return `${JSON.stringify(doc, null, 2)}\n`;
  const { stringify } = await import('yaml');
  return stringify(doc);
}
