// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* Veil: from-tunnel, tc ingress on the WireGuard device (an L3 device: the packet starts at
 * the IP header and skb->protocol comes from the IP version nibble).
 *
 *   dst is a LOCAL pod with a known veth ifindex -> bpf_redirect_neigh into that veth
 *                                                   (tunnel-deliver)
 *   anything else                                -> pass to the stack (tunnel-pass)
 *
 * Delivering here means the receiving node needs neither ip_forward nor rp_filter=0 for
 * decrypted pod traffic. bpf_redirect_neigh expects a MAC header in front of the network
 * header (it pulls ETH_HLEN before the neighbour output), which an L3 device does not have,
 * so 14 zero bytes are pushed first with bpf_skb_change_head; the neighbour subsystem then
 * writes the real Ethernet header for the veth.
 *
 * The same program also accepts frames that do carry a MAC header (an Ethernet-type tunnel
 * device, and BPF_PROG_TEST_RUN, which always hands tc programs an Ethernet frame): see
 * veil_l3_offset(). */
#include "lib/parse.h"
#include "lib/verdict.h"

static __always_inline int veil_net_reaches_end(struct __sk_buff *skb)
{
	__u8 b;

	return skb->len && bpf_skb_load_bytes_relative(skb, skb->len - 1, &b, 1, BPF_HDR_START_NET) == 0;
}

/* 0 when skb->data is the network header (L3 device), else ETH_HLEN. The last byte of a linear
 * skb is reachable from the network header with offset len-1 only when the network header sits
 * at skb->data. A non-linear skb is linearized once and probed again. */
static __always_inline __u32 veil_l3_offset(struct __sk_buff *skb)
{
	if (veil_net_reaches_end(skb))
		return 0;
	if (bpf_skb_pull_data(skb, skb->len) == 0 && veil_net_reaches_end(skb))
		return 0;
	return ETH_HLEN;
}

SEC("tc")
int veil_from_tunnel(struct __sk_buff *skb)
{
	__u32 bytes = skb->len;
	struct ipcache_value *ep;
	struct veil_pkt p;
	__u32 ifindex, l3_off;
	int rc;

	l3_off = veil_l3_offset(skb);
	rc = veil_parse(skb, l3_off, &p, false);
	if (rc == VEIL_PARSE_NOT_IP)
		return veil_verdict(skb, VEIL_R_PASS_NON_IP, TC_ACT_OK, bytes);
	if (rc != VEIL_PARSE_OK)
		return veil_verdict(skb, VEIL_R_DROP_MALFORMED, TC_ACT_SHOT, bytes);

	ep = veil_ipcache_lookup(p.family, p.daddr);
	if (!ep || !(ep->flags & VEIL_F_LOCAL) || !ep->ifindex)
		return veil_verdict(skb, VEIL_R_TUNNEL_PASS, TC_ACT_OK, bytes);
	ifindex = ep->ifindex;
	if (l3_off == 0 && bpf_skb_change_head(skb, ETH_HLEN, 0) < 0)
		return veil_verdict(skb, VEIL_R_TUNNEL_PASS, TC_ACT_OK, bytes);
	return veil_redirect_neigh(skb, VEIL_R_TUNNEL_DELIVER, ifindex, bytes);
}
