import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { KernelLaneError } from './errors.js';
import { checkHostTools, findGuestKernel, resolveModules, workspaceRoot } from './host.js';
import { prepareBootArtefacts } from './initramfs.js';

/**
 * Modules a run loads by default: WireGuard, ESP/XFRM with the AEADs Veil uses, veth/tun and
 * tc BPF. Names that do not exist for the guest kernel are reported in `missingModules`, not fatal.
 */
export const DEFAULT_MODULES: readonly string[] = [
  'wireguard',
  'esp4',
  'esp6',
  'xfrm_user',
  'xfrm_algo',
  'gcm',
  'ghash-generic',
  'chacha20poly1305',
  'seqiv',
  'authenc',
  'authencesn',
  'cbc',
  'hmac',
  'sha256_generic',
  'aes_generic',
  'veth',
  'tun',
  'sch_ingress',
  'cls_bpf',
];

export interface RunInVmOptions {
  /** argv of the command to run in the guest (looked up on the guest PATH, which is the host's). */
  command: readonly string[];
  /** Working directory in the guest (the host root is visible read-only + tmpfs overlay). Default: process.cwd(). */
  cwd?: string;
  /** Extra environment for the command. VEIL_KERNEL_LANE=1, VEIL_RESULTS_DIR and CI (if set on the host) are always passed. */
  env?: Record<string, string>;
  /** Modules to modprobe before the command. Default: DEFAULT_MODULES. */
  modules?: readonly string[];
  /** Kill the VM after this long. Default 900 s. */
  timeoutMs?: number;
  /** Guest memory in MiB. Default 512. */
  memoryMiB?: number;
  /** Guest vCPUs. Default 2. */
  cpus?: number;
  /** Receives the guest console (kernel messages and the command's stdout/stderr), CRs stripped. */
  onOutput?: (text: string) => void;
  /** Files (names relative to the results share) to read back into `files` before the share is removed. */
  collect?: readonly string[];
  /** Keep the results share on the host instead of removing it (its path is in `resultsDir`). */
  keepResultsDir?: boolean;
  /** Cache directory for the vmlinux and initramfs. Default <workspace>/.veil-cache/qemu. */
  cacheDir?: string;
}

export interface VmResult {
  /** Exit status of the command inside the guest. */
  exitCode: number;
  /** The whole guest console, CRs stripped (capped at 32 MiB). */
  output: string;
  /** Host path of the writable share; mounted at the same path in the guest. Removed unless keepResultsDir. */
  resultsDir: string;
  /** Contents of the `collect` files that exist. */
  files: Record<string, Buffer>;
  /** Requested modules that do not exist for the guest kernel or failed to load. */
  missingModules: string[];
  kernelVersion: string;
  /** From qemu launch until the guest is ready to run the command. */
  bootMs: number;
  /** From qemu launch until qemu exited. */
  totalMs: number;
  /** Whether the vmlinux/initramfs came from the cache. */
  cachedArtefacts: boolean;
}

const OUTPUT_CAP = 32 << 20;
const READY_MARK = 'veil-lane: guest ready';

