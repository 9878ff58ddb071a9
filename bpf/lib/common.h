/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Veil: includes, constants and small helpers shared by every program. */
#ifndef __VEIL_COMMON_H_
#define __VEIL_COMMON_H_

#include <stdbool.h>
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/icmpv6.h>
#include <linux/pkt_cls.h>
#include <linux/tcp.h>
#include <linux/udp.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#ifndef __always_inline
#define __always_inline inline __attribute__((always_inline))
#endif

#define likely(x) __builtin_expect(!!(x), 1)
#define unlikely(x) __builtin_expect(!!(x), 0)

#ifndef IPPROTO_ESP
#define IPPROTO_ESP 50
#endif

/* From <linux/icmp.h>, which drags in libc socket headers that do not build for BPF. */
#define ICMP_ECHOREPLY 0
#define ICMP_DEST_UNREACH 3
#define ICMP_ECHO 8
#define ICMP_TIMESTAMP 13
#define ICMP_TIMESTAMPREPLY 14
#define ICMP_FRAG_NEEDED 4

/* RFC 1191 "fragmentation needed" header. */
struct veil_icmp_frag {
	__u8 type;
	__u8 code;
	__sum16 checksum;
	__be16 unused;
	__be16 mtu;
};

/* Jumps to `fail` unless lo <= var <= hi. For a length that goes to a helper
 * (bpf_skb_load_bytes, bpf_csum_diff, ...): older verifiers (6.1 as tested in the kernel lane; the
 * 5.x kernels production runs track less still) only accept it when both bounds were checked on
 * the very register that is passed.
 *
 * Plain C does not give that. clang drops a check it can prove redundant (the bound then lives
 * only as a clamp on an earlier copy, and 6.1 does not carry a bound learned on a filled register
 * back into its stack slot: "R4 unbounded memory access"), fuses two checks into one range test
 * on a scratch register (`w1 = len - 129; if w1 < -89`) that no verifier maps back to `len`, or
 * copies the value before a check, which only 5.11+ propagates to the copy ("invalid zero-sized
 * read"). Here both compares sit in one asm block on the register that then holds `var`, so every
 * later copy or spill carries the bounds. `var` must be a __u64: a __u32 behind asm gets
 * zero-extended with `<<= 32; >>= 32`, and 6.1 loses the lower bound through those shifts. */
#define veil_bound(var, lo, hi, fail)                                                              \
	asm goto("if %[v] > %[h] goto %l[" #fail "]\n\t"                                            \
		 "if %[v] < %[l] goto %l[" #fail "]"                                                \
		 : [v] "+r"(var)                                                                    \
		 : [l] "i"(lo), [h] "i"(hi)                                                         \
		 :                                                                                  \
		 : fail)

/* Folds a 32-bit one's-complement partial sum (bpf_csum_diff's result) into 16 bits and
 * complements it: the value that goes into an IP/ICMP checksum field. */
static __always_inline __u16 csum_fold32(__u64 sum)
{
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	return (__u16)~sum;
}

#endif /* __VEIL_COMMON_H_ */
