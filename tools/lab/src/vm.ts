import { UsageError } from '@veil/cli';
import { LabUnsupportedError } from './errors.js';
import { MAIN_JS, resolveBackend } from './up.js';

/**
 * `veil lab up --kernel vm`: the same lab, run inside the qemu kernel lane (Debian's kernel with
 * WireGuard and ESP). The guest runs this very CLI on the host's node over 9p; the lab cannot
 * outlive the VM, so `--keep` is refused.
 */
export async function labUpInVm(o: {
  nodes: number;
  podsPerNode: number;
  backend: string;
  keep: boolean;
  strict: boolean;
  json: boolean;
  readyTimeout: number;
}): Promise<number> {
  if (o.keep) throw new UsageError('--keep', 'a lab in the VM ends with the VM; --keep works with --kernel host only');
  // Refuse a backend that cannot load before paying for a VM boot (same code, same node_modules inside).
  await resolveBackend(o.backend, 'vm');
  const { runInVm, KernelLaneError } = await import('@veil/qemu-lane');
  const command = [
    process.execPath,
    MAIN_JS,
    'lab',
    'up',
    '--nodes',
    String(o.nodes),
    '--pods-per-node',
    String(o.podsPerNode),
    '--backend',
    o.backend,
    '--ready-timeout',
    String(Math.max(o.readyTimeout, 300)),
  ];
  if (o.json) command.push('--json');
  if (o.strict) command.push('--strict');
  try {
    const r = await runInVm({
      command,
      memoryMiB: 1024 + 160 * o.nodes,
      timeoutMs: 1_500_000,
      onOutput: (text) => process.stderr.write(text),
    });
    if (r.missingModules.length > 0)
      process.stderr.write(`veil lab: modules missing in the VM: ${r.missingModules.join(', ')}\n`);
    return r.exitCode;
  } catch (err) {
    if (err instanceof KernelLaneError)
      throw new LabUnsupportedError(`the qemu kernel lane failed (${err.code}): ${err.message}`);
    throw err;
  }
}
