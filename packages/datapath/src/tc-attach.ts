import { type Datapath as BpfObjectDatapath, PROGRAMS } from '@veil/bpf';
import { errorMessage, type AttachTarget } from '@veil/agent-core';
import type { Link } from '@veil/netlink';
import { attachTc, listTc, type Program, type TcLink } from 'libbpf-ts';
import { codeOf, DatapathArgumentError, DatapathAttachError } from './errors.js';
import { namePatternMatcher } from './model.js';
import type { AttachRole, ResolvedOptions } from './options.js';

/** One program attached to one interface. */
export interface Attachment {
  readonly ifname: string;
  readonly ifindex: number;
  readonly role: AttachRole;
  readonly program: string;
  readonly direction: 'ingress' | 'egress';
  readonly progId: number;
}

const ROLE_PROGRAM: Record<AttachRole, { program: keyof typeof PROGRAMS; direction: 'ingress' | 'egress' }> = {
  pod: { program: 'fromPod', direction: 'ingress' },
  tunnel: { program: 'fromTunnel', direction: 'ingress' },
  underlay: { program: 'toWire', direction: 'egress' },
};

// libbpf names filters "<prog>:[<id>]" with the kernel's 15-character program name.
const VEIL_FILTER_NAME = /^veil_(from_pod|from_tunne|to_wire)/;

interface Attached extends Attachment {
  readonly link: TcLink;
}

/** What the tc side reports back to the datapath. */
export interface TcAttacherHooks {
  /** A pod veth's attachment is gone (device deleted, renamed or detached): drop its LOCAL entries. */
  readonly onPodGone: (ifindex: number) => void;
  /** A non-fatal failure (stale filter cleanup). */
  readonly recordError: (what: string, e: unknown) => void;
}

/**
 * The tc filters Veil owns: which interfaces want which program (explicit targets by name, pod
 * veths by pattern), the attachments by ifindex, and the ifindexes `detach()` was asked for.
 * Filters are attached at one (priority, handle) with replace, so a restarted agent swaps them
 * in place; copies an older agent left elsewhere on the hook are removed.
 */
export class TcAttacher {
  private readonly isPod: (name: string) => boolean;
  /** Explicit targets by name (pod veths, tunnel, underlay). */
  private readonly wanted = new Map<string, AttachRole>();
  private readonly byIfindex = new Map<number, Attached>();
  /** ifindexes detach() was asked for: not re-attached until the device is recreated. */
  private readonly suppressed = new Set<number>();

  constructor(
    private readonly bpf: BpfObjectDatapath,
    private readonly opts: ResolvedOptions,
    private readonly hooks: TcAttacherHooks,
  ) {
    this.isPod = namePatternMatcher(opts.podVethPatterns);
  }

  /** Validates `targets` (all of them, before any change) and records their roles. */
  want(targets: readonly AttachTarget[]): [string, AttachRole][] {
    const roles: [string, AttachRole][] = targets.map((t, i) => [
      checkIfname(t?.ifname, `targets[${i}].ifname`),
      this.roleOf(t, i),
    ]);
    for (const [name, role] of roles) this.wanted.set(name, role);
    return roles;
  }

  /** One ENODEV failure per wanted target absent from `links` (attached when it appears). */
  missing(roles: readonly [string, AttachRole][], links: readonly Pick<Link, 'name'>[]): DatapathAttachError[] {
    const present = new Set(links.map((l) => l.name));
    const out: DatapathAttachError[] = [];
    for (const [name, role] of roles) {
      if (!present.has(name)) {
        const { program, direction } = ROLE_PROGRAM[role];
        out.push(
          new DatapathAttachError(
            name,
            PROGRAMS[program],
            direction,
            'ENODEV',
            `${name}: no such interface${this.where()} (attached when it appears)`,
          ),
        );
      }
    }
    return out;
  }

  /** Every explicit target has an attachment. */
  allWantedAttached(): boolean {
    const names = new Set([...this.byIfindex.values()].map((a) => a.ifname));
    for (const n of this.wanted.keys()) if (!names.has(n)) return false;
    return true;
  }

  /** Current attachments. */
  attachments(): Attachment[] {
    return [...this.byIfindex.values()].map(({ link: _link, ...a }) => a);
  }

  /** The role of the attachment on `ifindex`, if any. */
  roleOn(ifindex: number): AttachRole | undefined {
    return this.byIfindex.get(ifindex)?.role;
  }

  /** Detaches our filters from `ifnames` and stops managing them (until recreated). */
  detach(ifnames: readonly string[]): void {
    if (!Array.isArray(ifnames)) throw new DatapathArgumentError('ifnames', 'needs an array');
    const names = new Set(ifnames.map((n, i) => checkIfname(n, `ifnames[${i}]`)));
    for (const n of names) this.wanted.delete(n);
    for (const [idx, a] of [...this.byIfindex]) {
      if (!names.has(a.ifname)) continue;
      try {
        a.link.detach();
      } catch (e) {
        throw new DatapathAttachError(
          a.ifname,
          a.program,
          a.direction,
          codeOf(e),
          `detaching ${a.program} from ${a.ifname}${this.where()} failed: ${errorMessage(e)}`,
          { cause: e },
        );
      }
      this.suppressed.add(idx);
      this.forget(idx);
    }
  }

  /** ` in <netns>` for messages, or nothing in the agent's own namespace. */
  where(): string {
    return this.opts.netns ? ` in ${this.opts.netns}` : '';
  }

