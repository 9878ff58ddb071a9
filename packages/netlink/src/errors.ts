import { errnoCode } from './errno.js';

/** Base class of every error thrown by @veil/netlink. */
export class NetlinkBaseError extends Error {
  override name = 'NetlinkBaseError';
}

/** Bytes that do not form valid netlink messages/attributes (truncated header, bad length...). */
export class NetlinkDecodeError extends NetlinkBaseError {
  override name = 'NetlinkDecodeError';
  constructor(
    message: string,
    /** Byte offset in the decoded buffer where the problem was found. */
    readonly offset: number,
  ) {
    super(`${message} (at offset ${offset})`);
  }
}

/** An argument was rejected before any syscall was made. `field` names the offending input. */
export class NetlinkValidationError extends NetlinkBaseError {
  override name = 'NetlinkValidationError';
  constructor(
    readonly field: string,
    readonly reason: string,
    readonly value?: unknown,
  ) {
    super(`invalid ${field}: ${reason}${value === undefined ? '' : ` (got ${describe(value)})`}`);
  }
}

function describe(v: unknown): string {
  if (typeof v === 'string') return JSON.stringify(v);
  if (typeof v === 'bigint') return `${v}n`;
  try {
    return String(JSON.stringify(v) ?? v);
  } catch {
    return String(v);
  }
}

/** Extended ACK details the kernel attaches to an NLMSG_ERROR (NETLINK_EXT_ACK). */
export interface ExtAck {
  /** NLMSGERR_ATTR_MSG: human-readable reason, e.g. "Invalid prefix for given prefix length". */
  message?: string;
  /** NLMSGERR_ATTR_OFFS: offset of the offending attribute in the original request. */
  offset?: number;
  /** NLMSGERR_ATTR_COOKIE: subsystem specific cookie. */
  cookie?: Buffer;
  /** NLMSGERR_ATTR_MISS_TYPE: type of a missing required attribute. */
  missingType?: number;
  /** NLMSGERR_ATTR_MISS_NEST: offset of the nest where the attribute was missing. */
  missingNest?: number;
}

/** The kernel answered a request with NLMSG_ERROR (or a dump ended with a negative NLMSG_DONE). */
export class NetlinkError extends NetlinkBaseError {
  override name = 'NetlinkError';
  /** Symbolic errno, e.g. 'EEXIST'. */
  readonly code: string;
  /** Extended ack message (NLMSGERR_ATTR_MSG) when the kernel sent one. */
  readonly extAckMessage: string | undefined;
  constructor(
    /** Positive errno number. */
    readonly errno: number,
    /** Name of the failed operation, e.g. 'RTM_NEWLINK'. */
    readonly operation: string,
    /** Everything the kernel attached (message, offset, cookie...). */
    readonly extAck: ExtAck = {},
  ) {
    const code = errnoCode(errno);
    super(`${operation} failed: ${code}${extAck.message ? `: ${extAck.message}` : ''}`);
    this.code = code;
    this.extAckMessage = extAck.message;
  }
}

/**
 * A dump carried NLM_F_DUMP_INTR: the kernel's table changed while it was being dumped, so the
 * result is incomplete/inconsistent. Retry the dump.
 */
export class DumpInterruptedError extends NetlinkBaseError {
  override name = 'DumpInterruptedError';
  constructor(
    readonly operation: string,
    /** How many messages had been received (they are not trustworthy as a whole). */
    readonly partialCount: number,
  ) {
    super(`${operation} dump incomplete: interrupted by a concurrent change (NLM_F_DUMP_INTR); retry`);
  }
}

/** A socket-level syscall failed (socket, bind, setsockopt, sendto, recvmsg, setns, open). */
export class NetlinkSyscallError extends NetlinkBaseError {
  override name = 'NetlinkSyscallError';
  readonly code: string;
  constructor(
    readonly syscall: string,
    /** Positive errno number. */
    readonly errno: number,
    detail?: string,
  ) {
    const code = errnoCode(errno);
    super(`${syscall} failed: ${code}${detail ? ` (${detail})` : ''}`);
    this.code = code;
  }
}

/** Operation attempted on a closed socket, or a pending request cut short by close(). */
export class SocketClosedError extends NetlinkBaseError {
  override name = 'SocketClosedError';
  constructor(readonly operation: string) {
    super(`${operation}: netlink socket is closed`);
  }
}

/** No reply arrived within the request's timeout. */
export class NetlinkTimeoutError extends NetlinkBaseError {
  override name = 'NetlinkTimeoutError';
  constructor(
    readonly operation: string,
    readonly timeoutMs: number,
  ) {
    super(`${operation}: no reply from the kernel within ${timeoutMs} ms`);
  }
}
