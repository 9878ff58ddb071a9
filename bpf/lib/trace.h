/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Veil: the last decision, for tests only (built with -DENABLE_TRACE into veil_trace.bpf.o).
 *
 * BPF_PROG_TEST_RUN reports the return code and the packet, not where a redirect would go,
 * so the trace object records it. The production object compiles the stubs below. */
#ifndef __VEIL_TRACE_H_
#define __VEIL_TRACE_H_

#include "common.h"

/* How the packet leaves the program. */
#define VEIL_TRACE_NONE 0          /* returned without redirect */
#define VEIL_TRACE_REDIRECT 1      /* bpf_redirect(ifindex, flags) */
#define VEIL_TRACE_REDIRECT_NEIGH 2 /* bpf_redirect_neigh(ifindex, NULL, 0, 0) */

#ifdef ENABLE_TRACE
/* ---- trace value (PERCPU_ARRAY, 1 entry, key 0; 32 bytes) ----
 * offset 0  __u64 seq           incremented per decision on that CPU (0 = never written)
 * offset 8  __u32 reason        enum veil_reason
 * offset 12 __s32 verdict       the TC_ACT_* the program returned
 * offset 16 __u32 kind          VEIL_TRACE_*
 * offset 20 __u32 ifindex       redirect target; 0 without redirect
 * offset 24 __u32 redirect_flags flags passed to bpf_redirect (BPF_F_INGRESS)
 * offset 28 __u32 mark          skb->mark when the program returned */
struct veil_trace {
	__u64 seq;
	__u32 reason;
	__s32 verdict;
	__u32 kind;
	__u32 ifindex;
	__u32 redirect_flags;
	__u32 mark;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__type(key, __u32);
	__type(value, struct veil_trace);
	__uint(max_entries, 1);
} trace SEC(".maps");

static __always_inline void veil_trace(struct __sk_buff *skb, __u32 reason, int verdict, __u32 kind,
				       __u32 ifindex, __u32 redirect_flags)
{
	__u32 zero = 0;
	struct veil_trace *t = bpf_map_lookup_elem(&trace, &zero);

	if (!t)
		return;
	t->seq++;
	t->reason = reason;
	t->verdict = verdict;
	t->kind = kind;
	t->ifindex = ifindex;
	t->redirect_flags = redirect_flags;
	t->mark = skb->mark;
}
#else
static __always_inline void veil_trace(struct __sk_buff *skb __attribute__((unused)),
				       __u32 reason __attribute__((unused)),
				       int verdict __attribute__((unused)),
				       __u32 kind __attribute__((unused)),
				       __u32 ifindex __attribute__((unused)),
				       __u32 redirect_flags __attribute__((unused)))
{
}
#endif /* ENABLE_TRACE */

#endif /* __VEIL_TRACE_H_ */
