// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* Veil: from-pod, tc ingress on the host side of a pod's veth (an Ethernet device).
 *
 *   non-IP (ARP, ...)          -> pass                      pass-non-ip
 *   bad/truncated IP header    -> drop                      drop-malformed
 *   dst unknown / not REMOTE   -> pass                      pass-unknown
 *   dst LOCAL pod              -> pass                      pass-local
 *   dst REMOTE                 -> lib/encrypt.h             redirect / mark / ICMP / strict */
#include "lib/encrypt.h"

SEC("tc")
int veil_from_pod(struct __sk_buff *skb)
{
	__u32 bytes = skb->len;
	struct ipcache_value *ep;
	struct veil_config *cfg;
	struct veil_pkt p;
	int rc;

	/* Only GSO packets need the L4 header (to size one segment against the MTU). */
	rc = veil_parse(skb, ETH_HLEN, &p, skb->gso_size != 0);
	if (rc == VEIL_PARSE_NOT_IP)
		return veil_verdict(skb, VEIL_R_PASS_NON_IP, TC_ACT_OK, bytes);
	if (rc != VEIL_PARSE_OK)
		return veil_verdict(skb, VEIL_R_DROP_MALFORMED, TC_ACT_SHOT, bytes);

	ep = veil_ipcache_lookup(p.family, p.daddr);
	if (!ep)
		return veil_verdict(skb, VEIL_R_PASS_UNKNOWN, TC_ACT_OK, bytes);
	if (ep->flags & VEIL_F_LOCAL)
		return veil_verdict(skb, VEIL_R_PASS_LOCAL, TC_ACT_OK, bytes);
	if (!(ep->flags & VEIL_F_REMOTE))
		return veil_verdict(skb, VEIL_R_PASS_UNKNOWN, TC_ACT_OK, bytes);

	cfg = veil_config();
	if (!cfg)
		return veil_verdict(skb, VEIL_R_PASS_UNKNOWN, TC_ACT_OK, bytes);
	return veil_encrypt(skb, cfg, ep, &p, bytes);
}
