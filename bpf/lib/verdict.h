/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Veil: every program ends through one of these, so each decision is counted (and traced). */
#ifndef __VEIL_VERDICT_H_
#define __VEIL_VERDICT_H_

#include "maps.h"
#include "trace.h"

static __always_inline void veil_count(__u32 reason, __u32 bytes)
{
	struct veil_counter *c = bpf_map_lookup_elem(&counters, &reason);

	if (c) {
		/* Per-CPU slot: plain adds are race free. */
		c->packets++;
		c->bytes += bytes;
	}
}

/* Returns `verdict` (TC_ACT_OK / TC_ACT_SHOT) after counting `bytes` under `reason`. */
static __always_inline int veil_verdict(struct __sk_buff *skb, __u32 reason, int verdict, __u32 bytes)
{
	veil_count(reason, bytes);
	veil_trace(skb, reason, verdict, VEIL_TRACE_NONE, 0, 0);
	return verdict;
}

/* bpf_redirect(ifindex, flags), counted. */
static __always_inline int veil_redirect(struct __sk_buff *skb, __u32 reason, __u32 ifindex, __u64 flags,
					 __u32 bytes)
{
	int ret = bpf_redirect(ifindex, flags);

	veil_count(reason, bytes);
	veil_trace(skb, reason, ret, VEIL_TRACE_REDIRECT, ifindex, (__u32)flags);
	return ret;
}

/* bpf_redirect_neigh(ifindex, NULL, 0, 0), counted: the kernel fills in the L2 header
 * from the neighbour table of the target device. */
static __always_inline int veil_redirect_neigh(struct __sk_buff *skb, __u32 reason, __u32 ifindex, __u32 bytes)
{
	int ret = bpf_redirect_neigh(ifindex, NULL, 0, 0);

	veil_count(reason, bytes);
	veil_trace(skb, reason, ret, VEIL_TRACE_REDIRECT_NEIGH, ifindex, 0);
	return ret;
}

#endif /* __VEIL_VERDICT_H_ */
