import { createRequire } from 'node:module';
import { NetlinkBaseError, NetlinkSyscallError } from './errors.js';

/** Shape of the N-API handle in native/netlink.cc. Internal: use NetlinkSocket. */
export interface NativeSocketHandle {
  portId(): number;
  fd(): number;
  send(buf: Buffer): number;
  /**
   * sendmsg() on the socket's sender thread, in call order; `cb` gets the error, if any, and
   * never runs after close(). The bytes are copied. The kernel handles the request inside
   * sendmsg(), which can block for minutes (module autoload behind a netns teardown).
   */
  sendAsync(buf: Buffer, cb: (err: Error | undefined) => void): void;
  addMembership(group: number): void;
  dropMembership(group: number): void;
  setRcvbuf(bytes: number, force: boolean): void;
  /** setsockopt(SOL_NETLINK, name, int) */
  setNetlinkOption(name: number, value: number): void;
  ref(): void;
  unref(): void;
  close(): void;
}

export interface NativeBinding {
  /** open(path, flags) while inside a netns; returns the fd. */
  openInNetns(netnsPath: string | null, netnsFd: number, path: string, flags: number): number;
  NativeSocket: new (
    protocol: number,
    netnsPath: string | null,
    netnsFd: number,
    groupsMask: number,
    /**
     * Every datagram read in one wakeup, in order: back to back in `data` (one Buffer per wakeup,
     * not per datagram), `lengths[i]` bytes each, with its multicast group (0 = unicast).
     */
    onMessages: (data: Buffer, lengths: number[], groups: number[]) => void,
    onError: (err: Error) => void,
  ) => NativeSocketHandle;
}

let binding: NativeBinding | undefined;

// This file runs from dist/ (package), src/ (vitest) or dist-bench/src/ (benchmarks).
const CANDIDATES = ['../build/Release/veil_netlink.node', '../../build/Release/veil_netlink.node'];

/** Loads build/Release/veil_netlink.node relative to this file. */
export function loadBinding(): NativeBinding {
  if (!binding) {
    const require = createRequire(import.meta.url);
    let lastError: unknown;
    for (const rel of CANDIDATES) {
      try {
        binding = require(rel) as NativeBinding;
        break;
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'MODULE_NOT_FOUND') throw e;
        lastError = e;
      }
    }
    if (!binding) {
      throw new NetlinkBaseError(
        `@veil/netlink native addon not found (run \`npm run build -w @veil/netlink\`): ${String(lastError)}`,
      );
    }
  }
  return binding;
}

/** Native errors carry { errno, code, syscall }; turn them into NetlinkSyscallError. */
export function wrapNativeError(e: unknown): unknown {
  if (e instanceof Error && typeof (e as { syscall?: unknown }).syscall === 'string') {
    const ne = e as Error & { syscall: string; errno: number };
    return new NetlinkSyscallError(ne.syscall, Math.abs(ne.errno), (e as { detail?: string }).detail);
  }
  return e;
}

/** Runs a native call, converting its errors. */
export function callNative<T>(fn: () => T): T {
  try {
    return fn();
  } catch (e) {
    throw wrapNativeError(e);
  }
}
