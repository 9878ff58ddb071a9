import { closeSync, openSync } from 'node:fs';
import { EventEmitter } from 'node:events';
import { type AttrPart, AttrSet, attr } from '../attr.js';
import { NLM_F_CREATE, NLM_F_EXCL } from '../constants.js';
import { NetlinkDecodeError, NetlinkError, NetlinkSyscallError, NetlinkValidationError } from '../errors.js';
import type { NlMsg } from '../message.js';
import { NetlinkSocket } from '../socket.js';
import {
  AF_UNSPEC,
  IFF_UP,
  IFLA_ADDRESS,
  IFLA_EXT_MASK,
  IFLA_IFNAME,
  IFLA_INFO_DATA,
  IFLA_INFO_KIND,
  IFLA_LINK,
  IFLA_LINKINFO,
  IFLA_LINK_NETNSID,
  IFLA_MASTER,
  IFLA_MTU,
  IFLA_NET_NS_FD,
  IFLA_OPERSTATE,
  IFLA_TXQLEN,
  RTEXT_FILTER_SKIP_STATS,
  RTM_DELLINK,
  RTM_GETLINK,
  RTM_NEWLINK,
  RTNLGRP_LINK,
  VETH_INFO_PEER,
} from './constants.js';
import {
  type LinkRef,
  type NetnsRef,
  checkIfname,
  checkLinkRef,
  checkMtu,
  checkNetnsRef,
  checkRouteSocket,
  netnsPath,
} from './validate.js';

/*
 * struct ifinfomsg {         // <linux/rtnetlink.h>, 16 bytes
 *   unsigned char  ifi_family;   // AF_UNSPEC
 *   unsigned char  __ifi_pad;
 *   unsigned short ifi_type;     // ARPHRD_*
 *   int            ifi_index;
 *   unsigned       ifi_flags;    // IFF_*
 *   unsigned       ifi_change;   // mask of flags to change
 * };
 */
export const IFINFOMSG_LEN = 16;

export interface IfInfoMsg {
  family?: number;
  type?: number;
  index?: number;
  flags?: number;
  change?: number;
}

export function encodeIfinfomsg(m: IfInfoMsg = {}): Buffer {
  const b = Buffer.alloc(IFINFOMSG_LEN);
  b.writeUInt8(m.family ?? AF_UNSPEC, 0);
  b.writeUInt16LE(m.type ?? 0, 2);
  b.writeInt32LE(m.index ?? 0, 4);
  b.writeUInt32LE((m.flags ?? 0) >>> 0, 8);
  b.writeUInt32LE((m.change ?? 0) >>> 0, 12);
  return b;
}

export function decodeIfinfomsg(p: Buffer): Required<IfInfoMsg> {
  if (p.length < IFINFOMSG_LEN) throw new NetlinkDecodeError(`ifinfomsg needs ${IFINFOMSG_LEN} bytes, got ${p.length}`, 16);
  return {
    family: p.readUInt8(0),
    type: p.readUInt16LE(2),
    index: p.readInt32LE(4),
    flags: p.readUInt32LE(8),
    change: p.readUInt32LE(12),
  };
}

/** A network interface as reported by RTM_NEWLINK. */
export interface Link {
  index: number;
  name: string;
  /** ARPHRD_* (1 = ether, 772 = loopback, 65534 = none). */
  type: number;
  /** IFF_* flags. */
  flags: number;
  /** IFF_UP is set (administratively up). */
  up: boolean;
  mtu: number | undefined;
  /** Hardware address as aa:bb:cc:dd:ee:ff, when the device has one. */
  address: string | undefined;
  /** IFLA_INFO_KIND: 'veth', 'dummy', 'wireguard'... (undefined for physical devices). */
  kind: string | undefined;
  /** IFLA_OPERSTATE (RFC 2863: 0 unknown, 2 down, 6 up...). */
  operstate: number | undefined;
  /** IFLA_LINK: peer/parent ifindex (for veth: the peer, possibly in another netns). */
  parentIndex: number | undefined;
  /** IFLA_LINK_NETNSID: netns id where the peer/parent lives. */
  linkNetnsId: number | undefined;
  master: number | undefined;
  txqlen: number | undefined;
  /** All attributes, including ones this type does not surface. */
  attrs: AttrSet;
}

function mac(b: Buffer | undefined): string | undefined {
  if (!b || b.length === 0) return undefined;
  return Array.from(b, (x) => x.toString(16).padStart(2, '0')).join(':');
}

