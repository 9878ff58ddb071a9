import { createRequire } from 'node:module';

/** Result of a native call that returns an errno alongside data: err is 0 or -errno. */
export interface ErrResult {
  err: number;
}

export interface NativeMapSpec {
  name: string;
  type: string;
  keySize: number;
  valueSize: number;
  maxEntries: number;
  flags: number;
  internal: boolean;
  pinPath?: string;
}

export interface NativeProgSpec {
  name: string;
  section: string;
  type: string;
}

export interface NativeMapInfo extends ErrResult {
  id: number;
  type: string;
  keySize: number;
  valueSize: number;
  maxEntries: number;
  flags: number;
  name: string;
}

export interface NativeProgInfo extends ErrResult {
  id: number;
  type: string;
  name: string;
  tag: Buffer;
}

/** Opaque libbpf `struct bpf_object *` handle. */
export type ObjHandle = { readonly __brand: 'bpf_object' };

/** The addon's surface (native/libbpf.cc). Every number result is 0/value on success, -errno on failure. */
export interface NativeBinding {
  objOpen(path: string): ErrResult & { handle?: ObjHandle; log: string };
  objClose(h: ObjHandle): void;
  objInfo(h: ObjHandle): { maps: NativeMapSpec[]; programs: NativeProgSpec[] };
  objDatasec(h: ObjHandle, sec: string): { name: string; offset: number; size: number }[];
  objSetMaxEntries(h: ObjHandle, map: string, n: number): number;
  objSetPinPath(h: ObjHandle, map: string, path: string): number;
  objGetInitialValue(h: ObjHandle, map: string): Buffer | undefined;
  objSetInitialValue(h: ObjHandle, map: string, buf: Buffer): number;
  objLoad(h: ObjHandle): ErrResult & {
    log: string;
    maps: { name: string; fd: number }[];
    programs: { name: string; fd: number }[];
  };
  mapLookup(fd: number, key: Buffer, value: Buffer): number;
  mapUpdate(fd: number, key: Buffer, value: Buffer, flags: number): number;
  mapDelete(fd: number, key: Buffer): number;
  mapGetNextKey(fd: number, key: Buffer | null, next: Buffer): number;
  mapUpdateBatch(fd: number, keys: Buffer, values: Buffer, count: number, elemFlags: number): ErrResult & { count: number };
  mapDeleteBatch(fd: number, keys: Buffer, count: number): ErrResult & { count: number };
  mapInfo(fd: number): NativeMapInfo;
  progInfo(fd: number): NativeProgInfo;
  objPin(fd: number, path: string): number;
  objGet(path: string): number;
  closeFd(fd: number): number;
  progTestRun(
    fd: number,
    dataIn: Buffer,
    dataOut: Buffer,
    ctxIn: Buffer | null,
    ctxOut: Buffer | null,
    repeat: number,
    netns: string | null,
  ): ErrResult & { op: string; retval: number; duration: number; dataSizeOut: number; ctxSizeOut: number };
  tcAttach(
    ifindex: number,
    attachPoint: number,
    progFd: number,
    priority: number,
    handle: number,
    flags: number,
    netns: string | null,
  ): ErrResult & { op: string; handle?: number; priority?: number; progId?: number };
  tcDetach(ifindex: number, attachPoint: number, priority: number, handle: number, netns: string | null): number;
  tcQuery(
    ifindex: number,
    attachPoint: number,
    priority: number,
    handle: number,
    netns: string | null,
  ): ErrResult & {
    progId?: number;
  };
  ifNameToIndex(name: string, netns: string | null): number;
  nlDump(protocol: number, request: Buffer, netns: string | null): ErrResult & { op: string; data?: Buffer };
  numPossibleCpus(): number;
  mountBpffs(path: string): number;
  unmount(path: string): number;
  libbpfStrerror(err: number): string;
  readonly skbLayout: Readonly<Record<string, number>>;
}

const require = createRequire(import.meta.url);

/** The compiled addon, from build/Release (built by `npm run build:native`). */
export const native: NativeBinding = require('../build/Release/native_libbpf.node') as NativeBinding;
