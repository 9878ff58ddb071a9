import { spawn, type ChildProcess } from 'node:child_process';
import { EventEmitter } from 'node:events';
import { accessSync, closeSync, constants, openSync, readFileSync, realpathSync } from 'node:fs';
import { chmod, mkdir, rm, stat } from 'node:fs/promises';
import { createConnection } from 'node:net';
import { dirname, basename, isAbsolute, join } from 'node:path';
import { NetlinkSocket, deleteLink, getLink } from '@veil/netlink';
import { SupervisorError, WgValidationError, WireGuardNotAvailableError } from '../errors.js';

/** Restart pacing after an unexpected exit. */
export interface BackoffOptions {
  /** First delay in ms. Default 200. */
  initialMs?: number;
  /** Upper bound in ms. Default 10 000. */
  maxMs?: number;
  /** Growth per consecutive failure. Default 2. */
  factor?: number;
  /** A run longer than this (ms) resets the delay to `initialMs`. Default 30 000. */
  resetAfterMs?: number;
}

/** Options of WireGuardGoSupervisor. */
export interface SupervisorOptions {
  /** Interface name of the TUN device wireguard-go creates. */
  device: string;
  /**
   * Directory (absolute) where the daemon's socket appears as `<socketDir>/<device>.sock`. Created
   * with mode 0700. `/run/wireguard` (where wireguard-go and `wg` look; {@link WG_RUN_DIR}) runs
   * the daemon as is, so `wg show` on the node sees it. Any other directory is bind-mounted over
   * /run/wireguard in the daemon's own private mount namespace (tests, benchmarks: several daemons
   * on one host without touching the host's /run/wireguard).
   */
  socketDir: string;
  /** Network namespace (name under /run/netns) to run the daemon in. Default: the caller's. */
  netns?: string;
  /** The wireguard-go executable. Default `wireguard-go` on PATH. */
  binary?: string;
  /** How long to wait for the UAPI socket after spawning, in ms. Default 10 000. */
  startTimeoutMs?: number;
  backoff?: BackoffOptions;
  /**
   * Awaited after every (re)start once the socket answers, e.g. to push the private key and
   * peers back into a fresh daemon. `restart` is false for the first start.
   */
  onStart?: (info: { pid: number; restart: boolean }) => Promise<void> | void;
}

/** Events of WireGuardGoSupervisor. */
export interface SupervisorEvents {
  /** The daemon is up and its socket answers (first start). */
  started: [info: { pid: number }];
  /** The daemon died without being asked to (`pid` 0: an adopted daemon whose PID is unknown). */
  exit: [info: { pid: number; code: number | null; signal: NodeJS.Signals | null; restartInMs: number }];
  /** A replacement daemon is up (after onStart ran). */
  restarted: [info: { pid: number; restarts: number }];
  /** A restart attempt or an onStart callback failed; the supervisor keeps trying. */
  failure: [err: Error];
}

/** Where wireguard-go puts its socket and `wg` looks for it (/var/run is a link to /run). */
export const WG_RUN_DIR = '/run/wireguard';

/** The real path of `dir`, following links in the part that exists (`/var/run` → `/run`). */
function realDir(dir: string): string {
  try {
    return realpathSync(dir);
  } catch {
    const parent = dirname(dir);
    return parent === dir ? dir : join(realDir(parent), basename(dir));
  }
}

/** True when `dir` is the directory wireguard-go itself uses (/run/wireguard or /var/run/wireguard). */
export function isWgRunDir(dir: string): boolean {
  return realDir(dir) === realDir(WG_RUN_DIR) || realDir(dir) === realDir('/var/run/wireguard');
}

// wireguard-go keeps its socket in /var/run/wireguard (= /run/wireguard). For another socketDir, a
// private mount namespace plus a bind mount puts it there, without touching the host's dir.
const LAUNCH = 'mkdir -p /run/wireguard && mount --bind "$1" /run/wireguard && exec "$3" "$2"';
const NAME_RE = /^[A-Za-z0-9_.-]{1,15}$/;

/** Returns the absolute path of an executable on PATH (or as given), or undefined. */
export function findExecutable(bin: string): string | undefined {
  const dirs = bin.includes('/') ? [''] : (process.env.PATH ?? '').split(':').concat(['/usr/sbin', '/sbin', '/usr/bin']);
  for (const d of dirs) {
    const p = d ? join(d, bin) : bin;
    try {
      accessSync(p, constants.X_OK);
      return p;
    } catch {
      /* next */
    }
  }
  return undefined;
}

