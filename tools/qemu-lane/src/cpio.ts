/** One entry of a newc ("070701") cpio archive, the format the kernel unpacks as initramfs. */
export interface CpioEntry {
  /** Path inside the archive, without a leading slash (e.g. "bin/busybox"). */
  path: string;
  /** Full st_mode: type bits | permissions (e.g. 0o100755 for an executable file). */
  mode: number;
  data?: Buffer;
  /** For character/block devices. */
  rdevMajor?: number;
  rdevMinor?: number;
}

export const S_IFDIR = 0o040000;
export const S_IFREG = 0o100000;
export const S_IFCHR = 0o020000;

function hex8(n: number): string {
  return n.toString(16).padStart(8, '0');
}

function pad4(len: number): Buffer {
  return Buffer.alloc((4 - (len % 4)) % 4);
}

/**
 * Writes a newc cpio archive. Layout per entry: 110-byte ASCII header
 * ("070701" + 13 eight-digit hex fields), the NUL-terminated name padded to 4 bytes,
 * then the data padded to 4 bytes. The archive ends with a "TRAILER!!!" entry.
 */
export function writeCpio(entries: CpioEntry[]): Buffer {
  const parts: Buffer[] = [];
  let ino = 1;
  const push = (e: CpioEntry): void => {
    const data = e.data ?? Buffer.alloc(0);
    const name = Buffer.from(`${e.path}\0`, 'utf8');
    const fields = [
      ino++, // c_ino
      e.mode, // c_mode
      0, // c_uid
      0, // c_gid
      (e.mode & S_IFDIR) === S_IFDIR ? 2 : 1, // c_nlink
      0, // c_mtime (fixed, so the archive is reproducible)
      data.length, // c_filesize
      0, // c_devmajor
      0, // c_devminor
      e.rdevMajor ?? 0, // c_rdevmajor
      e.rdevMinor ?? 0, // c_rdevminor
      name.length, // c_namesize (includes the NUL)
      0, // c_check
    ];
    const header = Buffer.from(`070701${fields.map(hex8).join('')}`, 'ascii');
    parts.push(header, name, pad4(header.length + name.length), data, pad4(data.length));
  };
  for (const e of entries) push(e);
  push({ path: 'TRAILER!!!', mode: 0 });
  return Buffer.concat(parts);
}
