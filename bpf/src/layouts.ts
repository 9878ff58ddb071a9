import { type IpPrefix, formatIPv4, formatIPv6, maskInPlace, parseIPv4Into, parseIPv6Into, tryParseIp } from '@veil/ip';
import { ArgumentError, type Codec, struct, u16, u32, u64 } from 'libbpf-ts';
import { parsePrefixBytes } from './ip-codecs.js';
import { fieldAt, type StructLayout, structLayout } from './struct-layout.js';
import { traceLayout } from './trace.js';

// ---------------------------------------------------------------------------------------------
// ipcache / strict_cidrs key
// ---------------------------------------------------------------------------------------------

/** Address family byte of the key (VEIL_FAMILY_IPV4 / VEIL_FAMILY_IPV6). */
export const FAMILY_IPV4 = 4;
export const FAMILY_IPV6 = 6;
/** The key's prefixlen counts the 32 family+pad bits before the address. */
export const PREFIX_BASE = 32;

/** A decoded ipcache / strict_cidrs key: one IPv4 or IPv6 prefix. */
export interface IpcacheKey {
  family: 4 | 6;
  /** Network address, host bits zeroed. */
  addr: string;
  /** Address prefix length (0..32 / 0..128), without the 32 family bits. */
  prefixLen: number;
}

/** "10.1.0.0/24", "fd00::1" (a host prefix) or a {addr, prefixLen} object. */
export type IpcacheKeyInput = string | { addr: string; prefixLen: number };

/**
 * The LPM key shared by `ipcache` and `strict_cidrs` (bpf/lib/maps.h):
 *
 * ```c
 * struct ipcache_key {       // 24 bytes
 *   __u32 prefixlen;         // 0: host order; 32 + address prefix bits
 *   __u8  family;            // 4: 4 or 6
 *   __u8  pad[3];            // 5: zero
 *   __u8  addr[16];          // 8: network order; IPv4 in addr[0..3], rest zero
 * };
 * ```
 * The descriptor below is what the codec writes by; tests/btf-layouts.test.ts checks it against
 * the compiled object's BTF.
 */
export const ipcacheKeyLayout: StructLayout<'prefixlen' | 'family' | 'pad' | 'addr'> = structLayout('ipcache_key', 24, {
  prefixlen: [0, 4],
  family: [4, 1],
  pad: [5, 3],
  addr: [8, 16],
});
const K = ipcacheKeyLayout.fields;

/** The ipcache / strict_cidrs key. Encoding accepts CIDR strings of either family and zeroes host bits (canonical keys). */
export const ipcacheKey: Codec<IpcacheKey, IpcacheKeyInput> = {
  size: ipcacheKeyLayout.size,
  encode(v, buf, off) {
    const p = typeof v === 'string' ? parsePrefixBytes(v, undefined, 'key') : checkPrefixObject(v);
    buf.fill(0, off, off + ipcacheKeyLayout.size);
    buf.writeUInt32LE(PREFIX_BASE + p.prefixLen, off + K.prefixlen.offset);
    buf[off + K.family.offset] = p.family === 4 ? FAMILY_IPV4 : FAMILY_IPV6;
    buf.set(p.bytes, off + K.addr.offset);
    maskInPlace(buf, p.prefixLen, off + K.addr.offset, p.bytes.length);
  },
  decode(buf, off) {
    const family = buf[off + K.family.offset] === FAMILY_IPV6 ? 6 : 4;
    return {
      family,
      addr: family === 4 ? formatIPv4(buf, off + K.addr.offset) : formatIPv6(buf, off + K.addr.offset),
      prefixLen: buf.readUInt32LE(off + K.prefixlen.offset) - PREFIX_BASE,
    };
  },
};

/** "10.1.0.0/24" / "fd00::/64" for a decoded key. */
export function formatCidr(k: IpcacheKey): string {
  return `${k.addr}/${k.prefixLen}`;
}

function checkPrefixObject(v: { addr: string; prefixLen: number }): IpPrefix {
  if (v === null || typeof v !== 'object') throw new ArgumentError('key', 'needs a CIDR string or {addr, prefixLen}');
  const ip = typeof v.addr === 'string' ? tryParseIp(v.addr) : undefined;
  if (ip === undefined) throw new ArgumentError('key.addr', `'${String(v.addr)}' is not an IP address`);
  const bits = ip.family === 4 ? 32 : 128;
  if (!Number.isInteger(v.prefixLen) || v.prefixLen < 0 || v.prefixLen > bits) {
    throw new ArgumentError('key.prefixLen', `needs an integer in [0, ${bits}], got ${String(v.prefixLen)}`);
  }
  return { ...ip, prefixLen: v.prefixLen };
}

// ---------------------------------------------------------------------------------------------
// ipcache value
// ---------------------------------------------------------------------------------------------

