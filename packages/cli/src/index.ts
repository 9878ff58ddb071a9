/**
 * The CLI as a library, for the tools that plug into `veil` (@veil/lab): its error classes (main.ts
 * turns them into exit codes), the status-socket client, the plugin contract and the path of the
 * executable the lab re-runs. Importing it runs nothing; the program is main.ts.
 */
import { fileURLToPath } from 'node:url';

export { VeilCliError, UsageError, formatError } from './errors.js';
export { type ExitSetter, type LabPlugin } from './lab-command.js';
export { StatusClient, AgentUnreachableError, AgentResponseError } from './status-client.js';
export {
  addOutputOption,
  formatOutput,
  outputFormatOf,
  renderStructured,
  writeFully,
  OUTPUT_FORMATS,
  type OutputFormat,
  type RenderOptions,
} from './render/output.js';
export { renderTable, renderKeyValues } from './render/table.js';

/** dist/main.js, the `veil` executable: the lab runs its agents and helpers as `node VEIL_MAIN …`. */
export const VEIL_MAIN = fileURLToPath(new URL('./main.js', import.meta.url));
