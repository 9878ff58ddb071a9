import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/**
 * A two-node lab in network namespaces, for the privileged suite and the demo:
 *
 *   pod-a ns ──veth── node-a ns ══ underlay veth ══ node-b ns ──veth── pod-b ns
 *                        └ wireguard-go (TUN) ◄── UDP 51871 ──► wireguard-go (TUN) ┘
 *
 * Every namespace name starts with `prefix`; `destroy()` stops the wireguard-go processes this
 * lab started (by PID), deletes the namespaces (and with them every link) and the key files.
 * Nothing is created in the caller's namespace.
 */

export const WG_PORT = 51871;

export interface LabNode {
  readonly id: 'a' | 'b';
  /** Node namespace name and its /run/netns path (for attachTc's `netns`). */
  readonly netns: string;
  readonly netnsPath: string;
  readonly podNetns: string;
  readonly pod4: string;
  readonly pod6: string;
  readonly podCidr4: string;
  readonly podCidr6: string;
  readonly underlay4: string;
  /** Host side of the pod's veth, in the node namespace. */
  readonly hostVeth: string;
  hostVethIfindex: number;
  readonly underlayDev: string;
  underlayIfindex: number;
  readonly wgDev: string;
  wgIfindex: number;
  wgPublicKey: string;
}

function run(cmd: string, args: string[], input?: string): string {
  return execFileSync(cmd, args, { encoding: 'utf8', input, timeout: 30_000, stdio: ['pipe', 'pipe', 'pipe'] });
}

