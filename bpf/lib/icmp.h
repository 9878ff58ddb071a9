/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Veil: ICMP "fragmentation needed" (IPv4) / "packet too big" (ICMPv6) built in place.
 *
 * The encryption path adds overhead (WireGuard: 80 bytes) and bpf_redirect skips the
 * kernel's PMTU handling, so an oversized inner packet would otherwise be fragmented on the
 * wire or silently lost. Instead the program turns the packet into the ICMP error the sender
 * needs and sends it straight back out of the veth it came in on:
 *
 *   IPv4: eth (MACs swapped) | IPv4 (src/dst swapped, 20 bytes) | ICMP 3/4 with next-hop MTU
 *         | original IP header + 8 bytes
 *   IPv6: eth (MACs swapped) | IPv6 (src/dst swapped) | ICMPv6 2/0 with MTU
 *         | first min(len, 128) bytes of the original packet, rounded down to 4 bytes
 *
 * Checksums: the IPv4 header checksum, the ICMP checksum, and the ICMPv6 checksum including
 * the pseudo-header are computed here; BPF_F_RECOMPUTE_CSUM keeps a CHECKSUM_COMPLETE skb->csum
 * in step with the rewritten bytes. No ICMP error is ever sent about an ICMP error.
 *
 * Built with ENABLE_MTU_CHECK (the default in the Makefile); without it the stub never
 * reports a packet as too big. */
#ifndef __VEIL_ICMP_H_
#define __VEIL_ICMP_H_

#include "parse.h"
#include "verdict.h"

#ifdef ENABLE_MTU_CHECK

#define VEIL_ICMP4_QUOTE_MAX (60 + 8)
#define VEIL_ICMP6_QUOTE_MAX 128

/* The L3 size the MTU applies to. GSO packets are judged by one segment. */
static __always_inline int veil_too_big(struct __sk_buff *skb, const struct veil_pkt *p, __u32 mtu)
{
	if (!mtu)
		return 0;
	if (skb->gso_size) {
		if (!p->l4_hlen)
			return 0; /* cannot size a segment: let the stack handle it */
		return (__u32)p->l3_hlen + p->l4_hlen + skb->gso_size > mtu;
	}
	return p->l3_len > mtu;
}

/* True when the packet is itself an ICMP error: RFC 1122/4443 forbid answering it. */
static __always_inline int veil_is_icmp_error(struct __sk_buff *skb, const struct veil_pkt *p)
{
	__u8 type;

	if (p->family == VEIL_FAMILY_IPV4) {
		if (p->proto != IPPROTO_ICMP || (p->frag_off & 0x1fff))
			return 0;
		if (bpf_skb_load_bytes(skb, p->l3_off + p->l3_hlen, &type, 1) < 0)
			return 1;
		return type != ICMP_ECHO && type != ICMP_ECHOREPLY && type != ICMP_TIMESTAMP &&
		       type != ICMP_TIMESTAMPREPLY;
	}
	if (p->proto != IPPROTO_ICMPV6)
		return 0;
	if (bpf_skb_load_bytes(skb, p->l3_off + sizeof(struct ipv6hdr), &type, 1) < 0)
		return 1;
	return type < 128; /* ICMPv6 error messages are types 0..127 */
}

static __always_inline int veil_swap_macs(struct __sk_buff *skb)
{
	__u8 mac[12], swapped[12];

	if (bpf_skb_load_bytes(skb, 0, mac, sizeof(mac)) < 0)
		return -1;
	__builtin_memcpy(swapped, mac + 6, 6);
	__builtin_memcpy(swapped + 6, mac, 6);
	return bpf_skb_store_bytes(skb, 0, swapped, sizeof(swapped), 0);
}

/* Writes the built headers and the quote over the packet from l3 on and trims it right after them
 * (both builders end so). */
static __always_inline int veil_emit_icmp(struct __sk_buff *skb, const struct veil_pkt *p, const void *h, __u32 hlen,
					  const void *quote, __u64 qlen)
{
	if (bpf_skb_store_bytes(skb, p->l3_off, h, hlen, BPF_F_RECOMPUTE_CSUM) < 0)
		return -1;
	if (bpf_skb_store_bytes(skb, p->l3_off + hlen, quote, qlen, BPF_F_RECOMPUTE_CSUM) < 0)
		return -1;
	return bpf_skb_change_tail(skb, p->l3_off + hlen + qlen, 0);
}

static __always_inline int veil_build_icmp4(struct __sk_buff *skb, const struct veil_pkt *p, __u32 mtu)
{
	__u8 quote[VEIL_ICMP4_QUOTE_MAX];
	struct {
		struct iphdr ip;
		struct veil_icmp_frag icmp;
	} h;
	__u64 qlen = p->l3_hlen + 8; /* 64-bit on purpose: see veil_bound */
	__s64 sum;

	if (qlen > p->l3_len)
		return -1;
	veil_bound(qlen, 28, VEIL_ICMP4_QUOTE_MAX, fail);
	if (bpf_skb_load_bytes(skb, p->l3_off, quote, qlen) < 0)
		return -1;

	__builtin_memset(&h, 0, sizeof(h));
	h.ip.version = 4;
	h.ip.ihl = 5;
	h.ip.tot_len = bpf_htons(sizeof(h) + qlen);
	h.ip.ttl = 64;
	h.ip.protocol = IPPROTO_ICMP;
	__builtin_memcpy(&h.ip.saddr, p->daddr, 4);
	__builtin_memcpy(&h.ip.daddr, p->saddr, 4);
	sum = bpf_csum_diff(NULL, 0, (__be32 *)&h.ip, sizeof(h.ip), 0);
	if (sum < 0)
		return -1;
	h.ip.check = csum_fold32(sum);

	h.icmp.type = ICMP_DEST_UNREACH;
	h.icmp.code = ICMP_FRAG_NEEDED;
	h.icmp.mtu = bpf_htons(mtu > 0xffff ? 0xffff : mtu);
	sum = bpf_csum_diff(NULL, 0, (__be32 *)&h.icmp, sizeof(h.icmp), 0);
	if (sum < 0)
		return -1;
	sum = bpf_csum_diff(NULL, 0, (__be32 *)quote, qlen, sum);
	if (sum < 0)
		return -1;
	h.icmp.checksum = csum_fold32(sum);

	return veil_emit_icmp(skb, p, &h, sizeof(h), quote, qlen);
fail:
	return -1;
}

