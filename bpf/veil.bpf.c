// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* Veil: every program in ONE object, so they share one set of maps (ipcache, strict_cidrs,
 * config, counters[, trace]) without pinning. The agent loads this object once and attaches
 * veil_from_pod, veil_from_tunnel and veil_to_wire where they belong. */
#include "bpf_lxc.c"
#include "bpf_wg.c"
#include "bpf_host.c"

char _license[] SEC("license") = "Dual BSD/GPL";