/** Decodes an RTM_NEWLINK/RTM_DELLINK message. */
export function decodeLink(msg: NlMsg): Link {
  const h = decodeIfinfomsg(msg.payload);
  const attrs = AttrSet.decode(msg.payload, IFINFOMSG_LEN);
  const info = attrs.nested(IFLA_LINKINFO);
  return {
    index: h.index,
    name: attrs.string(IFLA_IFNAME) ?? '',
    type: h.type,
    flags: h.flags,
    up: (h.flags & IFF_UP) !== 0,
    mtu: attrs.u32(IFLA_MTU),
    address: mac(attrs.binary(IFLA_ADDRESS)),
    kind: info?.string(IFLA_INFO_KIND),
    operstate: attrs.u8(IFLA_OPERSTATE),
    parentIndex: attrs.u32(IFLA_LINK),
    linkNetnsId: attrs.s32(IFLA_LINK_NETNSID),
    master: attrs.u32(IFLA_MASTER),
    txqlen: attrs.u32(IFLA_TXQLEN),
    attrs,
  };
}

/** ifinfomsg + name attribute addressing an existing link by index or by name. */
function target(ref: LinkRef, m: IfInfoMsg = {}): { header: Buffer; nameAttr: AttrPart } {
  return typeof ref === 'number'
    ? { header: encodeIfinfomsg({ ...m, index: ref }), nameAttr: undefined }
    : { header: encodeIfinfomsg(m), nameAttr: attr.string(IFLA_IFNAME, ref) };
}

/** Opens a netns reference as an fd for IFLA_NET_NS_FD; returns it with a release function. */
function netnsFd(ref: NetnsRef): { fd: number; release: () => void } {
  if (typeof ref === 'number') return { fd: ref, release: () => undefined };
  const path = netnsPath(ref);
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    throw new NetlinkSyscallError('open', Math.abs(err.errno ?? 2), path);
  }
  return { fd, release: () => closeSync(fd) };
}

/**
 * Lists all links. Equivalent: `ip link show`.
 */
export async function listLinks(sock: NetlinkSocket): Promise<Link[]> {
  checkRouteSocket(sock);
  const parts = await sock.dump({
    type: RTM_GETLINK,
    payload: [encodeIfinfomsg(), attr.u32(IFLA_EXT_MASK, RTEXT_FILTER_SKIP_STATS)],
  });
  return parts.filter((m) => m.type === RTM_NEWLINK).map(decodeLink);
}

/**
 * Gets one link by name or index; `undefined` when it does not exist.
 * Equivalent: `ip link show dev <name>`.
 */
export async function getLink(sock: NetlinkSocket, link: LinkRef): Promise<Link | undefined> {
  checkRouteSocket(sock);
  const ref = checkLinkRef(link, 'link');
  const t = target(ref);
  try {
    const replies = await sock.request({
      type: RTM_GETLINK,
      payload: [t.header, t.nameAttr || Buffer.alloc(0), attr.u32(IFLA_EXT_MASK, RTEXT_FILTER_SKIP_STATS)],
    });
    const m = replies.find((r) => r.type === RTM_NEWLINK);
    return m ? decodeLink(m) : undefined;
  } catch (e) {
    if (e instanceof NetlinkError && e.code === 'ENODEV') return undefined;
    throw e;
  }
}

/** Resolves a link reference to its ifindex (names are looked up). */
export async function linkIndex(sock: NetlinkSocket, link: LinkRef, field = 'link'): Promise<number> {
  const ref = checkLinkRef(link, field);
  if (typeof ref === 'number') return ref;
  const l = await getLink(sock, ref);
  if (!l) throw new NetlinkValidationError(field, 'no such interface', ref);
  return l.index;
}

/** Common options of link creation. */
export interface CreateLinkOptions {
  name: string;
  mtu?: number;
  /** Bring the link up right away (IFF_UP in the create request). */
  up?: boolean;
}

function createRequest(opts: CreateLinkOptions, kind: string, infoData: AttrPart[] | undefined, extra: AttrPart[] = []) {
  const name = checkIfname(opts.name, 'name');
  const mtu = opts.mtu === undefined ? undefined : checkMtu(opts.mtu);
  const up = opts.up === true;
  return {
    type: RTM_NEWLINK,
    flags: NLM_F_CREATE | NLM_F_EXCL,
    payload: [
      encodeIfinfomsg(up ? { flags: IFF_UP, change: IFF_UP } : {}),
      attr.string(IFLA_IFNAME, name),
      mtu === undefined ? Buffer.alloc(0) : attr.u32(IFLA_MTU, mtu),
      ...extra.filter((p): p is Buffer => Buffer.isBuffer(p)),
      // Like iproute2 byte for byte: no NLA_F_NESTED, kind without NUL (the kernel accepts both).
      attr.nested(
        IFLA_LINKINFO,
        [
          attr.binary(IFLA_INFO_KIND, Buffer.from(kind)),
          infoData && attr.nested(IFLA_INFO_DATA, infoData, { nestedFlag: false }),
        ],
        { nestedFlag: false },
      ),
    ],
  };
}