static __always_inline int veil_build_icmp6(struct __sk_buff *skb, const struct veil_pkt *p, __u32 mtu)
{
	__u8 quote[VEIL_ICMP6_QUOTE_MAX];
	struct {
		struct ipv6hdr ip6;
		struct icmp6hdr icmp6;
	} h;
	struct {
		__u8 saddr[16];
		__u8 daddr[16];
		__be32 len;
		__be32 nexthdr;
	} pseudo;
	__u64 qlen = p->l3_len; /* 64-bit on purpose: see veil_bound */
	__s64 sum;

	if (qlen > VEIL_ICMP6_QUOTE_MAX)
		qlen = VEIL_ICMP6_QUOTE_MAX;
	qlen &= ~3ULL;
	veil_bound(qlen, sizeof(struct ipv6hdr), VEIL_ICMP6_QUOTE_MAX, fail);
	if (bpf_skb_load_bytes(skb, p->l3_off, quote, qlen) < 0)
		return -1;

	__builtin_memset(&h, 0, sizeof(h));
	h.ip6.version = 6;
	h.ip6.payload_len = bpf_htons(sizeof(h.icmp6) + qlen);
	h.ip6.nexthdr = IPPROTO_ICMPV6;
	h.ip6.hop_limit = 64;
	__builtin_memcpy(&h.ip6.saddr, p->daddr, 16);
	__builtin_memcpy(&h.ip6.daddr, p->saddr, 16);
	h.icmp6.icmp6_type = ICMPV6_PKT_TOOBIG;
	h.icmp6.icmp6_code = 0;
	h.icmp6.icmp6_mtu = bpf_htonl(mtu);

	__builtin_memcpy(pseudo.saddr, p->daddr, 16);
	__builtin_memcpy(pseudo.daddr, p->saddr, 16);
	pseudo.len = bpf_htonl(sizeof(h.icmp6) + qlen);
	pseudo.nexthdr = bpf_htonl(IPPROTO_ICMPV6);
	sum = bpf_csum_diff(NULL, 0, (__be32 *)&pseudo, sizeof(pseudo), 0);
	if (sum < 0)
		return -1;
	sum = bpf_csum_diff(NULL, 0, (__be32 *)&h.icmp6, sizeof(h.icmp6), sum);
	if (sum < 0)
		return -1;
	sum = bpf_csum_diff(NULL, 0, (__be32 *)quote, qlen, sum);
	if (sum < 0)
		return -1;
	h.icmp6.icmp6_cksum = csum_fold32(sum);

	return veil_emit_icmp(skb, p, &h, sizeof(h), quote, qlen);
fail:
	return -1;
}

/* Replaces the oversized packet with the ICMP error and sends that back out of the veth it
 * arrived on (egress of skb->ifindex, towards the pod). The original is consumed. */
static __always_inline int veil_frag_needed(struct __sk_buff *skb, const struct veil_pkt *p, __u32 mtu,
					    __u32 bytes)
{
	__u32 ifindex = skb->ifindex;
	int ret;

	if (veil_is_icmp_error(skb, p))
		return veil_verdict(skb, VEIL_R_DROP_TOO_BIG, TC_ACT_SHOT, bytes);
	if (veil_swap_macs(skb) < 0)
		return veil_verdict(skb, VEIL_R_DROP_TOO_BIG, TC_ACT_SHOT, bytes);
	if (p->family == VEIL_FAMILY_IPV4)
		ret = veil_build_icmp4(skb, p, mtu);
	else
		ret = veil_build_icmp6(skb, p, mtu);
	if (ret < 0)
		return veil_verdict(skb, VEIL_R_DROP_TOO_BIG, TC_ACT_SHOT, bytes);
	return veil_redirect(skb, VEIL_R_FRAG_NEEDED_SENT, ifindex, 0, bytes);
}

#else /* !ENABLE_MTU_CHECK */

static __always_inline int veil_too_big(struct __sk_buff *skb __attribute__((unused)),
					const struct veil_pkt *p __attribute__((unused)),
					__u32 mtu __attribute__((unused)))
{
	return 0;
}

static __always_inline int veil_frag_needed(struct __sk_buff *skb, const struct veil_pkt *p __attribute__((unused)),
					    __u32 mtu __attribute__((unused)), __u32 bytes)
{
	return veil_verdict(skb, VEIL_R_DROP_TOO_BIG, TC_ACT_SHOT, bytes);
}

#endif /* ENABLE_MTU_CHECK */

#endif /* __VEIL_ICMP_H_ */
