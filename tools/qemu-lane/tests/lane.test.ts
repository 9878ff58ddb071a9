import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describePrivileged } from '@veil/test-utils';
import { beforeAll, describe, expect, it } from 'vitest';
import { writeCpio, S_IFCHR, S_IFDIR, S_IFREG } from '../src/cpio.js';
import { KernelLaneError } from '../src/errors.js';
import { findGuestKernel, resolveModules } from '../src/host.js';
import { extractVmlinux } from '../src/vmlinux.js';
import { runInVm, runVitestInVm, type VmResult } from '../src/index.js';

const CLI = join(import.meta.dirname, '..', 'bin', 'veil-kernel-lane.js');

describe('initramfs pieces (host only)', () => {
  it('writes a newc cpio archive that cpio lists back', () => {
    const archive = writeCpio([
      { path: 'bin', mode: S_IFDIR | 0o755 },
      { path: 'bin/hello', mode: S_IFREG | 0o755, data: Buffer.from('#!/bin/sh\necho hi\n') },
      { path: 'console', mode: S_IFCHR | 0o600, rdevMajor: 5, rdevMinor: 1 },
    ]);
    expect(archive.subarray(0, 6).toString()).toBe('070701');
    // Every entry starts on a 4-byte boundary, so the total is a multiple of 4.
    expect(archive.length % 4).toBe(0);
    const listed = spawnSync('cpio', ['-t', '--quiet'], { input: archive, encoding: 'utf8' });
    if (listed.error) return expect.fail(`cpio is needed to check the archive: ${listed.error.message}`);
    expect(listed.stdout.trim().split('\n')).toEqual(['bin', 'bin/hello', 'console']);
  });

  it('rejects a kernel image with no compressed ELF payload', () => {
    const dir = mkdtempSync(join(tmpdir(), 'veil-lane-test-'));
    try {
      const bogus = join(dir, 'vmlinuz-bogus');
      writeFileSync(bogus, Buffer.alloc(4096, 0x41));
      expect(() => extractVmlinux(bogus)).toThrow(KernelLaneError);
      try {
        extractVmlinux(bogus);
      } catch (e) {
        expect((e as KernelLaneError).code).toBe('kernel-extract-failed');
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('names the Debian package when the guest kernel is missing', () => {
    expect(() => findGuestKernel('/nonexistent-boot')).toThrow(/linux-image-amd64/);
    try {
      findGuestKernel('/nonexistent-boot');
    } catch (e) {
      expect(e).toMatchObject({ code: 'missing-host-dependency', debianPackage: 'linux-image-amd64' });
    }
  });

  it('reports modules the guest kernel does not have instead of failing', () => {
    const kernel = findGuestKernel();
    const { found, missing } = resolveModules(kernel.version, ['wireguard', 'cbc', 'veil_no_such_module']);
    expect(missing).toEqual(['veil_no_such_module']);
    expect(found.find((m) => m.name === 'wireguard')?.files.at(-1)).toMatch(/wireguard\.ko/);
    expect(found.find((m) => m.name === 'cbc')?.builtin).toBe(true);
  });

  it('validates runInVm options before booting anything', async () => {
    await expect(runInVm({ command: [] })).rejects.toMatchObject({ code: 'invalid-argument' });
    await expect(runInVm({ command: ['true'], memoryMiB: 16 })).rejects.toThrow(/memoryMiB/);
    await expect(runInVm({ command: ['true'], env: { 'BAD-NAME': 'x' } })).rejects.toThrow(/BAD-NAME/);
  });
});

// Two boots in total: one through the API, one through the CLI.
describe('runVitestInVm with a fake VM (host only)', () => {
  const project = join(import.meta.dirname, '..');
  const vm = (exitCode: number, report?: string): VmResult => ({
    exitCode,
    output: '',
    resultsDir: '/nonexistent',
    files: report === undefined ? {} : { 'vitest-kernel.json': Buffer.from(report) },
    missingModules: [],
    kernelVersion: '6.1.0-test',
    bootMs: 1,
    totalMs: 2,
    cachedArtefacts: true,
  });
  const fake = (results: VmResult[]) => {
    let calls = 0;
    const runVm = (() => Promise.resolve(results[calls++] ?? vm(1))) as unknown as typeof runInVm;
    return { runVm, calls: () => calls };
  };

  it('boots once more, saying so, when the guest vitest died of a signal before writing a report', async () => {
    const f = fake([vm(139), vm(0, '{"ok":1}')]);
    const lines: string[] = [];
    const r = await runVitestInVm({ project, runVm: f.runVm, onOutput: (l) => lines.push(l) });
    expect(f.calls()).toBe(2);
    expect(r).toMatchObject({ exitCode: 0, boots: 2 });
    expect(lines.join('')).toContain('killed by signal 11 in the guest before writing any report');
  });

  it('does not boot again for a suite that ran (failed tests), nor for a plain non-zero exit, nor twice', async () => {
    const failed = fake([vm(1, '{"failed":1}'), vm(0, '{}')]);
    expect(await runVitestInVm({ project, runVm: failed.runVm, onOutput: () => undefined })).toMatchObject({
      exitCode: 1,
      boots: 1,
    });
    expect(failed.calls()).toBe(1);
    const noStart = fake([vm(1), vm(0, '{}')]);
    await expect(runVitestInVm({ project, runVm: noStart.runVm, onOutput: () => undefined })).rejects.toThrow(
      /exited 1 in the guest but wrote no vitest-kernel.json/,
    );
    expect(noStart.calls()).toBe(1);
    const twice = fake([vm(139), vm(139), vm(0, '{}')]);
    await expect(runVitestInVm({ project, runVm: twice.runVm, onOutput: () => undefined })).rejects.toThrow(
      /exited 139 in the guest but wrote no vitest-kernel.json/,
    );
    expect(twice.calls()).toBe(2);
  });
});

describePrivileged('a booted kernel-lane VM', ['root', 'qemu'], () => {
  let vm: VmResult;

  beforeAll(async () => {
    vm = await runInVm({
      command: [
        '/bin/sh',
        '-c',
        'echo "kver=$(uname -r)"; echo "lane=$VEIL_KERNEL_LANE"; genl ctrl get name wireguard; ' +
          'echo payload > "$VEIL_RESULTS_DIR/out.txt"; exit 7',
      ],
      modules: ['wireguard', 'veil_no_such_module'],
      collect: ['out.txt'],
      timeoutMs: 300_000,
    });
  }, 320_000);

  it('runs Debian 6.1 kernel', () => {
    expect(vm.kernelVersion).toMatch(/^6\.1\./);
    expect(vm.output).toMatch(/kver=6\.1\.\d+-\d+-amd64/);
    expect(vm.output).toContain('lane=1');
  });

  it('has the wireguard generic netlink family after modprobe', () => {
    expect(vm.output).toMatch(/Name: wireguard/);
  });

  it('propagates the guest command exit status', () => {
    expect(vm.exitCode).toBe(7);
  });

  it('returns files written to the results share', () => {
    expect(vm.files['out.txt']?.toString()).toBe('payload\n');
  });

  it('reports a requested module the kernel lacks', () => {
    expect(vm.missingModules).toEqual(['veil_no_such_module']);
  });

  it('boot time is measured', () => {
    expect(vm.bootMs).toBeGreaterThan(0);
    expect(vm.totalMs).toBeGreaterThanOrEqual(vm.bootMs);
  });

  it('the CLI exits with a failing guest command status', () => {
    const r = spawnSync(process.execPath, [CLI, 'exec', '--modules', 'veth', '--', '/bin/sh', '-c', 'echo from-guest; exit 3'], {
      encoding: 'utf8',
      timeout: 300_000,
    });
    expect(r.stdout).toContain('from-guest');
    expect(r.stderr).toMatch(/kernel 6\.1\.\S+: boot \d/);
    expect(r.status).toBe(3);
  }, 320_000);
});
