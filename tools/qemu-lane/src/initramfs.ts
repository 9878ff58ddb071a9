import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { type CpioEntry, S_IFCHR, S_IFDIR, S_IFREG, writeCpio } from './cpio.js';
import { KernelLaneError } from './errors.js';
import { STAGE1, STAGE2 } from './guest-scripts.js';
import { type GuestKernel, resolveModules, run, which } from './host.js';
import { extractVmlinux } from './vmlinux.js';

/** Modules stage 1 needs to reach the host root: virtio PCI transport, 9p and overlayfs. */
export const BOOT_MODULES = ['virtio_pci', '9pnet_virtio', '9p', 'overlay'] as const;

/** Bumped when the layout of the cached artefacts changes. */
const CACHE_FORMAT = 1;

export interface BootArtefacts {
  vmlinux: string;
  initramfs: string;
  /** True when both were already in the cache. */
  cached: boolean;
}

function atomicWrite(path: string, data: Buffer | string): void {
  const tmp = `${path}.${process.pid}.tmp`;
  writeFileSync(tmp, data);
  renameSync(tmp, path);
}

/** Reads a module file, decompressing .ko.xz / .ko.zst / .ko.gz so busybox insmod can load it. */
function readModule(path: string): { name: string; data: Buffer } {
  const base = path.replace(/^\/+/, '');
  if (path.endsWith('.ko')) return { name: base, data: readFileSync(path) };
  const tool = path.endsWith('.xz') ? 'xz' : path.endsWith('.zst') ? 'zstd' : path.endsWith('.gz') ? 'gzip' : undefined;
  if (!tool || !which(tool)) {
    throw new KernelLaneError('initramfs-failed', `cannot decompress module ${path} (need ${tool ?? 'a known format'})`);
  }
  return { name: base.replace(/\.(xz|zst|gz)$/, ''), data: run(tool, ['-dc', path]) };
}

/**
 * Returns the uncompressed vmlinux and the initramfs for `kernel`, building them once and
 * caching them under `cacheDir/<kernel version>-<hash>/`. The hash covers the guest scripts
 * and the boot-module list, so editing either rebuilds. Writes are atomic (tmp + rename),
 * so concurrent lanes at worst build twice.
 */
export function prepareBootArtefacts(kernel: GuestKernel, busybox: string, cacheDir: string): BootArtefacts {
  const key = createHash('sha256')
    .update(`${CACHE_FORMAT}\n${STAGE1}\n${STAGE2}\n${BOOT_MODULES.join(',')}\n${busybox}`)
    .digest('hex')
    .slice(0, 16);
  const dir = join(cacheDir, `${kernel.version}-${key}`);
  const vmlinux = join(dir, 'vmlinux');
  const initramfs = join(dir, 'initramfs.cpio');
  const cached = existsSync(vmlinux) && existsSync(initramfs);
  if (cached) return { vmlinux, initramfs, cached };
  mkdirSync(dir, { recursive: true });

  if (!existsSync(vmlinux)) atomicWrite(vmlinux, extractVmlinux(kernel.image));

  const { found, missing } = resolveModules(kernel.version, BOOT_MODULES);
  if (missing.length > 0) {
    throw new KernelLaneError(
      'initramfs-failed',
      `kernel ${kernel.version} lacks boot modules ${missing.join(', ')} (needed to mount the host root over 9p)`,
    );
  }
  const order: string[] = [];
  for (const m of found) for (const f of m.files) if (!order.includes(f)) order.push(f);

  const entries: CpioEntry[] = [];
  const dirs = new Set<string>();
  const addDir = (p: string): void => {
    const parts = p.split('/');
    for (let i = 1; i <= parts.length; i++) {
      const d = parts.slice(0, i).join('/');
      if (!dirs.has(d)) {
        dirs.add(d);
        entries.push({ path: d, mode: S_IFDIR | 0o755 });
      }
    }
  };
  for (const d of ['bin', 'dev', 'proc', 'sys']) addDir(d);
  // The kernel opens /dev/console for init before anything is mounted.
  entries.push({ path: 'dev/console', mode: S_IFCHR | 0o600, rdevMajor: 5, rdevMinor: 1 });
  entries.push({ path: 'bin/busybox', mode: S_IFREG | 0o755, data: readFileSync(busybox) });
  entries.push({ path: 'init', mode: S_IFREG | 0o755, data: Buffer.from(STAGE1) });
  entries.push({ path: 'stage2', mode: S_IFREG | 0o644, data: Buffer.from(STAGE2) });
  const list: string[] = [];
  for (const file of order) {
    const mod = readModule(file);
    addDir(mod.name.split('/').slice(0, -1).join('/'));
    entries.push({ path: mod.name, mode: S_IFREG | 0o644, data: mod.data });
    list.push(`/${mod.name}`);
  }
  entries.push({ path: 'modules.list', mode: S_IFREG | 0o644, data: Buffer.from(`${list.join('\n')}\n`) });
  atomicWrite(initramfs, writeCpio(entries));
  return { vmlinux, initramfs, cached: false };
}
