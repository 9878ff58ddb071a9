/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Veil: every verdict / drop reason, one slot each in the `counters` map.
 *
 * The numbering is ABI: src/reasons.ts mirrors it (a test parses this file and compares),
 * and the agent's metrics read counters by these indices. Append only; never renumber.
 * Each line: `VEIL_R_<NAME> = <n>,` then a comment opening with the TypeScript name and a colon. */
#ifndef __VEIL_REASONS_H_
#define __VEIL_REASONS_H_

enum veil_reason {
	VEIL_R_PASS_LOCAL = 0,             /* pass-local: dst is a pod on this node */
	VEIL_R_PASS_UNKNOWN = 1,           /* pass-unknown: dst not in ipcache (or neither LOCAL nor REMOTE) */
	VEIL_R_PASS_NON_IP = 2,            /* pass-non-ip: ARP and other non-IP frames */
	VEIL_R_REDIRECT_WIREGUARD = 3,     /* redirect-wireguard: redirected into the WireGuard device */
	VEIL_R_MARK_IPSEC = 4,             /* mark-ipsec: skb->mark set for the per-node XFRM OUT policy */
	VEIL_R_PASS_PLAINTEXT_NOT_READY = 5, /* pass-plaintext-not-ready: peer not ENCRYPT_READY, strict off */
	VEIL_R_DROP_NOT_READY_STRICT = 6,  /* drop-not-ready-strict: peer not ENCRYPT_READY, strict on */
	VEIL_R_DROP_MALFORMED = 7,         /* drop-malformed: truncated or invalid IPv4/IPv6 header */
	VEIL_R_FRAG_NEEDED_SENT = 8,       /* frag-needed-sent: ICMP frag-needed / ICMPv6 PTB returned to the sender */
	VEIL_R_TUNNEL_DELIVER = 9,         /* tunnel-deliver: from-tunnel redirected into a local pod's veth */
	VEIL_R_TUNNEL_PASS = 10,           /* tunnel-pass: from-tunnel left the packet to the stack */
	VEIL_R_TO_WIRE_DROP_CLEAR = 11,    /* to-wire-drop-clear: strict backstop dropped clear pod traffic */
	VEIL_R_TO_WIRE_NODE_ENCRYPT = 12,  /* to-wire-node-encrypt: host traffic to a remote node redirected into WireGuard */
	VEIL_R_TO_WIRE_PASS = 13,          /* to-wire-pass: nothing to do on the underlay */
	VEIL_R_TO_WIRE_PASS_ENCRYPTED = 14, /* to-wire-pass-encrypted: already encrypted (fwmark, WireGuard UDP, ESP) */
	VEIL_R_DROP_TOO_BIG = 15,          /* drop-too-big: over the MTU and the ICMP error could not be built */
	VEIL_R_PASS_REMOTE_NODE = 16,      /* pass-remote-node: strict mode, remote node identity allowed in clear */
	VEIL_R_MAX = 17,
};

#endif /* __VEIL_REASONS_H_ */
