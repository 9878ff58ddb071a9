import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { KernelLaneError } from './errors.js';
import { which } from './host.js';

/** Compressed payload formats a bzImage may carry, with the tool that decompresses each. */
const FORMATS: { name: string; magic: Buffer; tool: string; args: string[]; debianPackage: string }[] = [
  { name: 'gzip', magic: Buffer.from([0x1f, 0x8b, 0x08]), tool: 'gzip', args: ['-dc'], debianPackage: 'gzip' },
  { name: 'xz', magic: Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]), tool: 'xz', args: ['-dc'], debianPackage: 'xz-utils' },
  { name: 'zstd', magic: Buffer.from([0x28, 0xb5, 0x2f, 0xfd]), tool: 'zstd', args: ['-dcq'], debianPackage: 'zstd' },
  {
    name: 'lzma',
    magic: Buffer.from([0x5d, 0x00, 0x00, 0x00]),
    tool: 'xz',
    args: ['-dc', '--format=lzma'],
    debianPackage: 'xz-utils',
  },
  { name: 'lz4', magic: Buffer.from([0x02, 0x21, 0x4c, 0x18]), tool: 'lz4', args: ['-dc'], debianPackage: 'lz4' },
  { name: 'bzip2', magic: Buffer.from('BZh', 'ascii'), tool: 'bzip2', args: ['-dc'], debianPackage: 'bzip2' },
];

const ELF_MAGIC = Buffer.from([0x7f, 0x45, 0x4c, 0x46]);

/**
 * Extracts the uncompressed ELF vmlinux from a bzImage, the way the kernel's
 * scripts/extract-vmlinux does: try every offset where a known compression magic
 * appears, decompress from there (trailing bytes after the stream make the tool
 * complain, so its exit status is ignored) and keep the first result that is an ELF file.
 * Booting the ELF directly with qboot skips the in-guest decompression (TCG makes it slow).
 */
export function extractVmlinux(imagePath: string): Buffer {
  const image = readFileSync(imagePath);
  const tried: string[] = [];
  for (const f of FORMATS) {
    const tool = which(f.tool);
    let at = image.indexOf(f.magic);
    // A handful of false-positive magics can precede the real one; stop after a few.
    for (let attempts = 0; at >= 0 && attempts < 8; attempts++) {
      if (!tool) {
        tried.push(`${f.name} at ${at} (no ${f.tool}; Debian package "${f.debianPackage}")`);
        break;
      }
      const r = spawnSync(tool, f.args, { input: image.subarray(at), maxBuffer: 1 << 30 });
      const out = r.stdout;
      if (out && out.length > 1024 && out.subarray(0, 4).equals(ELF_MAGIC)) return out;
      tried.push(`${f.name} at ${at}`);
      at = image.indexOf(f.magic, at + 1);
    }
  }
  throw new KernelLaneError(
    'kernel-extract-failed',
    `no ELF vmlinux found inside ${imagePath} (tried: ${tried.join(', ') || 'no compression magic found'})`,
  );
}
