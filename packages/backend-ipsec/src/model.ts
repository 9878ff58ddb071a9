import type { XfrmPolicy, XfrmState } from 'node-xfrm-bindings';
import { deriveDirectionalKey, xfrmTransform } from './derive.js';
import { IpsecPeerError } from './errors.js';
import type { IpsecKey } from './keyfile.js';

/**
 * The mark layout shared with the BPF `from-pod` program (bpf/lib/encrypt.h, bpf/src/mark.ts):
 * `0x0E00 | keyIndex << 12 | nodeId << 16`; bits 0..7 are left to others.
 */
export const MARK_ENCRYPT = 0x0e00;
export const KEY_INDEX_SHIFT = 12;
export const NODE_ID_SHIFT = 16;
/** Per-peer OUT policies and states match node ID + key index + the encrypt nibble. */
export const MARK_MASK_PEER = 0xffffff00;
/** The catch-all BLOCK policy matches any packet carrying the encrypt nibble. */
export const MARK_MASK_ENCRYPT = 0x0f00;

/** reqid of every state and template this backend writes ('veil'); how its states are told apart. */
export const VEIL_REQID = 0x7665696c;
/** Policy priorities (lower wins); distinctive values mark the policies as this backend's. */
export const PRIORITY_PEER = 0x7650;
export const PRIORITY_IN_FWD = 0x7651;
export const PRIORITY_BLOCK = 0x76ff;
/** ESN replay window (packets). ESN needs a window > 0 on every state. */
export const REPLAY_WINDOW = 1024;

export type Family = 4 | 6;

/** This node, as the states need it. */
export interface LocalNode {
  readonly nodeId: number;
  readonly ipv4?: string | undefined;
  readonly ipv6?: string | undefined;
  readonly bootId: string;
  /** Key epoch (see {@link PairEndpoint.epoch}). */
  readonly epoch: number;
}

/** A peer node, as the states need it: what a local node has, and its name. */
export interface RemoteNode extends LocalNode {
  readonly name: string;
}

/** A set of XFRM objects. */
export interface XfrmObjects {
  readonly states: readonly XfrmState[];
  readonly policies: readonly XfrmPolicy[];
}

/** The mark `from-pod` sets for a ready peer, unsigned. */
export function encryptMark(keyIndex: number, nodeId: number): number {
  return (MARK_ENCRYPT | ((keyIndex & 0xf) << KEY_INDEX_SHIFT) | (nodeId << NODE_ID_SHIFT)) >>> 0;
}

/**
 * SPI of the SA carrying `senderNodeId`'s traffic under `keyIndex`: `senderNodeId << 8 | keyIndex`.
 * Every sender uses the same destination address on the receiver, so the SPI (with the
 * destination it identifies the IN state) must tell senders apart; node IDs ≥ 1 also keep it
 * clear of the reserved SPIs 1..255.
 */
export function spiFor(senderNodeId: number, keyIndex: number): number {
  return ((senderNodeId << 8) | (keyIndex & 0xf)) >>> 0;
}

/** Inverse of {@link spiFor}. */
export function decodeSpi(spi: number): { nodeId: number; keyIndex: number } {
  return { nodeId: spi >>> 8, keyIndex: spi & 0xf };
}

const ANY: Record<Family, string> = { 4: '0.0.0.0/0', 6: '::/0' };
const ZERO: Record<Family, string> = { 4: '0.0.0.0', 6: '::' };

/**
 * Node-wide policies, per family:
 * - OUT BLOCK for any packet with the encrypt nibble, below every per-peer policy: a marked packet
 *   whose peer policy/state is missing (not yet installed, being swapped, deleted behind our back)
 *   is dropped and counted (XfrmOutPolBlock), never sent in clear.
 * - IN and FWD with an optional wildcard ESP tunnel template: decrypted tunnel traffic from any
 *   peer is accepted (the kernel drops decapsulated packets no policy accepts), while plaintext
 *   traffic that never was ESP passes as before (`level use`).
 */
export function basePolicies(): XfrmPolicy[] {
  const out: XfrmPolicy[] = [];
  for (const f of [4, 6] as const) {
    out.push({
      selector: { src: ANY[f], dst: ANY[f] },
      dir: 'out',
      priority: PRIORITY_BLOCK,
      action: 'block',
      mark: { value: MARK_ENCRYPT, mask: MARK_MASK_ENCRYPT },
    });
    for (const dir of ['in', 'fwd'] as const) {
      out.push({
        selector: { src: ANY[f], dst: ANY[f] },
        dir,
        priority: PRIORITY_IN_FWD,
        action: 'allow',
        templates: [{ src: ZERO[f], dst: ZERO[f], proto: 'esp', mode: 'tunnel', reqid: VEIL_REQID, optional: true }],
      });
    }
  }
  return out;
}

/** The address families both nodes have a tunnel address in (inner traffic uses the same family). */
export function commonFamilies(local: LocalNode, peer: RemoteNode): Family[] {
  const f: Family[] = [];
  if (local.ipv4 && peer.ipv4) f.push(4);
  if (local.ipv6 && peer.ipv6) f.push(6);
  return f;
}

