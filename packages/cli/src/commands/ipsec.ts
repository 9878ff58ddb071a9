import type { Command } from 'commander';
import { UsageError } from '../errors.js';
import { processIO, type CommandIO } from '../render/io.js';

/** The algorithms `keygen` offers (the backend's `KeygenAlgorithm`). */
const ALGORITHMS = ['gcm-128', 'gcm-256', 'chacha20-poly1305'] as const;
type Algorithm = (typeof ALGORITHMS)[number];

export interface KeygenOptions {
  /** Key index (the line's SPI field), 1..15. */
  spi?: string;
  algorithm?: string;
}

/**
 * `veil ipsec keygen`: prints one fresh key line in the IPsec backend's key-file format (Cilium's),
 * the content of the `veil-ipsec-keys` Secret's `keys` entry. Flags are checked here so a typo is a
 * usage error (exit 2) naming the flag; the line itself comes from the backend's `keygen()`.
 */
export async function runIpsecKeygen(opts: KeygenOptions, io: CommandIO = processIO()): Promise<number> {
  let spi: number | undefined;
  if (opts.spi !== undefined) {
    if (!/^\d+$/.test(opts.spi) || Number(opts.spi) < 1 || Number(opts.spi) > 15)
      throw new UsageError('--spi', `needs a key index in 1..15, got "${opts.spi}"`);
    spi = Number(opts.spi);
  }
  const algorithm = opts.algorithm ?? 'gcm-128';
  if (!(ALGORITHMS as readonly string[]).includes(algorithm))
    throw new UsageError('--algorithm', `needs one of ${ALGORITHMS.join(', ')}, got "${algorithm}"`);
  // Imported here: the backend loads XFRM bindings the other commands do not need.
  const { keygen } = await import('@veil/backend-ipsec');
  io.stdout.write(keygen({ algorithm: algorithm as Algorithm, ...(spi !== undefined ? { spi } : {}) }) + '\n');
  return 0;
}

export function register(program: Command): void {
  const ipsec = program.command('ipsec').description('IPsec backend tools');
  ipsec
    .command('keygen')
    .description(
      'print a fresh key line for the IPsec key Secret: kubectl -n kube-system create secret generic veil-ipsec-keys --from-literal=keys="$(veil ipsec keygen)"',
    )
    .option('--spi <index>', 'key index 1..15 (a rotation uses the next index)', '1')
    .option('--algorithm <name>', `${ALGORITHMS.join(' | ')}`, 'gcm-128')
    .action(async (opts: KeygenOptions) => {
      process.exitCode = await runIpsecKeygen(opts);
    });
}
