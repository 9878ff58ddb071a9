#!/usr/bin/env bash
# Raw throughput of the two userspace WireGuard daemons, side by side in one run, without the lab
# (no agents, no BPF): two network namespaces joined by a veth "underlay", one wireguard-go in
# each, iperf3 TCP through the tunnel and over the bare veth. For when `veil lab up` cannot run
# (bench/throughput.ts measures the same daemons through Veil's datapath).
#
#   bash tools/lab/bench/wireguard-go-daemons.sh        # Debian's vs tools/wireguard-go/build.sh's
#   T=10 bash tools/lab/bench/wireguard-go-daemons.sh   # seconds per iperf3 run (default 5)
#
# Prints per daemon: Gbit/s through WireGuard, Gbit/s of the bare veth, and the average size of
# the packets the WireGuard TUN transmitted (> MTU: GSO super-packets reach the daemon), then the
# built ÷ Debian ratio (target ≥ 4). Namespaces and devices carry this process's PID; all are
# removed on exit.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
T=${T:-5}
built=${VEIL_WIREGUARD_GO:-$(bash "$here/../../wireguard-go/build.sh")}
for t in wg iperf3 python3; do command -v $t >/dev/null || { echo "needs $t" >&2; exit 2; }; done

A=veilwgA$$ B=veilwgB$$
cleanup() {
  for n in $A $B; do
    for p in $(ip netns pids $n 2>/dev/null); do kill "$p" 2>/dev/null || true; done
  done
  sleep 0.5
  ip netns del $A 2>/dev/null || true
  ip netns del $B 2>/dev/null || true
}
trap cleanup EXIT

gbps() { python3 -c 'import json,sys; print("%.3f" % (json.load(sys.stdin)["end"]["sum_received"]["bits_per_second"] / 1e9))'; }

# run LABEL BIN: one daemon pair, prints "LABEL wg underlay avg"
run() {
  local label=$1 bin=$2 wa=vwa$$$1 wb=vwb$$$1
  wa=${wa:0:15} wb=${wb:0:15}
  ip netns add $A; ip netns add $B
  ip link add vua$$ netns $A type veth peer name vub$$ netns $B
  ip -n $A addr add 192.0.2.1/24 dev vua$$; ip -n $B addr add 192.0.2.2/24 dev vub$$
  for n in $A $B; do ip -n $n link set lo up; done
  ip -n $A link set vua$$ up; ip -n $B link set vub$$ up
  local ka kb
  ka=$(wg genkey); kb=$(wg genkey)
  # ip netns exec gives each daemon a private mount namespace; the UAPI socket names differ anyway.
  ip netns exec $A env WG_PROCESS_FOREGROUND=1 "$bin" $wa >/dev/null 2>&1 &
  ip netns exec $B env WG_PROCESS_FOREGROUND=1 "$bin" $wb >/dev/null 2>&1 &
  for _ in $(seq 150); do
    ip -n $A link show $wa >/dev/null 2>&1 && ip -n $B link show $wb >/dev/null 2>&1 && break
    sleep 0.2
  done
  sleep 0.5
  ip netns exec $A wg set $wa private-key <(echo "$ka") listen-port 51900 \
    peer "$(echo "$kb" | wg pubkey)" endpoint 192.0.2.2:51900 allowed-ips 10.99.0.2/32
  ip netns exec $B wg set $wb private-key <(echo "$kb") listen-port 51900 \
    peer "$(echo "$ka" | wg pubkey)" endpoint 192.0.2.1:51900 allowed-ips 10.99.0.1/32
  ip -n $A addr add 10.99.0.1/24 dev $wa; ip -n $B addr add 10.99.0.2/24 dev $wb
  ip -n $A link set $wa up; ip -n $B link set $wb up
  ip netns exec $B iperf3 -s -D -p 5301 >/dev/null
  for _ in $(seq 50); do ip netns exec $A ping -c1 -W1 10.99.0.2 >/dev/null 2>&1 && break; done
  local wg ul avg
  wg=$(ip netns exec $A iperf3 -c 10.99.0.2 -p 5301 -t "$T" -O 1 -J | gbps)
  ul=$(ip netns exec $A iperf3 -c 192.0.2.2 -p 5301 -t "$T" -O 1 -J | gbps)
  avg=$(ip -n $A -s -j link show dev $wa | python3 -c 'import json,sys; t=json.load(sys.stdin)[0]["stats64"]["tx"]; print(round(t["bytes"] / max(1, t["packets"])))')
  cleanup
  echo "$label $wg $ul $avg"
}

echo "wireguard-go, iperf3 TCP ${T} s through the tunnel and over the bare veth; load average $(cut -d' ' -f1-3 /proc/loadavg)"
read -r _ dwg dul davg < <(run debian /usr/bin/wireguard-go)
read -r _ bwg bul bavg < <(run built "$built")
printf '%-8s %-60s %8s %12s %12s %14s\n' daemon binary 'wg Gbit/s' 'veth Gbit/s' 'wg÷veth' 'wg tx avg B'
printf '%-8s %-60s %8s %12s %12.3f %14s\n' debian /usr/bin/wireguard-go "$dwg" "$dul" "$(python3 -c "print($dwg/$dul)")" "$davg"
printf '%-8s %-60s %8s %12s %12.3f %14s\n' built "${built: -60}" "$bwg" "$bul" "$(python3 -c "print($bwg/$bul)")" "$bavg"
ratio=$(python3 -c "print('%.2f' % ($bwg/$dwg))")
met=$(python3 -c "print('MET' if $bwg/$dwg >= 4 else 'NOT MET')")
echo "built ÷ Debian (through the tunnel): ${ratio}×   target ≥ 4: $met"
