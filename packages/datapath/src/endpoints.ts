import { errorMessage } from '@veil/agent-core';
import {
  decodeRoute,
  type Link,
  type LinkEvent,
  type LinkWatcher,
  listLinks,
  listRoutes,
  NetlinkSocket,
  type NlMsg,
  type Route,
  rtnl,
  watchLinks,
} from '@veil/netlink';
import { codeOf, DatapathAttachError } from './errors.js';
import type { IpcacheTable } from './ipcache.js';
import { canonicalPrefix } from './model.js';
import type { ResolvedOptions } from './options.js';
import type { TcAttacher } from './tc-attach.js';

/** What discovery needs from the datapath that owns it. */
export interface EndpointDiscoveryHooks {
  readonly isClosed: () => boolean;
  /** A failure of event-driven work (nobody awaits it). */
  readonly recordError: (what: string, e: unknown) => void;
}

/**
 * Local endpoints from the kernel's own view: interfaces (rtnetlink link dumps and events) drive
 * the tc attachments, and host routes `<pod-ip>/32|128 dev <attached pod veth>` become LOCAL
 * ipcache entries with the veth's ifindex. Watching starts with the first attach; a dropped
 * event (socket overrun) triggers a full re-read.
 */
export class EndpointDiscovery {
  private linkWatcher: LinkWatcher | undefined;
  private watching: Promise<void> | undefined;
  private routeSock: NetlinkSocket | undefined;
  private querySock: NetlinkSocket | undefined;

  constructor(
    private readonly opts: ResolvedOptions,
    private readonly tc: TcAttacher,
    private readonly ipcache: IpcacheTable,
    private readonly hooks: EndpointDiscoveryHooks,
  ) {}

  private sock(): NetlinkSocket {
    if (!this.querySock || !this.querySock.isOpen) {
      this.querySock = NetlinkSocket.open('ROUTE', this.opts.netns ? { netns: this.opts.netns } : {});
    }
    return this.querySock;
  }

  /** Every interface in the managed namespace. */
  async listLinks(): Promise<Link[]> {
    try {
      return await listLinks(this.sock());
    } catch (e) {
      throw new DatapathAttachError(
        '(all)',
        '-',
        'ingress',
        codeOf(e),
        `listing interfaces${this.tc.where()} failed: ${errorMessage(e)}`,
        { cause: e },
      );
    }
  }

  /** Opens the link and route watchers once; concurrent callers share them. */
  startWatching(): Promise<void> {
    this.watching ??= this.openWatchers().catch((e: unknown) => {
      this.watching = undefined;
      throw new DatapathAttachError(
        '(watch)',
        '-',
        'ingress',
        codeOf(e),
        `watching link/route events${this.tc.where()} failed: ${errorMessage(e)}`,
        { cause: e },
      );
    });
    return this.watching;
  }

  private async openWatchers(): Promise<void> {
    const netnsOpt = this.opts.netns ? { netns: this.opts.netns } : {};
    this.linkWatcher = await watchLinks(netnsOpt);
    if (this.hooks.isClosed()) {
      this.linkWatcher.close();
      return;
    }
    this.linkWatcher.on('link', (ev) => this.onLinkEvent(ev));
    this.linkWatcher.on('resync', (links) =>
      this.background('link resync', async () => {
        this.tc.reconcileLinks(links);
        await this.reconcileRoutes();
      }),
    );
    this.linkWatcher.on('error', (e) => this.hooks.recordError('link watcher', e));
    this.routeSock = NetlinkSocket.open('ROUTE', { ...netnsOpt, groups: [rtnl.RTNLGRP_IPV4_ROUTE, rtnl.RTNLGRP_IPV6_ROUTE] });
    this.routeSock.on('message', (msg: NlMsg) => this.onRouteMessage(msg));
    this.routeSock.on('overrun', () => this.background('route resync', () => this.reconcileRoutes()));
    this.routeSock.on('error', (e: Error) => this.hooks.recordError('route watcher', e));
  }

  private onLinkEvent(ev: LinkEvent): void {
    if (this.hooks.isClosed()) return;
    try {
      if (ev.kind === 'del') {
        this.tc.linkGone(ev.link);
        return;
      }
      if (this.tc.linkUp(ev.link) && this.tc.roleOn(ev.link.index) === 'pod') {
        // Routes to the pod may already exist (added before we saw the link).
        this.background('pod routes', () => this.reconcileRoutes(ev.link.index));
      }
    } catch (e) {
      this.hooks.recordError('link event', e);
    }
  }

  private onRouteMessage(msg: NlMsg): void {
    if (this.hooks.isClosed() || (msg.type !== rtnl.RTM_NEWROUTE && msg.type !== rtnl.RTM_DELROUTE)) return;
    try {
      const r = decodeRoute(msg);
      const prefix = podRoutePrefix(r);
      if (!prefix || r.oif === undefined) return;
      if (msg.type === rtnl.RTM_DELROUTE) this.ipcache.dropLocalPod(prefix, r.oif);
      else if (this.tc.roleOn(r.oif) === 'pod') this.ipcache.setLocalPod(prefix, r.oif);
    } catch (e) {
      this.hooks.recordError('route event', e);
    }
  }

  /**
   * Re-reads host routes (main table, both families) and makes the LOCAL pod entries match:
   * `<ip>/32|128 dev <attached pod veth>`. With `onlyIfindex`, only adds for that veth.
   */
  async reconcileRoutes(onlyIfindex?: number): Promise<void> {
    const routes: Route[] = [];
    for (const family of [4, 6] as const) routes.push(...(await listRoutes(this.sock(), { family, table: rtnl.RT_TABLE_MAIN })));
    if (this.hooks.isClosed()) return;
    const want = new Map<string, number>();
    for (const r of routes) {
      const prefix = podRoutePrefix(r);
      if (!prefix || r.oif === undefined || this.tc.roleOn(r.oif) !== 'pod') continue;
      if (onlyIfindex !== undefined && r.oif !== onlyIfindex) continue;
      want.set(prefix, r.oif);
    }
    for (const [p, idx] of want) this.ipcache.setLocalPod(p, idx);
    if (onlyIfindex === undefined)
      for (const [p, idx] of this.ipcache.localEndpoints()) if (want.get(p) !== idx) this.ipcache.dropLocalPod(p, idx);
  }

  private background(what: string, fn: () => Promise<void> | void): void {
    Promise.resolve()
      .then(fn)
      .catch((e: unknown) => this.hooks.recordError(what, e));
  }

  /** Closes the watchers and the query socket. */
  close(): void {
    this.linkWatcher?.close();
    this.routeSock?.close();
    this.querySock?.close();
  }
}

/** `<ip>/32|128` for a main-table unicast host route out of one interface, else undefined. */
function podRoutePrefix(r: Route): string | undefined {
  if (r.table !== rtnl.RT_TABLE_MAIN || r.type !== rtnl.RTN_UNICAST || r.gateway !== undefined || r.oif === undefined)
    return undefined;
  if (r.dstLen !== (r.family === 4 ? 32 : 128) || r.dst === 'default') return undefined;
  return canonicalPrefix(r.dst, 'route.dst');
}
