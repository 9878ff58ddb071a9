import { join } from 'node:path';
import type { AgentConfig, Logger } from '@veil/agent-core';
import { DatapathArgumentError } from './errors.js';
import { DEFAULT_BPFFS_ROOT, DEFAULT_PIN_DIR } from './pins.js';

/**
 * Where a program goes:
 * - `pod`: `veil_from_pod` on tc ingress of a pod veth's host side;
 * - `tunnel`: `veil_from_tunnel` on tc ingress of the WireGuard device;
 * - `underlay`: `veil_to_wire` on tc egress of the underlay device.
 */
export type AttachRole = 'pod' | 'tunnel' | 'underlay';

/** Runtime knobs written into the `config` map (everything except the steering fields). */
export interface DatapathTuning {
  /** Strict mode: never send pod traffic in clear; `cidrs` go into `strict_cidrs` (replacing its contents). */
  readonly strict?: { readonly enabled: boolean; readonly cidrs: readonly string[]; readonly allowRemoteNodeIdentities: boolean };
  /** to-wire redirects host traffic to ready remote nodes into WireGuard. */
  readonly nodeEncryption?: boolean;
  /** Largest inner L3 packet the encryption path takes (ICMP too-big above it); 0 = unchecked. */
  readonly mtu?: number;
  /** WireGuard UDP port to-wire lets through untouched; 0 = none. */
  readonly wgPort?: number;
  /** fwmark of already-encrypted packets to-wire lets through; 0 = none. */
  readonly encryptMark?: number;
  /** Mask for `encryptMark`; 0 = all bits. */
  readonly encryptMarkMask?: number;
}

/** Options of {@link BpfDatapath.open}. Unset tuning fields leave the pinned config as it is. */
export interface BpfDatapathOptions extends DatapathTuning {
  /** bpffs directory the maps are pinned in (one per node / agent). Default `/sys/fs/bpf/veil`. */
  readonly pinDir?: string;
  /** Where bpffs is mounted if `pinDir` is not on one yet. Default `/sys/fs/bpf`. */
  readonly bpffsRoot?: string;
  /** Mount bpffs at `bpffsRoot` when needed. Default true. */
  readonly mountBpffs?: boolean;
  /** JSON file recording which node owns which prefix (node-name recovery). Default `/var/lib/veil/datapath-ipcache.json`. */
  readonly stateFile?: string;
  /** Network namespace file (`/run/netns/<name>`) whose interfaces the datapath manages; default: the agent's own. */
  readonly netns?: string;
  /** Pod veth name patterns (`*`, `?` wildcards) attached automatically as they appear. Default `['lxc*', 'veth*']`. */
  readonly podVethPatterns?: readonly string[];
  /** Roles of `device` attach targets by interface name (AttachTarget has no tunnel/underlay kind). */
  readonly deviceRoles?: Readonly<Record<string, 'tunnel' | 'underlay'>>;
  /** This node's pod CIDRs: LOCAL entries (from-pod passes, from-tunnel lets the stack route). */
  readonly localPodCIDRs?: readonly string[];
  /** Watch link/route events after the first attach (pod veths come and go). Default true. */
  readonly watch?: boolean;
  /** ipcache max_entries; must match an existing pin. Default 65536. */
  readonly ipcacheMaxEntries?: number;
  /** strict_cidrs max_entries; must match an existing pin. Default 1024. */
  readonly strictCidrsMaxEntries?: number;
  /** Object file to load instead of @veil/bpf's obj/veil.bpf.o (same maps/programs). */
  readonly objectPath?: string;
  /** tc filter priority (1..65535) used on every interface. Default 1. */
  readonly tcPriority?: number;
  /** tc filter handle used on every interface; a restart replaces the filter at (priority, handle). Default 0x7e11. */
  readonly tcHandle?: number;
  /** State-file write coalescing in ms. Default 200. */
  readonly stateWriteDelayMs?: number;
  readonly logger?: Logger;
}

export const DEFAULT_STATE_FILE = '/var/lib/veil/datapath-ipcache.json';
export const DEFAULT_POD_VETH_PATTERNS: readonly string[] = ['lxc*', 'veth*'];
export const DEFAULT_TC_PRIORITY = 1;
export const DEFAULT_TC_HANDLE = 0x7e11;

/** Options with defaults applied (tuning stays optional). */
export interface ResolvedOptions extends DatapathTuning {
  pinDir: string;
  bpffsRoot: string;
  mountBpffs: boolean;
  stateFile: string;
  netns: string | undefined;
  podVethPatterns: readonly string[];
  deviceRoles: Readonly<Record<string, 'tunnel' | 'underlay'>>;
  localPodCIDRs: readonly string[] | undefined;
  watch: boolean;
  ipcacheMaxEntries: number | undefined;
  strictCidrsMaxEntries: number | undefined;
  objectPath: string | undefined;
  tcPriority: number;
  tcHandle: number;
  stateWriteDelayMs: number;
  logger: Logger | undefined;
}

function str(field: string, v: unknown, dflt: string): string {
  if (v === undefined) return dflt;
  if (typeof v !== 'string' || v.length === 0) throw new DatapathArgumentError(`options.${field}`, 'needs a non-empty string');
  return v;
}

function int(field: string, v: unknown, min: number, max: number): void {
  if (v !== undefined && (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max)) {
    throw new DatapathArgumentError(`options.${field}`, `needs an integer in [${min}, ${max}], got ${describeValue(v)}`);
  }
}

