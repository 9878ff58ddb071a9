# syntax=docker/dockerfile:1.7
#
# The Veil agent image.
#
#   docker build -t ghcr.io/veil-project/veil:0.1.0 .
#
# Contract with the Helm chart (charts/veil): ENTRYPOINT runs the CLI's main module, the chart
# passes `agent --config /etc/veil/config.yaml`; `veil` on PATH runs the same CLI, so
#   kubectl -n kube-system exec ds/veil -c agent -- veil status
# works (`@veil/cli`, packages/cli: the image's `veil` runs its dist/main.js, as its npm bin bin/veil.js does).
#
# The image holds the product only: packages/* and bpf. tools/* (the lab, the API server double,
# the qemu lane, test helpers, chart checks) are development tools; `veil lab` in the image says
# so (exit 2).
#
# The BPF objects are built with -I/usr/include/x86_64-linux-gnu (bpf/Makefile), so build this
# image for linux/amd64; arm64 needs that include path made per-arch first.

ARG NODE_VERSION=20

# ---------------------------------------------------------------------------------------------
FROM node:${NODE_VERSION}-bookworm AS builder

# clang/llvm: BPF objects; libbpf-dev/libelf-dev/zlib1g-dev/pkg-config: the libbpf N-API addon;
# make/g++/python3: node-gyp.
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
      clang llvm libbpf-dev libelf-dev zlib1g-dev pkg-config make g++ python3 \
 && rm -rf /var/lib/apt/lists/*

WORKDIR /src
# Node's own headers ship in the image: node-gyp must not download them.
ENV npm_config_nodedir=/usr/local \
    NX_DAEMON=false \
    NX_NO_CLOUD=true

# The whole workspace goes in before npm ci: the lockfile lists every workspace folder and npm ci
# links them (the addons and BPF objects are built by the nx step below, not by install scripts).
# tools/ is needed for that here, in the builder only; nothing of it reaches the final stage.
COPY package.json package-lock.json nx.json tsconfig.base.json vitest.base.ts ./
COPY packages/ packages/
COPY bpf/ bpf/
COPY tools/ tools/
RUN npm ci --no-audit --no-fund --loglevel=error

RUN npx nx run-many -t build --outputStyle=static

# Drop devDependencies (TypeScript, Nx, vitest, test helpers); built output stays.
RUN npm prune --omit=dev --no-audit --no-fund --loglevel=error

# Assemble what runs: manifests, production node_modules, and for each product workspace
# (packages/*, bpf) its dist/, its compiled N-API addons (build/Release/*.node) and the BPF
# objects (bpf/obj). node_modules links every workspace by relative path, so the layout under
# /opt/veil mirrors the repository. tools/* are not copied (no product package depends on one),
# and their links are removed rather than left dangling: the CLI registers `veil lab` from
# @veil/lab only when that resolves; bins that pointed into them (veil-kernel-lane) are dropped
# once /out is complete. Sources, tests, benches and node-gyp's intermediate objects stay behind.
RUN set -eu; \
    mkdir -p /out; \
    cp package.json package-lock.json /out/; \
    cp -a node_modules /out/; \
    find /out/node_modules -maxdepth 2 -type l | while read -r l; do \
      case "$(readlink "$l")" in ../tools/*|../../tools/*) rm "$l" ;; esac; \
    done; \
    for d in packages/* bpf; do \
      if [ ! -f "$d/package.json" ]; then continue; fi; \
      mkdir -p "/out/$d"; \
      cp "$d/package.json" "/out/$d/"; \
      if [ -d "$d/dist" ]; then cp -a "$d/dist" "/out/$d/"; fi; \
      if ls "$d"/build/Release/*.node >/dev/null 2>&1; then \
        mkdir -p "/out/$d/build/Release"; cp "$d"/build/Release/*.node "/out/$d/build/Release/"; \
      fi; \
      if [ -d "$d/obj" ]; then cp -a "$d/obj" "/out/$d/"; fi; \
    done; \
    if [ -d /out/node_modules/.bin ]; then find /out/node_modules/.bin -xtype l -delete; fi; \
    find /out -name '*.tsbuildinfo' -delete

# ---------------------------------------------------------------------------------------------
# wireguard-go with TUN offloads (GSO/GRO), at the version tools/wireguard-go/build.sh pins: the
# userspace fallback, several times faster than Debian's 2022 build (kept below as the fallback).
FROM golang:1.26-bookworm AS wireguard-go
COPY tools/wireguard-go/versions.env /versions.env
RUN . /versions.env \
 && CGO_ENABLED=0 GOFLAGS=-buildvcs=false GOBIN=/out \
      go install -trimpath -ldflags '-s -w' "golang.zx2c4.com/wireguard@${WIREGUARD_GO_VERSION}" \
 && mv /out/wireguard /out/wireguard-go

# ---------------------------------------------------------------------------------------------
FROM node:${NODE_VERSION}-bookworm-slim

# libbpf1/libelf1/zlib1g: the addon's shared libraries. iproute2, wireguard-tools: `ip`, `tc`,
# `wg` for operators debugging from inside the pod. wireguard-go: the userspace fallback when a
# node has no WireGuard module. kmod: modinfo/lsmod to detect the kernel module.
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
      libbpf1 libelf1 zlib1g iproute2 wireguard-tools wireguard-go kmod ca-certificates \
 && rm -rf /var/lib/apt/lists/*

COPY --from=builder /out /opt/veil
# Ahead of Debian's /usr/bin/wireguard-go on PATH: the agent runs `wireguard-go` from PATH.
COPY --from=wireguard-go /out/wireguard-go /usr/local/bin/wireguard-go

RUN printf '#!/bin/sh\nexec node /opt/veil/packages/cli/dist/main.js "$@"\n' > /usr/local/bin/veil \
 && chmod 0755 /usr/local/bin/veil

ENV NODE_ENV=production
# The V8 flags the chart's DaemonSet sets too (values.yaml `nodeOptions`): a 2 MB young-generation
# semi-space keeps the agent's RSS under 150 MB at 10,000 nodes, where V8's default (16 MB) adds
# ~40 MB. packages/agent-core/bench/sync.ts measures the agent with exactly these flags and checks
# that this line and the chart agree.
ENV NODE_OPTIONS=--max-semi-space-size=2
WORKDIR /opt/veil

# Why root (no USER line): the agent attaches tc BPF programs, creates maps, configures links,
# XFRM and WireGuard over netlink, and enters pod network namespaces. Those need CAP_NET_ADMIN,
# CAP_BPF, CAP_PERFMON and CAP_SYS_ADMIN in the node's initial user namespace. A non-root UID
# only gets capabilities through file capabilities (`setcap` on the node binary) plus an
# ambient set, which then applies to every script that binary runs: `node` with
# cap_sys_admin+ep would hand those powers to any JS it executes, and Kubernetes cannot add
# ambient capabilities for a non-root user. So the image runs as root, and the chart takes
# everything else away: securityContext drops ALL capabilities, adds back only those four,
# and does not run privileged (only the short-lived bpffs-mount init container is).
ENTRYPOINT ["node", "/opt/veil/packages/cli/dist/main.js"]
CMD ["agent"]
