import { UapiError, UapiProtocolError } from '../../errors.js';
import { canonicalCidr, parseEndpoint } from '../../ip.js';
import { Key } from '../../wgtypes/key.js';
import { type WireGuardDevice, type WireGuardPeer, newPeer } from '../../wgtypes/types.js';

/** Options of parseGet. */
export interface ParseGetOptions {
  /** Device name to put in the result and in errors. */
  name: string;
  /** Interface index to put in the result (the UAPI does not report it). Default 0. */
  ifindex?: number;
  /** Keep the private key and preshared keys in the result. Default false. */
  secrets?: boolean;
}

const U64_MAX = 2n ** 64n - 1n;
const DIGITS = /^\d+$/;
const HEX_KEY = /^[0-9a-f]{64}$/;
const ZERO_HEX = '0'.repeat(64);

/**
 * Parses a UAPI `get=1` reply (https://www.wireguard.com/xplatform/) into a WireGuardDevice.
 *
 * Like wgctrl-go, the parser keeps going after a bad line, remembers the FIRST problem and
 * reports it at the end, so one error names the earliest offending line. The reply must end with
 * `errno=0`; `errno=<n>` (n ≠ 0) becomes a UapiError carrying it. Never throws anything but
 * UapiError / UapiProtocolError, whatever the input. Unknown keys are ignored (newer daemons may
 * add some).
 */