/** Validates tuning fields (shared by open() and configure()). */
export function checkTuning(t: DatapathTuning, prefix = 'options'): void {
  if (t === null || typeof t !== 'object') throw new DatapathArgumentError(prefix, 'needs an object');
  const f = (n: string) => `${prefix}.${n}`;
  if (t.strict !== undefined) {
    if (
      t.strict === null ||
      typeof t.strict !== 'object' ||
      typeof t.strict.enabled !== 'boolean' ||
      !Array.isArray(t.strict.cidrs)
    ) {
      throw new DatapathArgumentError(
        f('strict'),
        'needs { enabled: boolean, cidrs: string[], allowRemoteNodeIdentities: boolean }',
      );
    }
  }
  if (t.nodeEncryption !== undefined && typeof t.nodeEncryption !== 'boolean')
    throw new DatapathArgumentError(f('nodeEncryption'), 'needs a boolean');
  if (
    t.mtu !== undefined &&
    (typeof t.mtu !== 'number' || !Number.isInteger(t.mtu) || (t.mtu !== 0 && (t.mtu < 68 || t.mtu > 65535)))
  ) {
    throw new DatapathArgumentError(f('mtu'), `needs 0 (unchecked) or an integer in [68, 65535], got ${String(t.mtu)}`);
  }
  const g = (n: keyof DatapathTuning, v: unknown, max: number) => {
    if (v !== undefined && (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v > max)) {
      throw new DatapathArgumentError(f(n), `needs an integer in [0, ${max}], got ${describeValue(v)}`);
    }
  };
  g('wgPort', t.wgPort, 0xffff);
  g('encryptMark', t.encryptMark, 0xffffffff);
  g('encryptMarkMask', t.encryptMarkMask, 0xffffffff);
}

export function resolveOptions(o: BpfDatapathOptions): ResolvedOptions {
  if (o === null || typeof o !== 'object') throw new DatapathArgumentError('options', 'needs an object');
  checkTuning(o);
  if (o.netns !== undefined && (typeof o.netns !== 'string' || !o.netns.startsWith('/'))) {
    throw new DatapathArgumentError(
      'options.netns',
      `needs a namespace file path like /run/netns/<name>, got ${String(o.netns)}`,
    );
  }
  int('ipcacheMaxEntries', o.ipcacheMaxEntries, 1, 0x7fffffff);
  int('strictCidrsMaxEntries', o.strictCidrsMaxEntries, 1, 0x7fffffff);
  int('tcPriority', o.tcPriority, 1, 0xffff);
  int('tcHandle', o.tcHandle, 1, 0xffffffff);
  int('stateWriteDelayMs', o.stateWriteDelayMs, 0, 60_000);
  const roles = o.deviceRoles ?? {};
  for (const [name, role] of Object.entries(roles)) {
    if (role !== 'tunnel' && role !== 'underlay')
      throw new DatapathArgumentError(`options.deviceRoles.${name}`, `needs 'tunnel' or 'underlay', got ${String(role)}`);
  }
  if (o.localPodCIDRs !== undefined && !Array.isArray(o.localPodCIDRs))
    throw new DatapathArgumentError('options.localPodCIDRs', 'needs an array of CIDRs');
  return {
    ...o,
    pinDir: str('pinDir', o.pinDir, DEFAULT_PIN_DIR),
    bpffsRoot: str('bpffsRoot', o.bpffsRoot, DEFAULT_BPFFS_ROOT),
    mountBpffs: o.mountBpffs ?? true,
    stateFile: str('stateFile', o.stateFile, DEFAULT_STATE_FILE),
    netns: o.netns,
    podVethPatterns: o.podVethPatterns ?? DEFAULT_POD_VETH_PATTERNS,
    deviceRoles: roles,
    localPodCIDRs: o.localPodCIDRs,
    watch: o.watch ?? true,
    ipcacheMaxEntries: o.ipcacheMaxEntries,
    strictCidrsMaxEntries: o.strictCidrsMaxEntries,
    objectPath: o.objectPath,
    tcPriority: o.tcPriority ?? DEFAULT_TC_PRIORITY,
    tcHandle: o.tcHandle ?? DEFAULT_TC_HANDLE,
    stateWriteDelayMs: o.stateWriteDelayMs ?? 200,
    logger: o.logger,
  };
}

/**
 * Datapath options derived from core's configuration: state file in `stateDir`, pod veth
 * patterns, strict mode (only with encryption enabled) and node encryption. Nothing here reads a
 * backend's section: the backend hands its MTU and its own UDP port (the to-wire exemption) over
 * through its steering, which `setSteering` writes.
 */
export function datapathOptionsFromConfig(config: AgentConfig): BpfDatapathOptions {
  const enc = config.encryption;
  return {
    stateFile: join(config.stateDir, 'datapath-ipcache.json'),
    podVethPatterns: config.podVethPatterns,
    strict: {
      enabled: enc.enabled && enc.strictMode.enabled,
      cidrs: enc.strictMode.cidrs,
      allowRemoteNodeIdentities: enc.strictMode.allowRemoteNodeIdentities,
    },
    nodeEncryption: enc.enabled && enc.nodeEncryption,
  };
}

/** A bad option value as an error shows it: JSON where it has a shape (objects, strings), else its text. */
function describeValue(v: unknown): string {
  if (typeof v === 'object' && v !== null) return JSON.stringify(v);
  if (
    typeof v === 'string' ||
    typeof v === 'number' ||
    typeof v === 'boolean' ||
    typeof v === 'bigint' ||
    v === undefined ||
    v === null
  )
    return String(v);
  return typeof v;
}
