import { errorMessage } from '@veil/agent-core';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmdirSync, unlinkSync } from 'node:fs';
import { join, resolve, sep } from 'node:path';
import { mountBpffs } from 'libbpf-ts';
import { BpffsError, codeOf } from './errors.js';

/** The maps of veil.bpf.o that are pinned (file names under the pin dir = map names). */
export const PINNED_MAPS = ['ipcache', 'strict_cidrs', 'config', 'counters'] as const;

/** Default pin directory (one per agent / node network namespace). */
export const DEFAULT_PIN_DIR = '/sys/fs/bpf/veil';
/** Where bpffs is mounted when the pin dir is not on one yet. */
export const DEFAULT_BPFFS_ROOT = '/sys/fs/bpf';

// /proc/self/mountinfo escapes space, tab, newline and backslash as \ooo.
function unescapeMount(p: string): string {
  return p.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
}

/** Filesystem type of the mount that contains `path` (longest mount point prefix), or undefined. */
export function fsTypeOf(path: string): string | undefined {
  const target = resolve(path);
  let best: { mnt: string; type: string } | undefined;
  let text: string;
  try {
    text = readFileSync('/proc/self/mountinfo', 'utf8');
  } catch {
    return undefined;
  }
  for (const line of text.split('\n')) {
    const parts = line.split(' ');
    const dash = parts.indexOf('-');
    if (dash < 0 || parts.length < dash + 2) continue;
    const mnt = unescapeMount(parts[4] ?? '');
    const type = parts[dash + 1] ?? '';
    const within = mnt === '/' || target === mnt || target.startsWith(mnt.endsWith(sep) ? mnt : mnt + sep);
    // Later lines are stacked on earlier ones: `>=` lets the top-most mount win.
    if (within && (!best || mnt.length >= best.mnt.length)) best = { mnt, type };
  }
  return best?.type;
}

/**
 * Makes sure `pinDir` is a directory on a bpffs. When it is not on one and `mount` is true,
 * bpffs is mounted at `bpffsRoot` (which must contain pinDir). Throws {@link BpffsError}.
 */
export function ensureBpffs(pinDir: string, opts: { mount: boolean; bpffsRoot: string }): void {
  const dir = resolve(pinDir);
  if (fsTypeOf(dir) !== 'bpf') {
    const root = resolve(opts.bpffsRoot);
    if (!opts.mount) {
      throw new BpffsError(dir, undefined, `${dir} is not on a bpffs (and mounting is disabled): mount -t bpf bpf ${root}`);
    }
    if (!(dir === root || dir.startsWith(root + sep))) {
      throw new BpffsError(dir, undefined, `${dir} is not on a bpffs and is not under the bpffs root ${root}`);
    }
    try {
      mkdirSync(root, { recursive: true });
      mountBpffs(root);
    } catch (e) {
      throw new BpffsError(root, codeOf(e), `cannot mount bpffs at ${root} for the pin dir ${dir}: ${errorMessage(e)}`, {
        cause: e,
      });
    }
    if (fsTypeOf(dir) !== 'bpf') throw new BpffsError(dir, undefined, `mounted bpffs at ${root}, but ${dir} is still not on it`);
  }
  try {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
  } catch (e) {
    throw new BpffsError(dir, codeOf(e), `cannot create the pin dir ${dir}: ${errorMessage(e)}`, { cause: e });
  }
}

/**
 * Removes Veil's pins under `pinDir` (the maps then live only as long as attached programs use
 * them) and the directory when it is left empty. Absent pins are fine. Returns what was removed.
 */
export function removePins(pinDir: string): string[] {
  const dir = resolve(pinDir);
  const removed: string[] = [];
  if (!existsSync(dir)) return removed;
  for (const name of PINNED_MAPS) {
    const p = join(dir, name);
    try {
      unlinkSync(p);
      removed.push(p);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') {
        throw new BpffsError(p, codeOf(e), `cannot remove the pin ${p}: ${errorMessage(e)}`, { cause: e });
      }
    }
  }
  try {
    if (readdirSync(dir).length === 0) rmdirSync(dir);
  } catch {
    /* not empty / already gone: leave it */
  }
  return removed;
}