/** Options of createVeth. */
export interface CreateVethOptions extends CreateLinkOptions {
  peerName: string;
  /** Namespace to create the peer in (path, name under /run/netns, or fd). */
  peerNetns?: NetnsRef;
  /** MTU of the peer (defaults to the kernel's choice: same as `mtu`). */
  peerMtu?: number;
}

/**
 * Creates a veth pair.
 * Equivalent: `ip link add <name> [mtu N] type veth peer name <peerName> [netns <ns>]`.
 */
export async function createVeth(sock: NetlinkSocket, opts: CreateVethOptions): Promise<void> {
  checkRouteSocket(sock);
  const peerName = checkIfname(opts.peerName, 'peerName');
  if (peerName === opts.name && opts.peerNetns === undefined) {
    throw new NetlinkValidationError('peerName', 'must differ from name when both ends share a namespace', peerName);
  }
  const peerMtu = opts.peerMtu === undefined ? opts.mtu : checkMtu(opts.peerMtu, 'peerMtu');
  const peerNs = opts.peerNetns === undefined ? undefined : checkNetnsRef(opts.peerNetns, 'peerNetns');
  // Validate the rest before opening any fd.
  createRequest(opts, 'veth', []);
  const ns = peerNs === undefined ? undefined : netnsFd(peerNs);
  try {
    // VETH_INFO_PEER carries a struct ifinfomsg followed by the peer's attributes.
    const peer = Buffer.concat([
      encodeIfinfomsg(),
      attr.string(IFLA_IFNAME, peerName),
      peerMtu === undefined ? Buffer.alloc(0) : attr.u32(IFLA_MTU, checkMtu(peerMtu, 'peerMtu')),
      ns ? attr.s32(IFLA_NET_NS_FD, ns.fd) : Buffer.alloc(0),
    ]);
    await sock.request(createRequest(opts, 'veth', [attr.binary(VETH_INFO_PEER, peer)]));
  } finally {
    ns?.release();
  }
}

/** Creates a dummy device. Equivalent: `ip link add <name> [mtu N] type dummy`. */
export async function createDummy(sock: NetlinkSocket, opts: CreateLinkOptions): Promise<void> {
  checkRouteSocket(sock);
  await sock.request(createRequest(opts, 'dummy', undefined));
}

/**
 * Creates a kernel WireGuard device (needs the wireguard module; fails with EOPNOTSUPP
 * "Unknown device type" without it). Equivalent: `ip link add <name> type wireguard`.
 */
export async function createWireguard(sock: NetlinkSocket, opts: CreateLinkOptions): Promise<void> {
  checkRouteSocket(sock);
  await sock.request(createRequest(opts, 'wireguard', undefined));
}

async function modify(sock: NetlinkSocket, link: LinkRef, m: IfInfoMsg, attrs: AttrPart[]): Promise<void> {
  const t = target(link, m);
  await sock.request({
    type: RTM_NEWLINK,
    payload: [t.header, t.nameAttr || Buffer.alloc(0), ...attrs.filter((p): p is Buffer => Buffer.isBuffer(p))],
  });
}

/** Sets a link administratively up. Equivalent: `ip link set <link> up`. */
export async function setLinkUp(sock: NetlinkSocket, link: LinkRef): Promise<void> {
  checkRouteSocket(sock);
  await modify(sock, checkLinkRef(link, 'link'), { flags: IFF_UP, change: IFF_UP }, []);
}

/** Sets a link administratively down. Equivalent: `ip link set <link> down`. */
export async function setLinkDown(sock: NetlinkSocket, link: LinkRef): Promise<void> {
  checkRouteSocket(sock);
  await modify(sock, checkLinkRef(link, 'link'), { flags: 0, change: IFF_UP }, []);
}

/** Sets the MTU. Equivalent: `ip link set <link> mtu <mtu>`. */
export async function setLinkMtu(sock: NetlinkSocket, link: LinkRef, mtu: number): Promise<void> {
  checkRouteSocket(sock);
  const ref = checkLinkRef(link, 'link');
  await modify(sock, ref, {}, [attr.u32(IFLA_MTU, checkMtu(mtu))]);
}

/**
 * Moves a link into another network namespace (path, name under /run/netns, or fd).
 * Equivalent: `ip link set <link> netns <ns>`.
 */
export async function moveLinkToNetns(sock: NetlinkSocket, link: LinkRef, netns: NetnsRef): Promise<void> {
  checkRouteSocket(sock);
  const ref = checkLinkRef(link, 'link');
  const ns = netnsFd(checkNetnsRef(netns, 'netns'));
  try {
    await modify(sock, ref, {}, [attr.s32(IFLA_NET_NS_FD, ns.fd)]);
  } finally {
    ns.release();
  }
}