export function parseGet(reply: string, opts: ParseGetOptions): WireGuardDevice {
  let first: UapiProtocolError | undefined;
  const fail = (line: number, reason: string): void => {
    first ??= new UapiProtocolError(reason, line);
  };

  let privateKey: Key | undefined;
  let listenPort = 0;
  let fwmark = 0;
  const peers: WireGuardPeer[] = [];
  let peer: (WireGuardPeer & { hsSec: number; hsNsec: number }) | undefined;
  let errno: number | undefined;

  // Decimal value <= max; u64 values are checked exactly but returned as numbers (exact to 2^53).
  const num = (line: number, key: string, v: string, max: number | 'u64'): number | undefined => {
    if (v.length > 0 && v.length <= 15 && DIGITS.test(v)) {
      const n = Number(v);
      if (max === 'u64' || n <= max) return n;
    } else if (max === 'u64' && v.length <= 20 && DIGITS.test(v) && BigInt(v) <= U64_MAX) {
      return Number(v);
    }
    fail(line, `${key} must be a decimal integer <= ${max === 'u64' ? '2^64-1' : max}`);
    return undefined;
  };
  const key = (line: number, name: string, v: string): Key | undefined => {
    if (!HEX_KEY.test(v)) {
      // The value is left out of the message: it may be a private or preshared key.
      fail(line, `${name} must be 64 lowercase hex characters`);
      return undefined;
    }
    return Key.fromBytes(Buffer.from(v, 'hex'));
  };
  const finishPeer = (): void => {
    if (!peer) return;
    const { hsSec, hsNsec, ...p } = peer;
    if (hsSec !== 0 || hsNsec !== 0) p.lastHandshake = new Date(hsSec * 1000 + Math.floor(hsNsec / 1_000_000));
    peers.push(p);
    peer = undefined;
  };

  if (typeof reply !== 'string') throw new UapiProtocolError('reply is not text', 0);
  const lines = reply.split('\n');
  // A complete reply ends with an empty line ("\n\n"); whatever follows it is not ours. The last
  // element of the split is what follows the final "\n", so it never counts as that empty line.
  let end = lines.indexOf('');
  if (end === lines.length - 1) end = -1;
  if (end === -1) {
    fail(lines.length, 'reply is not terminated by an empty line');
    end = lines.length;
  }
  for (let i = 0; i < end; i++) {
    const ln = i + 1;
    const text = lines[i] as string;
    if (errno !== undefined) {
      fail(ln, 'data after errno');
      break;
    }
    const eq = text.indexOf('=');
    if (eq <= 0) {
      fail(ln, 'expected key=value');
      continue;
    }
    const k = text.slice(0, eq);
    const v = text.slice(eq + 1);
    if (k === 'errno') {
      const n = num(ln, k, v, 0xffffffff);
      errno = n ?? -1;
      continue;
    }
    if (k === 'public_key') {
      finishPeer();
      const pk = key(ln, k, v);
      if (!pk) continue;
      peer = { ...newPeer(pk, 0), hsSec: 0, hsNsec: 0 };
      continue;
    }
    if (!peer) {
      switch (k) {
        case 'private_key':
          privateKey = key(ln, k, v);
          break;
        case 'listen_port':
          listenPort = num(ln, k, v, 65535) ?? 0;
          break;
        case 'fwmark':
          fwmark = num(ln, k, v, 0xffffffff) ?? 0;
          break;
        default:
          // A peer key before any public_key is out of place; anything else is unknown and ignored.
          if (PEER_KEYS.has(k)) fail(ln, `${k} before any public_key`);
      }
      continue;
    }
    switch (k) {
      case 'preshared_key': {
        // wireguard-go always prints it (zeros = none); decode only when it is wanted.
        if (v === ZERO_HEX) break;
        if (!opts.secrets) {
          if (!HEX_KEY.test(v)) fail(ln, `${k} must be 64 lowercase hex characters`);
          break;
        }
        const psk = key(ln, k, v);
        if (psk) peer.presharedKey = psk;
        break;
      }
      case 'endpoint': {
        const e = parseEndpoint(v);
        if (e) peer.endpoint = e;
        else fail(ln, `endpoint ${JSON.stringify(v.slice(0, 64))} is not ip:port or [ipv6]:port`);
        break;
      }
      case 'persistent_keepalive_interval':
        peer.persistentKeepalive = num(ln, k, v, 65535) ?? 0;
        break;
      case 'last_handshake_time_sec':
        peer.hsSec = num(ln, k, v, 'u64') ?? 0;
        break;
      case 'last_handshake_time_nsec':
        peer.hsNsec = num(ln, k, v, 999_999_999) ?? 0;
        break;
      case 'rx_bytes':
        peer.rxBytes = num(ln, k, v, 'u64') ?? 0;
        break;
      case 'tx_bytes':
        peer.txBytes = num(ln, k, v, 'u64') ?? 0;
        break;
      case 'protocol_version':
        peer.protocolVersion = num(ln, k, v, 0xffffffff) ?? 0;
        break;
      case 'allowed_ip':
        try {
          peer.allowedIPs.push(canonicalCidr(v, 'allowed_ip'));
        } catch {
          fail(ln, `allowed_ip ${JSON.stringify(v.slice(0, 64))} is not a CIDR`);
        }
        break;
      default:
        if (DEVICE_KEYS.has(k)) fail(ln, `${k} after the first peer`);
    }
  }
  finishPeer();

  if (errno !== undefined && errno !== 0) {
    if (errno === -1) throw first ?? new UapiProtocolError('bad errno', 0);
    throw new UapiError(opts.name, 'get', errno);
  }
  if (first) throw first;
  if (errno === undefined) throw new UapiProtocolError('reply has no errno line', 0);

  const dev: WireGuardDevice = {
    ifindex: opts.ifindex ?? 0,
    name: opts.name,
    publicKey: privateKey && !privateKey.isZero() ? privateKey.publicKey() : undefined,
    listenPort,
    fwmark,
    peers,
  };
  if (opts.secrets && privateKey && !privateKey.isZero()) dev.privateKey = privateKey;
  return dev;
}

/**
 * Parses a `set=1` reply: exactly `errno=<n>` and an empty line.
 * @throws UapiError when n ≠ 0, UapiProtocolError when the reply is anything else.
 */
export function parseSetReply(reply: string, device: string): void {
  const m = /^errno=(\d{1,10})\n\n$/.exec(reply);
  if (!m) throw new UapiProtocolError(`expected "errno=<n>" and an empty line, got ${JSON.stringify(reply.slice(0, 64))}`, 0);
  const n = Number(m[1]);
  if (n !== 0) throw new UapiError(device, 'set', n);
}

const DEVICE_KEYS = new Set(['private_key', 'listen_port', 'fwmark']);
const PEER_KEYS = new Set([
  'preshared_key',
  'endpoint',
  'persistent_keepalive_interval',
  'last_handshake_time_sec',
  'last_handshake_time_nsec',
  'rx_bytes',
  'tx_bytes',
  'protocol_version',
  'allowed_ip',
]);
