/**
 * @veil/lab: `veil lab …`, a whole Veil cluster in network namespaces on one host. A development
 * tool, not part of the product: the `veil` CLI registers these commands when this package is
 * installed (a source checkout) and the container image does not ship it. Heavy modules (the
 * lab's steps, agent-core, the API server double, the qemu lane) load inside the actions.
 */
import type { LabPlugin } from '@veil/cli';
import { registerLab as register } from './command.js';

/** Registers `veil lab …` on the CLI's program: the entry point of the CLI's `LabPlugin` contract. */
export const registerLab: LabPlugin['registerLab'] = register;
export { LabError, LabUnsupportedError } from './errors.js';
export type { LabState, LabNode, LabPod } from './state.js';
export type { LabSummary, LabUpOptions } from './up.js';
export type { ChaosReport } from './chaos.js';