function ipOf(n: LocalNode | RemoteNode, f: Family): string {
  return (f === 4 ? n.ipv4 : n.ipv6)!;
}

/**
 * Everything one peer needs, for every key index in `keys`: per family in common,
 * - OUT state local → peer, SPI `spiFor(local, index)`, mark `encryptMark(index, peer)`;
 * - OUT policy (selector any → any of that family, the same mark) with a tunnel template;
 * - IN state peer → local, SPI `spiFor(peer, index)`, no mark (the SPI names the sender).
 * All tunnel mode between the node addresses, ESN on, keys derived per direction.
 */
export function peerObjects(local: LocalNode, peer: RemoteNode, keys: readonly IpsecKey[]): XfrmObjects {
  if (!Number.isInteger(peer.nodeId) || peer.nodeId < 1 || peer.nodeId > 0xffff) {
    throw new IpsecPeerError(peer.name, `needs a node ID 1..65535 (annotation veil.io/node-id), has ${peer.nodeId}`);
  }
  if (peer.nodeId === local.nodeId) throw new IpsecPeerError(peer.name, `has this node's own node ID ${peer.nodeId}`);
  const families = commonFamilies(local, peer);
  if (families.length === 0)
    throw new IpsecPeerError(peer.name, 'shares no address family (IPv4/IPv6 InternalIP) with this node');
  const states: XfrmState[] = [];
  const policies: XfrmPolicy[] = [];
  for (const f of families) {
    const me = { ip: ipOf(local, f), bootId: local.bootId, epoch: local.epoch };
    const them = { ip: ipOf(peer, f), bootId: peer.bootId, epoch: peer.epoch };
    for (const key of keys) {
      const mark = { value: encryptMark(key.spi, peer.nodeId), mask: MARK_MASK_PEER };
      states.push({
        src: me.ip,
        dst: them.ip,
        proto: 'esp',
        spi: spiFor(local.nodeId, key.spi),
        reqid: VEIL_REQID,
        mode: 'tunnel',
        ...xfrmTransform(key, deriveDirectionalKey(key, me, them)),
        esn: true,
        replayWindow: REPLAY_WINDOW,
        mark,
      });
      states.push({
        src: them.ip,
        dst: me.ip,
        proto: 'esp',
        spi: spiFor(peer.nodeId, key.spi),
        reqid: VEIL_REQID,
        mode: 'tunnel',
        ...xfrmTransform(key, deriveDirectionalKey(key, them, me)),
        esn: true,
        replayWindow: REPLAY_WINDOW,
      });
      policies.push({
        selector: { src: ANY[f], dst: ANY[f] },
        dir: 'out',
        priority: PRIORITY_PEER,
        action: 'allow',
        mark,
        templates: [{ src: me.ip, dst: them.ip, proto: 'esp', mode: 'tunnel', reqid: VEIL_REQID }],
      });
    }
  }
  return { states, policies };
}

/** Who an object of this backend belongs to: the node (base policies) or one peer (by node ID). */
export type Owner = { readonly kind: 'base' } | { readonly kind: 'peer'; readonly nodeId: number };

export function isOurState(s: XfrmState): boolean {
  // SPI 0: a larval (ACQUIRE) state the kernel made for a template without an SA; it expires
  // on its own and cannot be deleted by SPI.
  return s.reqid === VEIL_REQID && (s.proto ?? 'esp') === 'esp' && s.spi !== 0;
}

export function isOurPolicy(p: XfrmPolicy): boolean {
  const prio = p.priority ?? 0;
  if (prio === PRIORITY_BLOCK) return p.action === 'block' && p.mark?.value === MARK_ENCRYPT && p.mark.mask === MARK_MASK_ENCRYPT;
  if (prio === PRIORITY_PEER || prio === PRIORITY_IN_FWD) return (p.templates ?? []).some((t) => t.reqid === VEIL_REQID);
  return false;
}

/** OUT states carry the peer's mark; IN states carry the peer's node ID in the SPI. */
export function stateOwner(s: XfrmState): Owner {
  if (s.mark) return { kind: 'peer', nodeId: s.mark.value >>> NODE_ID_SHIFT };
  return { kind: 'peer', nodeId: decodeSpi(s.spi).nodeId };
}

export function policyOwner(p: XfrmPolicy): Owner {
  if ((p.priority ?? 0) === PRIORITY_PEER && p.mark) return { kind: 'peer', nodeId: p.mark.value >>> NODE_ID_SHIFT };
  return { kind: 'base' };
}

/** Key index an object of this backend is for (undefined for base policies). */
export function stateKeyIndex(s: XfrmState): number {
  return s.mark ? (s.mark.value >>> KEY_INDEX_SHIFT) & 0xf : decodeSpi(s.spi).keyIndex;
}
export function policyKeyIndex(p: XfrmPolicy): number | undefined {
  return (p.priority ?? 0) === PRIORITY_PEER && p.mark ? (p.mark.value >>> KEY_INDEX_SHIFT) & 0xf : undefined;
}
