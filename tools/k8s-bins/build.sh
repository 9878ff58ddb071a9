#!/usr/bin/env bash
# Builds (or reuses) the real programs the Kubernetes tests run, at the exact versions in versions.env:
# helm and kube-apiserver from the Go module proxy, etcd from Debian's etcd-server package (the
# apiserver accepts its 3.4 release; see README.md). Each lands in
#   $VEIL_K8S_BINS/<name>-<version>/<name>      (default /var/cache/veil/k8s-bins, or .veil-cache/)
# with a stamp of its build inputs, so a second run only compares stamps (seconds).
# Go builds run under `nice` because the machines are shared; a long build prints progress.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=versions.env
. "$here/versions.env"
log() { printf '\033[1;34m[k8s-bins]\033[0m %s\n' "$*" >&2; }
die() { printf 'k8s-bins: %s\n' "$*" >&2; exit 1; }

cache=${VEIL_K8S_BINS:-/var/cache/veil/k8s-bins}
if ! mkdir -p "$cache" 2>/dev/null || [ ! -w "$cache" ]; then
  cache="$here/../../.veil-cache/k8s-bins"
  mkdir -p "$cache"
fi
need_go() { command -v go >/dev/null || die "the Go toolchain (go) is not on PATH; it builds helm and kube-apiserver"; }

# Runs a build in the background and reports which program and the elapsed time every 30 s.
run_with_progress() {
  local what=$1 logf=$2; shift 2
  local start=$SECONDS pid next=30
  "$@" >"$logf" 2>&1 &
  pid=$!
  build_pid=$pid
  while kill -0 "$pid" 2>/dev/null; do
    sleep 1
    if (( SECONDS - start >= next )); then
      log "building $what: $(( (SECONDS - start) / 60 ))m$(( (SECONDS - start) % 60 ))s elapsed"
      next=$(( next + 30 ))
    fi
  done
  build_pid=
  if ! wait "$pid"; then
    tail -n 40 "$logf" >&2
    # The temp dir goes on exit; keep its log.
    cp "$logf" "$cache/failed-build.log"
    die "building $what failed after $(( SECONDS - start ))s (full log: $cache/failed-build.log)"
  fi
  log "built $what in $(( SECONDS - start ))s"
}

# build_one NAME VERSION INPUT_STAMP BUILD_FUNCTION
build_one() {
  local name=$1 version=$2 stamp_in=$3 fn=$4
  local dir="$cache/$name-$version"
  if [ -x "$dir/$name" ] && [ "$(cat "$dir/.stamp" 2>/dev/null)" = "$stamp_in" ]; then
    echo "$dir/$name"
    return
  fi
  # One build per program at a time (worktrees share the cache): wait for a running one, then
  # look again before building.
  local lock_fd
  exec {lock_fd}>"$cache/.$name.lock"
  if ! flock -n "$lock_fd"; then
    log "waiting for another build of $name $version"
    flock "$lock_fd"
  fi
  if [ -x "$dir/$name" ] && [ "$(cat "$dir/.stamp" 2>/dev/null)" = "$stamp_in" ]; then
    exec {lock_fd}>&-
    echo "$dir/$name"
    return
  fi
  # Build into a temporary directory next to the final one, then rename: a half-built program
  # is never found.
  local tmp
  tmp=$(mktemp -d "$cache/.$name-$version.XXXXXX")
  chmod 755 "$tmp"
  building_tmp=$tmp
  log "first build of $name $version (cached afterwards in $dir)"
  "$fn" "$tmp" "$version"
  echo "$stamp_in" > "$tmp/.stamp"
  rm -rf "$dir"
  mv "$tmp" "$dir"
  building_tmp=
  exec {lock_fd}>&-
  log "$name $version: $(du -sh "$dir/$name" | cut -f1)"
  echo "$dir/$name"
}

# A failed or interrupted build leaves no half-built directory behind.
building_tmp=
build_pid=
trap '[ -z "$building_tmp" ] || rm -rf "$building_tmp"' EXIT
trap '[ -z "$build_pid" ] || kill "$build_pid" 2>/dev/null; exit 130' INT TERM

sum_of() { cat "$@" | sha256sum | cut -c1-16; }
gobuild() { nice -n 10 env CGO_ENABLED=0 GOFLAGS=-buildvcs=false "$@"; }

# helm: its own go.mod has no replace lines, so `go install module@version` builds it as released.
build_helm() {
  local out=$1 version=$2
  run_with_progress "helm $version" "$out/build.log" \
    gobuild GOBIN="$out" go install -trimpath -ldflags "-s -w -X helm.sh/helm/v4/internal/version.version=$version" \
      "helm.sh/helm/v4/cmd/helm@$version"
}

# kube-apiserver: our build module under $here pins the staging modules that the upstream go.mod
# points at local directories (see kube-apiserver/go.mod).
build_module_tool() {
  local out=$1 modir=$2 pkg=$3 name=$4 ldflags=$5
  run_with_progress "$name" "$out/build.log" \
    bash -c "cd '$modir' && exec nice -n 10 env CGO_ENABLED=0 GOFLAGS='-buildvcs=false -mod=mod' go build -trimpath -ldflags '-s -w $ldflags' -o '$out/$name' '$pkg'"
}
build_kube_apiserver() {
  local v=$2
  build_module_tool "$1" "$here/kube-apiserver" k8s.io/kubernetes/cmd/kube-apiserver kube-apiserver \
    "-X k8s.io/component-base/version.gitVersion=$v -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=$(echo "$v" | cut -d. -f2)"
}
# etcd: the exact Debian package version, downloaded and unpacked here (not installed: its
# maintainer scripts would enable a system etcd service on 127.0.0.1:2379 that nothing needs).
build_etcd() {
  local out=$1 version=$2
  command -v apt-get >/dev/null || die "etcd comes from Debian's etcd-server package; apt-get is missing"
  if ! (cd "$out" && apt-get download -qq "etcd-server=$version" 2>"$out/build.log"); then
    log "etcd-server=$version not in the package lists; apt-get update"
    apt-get update -qq >>"$out/build.log" 2>&1 || true
    (cd "$out" && apt-get download -qq "etcd-server=$version" 2>>"$out/build.log") ||
      die "apt-get download etcd-server=$version failed: $(tail -n 3 "$out/build.log")"
  fi
  dpkg-deb -x "$out"/etcd-server_*.deb "$out/deb"
  mv "$out/deb/usr/bin/etcd" "$out/etcd"
  rm -rf "$out/deb" "$out"/etcd-server_*.deb
}

want=${*:-helm kube-apiserver etcd}
for w in $want; do
  case $w in
    helm) need_go; build_one helm "$HELM_VERSION" "$(echo "$HELM_VERSION" | sha256sum | cut -c1-16)" build_helm ;;
    kube-apiserver) need_go; build_one kube-apiserver "$KUBERNETES_VERSION" "$(sum_of "$here/kube-apiserver/go.mod" "$here/kube-apiserver/go.sum")" build_kube_apiserver ;;
    etcd) build_one etcd "$ETCD_VERSION" "$(echo "debian $ETCD_VERSION" | sha256sum | cut -c1-16)" build_etcd ;;
    *) die "unknown program '$w' (helm, kube-apiserver, etcd)" ;;
  esac
done