/** ipcache_value.flags bits (VEIL_F_*). */
export const IpcacheFlag = {
  LOCAL: 0x01,
  REMOTE: 0x02,
  ENCRYPT_READY: 0x04,
  NODE_IP_V6: 0x08,
  IS_NODE: 0x10,
} as const;

/** A decoded ipcache entry. */
export interface IpcacheValue {
  /** The endpoint lives on this node. */
  local: boolean;
  /** The endpoint lives on another node (`nodeIp`, `nodeId`). */
  remote: boolean;
  /** Keys / the WireGuard peer for that node are installed: from-pod may encrypt. */
  encryptReady: boolean;
  /** The prefix is a node's own address (node identity), not a pod. */
  isNode: boolean;
  /** Underlay address of the hosting node; undefined when unset (all zero). */
  nodeIp: string | undefined;
  /** Host-side veth of a LOCAL pod (from-tunnel delivers there); 0 = unknown. */
  ifindex: number;
  /** Compact node id (0..65535): bits 16..31 of the IPsec mark. */
  nodeId: number;
  /** IPsec key index (0..15): bits 12..15 of the IPsec mark. */
  keyIndex: number;
}

/** What `ipcache.update()` accepts: unset booleans are false, unset numbers 0. */
export interface IpcacheValueInput {
  local?: boolean;
  remote?: boolean;
  encryptReady?: boolean;
  isNode?: boolean;
  /** IPv4 or IPv6; sets NODE_IP_V6 by itself. */
  nodeIp?: string;
  ifindex?: number;
  nodeId?: number;
  keyIndex?: number;
}

/**
 * ```c
 * struct ipcache_value {     // 24 bytes
 *   __u8  node_ip[16];       // 0: network order; IPv4 in node_ip[0..3] unless NODE_IP_V6
 *   __u32 ifindex;           // 16: host-side veth of a LOCAL pod, 0 = unknown
 *   __u16 node_id;           // 20
 *   __u8  flags;             // 22: VEIL_F_* (IpcacheFlag)
 *   __u8  key_index;         // 23: 0..15
 * };
 * ```
 */
export const ipcacheValueLayout: StructLayout<'node_ip' | 'ifindex' | 'node_id' | 'flags' | 'key_index'> = structLayout(
  'ipcache_value',
  24,
  { node_ip: [0, 16], ifindex: [16, 4], node_id: [20, 2], flags: [22, 1], key_index: [23, 1] },
);
const V = ipcacheValueLayout.fields;

/** The ipcache value; flags are derived from the booleans and from the node address family. */
export const ipcacheValue: Codec<IpcacheValue, IpcacheValueInput> = {
  size: ipcacheValueLayout.size,
  encode(v, buf, off) {
    if (v === null || typeof v !== 'object') throw new ArgumentError('value', 'needs an object');
    if (v.local && v.remote) throw new ArgumentError('value.local', 'an entry is LOCAL or REMOTE, not both');
    const ifindex = v.ifindex ?? 0;
    const nodeId = v.nodeId ?? 0;
    const keyIndex = v.keyIndex ?? 0;
    if (!Number.isInteger(ifindex) || ifindex < 0 || ifindex > 0xffffffff) {
      throw new ArgumentError('value.ifindex', `needs a u32, got ${String(v.ifindex)}`);
    }
    if (!Number.isInteger(nodeId) || nodeId < 0 || nodeId > 0xffff) {
      throw new ArgumentError('value.nodeId', `needs an integer in [0, 65535], got ${String(v.nodeId)}`);
    }
    if (!Number.isInteger(keyIndex) || keyIndex < 0 || keyIndex > 15) {
      throw new ArgumentError('value.keyIndex', `needs an integer in [0, 15], got ${String(v.keyIndex)}`);
    }
    let flags =
      (v.local ? IpcacheFlag.LOCAL : 0) |
      (v.remote ? IpcacheFlag.REMOTE : 0) |
      (v.encryptReady ? IpcacheFlag.ENCRYPT_READY : 0) |
      (v.isNode ? IpcacheFlag.IS_NODE : 0);
    buf.fill(0, off, off + ipcacheValueLayout.size);
    const ipOff = off + V.node_ip.offset;
    if (v.nodeIp !== undefined) {
      // Parsed straight into node_ip[16] (zeroed above): IPv4 fills the first 4 bytes.
      const text: unknown = v.nodeIp;
      if (typeof text !== 'string') throw new ArgumentError('value.nodeIp', `'${String(text)}' is not an IP address`);
      if (!parseIPv4Into(text, buf, ipOff)) {
        if (!parseIPv6Into(text, buf, ipOff)) throw new ArgumentError('value.nodeIp', `'${text}' is not an IP address`);
        flags |= IpcacheFlag.NODE_IP_V6;
      }
    }
    buf.writeUInt32LE(ifindex, off + V.ifindex.offset);
    buf.writeUInt16LE(nodeId, off + V.node_id.offset);
    buf[off + V.flags.offset] = flags;
    buf[off + V.key_index.offset] = keyIndex;
  },
  decode(buf, off) {
    const flags = buf[off + V.flags.offset] as number;
    const v6 = (flags & IpcacheFlag.NODE_IP_V6) !== 0;
    const ipOff = off + V.node_ip.offset;
    const ipBytes = buf.subarray(ipOff, ipOff + (v6 ? 16 : 4));
    return {
      local: (flags & IpcacheFlag.LOCAL) !== 0,
      remote: (flags & IpcacheFlag.REMOTE) !== 0,
      encryptReady: (flags & IpcacheFlag.ENCRYPT_READY) !== 0,
      isNode: (flags & IpcacheFlag.IS_NODE) !== 0,
      nodeIp: ipBytes.every((b) => b === 0) ? undefined : v6 ? formatIPv6(buf, ipOff) : formatIPv4(buf, ipOff),
      ifindex: buf.readUInt32LE(off + V.ifindex.offset),
      nodeId: buf.readUInt16LE(off + V.node_id.offset),
      keyIndex: buf[off + V.key_index.offset] as number,
    };
  },
};

