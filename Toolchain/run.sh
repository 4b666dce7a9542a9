#!/usr/bin/env bash
# Toolchain/run.sh TARGET [ARGS...] — runs the firmware `wisp` built for TARGET here.
#   x86_64, aarch64, armv7 (or TARGET-bookworm): the bookworm builds, natively for x86_64 and
#     under qemu-user for aarch64 and armv7 (binfmt_misc is not assumed); their libraries come
#     from dpkg multiarch (/usr/lib/<gnu-triple>), so no QEMU_LD_PREFIX is needed.
#   x86_64-trixie, aarch64-trixie, armv7-trixie: the trixie builds against the trixie sysroot
#     (Toolchain/setup.sh): its own dynamic loader and libraries (x86_64: trixie's ld.so run
#     directly; ARM: qemu-user -L SYSROOT). qemu falls back to the host's paths for a library
#     missing under -L, so tests check the sonames with readelf rather than trusting a run.
#     The trixie ARM runs emulate a Raspberry Pi's CPU (aarch64: Cortex-A72, a Pi 4; armv7:
#     Cortex-A7, a Pi 2) unless QEMU_CPU says otherwise: on qemu's default "max" CPU,
#     trixie's libraries took about 4 times the CPU of bookworm's for the same relay traffic
#     (seen: 197 against 49 clock ticks; 43 with Cortex-A72), enough to lose datagrams in the
#     end-to-end tests.
set -euo pipefail
t=${1:?usage: Toolchain/run.sh x86_64|aarch64|armv7[-bookworm|-trixie] [ARGS...]}
shift
root="$(cd "$(dirname "$0")/.." && pwd)"
case $t in *-bookworm) t=${t%-bookworm} ;; esac
bin="$root/.build-firmware/$t/wisp"
[ -x "$bin" ] || { echo "run.sh: $bin missing: run 'make firmware' first" >&2; exit 1; }
sr=$root/.build-trixie/sysroot
case $t in
  x86_64) exec "$bin" "$@" ;;
  aarch64) exec qemu-aarch64-static "$bin" "$@" ;;
  armv7) exec qemu-arm-static "$bin" "$@" ;;
  x86_64-trixie) exec "$sr-amd64/usr/lib64/ld-linux-x86-64.so.2" --library-path "$sr-amd64/usr/lib/x86_64-linux-gnu" "$bin" "$@" ;;
  aarch64-trixie) exec qemu-aarch64-static -cpu "${QEMU_CPU:-cortex-a72}" -L "$sr-arm64" "$bin" "$@" ;;
  armv7-trixie) exec qemu-arm-static -cpu "${QEMU_CPU:-cortex-a7}" -L "$sr-armhf" "$bin" "$@" ;;
  *) echo "run.sh: unknown target '$t' (known: x86_64 aarch64 armv7, each also -bookworm or -trixie)" >&2; exit 2 ;;
esac
