/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Veil: bounded IPv4/IPv6 header parsing into the ipcache key form. */
#ifndef __VEIL_PARSE_H_
#define __VEIL_PARSE_H_

#include "maps.h"

#define VEIL_PARSE_OK 0
#define VEIL_PARSE_NOT_IP 1
#define VEIL_PARSE_MALFORMED 2

/* What the programs need from an IP header. Addresses use the ipcache key's form. */
struct veil_pkt {
	__u8 family;     /* VEIL_FAMILY_IPV4 / _IPV6 */
	__u8 proto;      /* IPv4 protocol / IPv6 next header (no extension header walk) */
	__u16 l3_hlen;   /* IPv4 ihl*4, IPv6 40 */
	__u32 l3_len;    /* tot_len / 40 + payload_len: the inner packet size the MTU applies to */
	__u32 l3_off;    /* 14 on Ethernet devices, 0 on L3 devices */
	__u16 sport;     /* TCP/UDP ports (host order) when present in the linear data, else 0 */
	__u16 dport;
	__u16 l4_hlen;   /* TCP doff*4 / UDP 8 when known, else 0 */
	__u16 frag_off;  /* IPv4 frag_off (host order), 0 for IPv6 */
	__u8 saddr[16];
	__u8 daddr[16];
};

/* Makes sure `len` bytes are in the linear area; returns 0 when they are. */
static __always_inline int veil_ensure_linear(struct __sk_buff *skb, __u32 len)
{
	if ((void *)(long)skb->data + len <= (void *)(long)skb->data_end)
		return 0;
	if (len > skb->len)
		return -1;
	if (bpf_skb_pull_data(skb, len) < 0)
		return -1;
	if ((void *)(long)skb->data + len > (void *)(long)skb->data_end)
		return -1;
	return 0;
}

/* Reads the TCP/UDP ports and header size when they sit in the first fragment. */
static __always_inline void veil_parse_l4(struct __sk_buff *skb, struct veil_pkt *p, __u32 l4_off)
{
	void *data, *data_end;

	if (p->proto != IPPROTO_UDP && p->proto != IPPROTO_TCP)
		return;
	if (p->frag_off & 0x1fff)
		return;
	if (veil_ensure_linear(skb, l4_off + sizeof(struct udphdr)) < 0)
		return;
	data = (void *)(long)skb->data;
	data_end = (void *)(long)skb->data_end;
	if (l4_off > 14 + 60)
		return;
	{
		struct udphdr *u = data + l4_off;

		if ((void *)(u + 1) > data_end)
			return;
		p->sport = bpf_ntohs(u->source);
		p->dport = bpf_ntohs(u->dest);
		p->l4_hlen = sizeof(struct udphdr);
	}
	if (p->proto == IPPROTO_TCP) {
		struct tcphdr *t;

		if (veil_ensure_linear(skb, l4_off + sizeof(struct tcphdr)) < 0) {
			p->l4_hlen = 0;
			return;
		}
		data = (void *)(long)skb->data;
		data_end = (void *)(long)skb->data_end;
		t = data + l4_off;
		if ((void *)(t + 1) > data_end) {
			p->l4_hlen = 0;
			return;
		}
		p->l4_hlen = t->doff * 4;
	}
}

/* Parses the IP header at `l3_off` (and, with want_l4, the TCP/UDP ports), dispatching on skb->protocol (set by the device:
 * eth_type_trans on Ethernet, the IP version nibble on TUN). */
