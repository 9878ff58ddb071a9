import { WgValidationError } from '../../errors.js';
import { canonicalCidr, checkEndpoint, formatEndpoint } from '../../ip.js';
import { Key } from '../../wgtypes/key.js';
import type { DeviceConfig, PeerConfig } from '../../wgtypes/types.js';

// The UAPI `set=1` writer (https://www.wireguard.com/xplatform/). One line per key, keys in hex,
// terminated by an empty line. The text is built in memory and validated while it is built, so a
// bad config throws before anything reaches the daemon.

function checkKey(k: unknown, field: string): Key {
  if (!(k instanceof Key)) throw new WgValidationError(field, 'must be a Key');
  return k;
}

function checkUint(n: unknown, max: number, field: string): number {
  if (typeof n !== 'number' || !Number.isInteger(n) || n < 0 || n > max) {
    throw new WgValidationError(field, `must be an integer 0..${max} (got ${String(n)})`);
  }
  return n;
}

function writePeer(out: string[], p: unknown, i: number): void {
  const f = `peers[${i}]`;
  if (typeof p !== 'object' || p === null) throw new WgValidationError(f, 'must be a PeerConfig object');
  const peer = p as PeerConfig;
  out.push(`public_key=${checkKey(peer.publicKey, `${f}.publicKey`).toHex()}`);
  if (peer.remove) {
    // Every other field is ignored for a removal, as with the kernel.
    out.push('remove=true');
    return;
  }
  if (peer.updateOnly) out.push('update_only=true');
  if (peer.presharedKey !== undefined) out.push(`preshared_key=${checkKey(peer.presharedKey, `${f}.presharedKey`).toHex()}`);
  if (peer.endpoint !== undefined) out.push(`endpoint=${formatEndpoint(checkEndpoint(peer.endpoint, `${f}.endpoint`))}`);
  if (peer.persistentKeepalive !== undefined) {
    out.push(`persistent_keepalive_interval=${checkUint(peer.persistentKeepalive, 65535, `${f}.persistentKeepalive`)}`);
  }
  if (peer.replaceAllowedIPs) out.push('replace_allowed_ips=true');
  if (peer.allowedIPs !== undefined) {
    if (!Array.isArray(peer.allowedIPs)) throw new WgValidationError(`${f}.allowedIPs`, 'must be an array of CIDRs');
    peer.allowedIPs.forEach((c, j) => out.push(`allowed_ip=${canonicalCidr(c, `${f}.allowedIPs[${j}]`)}`));
  }
}

/**
 * Encodes a DeviceConfig as a UAPI `set=1` request (including the terminating empty line).
 * `undefined` fields are not written, so they stay as they are on the device.
 * @throws WgValidationError naming the bad field (the message never contains key material).
 */
export function encodeSet(config: DeviceConfig): string {
  if (typeof config !== 'object' || config === null) throw new WgValidationError('config', 'must be a DeviceConfig object');
  const out: string[] = ['set=1'];
  if (config.privateKey !== undefined) out.push(`private_key=${checkKey(config.privateKey, 'privateKey').toHex()}`);
  if (config.listenPort !== undefined) out.push(`listen_port=${checkUint(config.listenPort, 65535, 'listenPort')}`);
  if (config.fwmark !== undefined) out.push(`fwmark=${checkUint(config.fwmark, 0xffffffff, 'fwmark')}`);
  if (config.replacePeers) out.push('replace_peers=true');
  const peers = config.peers ?? [];
  if (!Array.isArray(peers)) throw new WgValidationError('peers', 'must be an array');
  peers.forEach((p, i) => writePeer(out, p, i));
  out.push('', '');
  return out.join('\n');
}

/** The `get=1` request. */
export const GET_REQUEST = 'get=1\n\n';
