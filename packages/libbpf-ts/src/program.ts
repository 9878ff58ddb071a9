import { ArgumentError, bpfError, check } from './errors.js';
import { FdHandle } from './handle.js';
import { FdView, checkPath, fdKind } from './map.js';
import { native } from './native.js';

/** Program types by libbpf's names (libbpf_bpf_prog_type_str). */
export type ProgramType =
  | 'unspec'
  | 'socket_filter'
  | 'kprobe'
  | 'sched_cls'
  | 'sched_act'
  | 'tracepoint'
  | 'xdp'
  | 'perf_event'
  | 'cgroup_skb'
  | 'cgroup_sock'
  | 'lwt_in'
  | 'lwt_out'
  | 'lwt_xmit'
  | 'sock_ops'
  | 'sk_skb'
  | 'cgroup_device'
  | 'sk_msg'
  | 'raw_tracepoint'
  | 'cgroup_sock_addr'
  | 'lwt_seg6local'
  | 'lirc_mode2'
  | 'sk_reuseport'
  | 'flow_dissector'
  | 'cgroup_sysctl'
  | 'raw_tracepoint_writable'
  | 'cgroup_sockopt'
  | 'tracing'
  | 'struct_ops'
  | 'ext'
  | 'lsm'
  | 'sk_lookup'
  | 'syscall'
  | (string & {});

/** Input of Program.run (BPF_PROG_TEST_RUN). */
export interface RunOptions {
  /** Packet in. For tc (sched_cls) programs at least 14 bytes, starting with the Ethernet header. */
  data: Buffer;
  /** Number of runs (default 1); durationNs is the per-run average. */
  repeat?: number;
  /** Context in, e.g. SkBuff.encode({ mark: 1 }); the context out is returned with the same size. */
  ctx?: Buffer;
  /** Room for the packet out (default data.length + 256). */
  dataOutSize?: number;
  /**
   * Run inside this network namespace (/run/netns/<name>): the kernel resolves a ctx `ifindex` > 1
   * there. The calling thread enters it for the call only.
   */
  netns?: string;
}

/** Output of Program.run. */
export interface RunResult {
  /** The program's return value (tc: TC_ACT_OK 0, TC_ACT_SHOT 2, TC_ACT_REDIRECT 7 …). */
  retval: number;
  /** Nanoseconds per run, as the kernel reports (average over `repeat`). */
  durationNs: number;
  /** The packet after the program ran. */
  data: Buffer;
  /** The context out (e.g. __sk_buff with the mark the program set), when `ctx` was given. */
  ctx?: Buffer;
}

/** A loaded BPF program. */
export class Program extends FdView {
  /** @internal Use BpfObject.program() or Program.fromPin(). */
  constructor(
    handle: FdHandle,
    readonly name: string,
    readonly type: ProgramType,
    /** Kernel program id (bpftool prog show id …). */
    readonly id: number,
    ownsFd: boolean,
  ) {
    super(handle, 'program', name, ownsFd);
  }

  /** Opens a pinned program (bpf_obj_get). The returned program owns its fd: close() it. */
  static fromPin(path: string): Program {
    checkPath(path);
    const fd = check(native.objGet(path), 'program.fromPin', `'${path}'`);
    const handle = new FdHandle(fd, `pinned program '${path}'`);
    try {
      const kind = fdKind(fd);
      if (kind !== 'program') throw new ArgumentError('path', `'${path}' is a pinned ${kind}, not a program`);
      const info = native.progInfo(fd);
      if (info.err < 0) throw bpfError('program.info', info.err, `'${path}'`);
      return new Program(handle, info.name, info.type, info.id, true);
    } catch (e) {
      handle.close();
      throw e;
    }
  }

  /**
   * Runs the program once or `repeat` times on `data` (BPF_PROG_TEST_RUN,
   * `bpftool prog run`). For tc programs pass `ctx: SkBuff.encode({...})` to set or read skb fields.
   */
  run(opts: RunOptions): RunResult {
    const fd = this.fdOrThrow();
    if (typeof opts !== 'object' || opts === null)
      throw new ArgumentError('opts', 'must be an object { data, repeat?, ctx?, dataOutSize? }');
    const { data, ctx } = opts;
    if (!Buffer.isBuffer(data)) throw new ArgumentError('data', `must be a Buffer, got ${data === null ? 'null' : typeof data}`);
    const repeat = opts.repeat ?? 1;
    if (!Number.isInteger(repeat) || repeat < 1 || repeat > 0xffffffff)
      throw new ArgumentError('repeat', `must be an integer ≥ 1, got ${String(repeat)}`);
    if (ctx !== undefined && !Buffer.isBuffer(ctx)) throw new ArgumentError('ctx', `must be a Buffer, got ${typeof ctx}`);
    const outSize = opts.dataOutSize ?? data.length + 256;
    if (!Number.isInteger(outSize) || outSize < 0 || outSize > 1 << 24) {
      throw new ArgumentError('dataOutSize', `must be an integer in [0, 16 MiB], got ${String(outSize)}`);
    }
    const { netns } = opts;
    if (netns !== undefined && (typeof netns !== 'string' || netns.length === 0)) {
      throw new ArgumentError('netns', 'must be a path like /run/netns/<name>');
    }
    const dataOut = Buffer.alloc(Math.max(outSize, 1));
    const ctxOut = ctx !== undefined ? Buffer.alloc(ctx.length) : null;
    const r = native.progTestRun(fd, data, dataOut, ctx ?? null, ctxOut, repeat, netns ?? null);
    if (r.err < 0) {
      if (r.op === 'setns') throw bpfError('setns', r.err, `netns '${netns}'`);
      const hint = Math.abs(r.err) === 28 ? `packet out is ${r.dataSizeOut} bytes; raise dataOutSize` : undefined;
      throw bpfError('program.run', r.err, this.ctx, hint);
    }
    const result: RunResult = {
      retval: r.retval,
      durationNs: r.duration,
      data: dataOut.subarray(0, Math.min(r.dataSizeOut, dataOut.length)),
    };
    if (ctxOut) result.ctx = ctxOut.subarray(0, Math.min(r.ctxSizeOut || ctxOut.length, ctxOut.length));
    return result;
  }
}
