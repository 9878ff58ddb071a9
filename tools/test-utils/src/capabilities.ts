import { execFileSync } from 'node:child_process';
import { accessSync, constants, existsSync } from 'node:fs';
import { k8sBinary, k8sVersions } from './k8s-bins.js';

/** Things a privileged suite may need from the machine. */
export type Capability =
  | 'root'
  | 'netns'
  | 'bpf'
  | 'tun'
  | 'wireguard-go'
  | 'wg'
  | 'tcpdump'
  | 'iperf3'
  | 'qemu'
  | 'bpftool'
  | 'strace'
  /** The pinned programs built by tools/k8s-bins/build.sh (see k8s-bins.ts). */
  | 'helm'
  | 'kube-apiserver'
  | 'etcd';

const binaries: Partial<Record<Capability, string>> = {
  'wireguard-go': 'wireguard-go',
  wg: 'wg',
  tcpdump: 'tcpdump',
  iperf3: 'iperf3',
  qemu: 'qemu-system-x86_64',
  bpftool: 'bpftool',
  strace: 'strace',
};

function onPath(bin: string): boolean {
  for (const dir of (process.env.PATH ?? '').split(':').concat(['/usr/sbin', '/sbin'])) {
    try {
      accessSync(`${dir}/${bin}`, constants.X_OK);
      return true;
    } catch {
      /* next */
    }
  }
  return false;
}

const cache = new Map<Capability, string | undefined>();

/** Returns undefined when the capability is present, else a sentence saying why it is not. */
export function missingReason(cap: Capability): string | undefined {
  if (cache.has(cap)) return cache.get(cap);
  let reason: string | undefined;
  const isRoot = process.getuid?.() === 0;
  switch (cap) {
    case 'root':
      reason = isRoot ? undefined : 'not running as root';
      break;
    case 'netns':
      if (!isRoot) reason = 'creating network namespaces needs root';
      else if (!onPath('ip')) reason = 'iproute2 (ip) is not installed';
      break;
    case 'bpf':
      if (!isRoot) reason = 'loading BPF programs needs root (CAP_BPF/CAP_SYS_ADMIN)';
      else if (!existsSync('/sys/kernel/btf/vmlinux')) reason = 'kernel has no BTF (/sys/kernel/btf/vmlinux)';
      break;
    case 'tun':
      reason = existsSync('/dev/net/tun') ? undefined : '/dev/net/tun is missing';
      break;
    case 'helm':
    case 'kube-apiserver':
    case 'etcd':
      reason = k8sBinary(cap) ? undefined : `${cap} ${k8sVersions()[cap]} is not built (bash tools/k8s-bins/build.sh)`;
      break;
    default: {
      const bin = binaries[cap];
      reason = bin && !onPath(bin) ? `${bin} is not installed` : undefined;
    }
  }
  cache.set(cap, reason);
  return reason;
}

/** True when running under CI, where a missing capability must fail instead of skip. */
export const inCI = process.env.CI === 'true';

/** Runs a command and returns stdout; throws with stderr on failure. */
export function sh(cmd: string, args: string[], opts: { input?: string; timeoutMs?: number } = {}): string {
  return execFileSync(cmd, args, {
    encoding: 'utf8',
    input: opts.input,
    timeout: opts.timeoutMs ?? 30_000,
    stdio: ['pipe', 'pipe', 'pipe'],
  });
}