/** True when something listens on the unix socket. */
export function socketAnswers(path: string, timeoutMs = 1000): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createConnection({ path });
    const t = setTimeout(() => done(false), timeoutMs);
    function done(ok: boolean): void {
      clearTimeout(t);
      s.destroy();
      resolve(ok);
    }
    s.on('connect', () => done(true));
    s.on('error', () => done(false));
  });
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/**
 * Runs one wireguard-go in the foreground (WG_PROCESS_FOREGROUND=1) for one device, restarts it
 * with exponential backoff when it dies, and stops it cleanly (SIGTERM, then SIGKILL, by PID,
 * then removes a leftover TUN). It only ever signals the process it spawned.
 */
export class WireGuardGoSupervisor extends EventEmitter<SupervisorEvents> {
  readonly device: string;
  readonly socketDir: string;
  readonly socketPath: string;
  readonly netns: string | undefined;
  private readonly binary: string;
  private readonly startTimeoutMs: number;
  private readonly backoff: Required<BackoffOptions>;
  private readonly onStart: SupervisorOptions['onStart'];
  private child: ChildProcess | undefined;
  private startedAt = 0;
  private failures = 0;
  private restartCount = 0;
  private restartTimer: NodeJS.Timeout | undefined;
  /** Liveness poll of an adopted daemon (one this process did not spawn). */
  private pollTimer: NodeJS.Timeout | undefined;
  private stopping = false;
  private running = false;
  readonly logPath: string;
  /** False when socketDir is /run/wireguard itself: no private mount namespace is needed. */
  private readonly bindMounted: boolean;

  constructor(opts: SupervisorOptions) {
    super();
    if (typeof opts?.device !== 'string' || !NAME_RE.test(opts.device)) {
      throw new WgValidationError('device', 'must be an interface name of 1-15 characters [A-Za-z0-9_.-]');
    }
    if (typeof opts.socketDir !== 'string' || !isAbsolute(opts.socketDir))
      throw new WgValidationError('socketDir', 'must be an absolute path');
    if (opts.netns !== undefined && (typeof opts.netns !== 'string' || !/^[^/\0\s]{1,255}$/.test(opts.netns))) {
      throw new WgValidationError('netns', 'must be a name under /run/netns');
    }
    this.device = opts.device;
    this.socketDir = opts.socketDir;
    this.socketPath = join(opts.socketDir, `${opts.device}.sock`);
    this.logPath = join(opts.socketDir, `${opts.device}.log`);
    this.bindMounted = !isWgRunDir(opts.socketDir);
    this.netns = opts.netns;
    this.binary = opts.binary ?? 'wireguard-go';
    this.startTimeoutMs = opts.startTimeoutMs ?? 10_000;
    this.backoff = { initialMs: 200, maxMs: 10_000, factor: 2, resetAfterMs: 30_000, ...opts.backoff };
    this.onStart = opts.onStart;
  }

  /** PID of the running daemon, if any. */
  get pid(): number | undefined {
    return this.child?.exitCode === null && this.child.signalCode === null ? this.child.pid : undefined;
  }

  /** Number of restarts after unexpected exits. */
  get restarts(): number {
    return this.restartCount;
  }

  /** The tail of what wireguard-go printed (for diagnostics). */
  get recentOutput(): string {
    try {
      return readFileSync(this.logPath, 'utf8').slice(-2000);
    } catch {
      return '';
    }
  }

