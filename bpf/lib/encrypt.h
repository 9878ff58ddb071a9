/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Veil: the encryption decision for a packet towards a REMOTE ipcache entry.
 *
 *   not ENCRYPT_READY (or no usable backend):
 *       strict on  -> drop (drop-not-ready-strict), unless the peer is a node identity
 *                     and ALLOW_REMOTE_NODE is set (pass-remote-node)
 *       strict off -> pass in clear (pass-plaintext-not-ready)
 *   ready, larger than config.mtu -> ICMP frag-needed / PTB back to the sender
 *   ready, wireguard -> bpf_redirect(wg_ifindex, 0)   (the L3 device drops the MAC header)
 *   ready, ipsec     -> skb->mark = veil_ipsec_mark(), pass; XFRM OUT policies match it */
#ifndef __VEIL_ENCRYPT_H_
#define __VEIL_ENCRYPT_H_

#include "icmp.h"

/* 0x0E00 | (key_index & 0xF) << 12 | node_id << 16 (Cilium's layout). */
static __always_inline __u32 veil_ipsec_mark(const struct ipcache_value *ep)
{
	return VEIL_MARK_ENCRYPT | ((__u32)(ep->key_index & 0xf) << 12) | ((__u32)ep->node_id << 16);
}

static __always_inline int veil_backend_ready(const struct veil_config *cfg)
{
	if (cfg->backend == VEIL_BACKEND_WIREGUARD)
		return cfg->wg_ifindex != 0;
	return cfg->backend == VEIL_BACKEND_IPSEC;
}

static __always_inline int veil_encrypt(struct __sk_buff *skb, const struct veil_config *cfg,
					const struct ipcache_value *ep, const struct veil_pkt *p, __u32 bytes)
{
	if (!(ep->flags & VEIL_F_ENCRYPT_READY) || !veil_backend_ready(cfg)) {
		if (!(cfg->flags & VEIL_CFG_STRICT))
			return veil_verdict(skb, VEIL_R_PASS_PLAINTEXT_NOT_READY, TC_ACT_OK, bytes);
		if ((ep->flags & VEIL_F_IS_NODE) && (cfg->flags & VEIL_CFG_ALLOW_REMOTE_NODE))
			return veil_verdict(skb, VEIL_R_PASS_REMOTE_NODE, TC_ACT_OK, bytes);
		return veil_verdict(skb, VEIL_R_DROP_NOT_READY_STRICT, TC_ACT_SHOT, bytes);
	}
	if (veil_too_big(skb, p, cfg->mtu))
		return veil_frag_needed(skb, p, cfg->mtu, bytes);
	if (cfg->backend == VEIL_BACKEND_WIREGUARD)
		return veil_redirect(skb, VEIL_R_REDIRECT_WIREGUARD, cfg->wg_ifindex, 0, bytes);
	skb->mark = veil_ipsec_mark(ep);
	return veil_verdict(skb, VEIL_R_MARK_IPSEC, TC_ACT_OK, bytes);
}

#endif /* __VEIL_ENCRYPT_H_ */
