// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* Veil: every program in ONE object, so they share one set of maps (ipcache, strict_cidrs,
 * config, counters[, trace]) without pinning. The agent loads this object once and attaches
 * veil_from_pod, veil_from_tunnel and veil_to_wire where they belong. Each entry file is named
 * after its program (role and direction): from_pod.c, from_tunnel.c, to_wire.c. */
#include "from_pod.c"
#include "from_tunnel.c"
#include "to_wire.c"

char _license[] SEC("license") = "Dual BSD/GPL";