/** strict_cidrs value: one unused byte (write 1). */
export const strictCidrValue: Codec<number> = {
  size: 1,
  encode(v, buf, off) {
    buf[off] = v ? 1 : 0;
  },
  decode(buf, off) {
    return buf[off] as number;
  },
};

// ---------------------------------------------------------------------------------------------
// config
// ---------------------------------------------------------------------------------------------

/** Which encryption backend from-pod steers remote traffic into. */
export type Backend = 'none' | 'wireguard' | 'ipsec';
const BACKENDS: readonly Backend[] = ['none', 'wireguard', 'ipsec'];

/** config.flags bits (VEIL_CFG_*). */
export const ConfigFlag = {
  STRICT: 0x1,
  NODE_ENCRYPT: 0x2,
  ALLOW_REMOTE_NODE: 0x4,
} as const;

/** The runtime configuration every program reads from the 1-entry `config` map. */
export interface DatapathConfig {
  backend: Backend;
  /** The WireGuard device in the programs' netns; 0 = none (WireGuard then counts as not ready). */
  wgIfindex: number;
  /** Never send pod traffic in clear: from-pod drops for not-ready peers, to-wire drops clear pod traffic. */
  strict: boolean;
  /** to-wire redirects host traffic to ready remote node identities into WireGuard. */
  nodeEncryption: boolean;
  /** In strict mode, traffic to remote node identities may still pass in clear. */
  allowRemoteNodeIdentities: boolean;
  /** Largest inner L3 packet the encryption path accepts; larger ones get ICMP frag-needed / PTB. 0 = unchecked. */
  mtu: number;
  /** fwmark already-encrypted packets carry (to-wire exempts them); 0 = none. */
  encryptMark: number;
  /** Mask for `encryptMark`; 0 means 0xffffffff. */
  encryptMarkMask: number;
  /** UDP port WireGuard sends from / to (to-wire exempts it); 0 = none. */
  wgPort: number;
}

/** Everything off: backend none, no checks. */
export const DEFAULT_CONFIG: Readonly<DatapathConfig> = Object.freeze({
  backend: 'none',
  wgIfindex: 0,
  strict: false,
  nodeEncryption: false,
  allowRemoteNodeIdentities: false,
  mtu: 0,
  encryptMark: 0,
  encryptMarkMask: 0,
  wgPort: 0,
});

/**
 * ```c
 * struct veil_config {        // 28 bytes, config[0]
 *   __u32 backend;            // 0: 0 none, 1 wireguard, 2 ipsec
 *   __u32 wg_ifindex;         // 4
 *   __u32 flags;              // 8: VEIL_CFG_* (ConfigFlag)
 *   __u32 mtu;                // 12: 0 = unchecked
 *   __u32 encrypt_mark;       // 16: 0 = none
 *   __u32 encrypt_mark_mask;  // 20: 0 = 0xffffffff
 *   __u16 wg_port;            // 24: host order, 0 = none
 *   __u16 pad;                // 26
 * };
 * ```
 */
export const datapathConfigLayout: StructLayout<
  'backend' | 'wg_ifindex' | 'flags' | 'mtu' | 'encrypt_mark' | 'encrypt_mark_mask' | 'wg_port' | 'pad'
> = structLayout('veil_config', 28, {
  backend: [0, 4],
  wg_ifindex: [4, 4],
  flags: [8, 4],
  mtu: [12, 4],
  encrypt_mark: [16, 4],
  encrypt_mark_mask: [20, 4],
  wg_port: [24, 2],
  pad: [26, 2],
});

