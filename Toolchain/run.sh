#!/usr/bin/env bash
# Toolchain/run.sh TARGET [ARGS...] — runs the firmware `wisp` built for TARGET here:
# natively for x86_64, under qemu-user for aarch64 and armv7 (binfmt_misc is not assumed).
# The target's libraries come from dpkg multiarch (/usr/lib/<gnu-triple>), so no
# QEMU_LD_PREFIX is needed.
set -euo pipefail
t=${1:?usage: Toolchain/run.sh x86_64|aarch64|armv7 [ARGS...]}
shift
bin="$(cd "$(dirname "$0")/.." && pwd)/.build-firmware/$t/wisp"
[ -x "$bin" ] || { echo "run.sh: $bin missing: run 'make firmware' first" >&2; exit 1; }
case $t in
  x86_64) exec "$bin" "$@" ;;
  aarch64) exec qemu-aarch64-static "$bin" "$@" ;;
  armv7) exec qemu-arm-static "$bin" "$@" ;;
  *) echo "run.sh: unknown target '$t' (known: x86_64 aarch64 armv7)" >&2; exit 2 ;;
esac
