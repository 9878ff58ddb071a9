import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestProject } from 'vitest/node';
import { EXAMPLES, PUBLISHED, installTarballs, pack, type InstallResult, type PackedPackage } from '../src/index.js';

/** What the suites get through `inject()`. */
export interface PackCheckContext {
  /** Scratch root under /tmp, outside the workspace: `tarballs/`, `project/` (everything installed). */
  readonly root: string;
  readonly project: string;
  readonly packed: readonly PackedPackage[];
  readonly install: InstallResult;
}

declare module 'vitest' {
  export interface ProvidedContext {
    packCheck: PackCheckContext;
  }
}

/**
 * Packs the published packages and the examples once, and installs all the tarballs into one
 * scratch project under /tmp (no package.json or node_modules above it resolves to the workspace).
 */
export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const root = await mkdtemp(join(tmpdir(), 'veil-pack-check-'));
  const tarballs = join(root, 'tarballs');
  const packed: PackedPackage[] = [];
  for (const dir of [...PUBLISHED, ...EXAMPLES]) packed.push(await pack(dir, tarballs));
  const scratch = join(root, 'project');
  const started = Date.now();
  const install = await installTarballs(
    scratch,
    packed.map((p) => p.tarball),
  );
  process.stderr.write(
    `[pack-check] ${packed.length} tarballs installed into ${scratch} in ${((Date.now() - started) / 1000).toFixed(1)} s (npm --${install.mode}${install.offlineFailure ? `; --offline said: ${install.offlineFailure.trim()}` : ''})\n`,
  );
  project.provide('packCheck', { root, project: scratch, packed, install });
  return async () => {
    await rm(root, { recursive: true, force: true });
  };
}
