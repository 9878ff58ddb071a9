#!/usr/bin/env bash
# Compiles tests/fixtures/*.bpf.c into build/fixtures/*.bpf.o (clang -target bpf, with BTF).
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p build/fixtures
for src in tests/fixtures/*.bpf.c; do
  out="build/fixtures/$(basename "${src%.c}").o"
  clang -O2 -g -Wall -target bpf -I/usr/include/x86_64-linux-gnu -c "$src" -o "$out"
done