function rand(): string {
  return randomBytes(3).toString('hex');
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

export interface LabOptions {
  /** Namespace name prefix, e.g. 'veiltest-bpf' or 'veildemo'. */
  prefix: string;
  /** Start wireguard-go in both nodes and peer them (default true). */
  wireguard?: boolean;
}

export class TwoNodeLab {
  readonly a: LabNode;
  readonly b: LabNode;
  private readonly namespaces: string[] = [];
  private readonly procs: ChildProcess[] = [];
  private keyDir: string | undefined;
  private destroyed = false;

  private constructor(prefix: string) {
    const tag = rand();
    const mk = (id: 'a' | 'b', n: number): LabNode => ({
      id,
      netns: `${prefix}-${id}-${tag}`,
      netnsPath: `/run/netns/${prefix}-${id}-${tag}`,
      podNetns: `${prefix}-pod${id}-${tag}`,
      pod4: `10.200.${n}.2`,
      pod6: `fd00:200:${n}::2`,
      podCidr4: `10.200.${n}.0/24`,
      podCidr6: `fd00:200:${n}::/64`,
      underlay4: `192.168.77.${n}`,
      hostVeth: `vlx${id}${tag}`.slice(0, 15),
      hostVethIfindex: 0,
      underlayDev: `vul${id}${tag}`.slice(0, 15),
      underlayIfindex: 0,
      wgDev: `vwg${id}${tag}`.slice(0, 15),
      wgIfindex: 0,
      wgPublicKey: '',
    });
    this.a = mk('a', 1);
    this.b = mk('b', 2);
  }

  /** Builds the lab; on any failure it tears down what it made and rethrows. */
  static async create(opts: LabOptions): Promise<TwoNodeLab> {
    const lab = new TwoNodeLab(opts.prefix);
    try {
      lab.build();
      if (opts.wireguard !== false) await lab.startWireGuard();
      return lab;
    } catch (e) {
      await lab.destroy();
      throw e;
    }
  }

  /** Runs a command in namespace `ns` and returns stdout. */
  exec(ns: string, cmd: string, args: string[], input?: string): string {
    return run('ip', ['netns', 'exec', ns, cmd, ...args], input);
  }

  /** Like exec but returns status and output instead of throwing. */
  tryExec(ns: string, cmd: string, args: string[], timeoutMs = 30_000): { status: number; out: string } {
    try {
      const out = execFileSync('ip', ['netns', 'exec', ns, cmd, ...args], {
        encoding: 'utf8',
        timeout: timeoutMs,
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      return { status: 0, out };
    } catch (e) {
      const err = e as { status?: number; stdout?: string; stderr?: string };
      return { status: err.status ?? -1, out: `${err.stdout ?? ''}${err.stderr ?? ''}` };
    }
  }

  ifindex(ns: string, dev: string): number {
    const j = JSON.parse(this.exec(ns, 'ip', ['-j', 'link', 'show', 'dev', dev])) as Array<{ ifindex: number }>;
    const idx = j[0]?.ifindex;
    if (!idx) throw new Error(`no ifindex for ${dev} in ${ns}`);
    return idx;
  }

  /** RX/TX packet counters of a device. */
  linkStats(ns: string, dev: string): { rxPackets: number; txPackets: number } {
    const j = JSON.parse(this.exec(ns, 'ip', ['-j', '-s', 'link', 'show', 'dev', dev])) as Array<{
      stats64: { rx: { packets: number }; tx: { packets: number } };
    }>;
    const s = j[0]?.stats64;
    return { rxPackets: s?.rx.packets ?? 0, txPackets: s?.tx.packets ?? 0 };
  }

  private addNetns(name: string): void {
    run('ip', ['netns', 'add', name]);
    this.namespaces.push(name);
    this.exec(name, 'ip', ['link', 'set', 'lo', 'up']);
  }

  private build(): void {
    for (const n of [this.a, this.b]) {
      this.addNetns(n.netns);
      this.addNetns(n.podNetns);
      // Pod veth: host side in the node ns, eth0 in the pod ns.
      this.exec(n.netns, 'ip', ['link', 'add', n.hostVeth, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', n.podNetns]);
      const gw4 = n.pod4.replace(/\.2$/, '.1');
      const gw6 = n.pod6.replace(/::2$/, '::1');
      this.exec(n.netns, 'ip', ['addr', 'add', `${gw4}/24`, 'dev', n.hostVeth]);
      this.exec(n.netns, 'ip', ['addr', 'add', `${gw6}/64`, 'dev', n.hostVeth, 'nodad']);
      this.exec(n.netns, 'ip', ['link', 'set', n.hostVeth, 'up']);
      this.exec(n.podNetns, 'ip', ['addr', 'add', `${n.pod4}/24`, 'dev', 'eth0']);
      this.exec(n.podNetns, 'ip', ['addr', 'add', `${n.pod6}/64`, 'dev', 'eth0', 'nodad']);
      this.exec(n.podNetns, 'ip', ['link', 'set', 'eth0', 'up']);
      this.exec(n.podNetns, 'ip', ['route', 'add', 'default', 'via', gw4]);
      this.exec(n.podNetns, 'ip', ['-6', 'route', 'add', 'default', 'via', gw6]);
      n.hostVethIfindex = this.ifindex(n.netns, n.hostVeth);
    }
    // Underlay between the two node namespaces.
    this.exec(this.a.netns, 'ip', [
      'link',
      'add',
      this.a.underlayDev,
      'type',
      'veth',
      'peer',
      'name',
      this.b.underlayDev,
      'netns',
      this.b.netns,
    ]);
    for (const n of [this.a, this.b]) {
      this.exec(n.netns, 'ip', ['addr', 'add', `${n.underlay4}/24`, 'dev', n.underlayDev]);
      this.exec(n.netns, 'ip', ['link', 'set', n.underlayDev, 'up']);
      n.underlayIfindex = this.ifindex(n.netns, n.underlayDev);
    }
  }

  private async startWireGuard(): Promise<void> {
    this.keyDir = mkdtempSync(join(tmpdir(), 'veil-lab-'));
    const keys = new Map<LabNode, string>();
    const started = new Map<LabNode, { proc: ChildProcess; stderr: string[] }>();
    for (const n of [this.a, this.b]) {
      const priv = run('wg', ['genkey']).trim();
      const file = join(this.keyDir, `${n.id}.key`);
      writeFileSync(file, `${priv}\n`, { mode: 0o600 });
      chmodSync(file, 0o600);
      keys.set(n, file);
      n.wgPublicKey = run('wg', ['pubkey'], `${priv}\n`).trim();
      // Distinct device names keep the two UAPI sockets (/var/run/wireguard/<dev>.sock) apart.
      const p = spawn('ip', ['netns', 'exec', n.netns, 'wireguard-go', '-f', n.wgDev], { stdio: ['ignore', 'ignore', 'pipe'] });
      // Kept so a failed start says why (wireguard-go logs its errors on stderr).
      const errText: string[] = [];
      p.stderr?.on('data', (c: Buffer) => errText.push(c.toString()));
      started.set(n, { proc: p, stderr: errText });
      this.procs.push(p);
    }
    for (const n of [this.a, this.b]) {
      const { proc, stderr } = started.get(n)!;
      // Generous: on a loaded 2-core machine the daemon can take seconds to bring its TUN up.
      const deadline = Date.now() + 30_000;
      while (this.tryExec(n.netns, 'wg', ['show', n.wgDev]).status !== 0) {
        const why = stderr.join('').trim().split('\n').slice(-3).join(' | ') || '(no output)';
        if (proc.exitCode !== null)
          throw new Error(`wireguard-go for ${n.wgDev} in ${n.netns} exited (${proc.exitCode}): ${why}`);
        if (Date.now() > deadline) throw new Error(`wireguard-go did not create ${n.wgDev} in ${n.netns} within 30 s: ${why}`);
        await sleep(50);
      }
    }
    for (const [n, peer] of [
      [this.a, this.b],
      [this.b, this.a],
    ] as const) {
      this.exec(n.netns, 'wg', [
        'set',
        n.wgDev,
        'listen-port',
        String(WG_PORT),
        'private-key',
        keys.get(n) as string,
        'peer',
        peer.wgPublicKey,
        'endpoint',
        `${peer.underlay4}:${WG_PORT}`,
        // The peer's underlay address too, for node-to-node encryption (to-wire's node path).
        'allowed-ips',
        `${peer.podCidr4},${peer.podCidr6},${peer.underlay4}/32`,
      ]);
      this.exec(n.netns, 'ip', ['link', 'set', n.wgDev, 'up']);
      n.wgIfindex = this.ifindex(n.netns, n.wgDev);
    }
  }

  /** PIDs of the wireguard-go processes this lab started. */
  get wireguardPids(): number[] {
    return this.procs.map((p) => p.pid).filter((p): p is number => p !== undefined);
  }

  /** Stops wireguard-go (by PID), deletes both pods' and nodes' namespaces and the key files. Idempotent. */
  async destroy(): Promise<void> {
    if (this.destroyed) return;
    this.destroyed = true;
    for (const p of this.procs) {
      if (p.exitCode === null && p.signalCode === null && p.pid !== undefined) {
        const exited = new Promise<void>((r) => p.once('exit', () => r()));
        try {
          process.kill(p.pid, 'SIGTERM');
        } catch {
          /* already gone */
        }
        await Promise.race([exited, sleep(3000)]);
        if (p.exitCode === null && p.signalCode === null) {
          try {
            process.kill(p.pid, 'SIGKILL');
          } catch {
            /* gone */
          }
        }
      }
    }
    for (const ns of this.namespaces.reverse()) {
      try {
        run('ip', ['netns', 'del', ns]);
      } catch {
        /* already gone */
      }
    }
    if (this.keyDir) rmSync(this.keyDir, { recursive: true, force: true });
  }
}