function shq(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

/**
 * Boots Debian's kernel under qemu (TCG), with the host root shared read-only over 9p under a
 * tmpfs overlay, runs one command in it and returns its exit status. One call = one boot.
 *
 * Throws KernelLaneError for a missing host dependency, a guest timeout, or a guest that stopped
 * without reporting an exit status (crash). A command that fails is not an error: see `exitCode`.
 */
export async function runInVm(opts: RunInVmOptions): Promise<VmResult> {
  if (!Array.isArray(opts.command) || opts.command.length === 0 || opts.command.some((a) => typeof a !== 'string')) {
    throw new KernelLaneError('invalid-argument', 'command must be a non-empty array of strings');
  }
  const timeoutMs = opts.timeoutMs ?? 900_000;
  const memoryMiB = opts.memoryMiB ?? 512;
  const cpus = opts.cpus ?? 2;
  if (!Number.isFinite(timeoutMs) || timeoutMs <= 0)
    throw new KernelLaneError('invalid-argument', `timeoutMs must be > 0, got ${timeoutMs}`);
  if (!Number.isInteger(memoryMiB) || memoryMiB < 128)
    throw new KernelLaneError('invalid-argument', `memoryMiB must be an integer >= 128, got ${memoryMiB}`);
  if (!Number.isInteger(cpus) || cpus < 1)
    throw new KernelLaneError('invalid-argument', `cpus must be a positive integer, got ${cpus}`);
  const cwd = resolve(opts.cwd ?? process.cwd());
  if (!existsSync(cwd)) throw new KernelLaneError('invalid-argument', `cwd ${cwd} does not exist`);

  for (const [k, v] of Object.entries(opts.env ?? {})) {
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(k))
      throw new KernelLaneError('invalid-argument', `env name ${JSON.stringify(k)} is not a valid variable name`);
    if (typeof v !== 'string') throw new KernelLaneError('invalid-argument', `env ${k} must be a string`);
  }

  const tools = checkHostTools();
  const kernel = findGuestKernel();
  const cacheDir = opts.cacheDir ?? join(workspaceRoot(), '.veil-cache', 'qemu');
  const boot = prepareBootArtefacts(kernel, tools.busybox, cacheDir);

  const requested = opts.modules ?? DEFAULT_MODULES;
  const { found, missing } = resolveModules(kernel.version, requested);
  const loadable = found.filter((m) => !m.builtin).map((m) => m.name);

  // realpath-free tmpdir keeps the path identical in guest and host (no symlinks under /tmp).
  const resultsDir = mkdtempSync(join(tmpdir(), 'veil-lane-'));
  if (/[\s'"\\$`]/.test(resultsDir)) {
    rmSync(resultsDir, { recursive: true, force: true });
    throw new KernelLaneError(
      'invalid-argument',
      `temporary directory ${resultsDir} contains characters the kernel command line cannot carry`,
    );
  }
  const env: Record<string, string> = {
    VEIL_KERNEL_LANE: '1',
    VEIL_RESULTS_DIR: resultsDir,
    ...(process.env.CI !== undefined ? { CI: process.env.CI } : {}),
    ...opts.env,
  };
  writeFileSync(join(resultsDir, 'job.env'), `VEIL_MODULES=${shq(loadable.join(' '))}\n`);
  writeFileSync(
    join(resultsDir, 'job.sh'),
    [
      ...Object.entries(env).map(([k, v]) => `export ${k}=${shq(v)}`),
      `cd ${shq(cwd)} || exit 126`,
      `exec ${opts.command.map(shq).join(' ')}`,
      '',
    ].join('\n'),
  );

  const args = [
    '-accel',
    'tcg,thread=multi',
    '-M',
    'pc',
    '-cpu',
    'max',
    '-smp',
    String(cpus),
    '-m',
    String(memoryMiB),
    '-nodefaults',
    '-no-user-config',
    '-display',
    'none',
    '-vga',
    'none',
    '-no-reboot',
    ...(tools.qboot ? ['-bios', tools.qboot] : []),
    '-kernel',
    boot.vmlinux,
    '-initrd',
    boot.initramfs,
    '-append',
    // no_timer_check: under TCG on a loaded host the kernel can find the IO-APIC timer "not working" and panic.
    `console=ttyS0 quiet panic=-1 mitigations=off random.trust_cpu=on no_timer_check veilres=${resultsDir}`,
    '-chardev',
    'stdio,id=con,signal=off',
    '-serial',
    'chardev:con',
    '-virtfs',
    'local,path=/,mount_tag=hostroot,security_model=none,readonly=on,multidevs=remap',
    '-virtfs',
    `local,path=${resultsDir},mount_tag=results,security_model=none,multidevs=remap`,
  ];

  const started = Date.now();
  let bootMs = -1;
  let output = '';
  let timedOut = false;
  const child = spawn(tools.qemu, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  const onData = (chunk: Buffer): void => {
    const text = chunk.toString('utf8').replace(/\r/g, '');
    if (output.length < OUTPUT_CAP) output += text;
    if (bootMs < 0 && output.includes(READY_MARK)) bootMs = Date.now() - started;
    opts.onOutput?.(text);
  };
  child.stdout.on('data', onData);
  child.stderr.on('data', onData);
  const timer = setTimeout(() => {
    timedOut = true;
    child.kill('SIGKILL');
  }, timeoutMs);
  // Do not leave an orphaned VM behind if this process is interrupted.
  const onSignal = (): void => {
    child.kill('SIGKILL');
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  const qemuStatus = await new Promise<{ code: number | null; signal: NodeJS.Signals | null; error?: Error }>((res) => {
    child.once('error', (error) => res({ code: null, signal: null, error }));
    child.once('close', (code, signal) => res({ code, signal }));
  });
  clearTimeout(timer);
  process.off('SIGINT', onSignal);
  process.off('SIGTERM', onSignal);
  const totalMs = Date.now() - started;

  const cleanup = (): void => {
    if (!opts.keepResultsDir) rmSync(resultsDir, { recursive: true, force: true });
  };
  try {
    if (qemuStatus.error) {
      throw new KernelLaneError('guest-crashed', `cannot start ${tools.qemu}: ${qemuStatus.error.message}`);
    }
    if (timedOut) {
      throw new KernelLaneError('timeout', `guest did not finish within ${Math.round(timeoutMs / 1000)} s and was killed`);
    }
    const exitFile = join(resultsDir, 'exit-code');
    if (!existsSync(exitFile)) {
      const tail = output.split('\n').slice(-15).join('\n');
      throw new KernelLaneError(
        'guest-crashed',
        `guest stopped without reporting an exit status (qemu exit ${qemuStatus.code ?? qemuStatus.signal}); last console lines:\n${tail}`,
      );
    }
    const exitCode = Number.parseInt(readFileSync(exitFile, 'utf8').trim(), 10);
    const guestMissing = existsSync(join(resultsDir, 'modules-missing'))
      ? readFileSync(join(resultsDir, 'modules-missing'), 'utf8').split('\n').filter(Boolean)
      : [];
    const files: Record<string, Buffer> = {};
    for (const name of opts.collect ?? []) {
      const p = join(resultsDir, name);
      if (existsSync(p)) files[name] = readFileSync(p);
    }
    return {
      exitCode: Number.isNaN(exitCode) ? 255 : exitCode,
      output,
      resultsDir,
      files,
      missingModules: [...missing, ...guestMissing],
      kernelVersion: kernel.version,
      bootMs,
      totalMs,
      cachedArtefacts: boot.cached,
    };
  } finally {
    cleanup();
  }
}
