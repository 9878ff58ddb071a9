import type { Key } from './key.js';

/** A UDP endpoint. `address` is an IPv4 dotted quad or an IPv6 address (no brackets). */
export interface Endpoint {
  address: string;
  port: number;
  /** IPv6 only: sin6_scope_id (interface index for link-local addresses). */
  scopeId?: number;
}

/** A WireGuard device as the kernel reports it (`wg show <dev>`). */
export interface WireGuardDevice {
  ifindex: number;
  name: string;
  /** Undefined when the device has no private key. */
  publicKey: Key | undefined;
  /** Present only when asked for with `{ secrets: true }` (and the device has one). */
  privateKey?: Key;
  /** UDP listen port (the actual port when it was configured as 0). */
  listenPort: number;
  /** 0 = no fwmark. */
  fwmark: number;
  peers: WireGuardPeer[];
}

/** One peer of a device. */
export interface WireGuardPeer {
  publicKey: Key;
  /** Present only with `{ secrets: true }` and when the peer has a preshared key. */
  presharedKey?: Key;
  /** Undefined until configured or learned from an authenticated packet. */
  endpoint: Endpoint | undefined;
  /** Persistent keepalive interval in seconds; 0 = off. */
  persistentKeepalive: number;
  /** Time of the last completed handshake; undefined = never. */
  lastHandshake: Date | undefined;
  /** Bytes received from / sent to this peer (exact up to 2^53). */
  rxBytes: number;
  txBytes: number;
  /** Allowed IPs in CIDR notation with host bits cleared, e.g. "10.0.0.0/24", "fd00::/64". */
  allowedIPs: string[];
  /** WireGuard protocol version (1). */
  protocolVersion: number;
}

/** A peer as first seen: no endpoint, handshake, traffic or allowed IPs yet. */
export function newPeer(publicKey: Key, protocolVersion: number): WireGuardPeer {
  return {
    publicKey,
    endpoint: undefined,
    persistentKeepalive: 0,
    lastHandshake: undefined,
    rxBytes: 0,
    txBytes: 0,
    allowedIPs: [],
    protocolVersion,
  };
}

/**
 * A change to a device (WG_CMD_SET_DEVICE), with wgctrl-go's semantics: every field is
 * optional and `undefined` means "leave as is".
 */
export interface DeviceConfig {
  /** New private key. `Key.zero()` removes the key (the device stops handshaking). */
  privateKey?: Key;
  /** UDP listen port, 0–65535. 0 lets the kernel pick a random port. */
  listenPort?: number;
  /** fwmark put on the device's outgoing UDP packets. 0 clears it. */
  fwmark?: number;
  /** true: remove every existing peer first, so the device ends up with exactly `peers`. */
  replacePeers?: boolean;
  /** Peers to add, update or remove. */
  peers?: PeerConfig[];
}

/** A change to one peer, identified by its public key. */
export interface PeerConfig {
  publicKey: Key;
  /** true: remove this peer; every other field is ignored. */
  remove?: boolean;
  /** true: only update the peer if it exists; never create it. */
  updateOnly?: boolean;
  /** New preshared key. `Key.zero()` removes it. */
  presharedKey?: Key;
  /** New endpoint. (There is no way to clear an endpoint once set, as in `wg`.) */
  endpoint?: Endpoint;
  /** Persistent keepalive interval in seconds, 0–65535. 0 turns it off. */
  persistentKeepalive?: number;
  /** true: replace the peer's allowed IPs with `allowedIPs` (an empty or absent list clears them). */
  replaceAllowedIPs?: boolean;
  /** Allowed IPs to add, in CIDR notation ("10.0.0.1/32", "fd00::/64"); host bits are ignored by the kernel. */
  allowedIPs?: string[];
}

/** Identifies a device: interface name or ifindex. */
export type DeviceRef = string | number;
