// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* Benchmark baseline: the least a datapath can do - parse Ethernet + IPv4, look the destination
 * up in an LPM trie with Veil's ipcache key/value layout, bpf_redirect on a hit. No config,
 * no counters, no IPv6, no checks beyond bounds. */
#include "../lib/maps.h"

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__type(key, struct ipcache_key);
	__type(value, struct ipcache_value);
	__uint(max_entries, VEIL_IPCACHE_MAX);
	__uint(map_flags, BPF_F_NO_PREALLOC);
} bench_ipcache SEC(".maps");

SEC("tc")
int bench_lpm_redirect(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = data + sizeof(*eth);
	struct ipcache_value *v;
	struct ipcache_key k = {};

	if ((void *)(ip + 1) > data_end || eth->h_proto != bpf_htons(ETH_P_IP))
		return TC_ACT_OK;
	k.prefixlen = VEIL_PREFIX_BASE + 32;
	k.family = VEIL_FAMILY_IPV4;
	__builtin_memcpy(k.addr, &ip->daddr, 4);
	v = bpf_map_lookup_elem(&bench_ipcache, &k);
	if (!v)
		return TC_ACT_OK;
	return bpf_redirect(v->ifindex, 0);
}

char _license[] SEC("license") = "Dual BSD/GPL";
