import { execFileSync, spawnSync } from 'node:child_process';
import { accessSync, constants, existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { KernelLaneError } from './errors.js';

/** The guest kernel: Debian's linux-image-amd64, found under /boot. */
export interface GuestKernel {
  /** Kernel release, e.g. "6.1.0-56-amd64". */
  version: string;
  /** The compressed bzImage, e.g. /boot/vmlinuz-6.1.0-56-amd64. */
  image: string;
  /** /lib/modules/<version>; the guest loads modules from the host root share. */
  modulesDir: string;
}

const SEARCH_PATH = ['/usr/local/sbin', '/usr/local/bin', '/usr/sbin', '/usr/bin', '/sbin', '/bin'];

/** Absolute path of `bin` on PATH (or the sbin directories), or undefined. */
export function which(bin: string): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(':').concat(SEARCH_PATH)) {
    if (!dir) continue;
    const p = join(dir, bin);
    try {
      accessSync(p, constants.X_OK);
      return p;
    } catch {
      /* next */
    }
  }
  return undefined;
}

function requireFile(path: string, debianPackage: string, what: string): string {
  if (!existsSync(path)) {
    throw new KernelLaneError(
      'missing-host-dependency',
      `${what} not found at ${path}; install the Debian package "${debianPackage}" (apt-get install ${debianPackage})`,
      debianPackage,
    );
  }
  return path;
}

function requireBin(bin: string, debianPackage: string): string {
  const p = which(bin);
  if (!p) {
    throw new KernelLaneError(
      'missing-host-dependency',
      `${bin} is not installed; install the Debian package "${debianPackage}" (apt-get install ${debianPackage})`,
      debianPackage,
    );
  }
  return p;
}

function compareVersions(a: string, b: string): number {
  const pa = a.split(/[.-]/).map((x) => Number.parseInt(x, 10) || 0);
  const pb = b.split(/[.-]/).map((x) => Number.parseInt(x, 10) || 0);
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const d = (pa[i] ?? 0) - (pb[i] ?? 0);
    if (d !== 0) return d;
  }
  return 0;
}

/**
 * Finds the newest /boot/vmlinuz-* that has a matching /lib/modules directory
 * (the host's own running kernel is not a Debian image and usually has none).
 */
export function findGuestKernel(bootDir = '/boot'): GuestKernel {
  const candidates = existsSync(bootDir)
    ? readdirSync(bootDir)
        .filter((f) => f.startsWith('vmlinuz-'))
        .map((f) => f.slice('vmlinuz-'.length))
        .filter((v) => existsSync(`/lib/modules/${v}/modules.dep`))
        .sort(compareVersions)
    : [];
  const version = candidates.at(-1);
  if (!version) {
    throw new KernelLaneError(
      'missing-host-dependency',
      `no /boot/vmlinuz-* with modules under /lib/modules; install the Debian package "linux-image-amd64"`,
      'linux-image-amd64',
    );
  }
  return { version, image: join(bootDir, `vmlinuz-${version}`), modulesDir: `/lib/modules/${version}` };
}

/** Host tools the lane needs; throws a KernelLaneError naming the Debian package of the first missing one. */
export interface HostTools {
  qemu: string;
  qboot: string | undefined;
  busybox: string;
  modprobe: string;
}

export function checkHostTools(): HostTools {
  const qemu = requireBin('qemu-system-x86_64', 'qemu-system-x86');
  // qboot is optional: it shortens boot from ~10 s to ~4.5 s, SeaBIOS works without it.
  const qboot = ['/usr/share/qemu/qboot.rom', '/usr/share/qboot/bios.bin'].find((p) => existsSync(p));
  // busybox-static: the initramfs has no libc, so a dynamically linked busybox would not run.
  const busybox = requireFile('/bin/busybox', 'busybox-static', 'static busybox');
  const file = spawnSync('file', ['-L', busybox], { encoding: 'utf8' });
  if (file.status === 0 && /dynamically linked/.test(file.stdout)) {
    throw new KernelLaneError(
      'missing-host-dependency',
      `${busybox} is dynamically linked; install the Debian package "busybox-static"`,
      'busybox-static',
    );
  }
  const modprobe = requireBin('modprobe', 'kmod');
  return { qemu, qboot, busybox, modprobe };
}

/** One module and what it takes to load it for a kernel version. */
export interface ModuleResolution {
  name: string;
  /** Built into the kernel: nothing to load. */
  builtin: boolean;
  /** .ko files to insmod, dependencies first. Empty for builtins. */
  files: string[];
}

/**
 * Resolves modules for a kernel version with `modprobe --show-depends -S <kver>`.
 * Names that do not exist for that kernel are returned in `missing` instead of throwing.
 */
export function resolveModules(
  kernelVersion: string,
  names: readonly string[],
): { found: ModuleResolution[]; missing: string[] } {
  const modprobe = requireBin('modprobe', 'kmod');
  const found: ModuleResolution[] = [];
  const missing: string[] = [];
  for (const name of names) {
    const r = spawnSync(modprobe, ['--show-depends', '-S', kernelVersion, name], { encoding: 'utf8' });
    if (r.status !== 0) {
      missing.push(name);
      continue;
    }
    const files: string[] = [];
    let builtin = false;
    for (const line of r.stdout.split('\n')) {
      const m = /^insmod (\S+)/.exec(line);
      if (m?.[1]) files.push(m[1]);
      else if (line.startsWith('builtin ')) builtin = true;
    }
    found.push({ name, builtin: builtin && files.length === 0, files });
  }
  return { found, missing };
}

/** Root of the npm workspace (where node_modules/vitest lives): three levels above dist/. */
export function workspaceRoot(): string {
  let dir = resolve(dirname(fileURLToPath(import.meta.url)));
  for (;;) {
    const pkg = join(dir, 'package.json');
    if (existsSync(pkg)) {
      try {
        const json = JSON.parse(readFileSync(pkg, 'utf8')) as { workspaces?: unknown };
        if (json.workspaces) return dir;
      } catch {
        /* keep looking */
      }
    }
    const up = dirname(dir);
    if (up === dir) break;
    dir = up;
  }
  throw new KernelLaneError('invalid-argument', 'cannot find the npm workspace root above the qemu-lane package');
}

/** Runs a command and returns stdout as a Buffer (large outputs allowed). */
export function run(cmd: string, args: string[], input?: Buffer): Buffer {
  return execFileSync(cmd, args, { input, maxBuffer: 1 << 30, stdio: ['pipe', 'pipe', 'pipe'] });
}
