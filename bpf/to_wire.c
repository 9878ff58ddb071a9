// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* Veil: to-wire, tc egress on the underlay device (Ethernet).
 *
 *   already encrypted: skb->mark matches config.encrypt_mark, ESP, or UDP from/to
 *   config.wg_port                                  -> pass (to-wire-pass-encrypted)
 *   NODE_ENCRYPT, wireguard, dst is a REMOTE node identity that is ENCRYPT_READY
 *                                                   -> redirect into WireGuard (to-wire-node-encrypt)
 *   STRICT and src and dst both in strict_cidrs     -> drop (to-wire-drop-clear), unless dst is a
 *                                                      node identity and ALLOW_REMOTE_NODE is set
 *   otherwise                                       -> pass (to-wire-pass)
 *
 * The exemption runs first so WireGuard's own UDP (whose outer addresses are node IPs)
 * never loops back into the WireGuard device. */
#include "lib/encrypt.h"

static __always_inline int veil_already_encrypted(const struct __sk_buff *skb, const struct veil_config *cfg,
						  const struct veil_pkt *p)
{
	if (cfg->encrypt_mark && (skb->mark & veil_mark_mask(cfg)) == cfg->encrypt_mark)
		return 1;
	if (p->proto == IPPROTO_ESP)
		return 1;
	return cfg->wg_port && p->proto == IPPROTO_UDP && (p->sport == cfg->wg_port || p->dport == cfg->wg_port);
}

SEC("tc")
int veil_to_wire(struct __sk_buff *skb)
{
	__u32 bytes = skb->len;
	struct ipcache_value *ep = NULL;
	struct veil_config *cfg;
	struct veil_pkt p;
	int rc;

	rc = veil_parse(skb, ETH_HLEN, &p, true);
	if (rc == VEIL_PARSE_NOT_IP)
		return veil_verdict(skb, VEIL_R_PASS_NON_IP, TC_ACT_OK, bytes);
	if (rc != VEIL_PARSE_OK)
		return veil_verdict(skb, VEIL_R_DROP_MALFORMED, TC_ACT_SHOT, bytes);

	cfg = veil_config();
	if (!cfg)
		return veil_verdict(skb, VEIL_R_TO_WIRE_PASS, TC_ACT_OK, bytes);
	if (veil_already_encrypted(skb, cfg, &p))
		return veil_verdict(skb, VEIL_R_TO_WIRE_PASS_ENCRYPTED, TC_ACT_OK, bytes);

	if ((cfg->flags & VEIL_CFG_NODE_ENCRYPT) && cfg->backend == VEIL_BACKEND_WIREGUARD && cfg->wg_ifindex) {
		ep = veil_ipcache_lookup(p.family, p.daddr);
		if (ep && (ep->flags & (VEIL_F_IS_NODE | VEIL_F_REMOTE | VEIL_F_ENCRYPT_READY)) ==
				  (VEIL_F_IS_NODE | VEIL_F_REMOTE | VEIL_F_ENCRYPT_READY))
			return veil_redirect(skb, VEIL_R_TO_WIRE_NODE_ENCRYPT, cfg->wg_ifindex, 0, bytes);
	}

	if ((cfg->flags & VEIL_CFG_STRICT) && veil_in_strict_cidrs(p.family, p.saddr) &&
	    veil_in_strict_cidrs(p.family, p.daddr)) {
		if (cfg->flags & VEIL_CFG_ALLOW_REMOTE_NODE) {
			if (!ep)
				ep = veil_ipcache_lookup(p.family, p.daddr);
			if (ep && (ep->flags & VEIL_F_IS_NODE))
				return veil_verdict(skb, VEIL_R_PASS_REMOTE_NODE, TC_ACT_OK, bytes);
		}
		return veil_verdict(skb, VEIL_R_TO_WIRE_DROP_CLEAR, TC_ACT_SHOT, bytes);
	}
	return veil_verdict(skb, VEIL_R_TO_WIRE_PASS, TC_ACT_OK, bytes);
}
