import { check } from './errors.js';
import { checkPath } from './map.js';
import { native } from './native.js';

/** `mount -t bpf bpf <dir>` (mode 0700). Every mount is a separate bpffs instance. */
export function mountBpffs(dir: string): void {
  checkPath(dir, 'dir');
  check(native.mountBpffs(dir), 'bpffs.mount', `'${dir}'`);
}

/** `umount <dir>`. */
export function unmountBpffs(dir: string): void {
  checkPath(dir, 'dir');
  check(native.unmount(dir), 'bpffs.unmount', `'${dir}'`);
}
