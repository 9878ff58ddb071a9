import { constants } from 'node:os';
import { native } from './native.js';

// errno → code name. Node's table covers the userspace errnos; the kernel's internal ones
// (ENOTSUPP 524 …) leak out of bpf(2) and libbpf adds its own 4000+ range.
const errnoNames = new Map<number, string>();
for (const [name, value] of Object.entries(constants.errno)) {
  if (!errnoNames.has(value)) errnoNames.set(value, name);
}
const extraNames: Record<number, string> = {
  512: 'ERESTARTSYS',
  515: 'ENOIOCTLCMD',
  523: 'EBADCOOKIE',
  524: 'ENOTSUPP',
  4000: 'LIBBPF_ERRNO__LIBELF',
  4001: 'LIBBPF_ERRNO__FORMAT',
  4002: 'LIBBPF_ERRNO__KVERSION',
  4003: 'LIBBPF_ERRNO__ENDIAN',
  4004: 'LIBBPF_ERRNO__INTERNAL',
  4005: 'LIBBPF_ERRNO__RELOC',
  4006: 'LIBBPF_ERRNO__LOAD',
  4007: 'LIBBPF_ERRNO__VERIFY',
  4008: 'LIBBPF_ERRNO__PROG2BIG',
  4009: 'LIBBPF_ERRNO__KVER',
  4010: 'LIBBPF_ERRNO__PROGTYPE',
  4011: 'LIBBPF_ERRNO__WRNGPID',
  4012: 'LIBBPF_ERRNO__INVSEQ',
  4013: 'LIBBPF_ERRNO__NLPARSE',
};
for (const [k, v] of Object.entries(extraNames)) errnoNames.set(Number(k), v);

/** Code name for an errno ('EPERM', 'ENOTSUPP', 'LIBBPF_ERRNO__VERIFY', or 'E<n>' if unknown). */
export function errnoCode(errno: number): string {
  return errnoNames.get(Math.abs(errno)) ?? `E${Math.abs(errno)}`;
}

/** Base class of every error libbpf-ts throws. */
export class LibbpfError extends Error {
  override name = 'LibbpfError';
}

/** A bpf(2) syscall or libbpf call failed. */
export class BpfError extends LibbpfError {
  override name = 'BpfError';
  /** Positive errno value. */
  readonly errno: number;
  /** Symbolic errno ('EPERM', 'ENOENT', …). */
  readonly code: string;

  /**
   * @param op the operation that failed ('map.update', 'object.load', 'tc.attach', …)
   * @param errno errno (sign ignored)
   * @param context what the operation was applied to (map name, path, ifindex …)
   */
  constructor(
    readonly op: string,
    errno: number,
    readonly context: string,
    detail?: string,
  ) {
    const e = Math.abs(errno);
    const code = errnoCode(e);
    super(`${op} ${context}: ${code} (${describeErrno(e)})${detail ? `: ${detail}` : ''}`);
    this.errno = e;
    this.code = code;
  }
}

/** The kernel does not support this operation for this object (EOPNOTSUPP / ENOTSUPP). */
export class NotSupportedError extends BpfError {
  override name = 'NotSupportedError';
}

/** The verifier rejected a program; `log` is the verifier's output. */
export class VerifierError extends BpfError {
  override name = 'VerifierError';
  constructor(
    op: string,
    errno: number,
    context: string,
    /** The program that failed to load, when libbpf named it. */
    readonly program: string | undefined,
    /** The verifier log (between libbpf's BEGIN/END PROG LOAD LOG markers when present). */
    readonly log: string,
    /** Everything libbpf printed during the load. */
    readonly libbpfLog: string,
  ) {
    super(op, errno, context, `verifier rejected program${program ? ` '${program}'` : ''}:\n${lastLines(log, 12)}`);
  }
}

/** An operation was attempted on a closed spec, object, map or program. */
export class ClosedError extends LibbpfError {
  override name = 'ClosedError';
  constructor(readonly what: string) {
    super(`${what} is closed`);
  }
}

/** An unknown map, program, constant or interface name. */
export class NotFoundError extends LibbpfError {
  override name = 'NotFoundError';
  constructor(
    readonly kind: 'map' | 'program' | 'constant' | 'interface',
    readonly wanted: string,
    readonly known: readonly string[],
    where = '',
  ) {
    super(
      `no ${kind} named '${wanted}'${where ? ` in ${where}` : ''}` +
        (kind === 'interface' ? '' : `; known: ${known.length > 0 ? known.join(', ') : '(none)'}`),
    );
  }
}

/** A codec's byte size differs from the size the kernel object expects. */
export class CodecSizeError extends LibbpfError {
  override name = 'CodecSizeError';
  constructor(
    /** e.g. "map 'routes'" or "constant 'cfg_mark'". */
    readonly target: string,
    readonly role: 'key' | 'value' | 'constant',
    readonly codecSize: number,
    readonly expectedSize: number,
  ) {
    super(`${target}: ${role} codec is ${codecSize} bytes but the ${role} is ${expectedSize} bytes`);
  }
}

/** A bad argument, rejected before any syscall. */
export class ArgumentError extends LibbpfError {
  override name = 'ArgumentError';
  constructor(
    /** The offending argument or field name. */
    readonly field: string,
    message: string,
  ) {
    super(`${field}: ${message}`);
  }
}

function describeErrno(errno: number): string {
  if (errno === 524) return 'operation not supported by this kernel object';
  try {
    return native.libbpfStrerror(errno);
  } catch {
    return 'unknown error';
  }
}

function lastLines(s: string, n: number): string {
  const lines = s.trimEnd().split('\n');
  return lines.slice(Math.max(0, lines.length - n)).join('\n');
}

/** Throws BpfError (or NotSupportedError for EOPNOTSUPP/ENOTSUPP) when ret < 0. */
export function check(ret: number, op: string, context: string): number {
  if (ret < 0) throw bpfError(op, ret, context);
  return ret;
}

export function bpfError(op: string, err: number, context: string, detail?: string): BpfError {
  const e = Math.abs(err);
  if (e === constants.errno.EOPNOTSUPP || e === 524) return new NotSupportedError(op, e, context, detail);
  return new BpfError(op, e, context, detail);
}
