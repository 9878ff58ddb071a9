import { execFileSync, spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { randomBytes } from 'node:crypto';

/** Every namespace a test makes carries this prefix, so leftovers are easy to find and remove. */
export const NETNS_PREFIX = 'veiltest-';

/** A network namespace created by a test; `remove()` deletes it (idempotent). */
export class TestNetns {
  readonly path: string;
  private removed = false;

  private constructor(readonly name: string) {
    this.path = `/run/netns/${name}`;
  }

  /** `ip netns add veiltest-<tag>-<random>` and bring up loopback. */
  static create(tag: string): TestNetns {
    const name = `${NETNS_PREFIX}${tag}-${randomBytes(3).toString('hex')}`;
    execFileSync('ip', ['netns', 'add', name]);
    const ns = new TestNetns(name);
    ns.exec('ip', ['link', 'set', 'lo', 'up']);
    return ns;
  }

  /** Runs a command inside the namespace (`ip netns exec`) and returns stdout. */
  exec(cmd: string, args: string[], opts: { input?: string; timeoutMs?: number } = {}): string {
    return execFileSync('ip', ['netns', 'exec', this.name, cmd, ...args], {
      encoding: 'utf8',
      input: opts.input,
      timeout: opts.timeoutMs ?? 30_000,
      stdio: ['pipe', 'pipe', 'pipe'],
    });
  }

  /** Like exec, but returns the exit status and output instead of throwing. */
  tryExec(cmd: string, args: string[], timeoutMs = 30_000): { status: number; stdout: string; stderr: string } {
    try {
      return { status: 0, stdout: this.exec(cmd, args, { timeoutMs }), stderr: '' };
    } catch (e) {
      const err = e as { status?: number; stdout?: string; stderr?: string };
      return { status: err.status ?? -1, stdout: String(err.stdout ?? ''), stderr: String(err.stderr ?? '') };
    }
  }

  /** Starts a long-running process inside the namespace. The caller owns (and must kill) it. */
  spawn(cmd: string, args: string[], opts: SpawnOptions = {}): ChildProcess {
    return spawn('ip', ['netns', 'exec', this.name, cmd, ...args], { stdio: 'pipe', ...opts });
  }

  remove(): void {
    if (this.removed) return;
    this.removed = true;
    try {
      execFileSync('ip', ['netns', 'del', this.name], { stdio: 'ignore' });
    } catch {
      /* already gone */
    }
  }
}

/** Deletes a link in the current namespace if it exists. */
export function deleteLinkIfExists(name: string): void {
  try {
    execFileSync('ip', ['link', 'del', name], { stdio: 'ignore' });
  } catch {
    /* not there */
  }
}

/** A short random link name with a prefix, within IFNAMSIZ (15 chars). */
export function linkName(prefix: string): string {
  return `${prefix}${randomBytes(3).toString('hex')}`.slice(0, 15);
}