  /**
   * Starts the daemon and waits until its UAPI socket answers, then runs onStart.
   * @throws WireGuardNotAvailableError when wireguard-go is not installed,
   *         SupervisorError when it exits or does not create its socket in time, or when a
   *         daemon this supervisor did not start already serves the socket.
   */
  async start(): Promise<void> {
    if (this.running) return;
    if (!findExecutable(this.binary)) throw new WireGuardNotAvailableError(`${this.binary} is not installed (not found on PATH)`);
    const tools = this.bindMounted ? ['unshare', 'mount', 'sh'] : [];
    for (const tool of [...tools, ...(this.netns ? ['ip'] : [])]) {
      if (!findExecutable(tool))
        throw new SupervisorError(this.device, `${tool} is needed to run wireguard-go in a private mount namespace`);
    }
    await mkdir(this.socketDir, { recursive: true, mode: 0o700 });
    const st = await stat(this.socketDir);
    if ((st.mode & 0o077) !== 0) await chmod(this.socketDir, 0o700);
    if (await socketAnswers(this.socketPath)) {
      throw new SupervisorError(this.device, `a daemon this supervisor did not start already answers on ${this.socketPath}`);
    }
    this.stopping = false;
    this.running = true;
    try {
      const pid = await this.spawnOnce();
      if (this.onStart) await this.onStart({ pid, restart: false });
      this.emit('started', { pid });
    } catch (e) {
      await this.stop();
      throw e;
    }
  }

  /**
   * Supervises a daemon an earlier agent started (its socket answers; this process is not its
   * parent, so no exit event comes): the socket is polled every `pollMs`, and when it stops
   * answering twice in a row a new daemon is started with the usual backoff, and `onStart` runs
   * with `restart: true` so the caller puts its configuration back. From then on it is this
   * supervisor's own child. (Before issue 12, an adopted daemon was restarted only at the next
   * agent restart.)
   * @throws SupervisorError when no daemon answers on the socket.
   */
  async adopt(opts: { pollMs?: number } = {}): Promise<void> {
    if (this.running) return;
    if (!(await socketAnswers(this.socketPath)))
      throw new SupervisorError(this.device, `no daemon answers on ${this.socketPath}: nothing to adopt`);
    this.stopping = false;
    this.running = true;
    this.startedAt = Date.now();
    const pollMs = opts.pollMs ?? 1000;
    let misses = 0;
    const tick = async (): Promise<void> => {
      this.pollTimer = undefined;
      if (this.stopping || !this.running || this.child) return;
      const ok = await socketAnswers(this.socketPath, 500);
      if (this.stopping || !this.running || this.child) return;
      misses = ok ? 0 : misses + 1;
      if (misses >= 2) {
        const delay = Math.min(this.backoff.maxMs, this.backoff.initialMs * this.backoff.factor ** this.failures);
        this.failures++;
        this.emit('exit', { pid: 0, code: null, signal: null, restartInMs: delay });
        this.scheduleRestart(delay);
        return;
      }
      this.pollTimer = setTimeout(() => void tick(), pollMs);
      this.pollTimer.unref();
    };
    this.pollTimer = setTimeout(() => void tick(), pollMs);
    this.pollTimer.unref();
  }

  /** Stops the daemon (SIGTERM, SIGKILL after `graceMs`), removes its socket, log and TUN. Idempotent. */
  async stop(graceMs = 3000): Promise<void> {
    this.endSupervision();
    const child = this.child;
    // An adopted daemon this process never spawned has no PID here: it is left alone (as before).
    if (!child && this.startedAt !== 0 && (await socketAnswers(this.socketPath, 300))) return;
    if (child && child.exitCode === null && child.signalCode === null) {
      const exited = new Promise<void>((r) => child.once('exit', () => r()));
      child.kill('SIGTERM');
      const killed = await Promise.race([exited.then(() => true), sleep(graceMs).then(() => false)]);
      if (!killed) {
        child.kill('SIGKILL');
        await exited;
      }
    }
    this.child = undefined;
    await this.cleanupLeftovers();
    await rm(this.logPath, { force: true });
  }

  /**
   * Stops supervising without stopping the daemon: no more restarts, the process keeps running
   * (an agent handing the device over to its successor, which adopts it). Idempotent.
   */
  detach(): void {
    this.endSupervision();
    this.child?.unref();
    this.child = undefined;
  }

  /** stop() and detach(): no more restarts or polls, whatever happens to the daemon next. */
  private endSupervision(): void {
    this.stopping = true;
    this.running = false;
    if (this.restartTimer) clearTimeout(this.restartTimer);
    this.restartTimer = undefined;
    if (this.pollTimer) clearTimeout(this.pollTimer);
    this.pollTimer = undefined;
  }

