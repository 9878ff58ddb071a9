#!/usr/bin/env bash
# Builds veil-gobench (the Go side of the library benchmarks, see main.go) at the exact module
# versions in go.mod/go.sum, once per source change, into a version-keyed cache shared by worktrees:
#   $VEIL_GO_BENCH_CACHE/veil-gobench-<stamp>/veil-gobench   (default /var/cache/veil/go-bench,
#   or .veil-cache/go-bench), with tools/go-bench/bin/veil-gobench a symlink to it.
# <stamp> hashes go.mod, go.sum, the Go sources and `go version`, so a second run takes
# milliseconds. The build runs under `nice`; VEIL_SKIP_GO_BENCH=1 skips it (the benches then
# report the library rows as skipped). Prints the binary's path.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
log() { printf '\033[1;34m[go-bench]\033[0m %s\n' "$*" >&2; }
die() { printf 'go-bench: %s\n' "$*" >&2; exit 1; }

command -v go >/dev/null || die "the Go toolchain (go) is not on PATH; the library benchmarks need it"
cache=${VEIL_GO_BENCH_CACHE:-/var/cache/veil/go-bench}
if ! mkdir -p "$cache" 2>/dev/null || [ ! -w "$cache" ]; then
  cache="$here/../../.veil-cache/go-bench"
  mkdir -p "$cache"
fi
stamp=$( (cd "$here" && cat go.mod go.sum $(ls ./*.go | grep -v '_test\.go$' | sort) && go version) | sha256sum | cut -c1-16)
dir="$cache/veil-gobench-$stamp"
link() { mkdir -p "$here/bin" && ln -sfn "$dir/veil-gobench" "$here/bin/veil-gobench"; echo "$dir/veil-gobench"; }
[ -x "$dir/veil-gobench" ] && { link; exit 0; }

# One build at a time across worktrees; look again once the lock is ours.
exec {lock_fd}>"$cache/.build.lock"
flock -n "$lock_fd" || { log "waiting for another build of veil-gobench"; flock "$lock_fd"; }
[ -x "$dir/veil-gobench" ] && { link; exit 0; }
tmp=$(mktemp -d "$cache/.veil-gobench-$stamp.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
log "building veil-gobench $stamp (wgctrl-go, vishvananda/netlink, cilium/ebpf; pinned in go.mod)"
start=$SECONDS
if ! (cd "$here" && nice -n 10 env CGO_ENABLED=0 GOFLAGS='-buildvcs=false -mod=readonly' \
  go build -trimpath -ldflags '-s -w' -o "$tmp/veil-gobench" . ) >"$tmp/build.log" 2>&1; then
  tail -n 30 "$tmp/build.log" >&2
  die "go build failed (a module the proxy does not serve is named above)"
fi
chmod 755 "$tmp"
rm -rf "$dir"
mv "$tmp" "$dir"
trap - EXIT
log "built in $((SECONDS - start))s"
link
