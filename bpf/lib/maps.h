/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Veil: the maps every program shares, with their exact byte layouts.
 * src/layouts.ts mirrors these structs field for field (one descriptor per struct, padding
 * included); tests/btf-layouts.test.ts reads the built objects' BTF and names every member whose
 * offset or size differs, so a change here fails until the descriptor follows. */
#ifndef __VEIL_MAPS_H_
#define __VEIL_MAPS_H_

#include "common.h"
#include "reasons.h"

/* ---- ipcache / strict_cidrs key (24 bytes) ----
 * offset 0  __u32 prefixlen   host order; counts the 32 family+pad bits, then the address bits:
 *                             32 + 24 for an IPv4 /24, 32 + 128 for an IPv6 host.
 * offset 4  __u8  family      VEIL_FAMILY_IPV4 (4) or VEIL_FAMILY_IPV6 (6)
 * offset 5  __u8  pad[3]      zero
 * offset 8  __u8  addr[16]    network order; IPv4 uses addr[0..3], the rest is zero
 * Keeping family inside the matched bits makes one trie hold both families without
 * an IPv4 /0 ever matching an IPv6 address. */
#define VEIL_FAMILY_IPV4 4
#define VEIL_FAMILY_IPV6 6
#define VEIL_PREFIX_BASE 32

struct ipcache_key {
	__u32 prefixlen;
	__u8 family;
	__u8 pad[3];
	__u8 addr[16];
};

/* ipcache_value.flags */
#define VEIL_F_LOCAL 0x01         /* endpoint lives on this node */
#define VEIL_F_REMOTE 0x02        /* endpoint lives on another node */
#define VEIL_F_ENCRYPT_READY 0x04 /* keys/peer for that node are installed: safe to encrypt */
#define VEIL_F_NODE_IP_V6 0x08    /* node_ip holds an IPv6 address (else IPv4 in node_ip[0..3]) */
#define VEIL_F_IS_NODE 0x10       /* the prefix is a node's own address, not a pod */

/* ---- ipcache value (24 bytes) ----
 * offset 0  __u8  node_ip[16]  underlay address of the hosting node (network order)
 * offset 16 __u32 ifindex      host-side veth of a LOCAL pod (from-tunnel delivers there); 0 = unknown
 * offset 20 __u16 node_id      compact node id; goes into the IPsec mark (bits 16..31)
 * offset 22 __u8  flags        VEIL_F_*
 * offset 23 __u8  key_index    IPsec key index / SPI generation, 0..15 (bits 12..15 of the mark) */
struct ipcache_value {
	__u8 node_ip[16];
	__u32 ifindex;
	__u16 node_id;
	__u8 flags;
	__u8 key_index;
};

/* ---- config (1-entry ARRAY, key 0; 28 bytes) ----
 * offset 0  __u32 backend            VEIL_BACKEND_*
 * offset 4  __u32 wg_ifindex         the WireGuard device in this netns; 0 = none
 * offset 8  __u32 flags              VEIL_CFG_*
 * offset 12 __u32 mtu                largest inner L3 packet the encryption path takes; 0 = unchecked
 * offset 16 __u32 encrypt_mark       fwmark that already-encrypted packets carry; 0 = none
 * offset 20 __u32 encrypt_mark_mask  to-wire exempts (skb->mark & mask) == encrypt_mark; 0 = 0xffffffff
 * offset 24 __u16 wg_port            UDP port WireGuard sends from / to (host order); 0 = none
 * offset 26 __u16 pad                zero */
#define VEIL_BACKEND_NONE 0
#define VEIL_BACKEND_WIREGUARD 1
#define VEIL_BACKEND_IPSEC 2

#define VEIL_CFG_STRICT 0x1            /* never send pod traffic in clear */
#define VEIL_CFG_NODE_ENCRYPT 0x2      /* to-wire also encrypts host traffic to remote nodes */
#define VEIL_CFG_ALLOW_REMOTE_NODE 0x4 /* strict mode lets traffic to remote node identities pass */

struct veil_config {
	__u32 backend;
	__u32 wg_ifindex;
	__u32 flags;
	__u32 mtu;
	__u32 encrypt_mark;
	__u32 encrypt_mark_mask;
	__u16 wg_port;
	__u16 pad;
};

/* ---- counters (PERCPU_ARRAY, key = enum veil_reason) ---- */
struct veil_counter {
	__u64 packets;
	__u64 bytes;
};

/* IPsec mark layout (Cilium's): 0x0E00 | (key_index & 0xF) << 12 | node_id << 16.
 * Per-node XFRM OUT policies match with mask 0xFFFFFF00. */
#define VEIL_MARK_ENCRYPT 0x0E00
#define VEIL_MARK_MASK 0xFFFFFF00

#ifndef VEIL_IPCACHE_MAX
#define VEIL_IPCACHE_MAX 65536
#endif
#ifndef VEIL_STRICT_CIDRS_MAX
#define VEIL_STRICT_CIDRS_MAX 1024
#endif

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__type(key, struct ipcache_key);
	__type(value, struct ipcache_value);
	__uint(max_entries, VEIL_IPCACHE_MAX);
	__uint(map_flags, BPF_F_NO_PREALLOC);
} ipcache SEC(".maps");

/* Pod CIDRs for strict mode; the value is unused (1 byte, write 1). */
struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__type(key, struct ipcache_key);
	__type(value, __u8);
	__uint(max_entries, VEIL_STRICT_CIDRS_MAX);
	__uint(map_flags, BPF_F_NO_PREALLOC);
} strict_cidrs SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, struct veil_config);
	__uint(max_entries, 1);
} config SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__type(key, __u32);
	__type(value, struct veil_counter);
	__uint(max_entries, VEIL_R_MAX);
} counters SEC(".maps");

static __always_inline struct veil_config *veil_config(void)
{
	__u32 zero = 0;

	return bpf_map_lookup_elem(&config, &zero);
}

static __always_inline __u32 veil_mark_mask(const struct veil_config *cfg)
{
	return cfg->encrypt_mark_mask ? cfg->encrypt_mark_mask : 0xffffffff;
}

#endif /* __VEIL_MAPS_H_ */