/** Deletes a link (for veth, both ends). Equivalent: `ip link del <link>`. */
export async function deleteLink(sock: NetlinkSocket, link: LinkRef): Promise<void> {
  checkRouteSocket(sock);
  const t = target(checkLinkRef(link, 'link'));
  await sock.request({ type: RTM_DELLINK, payload: [t.header, t.nameAttr || Buffer.alloc(0)] });
}

/** One link event. */
export interface LinkEvent {
  /**
   * 'add': a link this watcher had not seen; 'change': RTM_NEWLINK for a known link
   * (flags, MTU, ...); 'del': RTM_DELLINK.
   */
  kind: 'add' | 'change' | 'del';
  link: Link;
}

/** Events of a LinkWatcher. */
export interface LinkWatcherEvents {
  link: [event: LinkEvent];
  /** Notifications were lost (ENOBUFS). The watcher resyncs by itself, then emits 'resync'. */
  overrun: [];
  /** Emitted after an overrun-triggered resync, with the full current list. */
  resync: [links: Link[]];
  error: [err: Error];
  /** close() was called. */
  close: [];
}

/**
 * Subscription to RTNLGRP_LINK. Use `on('link', ...)` or `for await (const ev of watcher)`.
 * Equivalent: `ip monitor link`.
 */
export class LinkWatcher extends EventEmitter<LinkWatcherEvents> implements AsyncIterable<LinkEvent> {
  private readonly known = new Set<number>();
  private readonly deletedDuringSync = new Set<number>();
  private syncing = false;

  /** @internal use watchLinks() */
  constructor(readonly socket: NetlinkSocket) {
    super();
    socket.on('message', (msg, group) => {
      if (group !== RTNLGRP_LINK || (msg.type !== RTM_NEWLINK && msg.type !== RTM_DELLINK)) return;
      let link: Link;
      try {
        link = decodeLink(msg);
      } catch (e) {
        this.fail(e as Error);
        return;
      }
      if (msg.type === RTM_DELLINK) {
        this.known.delete(link.index);
        if (this.syncing) this.deletedDuringSync.add(link.index);
        this.emit('link', { kind: 'del', link });
      } else {
        const kind = this.known.has(link.index) ? 'change' : 'add';
        this.known.add(link.index);
        this.emit('link', { kind, link });
      }
    });
    socket.on('overrun', () => {
      this.emit('overrun');
      this.sync().then(
        (links) => this.emit('resync', links),
        (e: Error) => this.fail(e),
      );
    });
    socket.on('error', (e) => this.fail(e));
  }

  private fail(e: Error): void {
    if (this.listenerCount('error') > 0) this.emit('error', e);
    else process.emitWarning(e);
  }

  /** (Re)reads the full link list into the known set. @internal */
  async sync(): Promise<Link[]> {
    this.syncing = true;
    this.deletedDuringSync.clear();
    try {
      const links = await listLinks(this.socket);
      this.known.clear();
      for (const l of links) if (!this.deletedDuringSync.has(l.index)) this.known.add(l.index);
      return links;
    } finally {
      this.syncing = false;
    }
  }

  /** Async iteration over link events until close(). */
  async *[Symbol.asyncIterator](): AsyncIterator<LinkEvent> {
    const queue: LinkEvent[] = [];
    let wake: (() => void) | undefined;
    let closed = false;
    const onLink = (ev: LinkEvent) => {
      queue.push(ev);
      wake?.();
    };
    const onClose = () => {
      closed = true;
      wake?.();
    };
    this.on('link', onLink);
    this.once('close', onClose);
    try {
      while (true) {
        const ev = queue.shift();
        if (ev) {
          yield ev;
          continue;
        }
        if (closed || !this.socket.isOpen) return;
        await new Promise<void>((r) => (wake = r));
        wake = undefined;
      }
    } finally {
      this.off('link', onLink);
      this.off('close', onClose);
    }
  }

  /** Stops watching and closes the socket. */
  close(): void {
    this.socket.close();
    this.emit('close');
  }
}

/**
 * Watches link add/change/delete events (RTNLGRP_LINK) in the caller's netns or `netns`.
 * Equivalent: `ip monitor link` (`ip -n <ns> monitor link`).
 * Resolves once subscribed and seeded with the current links (so existing links are not
 * reported as 'add').
 */
export async function watchLinks(opts: { netns?: NetnsRef; rcvbuf?: number } = {}): Promise<LinkWatcher> {
  const netns = opts.netns === undefined ? undefined : checkNetnsRef(opts.netns, 'netns');
  const sock = NetlinkSocket.open('ROUTE', {
    groups: [RTNLGRP_LINK],
    ...(netns === undefined ? {} : { netns }),
    ...(opts.rcvbuf === undefined ? {} : { rcvbuf: opts.rcvbuf }),
  });
  const w = new LinkWatcher(sock);
  try {
    await w.sync();
  } catch (e) {
    sock.close();
    throw e;
  }
  return w;
}
