#!/usr/bin/env bash
# Installs everything Veil needs to build, test and run on a fresh Debian 12 machine (as root):
# Debian packages, npm packages, the real helm/kube-apiserver/etcd (tools/k8s-bins), the N-API
# addons and the compiled BPF objects.
# Idempotent: every step checks before it acts, so a second run takes seconds.
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD
log() { printf '\033[1;34m[setup]\033[0m %s\n' "$*" >&2; }

# --- Debian packages -------------------------------------------------------------------------
# Toolchain for BPF and the addons, plus the kernel-facing tools the tests drive and compare against.
debs=(
  clang llvm libbpf-dev libelf-dev zlib1g-dev pkg-config make g++ python3
  iproute2 bpftool kmod iputils-ping
  wireguard-go wireguard-tools tcpdump iperf3 strace containernetworking-plugins
  qemu-system-x86 linux-image-amd64 busybox-static
)
missing=()
for p in "${debs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if ((${#missing[@]})); then
  if [ "$(id -u)" != 0 ]; then
    echo "setup: missing Debian packages (${missing[*]}) and not root; install them with apt-get" >&2
    exit 1
  fi
  log "apt-get install ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# --- npm packages ----------------------------------------------------------------------------
# Re-run npm ci only when the lockfile changed since the last successful install.
stamp=node_modules/.veil-install-stamp
lock_sum=$(sha256sum package-lock.json 2>/dev/null | cut -d' ' -f1 || true)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$lock_sum" ] || [ ! -d node_modules/nx ]; then
  if [ -f package-lock.json ]; then
    log "npm ci"
    npm ci --no-audit --no-fund --loglevel=error
  else
    log "npm install (no lockfile yet)"
    npm install --no-audit --no-fund --loglevel=error
    lock_sum=$(sha256sum package-lock.json | cut -d' ' -f1)
  fi
  echo "$lock_sum" > "$stamp"
fi

# --- the real Kubernetes programs ---------------------------------------------------------
# helm, kube-apiserver and etcd at the versions in tools/k8s-bins/versions.env, built from the Go
# module proxy and cached by version (first build: minutes, with progress; afterwards: seconds).
# `npm start` skips them so a fresh machine is up in minutes: its lab then runs on the API double
# and says so in its first line; once they are built (npm test, or build.sh) the lab uses them.
if [ "${npm_lifecycle_event:-}" = start ] || [ "${VEIL_SKIP_K8S_BINS:-}" = 1 ]; then
  log "not building helm/kube-apiserver/etcd here (bash tools/k8s-bins/build.sh builds them)"
else
  log "k8s-bins: helm, kube-apiserver, etcd"
  if ! bash tools/k8s-bins/build.sh >/dev/null; then
    # In CI the suites that need them must run, so this is fatal; elsewhere they skip, saying why.
    [ "${CI:-}" = true ] && exit 1
    log "k8s-bins failed (above); the suites that need them will skip"
  fi
fi

# --- wireguard-go with TUN offloads -----------------------------------------------------------
# tools/wireguard-go/build.sh builds the pinned wireguard-go from the module proxy (GSO/GRO on its
# TUN; 5x Debian's 2022 build: tools/lab/bench/wireguard-go-daemons.sh), cached by version:
# seconds after the first build (~30 s). VEIL_SKIP_WIREGUARD_GO=1 skips it; a failed build keeps
# Debian's wireguard-go, which stays installed.
# It goes on PATH (/usr/local/bin/wireguard-go, ahead of Debian's; the agent runs `wireguard-go`
# from PATH) only with VEIL_WIREGUARD_GO_ON_PATH=1: it sends UDP GSO batches, which a capture on
# the lab's veth underlay sees as one datagram holding several WireGuard messages, and `veil lab
# up`'s encryption check refuses those as "not WireGuard" (on a real NIC they are segmented before
# the wire). Until that check understands them, the lab and its tests run Debian's daemon.
wg_link=${VEIL_WIREGUARD_GO_LINK:-/usr/local/bin/wireguard-go}
# Only `npm run bench` (and an opt-in PATH link) uses it, so the test and start commands skip it.
if [ "${VEIL_SKIP_WIREGUARD_GO:-}" = 1 ] || { [ "${npm_lifecycle_event:-}" != bench ] && [ "${VEIL_WIREGUARD_GO_ON_PATH:-}" != 1 ]; }; then
  :
elif ! command -v go >/dev/null; then
  log "no Go toolchain: the agent runs Debian's wireguard-go"
elif wg_bin=$(bash tools/wireguard-go/build.sh); then
  if [ "${VEIL_WIREGUARD_GO_ON_PATH:-}" = 1 ] && [ "$(readlink "$wg_link" 2>/dev/null)" != "$wg_bin" ]; then
    if [ -e "$wg_link" ] && [ ! -L "$wg_link" ]; then
      log "$wg_link exists and is not our link; leaving it (the agent runs it)"
    elif ln -sfn "$wg_bin" "$wg_link" 2>/dev/null; then
      log "wireguard-go: $wg_link -> $wg_bin"
    else
      log "cannot write $wg_link (not root?); the agent runs Debian's wireguard-go"
    fi
  fi
else
  log "wireguard-go build failed (above); the agent runs Debian's wireguard-go"
fi

# --- the Go side of the library benchmarks (tools/go-bench) -------------------------------------
# wgctrl-go, vishvananda/netlink and cilium/ebpf at the versions pinned in tools/go-bench/go.mod,
# cached by a hash of its sources (first build: about a minute; afterwards: milliseconds). Only
# `npm run bench` uses it; without it the library rows say SKIPPED. VEIL_SKIP_GO_BENCH=1 skips it.
if [ "${npm_lifecycle_event:-}" = start ] || [ "${VEIL_SKIP_GO_BENCH:-}" = 1 ]; then
  :
elif ! command -v go >/dev/null; then
  log "go not on PATH: the library benchmark rows (wgctrl-go, vishvananda/netlink, cilium/ebpf) will be skipped"
elif ! bash tools/go-bench/build.sh >/dev/null; then
  log "tools/go-bench failed to build (above); the library benchmark rows will be skipped"
fi

# --- native addons, BPF objects, TypeScript --------------------------------------------------
# Nx caches each project's build by its inputs, so an unchanged tree rebuilds nothing.
log "nx run-many -t build"
NX_DAEMON=false npx nx run-many -t build --outputStyle=static >/tmp/veil-build.log 2>&1 || {
  cat /tmp/veil-build.log >&2
  echo "setup: build failed (log above)" >&2
  exit 1
}
log "ready"