static __always_inline int veil_parse(struct __sk_buff *skb, __u32 l3_off, struct veil_pkt *p, bool want_l4)
{
	void *data, *data_end;
	__u32 avail;

	__builtin_memset(p, 0, sizeof(*p));
	p->l3_off = l3_off;
	if (l3_off > 14)
		return VEIL_PARSE_MALFORMED;
	if (skb->len < l3_off)
		return VEIL_PARSE_MALFORMED;
	avail = skb->len - l3_off;

	if (skb->protocol == bpf_htons(ETH_P_IP)) {
		struct iphdr *ip;
		__u32 hlen, tot;

		if (veil_ensure_linear(skb, l3_off + sizeof(struct iphdr)) < 0)
			return VEIL_PARSE_MALFORMED;
		data = (void *)(long)skb->data;
		data_end = (void *)(long)skb->data_end;
		ip = data + l3_off;
		if ((void *)(ip + 1) > data_end)
			return VEIL_PARSE_MALFORMED;
		if (ip->version != 4 || ip->ihl < 5)
			return VEIL_PARSE_MALFORMED;
		hlen = ip->ihl * 4;
		tot = bpf_ntohs(ip->tot_len);
		/* GSO packets may carry tot_len 0 (BIG TCP); everything else must be consistent. */
		if ((tot < hlen || tot > avail) && !(tot == 0 && skb->gso_size))
			return VEIL_PARSE_MALFORMED;
		if (hlen > avail)
			return VEIL_PARSE_MALFORMED;
		p->family = VEIL_FAMILY_IPV4;
		p->proto = ip->protocol;
		p->l3_hlen = hlen;
		p->l3_len = tot ? tot : avail;
		p->frag_off = bpf_ntohs(ip->frag_off);
		__builtin_memcpy(p->saddr, &ip->saddr, 4);
		__builtin_memcpy(p->daddr, &ip->daddr, 4);
		if (want_l4)
			veil_parse_l4(skb, p, l3_off + hlen);
		return VEIL_PARSE_OK;
	}
	if (skb->protocol == bpf_htons(ETH_P_IPV6)) {
		struct ipv6hdr *ip6;
		__u32 plen;

		if (veil_ensure_linear(skb, l3_off + sizeof(struct ipv6hdr)) < 0)
			return VEIL_PARSE_MALFORMED;
		data = (void *)(long)skb->data;
		data_end = (void *)(long)skb->data_end;
		ip6 = data + l3_off;
		if ((void *)(ip6 + 1) > data_end)
			return VEIL_PARSE_MALFORMED;
		if (ip6->version != 6)
			return VEIL_PARSE_MALFORMED;
		plen = bpf_ntohs(ip6->payload_len);
		if (sizeof(struct ipv6hdr) + plen > avail || (plen == 0 && !skb->gso_size))
			return VEIL_PARSE_MALFORMED;
		p->family = VEIL_FAMILY_IPV6;
		p->proto = ip6->nexthdr;
		p->l3_hlen = sizeof(struct ipv6hdr);
		p->l3_len = plen ? sizeof(struct ipv6hdr) + plen : avail;
		__builtin_memcpy(p->saddr, &ip6->saddr, 16);
		__builtin_memcpy(p->daddr, &ip6->daddr, 16);
		if (want_l4)
			veil_parse_l4(skb, p, l3_off + sizeof(struct ipv6hdr));
		return VEIL_PARSE_OK;
	}
	return VEIL_PARSE_NOT_IP;
}

/* Fills an ipcache/strict_cidrs lookup key for a full-length address. */
static __always_inline void veil_key(struct ipcache_key *k, __u8 family, const __u8 *addr)
{
	__builtin_memset(k, 0, sizeof(*k));
	k->family = family;
	if (family == VEIL_FAMILY_IPV4) {
		k->prefixlen = VEIL_PREFIX_BASE + 32;
		__builtin_memcpy(k->addr, addr, 4);
	} else {
		k->prefixlen = VEIL_PREFIX_BASE + 128;
		__builtin_memcpy(k->addr, addr, 16);
	}
}

static __always_inline struct ipcache_value *veil_ipcache_lookup(__u8 family, const __u8 *addr)
{
	struct ipcache_key k;

	veil_key(&k, family, addr);
	return bpf_map_lookup_elem(&ipcache, &k);
}

static __always_inline int veil_in_strict_cidrs(__u8 family, const __u8 *addr)
{
	struct ipcache_key k;

	veil_key(&k, family, addr);
	return bpf_map_lookup_elem(&strict_cidrs, &k) != NULL;
}

#endif /* __VEIL_PARSE_H_ */