  private roleOf(t: AttachTarget, i: number): AttachRole {
    switch (t?.kind) {
      case 'pod-veth':
        return 'pod';
      case 'tunnel':
      case 'underlay':
        return t.kind;
      case 'device': {
        const r = this.opts.deviceRoles[t.ifname];
        if (!r)
          throw new DatapathArgumentError(
            `targets[${i}]`,
            `device '${t.ifname}' has no role: set options.deviceRoles['${t.ifname}'] to 'tunnel' or 'underlay', or pass kind 'tunnel' / 'underlay'`,
          );
        return r;
      }
      default:
        throw new DatapathArgumentError(
          `targets[${i}].kind`,
          `needs 'pod-veth', 'device', 'tunnel' or 'underlay', got ${String((t as { kind?: unknown })?.kind)}`,
        );
    }
  }

  private roleFor(name: string): AttachRole | undefined {
    return this.wanted.get(name) ?? (this.isPod(name) ? 'pod' : undefined);
  }

  private attachLink(link: Pick<Link, 'index' | 'name'>, role: AttachRole): void {
    const { program: key, direction } = ROLE_PROGRAM[role];
    const program: Program = this.bpf[key];
    let tc: TcLink;
    try {
      tc = attachTc({
        ifindex: link.index,
        direction,
        program,
        priority: this.opts.tcPriority,
        handle: this.opts.tcHandle,
        replace: true,
        ...(this.opts.netns ? { netns: this.opts.netns } : {}),
      });
    } catch (e) {
      throw new DatapathAttachError(
        link.name,
        program.name,
        direction,
        codeOf(e),
        `attaching ${program.name} (tc ${direction}) to ${link.name}${this.where()} failed: ${errorMessage(e)}`,
        { cause: e },
      );
    }
    this.byIfindex.set(link.index, {
      ifname: link.name,
      ifindex: link.index,
      role,
      program: program.name,
      direction,
      progId: tc.progId,
      link: tc,
    });
    this.opts.logger?.info({ ifname: link.name, ifindex: link.index, program: program.name, direction }, 'datapath attached');
    this.removeStaleFilters(link, program, direction);
  }

  /**
   * Removes Veil filters an older agent left at another (priority, handle) on this hook, so only
   * one copy runs. libbpf-ts deletes filters only through a TcLink, so each one is first replaced
   * by our program (harmless: the same decision) and then detached.
   */
  private removeStaleFilters(link: Pick<Link, 'index' | 'name'>, program: Program, direction: 'ingress' | 'egress'): void {
    const netns = this.opts.netns ? { netns: this.opts.netns } : {};
    try {
      for (const f of listTc({ ifindex: link.index, direction, ...netns })) {
        if (f.kind !== 'bpf' || !VEIL_FILTER_NAME.test(f.bpf?.name ?? '')) continue;
        if (f.priority === this.opts.tcPriority && f.handle === this.opts.tcHandle) continue;
        attachTc({
          ifindex: link.index,
          direction,
          program,
          priority: f.priority,
          handle: f.handle,
          replace: true,
          ...netns,
        }).detach();
        this.opts.logger?.info(
          { ifname: link.name, direction, priority: f.priority, handle: f.handle },
          'removed a stale Veil tc filter',
        );
      }
    } catch (e) {
      this.hooks.recordError(`stale filters on ${link.name}`, e);
    }
  }

  /** Forgets an attachment (device gone / detached) and the local pod entries behind it. */
  private forget(ifindex: number): void {
    const a = this.byIfindex.get(ifindex);
    this.byIfindex.delete(ifindex);
    if (a?.role === 'pod') this.hooks.onPodGone(ifindex);
  }

  /** A device went away: forget its attachment; a new device may reuse the ifindex. */
  linkGone(link: Pick<Link, 'index' | 'name'>): void {
    if (this.byIfindex.has(link.index))
      this.opts.logger?.info({ ifname: link.name, ifindex: link.index }, 'datapath interface gone');
    this.forget(link.index);
    this.suppressed.delete(link.index);
  }

  /** Brings attachments in line with a full link list. */
  reconcileLinks(links: readonly Link[], failures: DatapathAttachError[] = []): void {
    const present = new Map(links.map((l) => [l.index, l]));
    for (const idx of [...this.byIfindex.keys()]) if (!present.has(idx)) this.forget(idx);
    for (const idx of [...this.suppressed]) if (!present.has(idx)) this.suppressed.delete(idx);
    for (const l of links) {
      try {
        this.linkUp(l);
      } catch (e) {
        if (e instanceof DatapathAttachError) failures.push(e);
        else throw e;
      }
    }
  }

  /** A device exists (new, renamed or re-listed): attach what its name calls for. True when newly attached. */
  linkUp(l: Pick<Link, 'index' | 'name'>): boolean {
    const cur = this.byIfindex.get(l.index);
    const role = this.roleFor(l.name);
    if (cur && cur.ifname === l.name && cur.role === role) return false;
    if (cur) {
      // Renamed (or its role changed): drop what we had, maybe attach anew below.
      if (!role) {
        try {
          cur.link.detach();
        } catch {
          /* the filter may be gone with a namespace move */
        }
      }
      this.forget(l.index);
    }
    if (!role || this.suppressed.has(l.index)) return false;
    this.attachLink(l, role);
    return true;
  }
}

function checkIfname(v: unknown, field: string): string {
  if (typeof v !== 'string' || v.length === 0 || v.length > 15 || /[\s/]/.test(v)) {
    throw new DatapathArgumentError(field, `needs an interface name of 1..15 characters, got ${String(v)}`);
  }
  return v;
}