  /** Spawns one daemon and waits for its socket. Returns its PID. */
  private async spawnOnce(): Promise<number> {
    await this.cleanupLeftovers();
    const launch = !this.bindMounted
      ? [this.binary, this.device]
      : [
          'unshare',
          '--mount',
          '--propagation',
          'private',
          '--',
          'sh',
          '-c',
          LAUNCH,
          'sh',
          this.socketDir,
          this.device,
          this.binary,
        ];
    const argv = this.netns ? ['ip', 'netns', 'exec', this.netns, ...launch] : launch;
    // Output goes to a file, not a pipe: a daemon adopted by the next agent must not die of
    // SIGPIPE when this process is gone.
    const logFd = openSync(this.logPath, 'w', 0o600);
    // ip netns exec, unshare and sh all exec() in place, so child.pid ends up being wireguard-go.
    let child: ChildProcess;
    try {
      child = spawn(argv[0] as string, argv.slice(1), {
        env: { ...process.env, WG_PROCESS_FOREGROUND: '1' },
        stdio: ['ignore', logFd, logFd],
      });
    } finally {
      closeSync(logFd);
    }
    this.child = child;
    let exitInfo: { code: number | null; signal: NodeJS.Signals | null } | undefined;
    child.once('exit', (code, signal) => {
      exitInfo = { code, signal };
      this.onExit(child, code, signal);
    });
    const spawnError = new Promise<Error>((r) => child.once('error', r));
    let failed: Error | undefined;
    void spawnError.then((e) => (failed = e));

    const deadline = Date.now() + this.startTimeoutMs;
    for (;;) {
      if (failed) throw new SupervisorError(this.device, `cannot spawn: ${failed.message}`);
      if (exitInfo) {
        throw new SupervisorError(
          this.device,
          `exited during start (code ${exitInfo.code}, signal ${exitInfo.signal}): ${this.recentOutput.trim().slice(-400)}`,
        );
      }
      if (await socketAnswers(this.socketPath, 500)) break;
      if (Date.now() > deadline) {
        child.kill('SIGKILL');
        throw new SupervisorError(this.device, `no UAPI socket at ${this.socketPath} after ${this.startTimeoutMs} ms`);
      }
      await sleep(50);
    }
    this.startedAt = Date.now();
    return child.pid as number;
  }

  private onExit(child: ChildProcess, code: number | null, signal: NodeJS.Signals | null): void {
    if (this.child !== child || this.stopping || !this.running || this.startedAt === 0) return;
    if (Date.now() - this.startedAt > this.backoff.resetAfterMs) this.failures = 0;
    const delay = Math.min(this.backoff.maxMs, this.backoff.initialMs * this.backoff.factor ** this.failures);
    this.failures++;
    this.emit('exit', { pid: child.pid as number, code, signal, restartInMs: delay });
    this.scheduleRestart(delay);
  }

  private scheduleRestart(delay: number): void {
    this.restartTimer = setTimeout(() => {
      this.restartTimer = undefined;
      void this.restart();
    }, delay);
  }

  private async restart(): Promise<void> {
    if (this.stopping || !this.running) return;
    let pid: number;
    try {
      this.startedAt = 0;
      pid = await this.spawnOnce();
    } catch (e) {
      if (this.stopping) return;
      this.emit('failure', e as Error);
      const delay = Math.min(this.backoff.maxMs, this.backoff.initialMs * this.backoff.factor ** this.failures);
      this.failures++;
      this.scheduleRestart(delay);
      return;
    }
    this.restartCount++;
    try {
      if (this.onStart) await this.onStart({ pid, restart: true });
    } catch (e) {
      this.emit('failure', e as Error);
    }
    if (!this.stopping) this.emit('restarted', { pid, restarts: this.restartCount });
  }

  /** Removes a stale socket file and a TUN with our device name left by a dead daemon. */
  private async cleanupLeftovers(): Promise<void> {
    if (!(await socketAnswers(this.socketPath, 300))) await rm(this.socketPath, { force: true });
    let sock: NetlinkSocket | undefined;
    try {
      sock = NetlinkSocket.open('ROUTE', this.netns ? { netns: this.netns } : {});
      const link = await getLink(sock, this.device);
      // Only a TUN (what wireguard-go makes) is ours to delete; never another kind of link.
      if (link && link.kind === 'tun') await deleteLink(sock, this.device);
    } catch {
      // The namespace may be gone already; nothing left to clean there.
    } finally {
      sock?.close();
    }
  }
}
