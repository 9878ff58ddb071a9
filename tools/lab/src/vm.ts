import { UsageError } from '@veil/cli';
import { LabUnsupportedError } from './errors.js';
import { MAIN_JS, resolveBackend } from './up.js';

/** Boots the qemu kernel lane and runs `command` there; the guest console goes to our stderr. */
async function inVm(command: readonly string[], nodes: number): Promise<number> {
  const { runInVm, KernelLaneError } = await import('@veil/qemu-lane');
  try {
    const r = await runInVm({
      command,
      memoryMiB: 1024 + 160 * nodes,
      timeoutMs: 2_940_000,
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

function upArgs(o: {
  nodes: number;
  podsPerNode: number;
  backend: string;
  strict: boolean;
  withholdKey?: string;
  nodeEncryption?: boolean;
  readyTimeout: number;
  ipsecKeyIndex?: number;
}): string[] {
  const args = [
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
  if (o.strict) args.push('--strict');
  if (o.withholdKey !== undefined) args.push('--withhold-key', o.withholdKey);
  if (o.nodeEncryption) args.push('--node-encryption');
  if (o.ipsecKeyIndex !== undefined) args.push('--ipsec-key-index', String(o.ipsecKeyIndex));
  return args;
}

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
  withholdKey?: string;
  nodeEncryption?: boolean;
  json?: boolean;
  /** -o: json/yaml pass through to the lab inside the VM. */
  output?: string;
  readyTimeout: number;
  ipsecKeyIndex?: number;
}): Promise<number> {
  if (o.keep) throw new UsageError('--keep', 'a lab in the VM ends with the VM; --keep works with --kernel host only');
  // Refuse a backend that cannot load before paying for a VM boot (same code, same node_modules inside).
  await resolveBackend(o.backend, 'vm');
  const command = [process.execPath, MAIN_JS, ...upArgs(o)];
  command.push(...outputArgs(o));
  return inVm(command, o.nodes);
}

/** The output flags the lab inside the VM gets: --json as given, or -o json|yaml. */
function outputArgs(o: { json?: boolean; output?: string }): string[] {
  if (o.json) return ['--json'];
  return o.output === 'json' || o.output === 'yaml' ? ['-o', o.output] : [];
}

function shq(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

/**
 * `veil lab chaos --kernel vm`: one qemu boot holds a whole session: `lab up --keep` (its summary
 * as JSON on stdout), `lab chaos` with the given options (its report as JSON on stdout), `lab
 * down`. Exits with the first failure: `up`'s if the lab did not come up, else chaos'.
 */
export async function labChaosInVm(o: {
  duration: string;
  interval: string;
  actions?: string;
  rounds?: number;
  pairs: 'ring' | 'all';
  maxLost: number;
  nodes: number;
  podsPerNode: number;
  backend: string;
  ipsecKeyIndex: number;
  json?: boolean;
  output?: string;
}): Promise<number> {
  await resolveBackend(o.backend, 'vm');
  const veil = [process.execPath, MAIN_JS].map(shq).join(' ');
  const up = upArgs({ ...o, strict: false, readyTimeout: 600 });
  const chaos = ['lab', 'chaos', '--duration', o.duration, '--interval', o.interval, '--pairs', o.pairs];
  chaos.push('--max-lost', String(o.maxLost));
  if (o.actions) chaos.push('--actions', o.actions);
  if (o.rounds !== undefined) chaos.push('--rounds', String(o.rounds));
  const json = outputArgs(o)
    .map((a) => ` ${shq(a)}`)
    .join('');
  const script = [
    `${veil} ${up.map(shq).join(' ')} --keep${json} || { rc=$?; ${veil} lab down; exit $rc; }`,
    `${veil} ${chaos.map(shq).join(' ')}${json}; rc=$?`,
    `${veil} lab down`,
    'exit $rc',
  ].join('\n');
  return inVm(['sh', '-c', script], o.nodes);
}