// pad is not a codec field: struct() zero-fills the whole value before writing the others.
const rawConfig = struct(datapathConfigLayout.size, {
  backend: fieldAt(datapathConfigLayout, 'backend', u32),
  wgIfindex: fieldAt(datapathConfigLayout, 'wg_ifindex', u32),
  flags: fieldAt(datapathConfigLayout, 'flags', u32),
  mtu: fieldAt(datapathConfigLayout, 'mtu', u32),
  encryptMark: fieldAt(datapathConfigLayout, 'encrypt_mark', u32),
  encryptMarkMask: fieldAt(datapathConfigLayout, 'encrypt_mark_mask', u32),
  wgPort: fieldAt(datapathConfigLayout, 'wg_port', u16),
});

/** The `config` map value (struct veil_config above). */
export const datapathConfig: Codec<DatapathConfig> = {
  size: datapathConfigLayout.size,
  encode(v, buf, off) {
    if (v === null || typeof v !== 'object') throw new ArgumentError('config', 'needs an object');
    const backend = BACKENDS.indexOf(v.backend);
    if (backend < 0) throw new ArgumentError('config.backend', `needs one of ${BACKENDS.join(', ')}, got ${String(v.backend)}`);
    for (const f of ['wgIfindex', 'mtu', 'encryptMark', 'encryptMarkMask'] as const) {
      const n = v[f];
      if (!Number.isInteger(n) || n < 0 || n > 0xffffffff)
        throw new ArgumentError(`config.${f}`, `needs a u32, got ${String(n)}`);
    }
    if (!Number.isInteger(v.wgPort) || v.wgPort < 0 || v.wgPort > 0xffff) {
      throw new ArgumentError('config.wgPort', `needs a port in [0, 65535], got ${String(v.wgPort)}`);
    }
    if (v.mtu !== 0 && v.mtu < 68) throw new ArgumentError('config.mtu', `needs 0 (unchecked) or at least 68, got ${v.mtu}`);
    rawConfig.encode(
      {
        backend,
        wgIfindex: v.wgIfindex,
        flags:
          (v.strict ? ConfigFlag.STRICT : 0) |
          (v.nodeEncryption ? ConfigFlag.NODE_ENCRYPT : 0) |
          (v.allowRemoteNodeIdentities ? ConfigFlag.ALLOW_REMOTE_NODE : 0),
        mtu: v.mtu,
        encryptMark: v.encryptMark,
        encryptMarkMask: v.encryptMarkMask,
        wgPort: v.wgPort,
      },
      buf,
      off,
    );
  },
  decode(buf, off) {
    const r = rawConfig.decode(buf, off);
    return {
      backend: BACKENDS[r.backend] ?? 'none',
      wgIfindex: r.wgIfindex,
      strict: (r.flags & ConfigFlag.STRICT) !== 0,
      nodeEncryption: (r.flags & ConfigFlag.NODE_ENCRYPT) !== 0,
      allowRemoteNodeIdentities: (r.flags & ConfigFlag.ALLOW_REMOTE_NODE) !== 0,
      mtu: r.mtu,
      encryptMark: r.encryptMark,
      encryptMarkMask: r.encryptMarkMask,
      wgPort: r.wgPort,
    };
  },
};

// ---------------------------------------------------------------------------------------------
// counters
// ---------------------------------------------------------------------------------------------

/** One counters slot on one CPU. */
export interface Counter {
  packets: bigint;
  bytes: bigint;
}

/**
 * ```c
 * struct veil_counter {       // 16 bytes, counters[reason] per CPU
 *   __u64 packets;            // 0
 *   __u64 bytes;              // 8
 * };
 * ```
 */
export const counterLayout: StructLayout<'packets' | 'bytes'> = structLayout('veil_counter', 16, {
  packets: [0, 8],
  bytes: [8, 8],
});

/** One counters slot on one CPU (struct veil_counter). */
export const counterValue: Codec<Counter, Counter> = struct(counterLayout.size, {
  packets: fieldAt(counterLayout, 'packets', u64),
  bytes: fieldAt(counterLayout, 'bytes', u64),
});

/** counters / config key: __u32 index. */
export const indexKey: Codec<number> = u32;

/**
 * Every C struct the codecs mirror, as descriptors. tests/btf-layouts.test.ts compares each with
 * the compiled objects' BTF; a new codec over a C struct adds its descriptor here.
 * (`veil_trace` exists only in obj/veil_trace.bpf.o.)
 */
export const STRUCT_LAYOUTS: readonly StructLayout[] = [
  ipcacheKeyLayout,
  ipcacheValueLayout,
  datapathConfigLayout,
  counterLayout,
  traceLayout,
];
