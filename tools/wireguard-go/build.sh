#!/usr/bin/env bash
# Builds (or reuses) wireguard-go from the Go module proxy at the exact version in versions.env,
# the userspace WireGuard daemon Veil runs when a node's kernel has no WireGuard module. Debian's
# wireguard-go (a 2022 build) has no TUN offloads; this one does (GSO/GRO), several times faster.
# It lands in
#   $VEIL_WIREGUARD_GO_CACHE/wireguard-go-<version>/wireguard-go  (default /var/cache/veil, or .veil-cache/)
# with a stamp, so a second run only compares it (well under a second). Prints the binary's path.
# If the proxy refuses the version, the fallback version is tried once; if that fails too, exit 1
# (callers keep Debian's wireguard-go).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=versions.env
. "$here/versions.env"
log() { printf '\033[1;34m[wireguard-go]\033[0m %s\n' "$*" >&2; }
die() { printf 'wireguard-go: %s\n' "$*" >&2; exit 1; }

cache=${VEIL_WIREGUARD_GO_CACHE:-/var/cache/veil/wireguard-go}
if ! mkdir -p "$cache" 2>/dev/null || [ ! -w "$cache" ]; then
  cache="$here/../../.veil-cache/wireguard-go"
  mkdir -p "$cache"
fi
command -v go >/dev/null || die "the Go toolchain (go) is not on PATH; it builds wireguard-go"

tmp=
trap '[ -z "$tmp" ] || rm -rf "$tmp"' EXIT

# build VERSION: prints the cached binary, building it first when missing.
build() {
  local version=$1 dir="$cache/wireguard-go-$1"
  if [ -x "$dir/wireguard-go" ] && [ "$(cat "$dir/.stamp" 2>/dev/null)" = "$version" ]; then
    echo "$dir/wireguard-go"
    return 0
  fi
  # One build at a time (worktrees share the cache): wait, then look again.
  local lock_fd
  exec {lock_fd}>"$cache/.lock"
  flock "$lock_fd"
  if [ -x "$dir/wireguard-go" ] && [ "$(cat "$dir/.stamp" 2>/dev/null)" = "$version" ]; then
    exec {lock_fd}>&-
    echo "$dir/wireguard-go"
    return 0
  fi
  tmp=$(mktemp -d "$cache/.wireguard-go-$version.XXXXXX")
  chmod 755 "$tmp"
  log "building golang.zx2c4.com/wireguard@$version (cached afterwards in $dir)"
  local start=$SECONDS
  # Its go.mod has no replace lines, so `go install module@version` builds it as released, checked
  # against the checksum database. The module's main package is its root; the binary is `wireguard`.
  if ! nice -n 10 env CGO_ENABLED=0 GOFLAGS=-buildvcs=false GOBIN="$tmp" \
    go install -trimpath -ldflags '-s -w' "golang.zx2c4.com/wireguard@$version" >"$tmp/build.log" 2>&1; then
    tail -n 20 "$tmp/build.log" >&2
    exec {lock_fd}>&-
    return 1
  fi
  mv "$tmp/wireguard" "$tmp/wireguard-go"
  echo "$version" >"$tmp/.stamp"
  rm -rf "$dir"
  mv "$tmp" "$dir"
  tmp=
  exec {lock_fd}>&-
  log "built in $((SECONDS - start))s: $("$dir/wireguard-go" --version | head -n 1)"
  echo "$dir/wireguard-go"
}

if build "$WIREGUARD_GO_VERSION"; then exit 0; fi
log "golang.zx2c4.com/wireguard@$WIREGUARD_GO_VERSION failed; trying $WIREGUARD_GO_FALLBACK_VERSION"
build "$WIREGUARD_GO_FALLBACK_VERSION" || die "neither $WIREGUARD_GO_VERSION nor $WIREGUARD_GO_FALLBACK_VERSION could be built"
