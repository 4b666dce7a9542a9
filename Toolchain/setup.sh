#!/usr/bin/env bash
# Toolchain/setup.sh — idempotent set-up of a Debian bookworm x86_64 machine for wisp.
#
# Installs (only what is missing):
#   host:   libmbedtls-dev, libgpiod-dev, gpiod, openssl, socat, file, binutils
#   cross:  gcc-aarch64-linux-gnu, gcc-arm-linux-gnueabihf, qemu-user-static
#   target: libmbedtls-dev and libgpiod-dev for arm64 and armhf via dpkg multiarch
#
# Usage: Toolchain/setup.sh [--host-only]
set -euo pipefail

need_root() {
  if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then exec sudo -E "$0" "$@"; fi
    echo "setup.sh: must run as root (or with sudo) to install packages" >&2
    exit 1
  fi
}

host_pkgs=(libmbedtls-dev libgpiod-dev gpiod openssl socat file binutils pkg-config)
cross_pkgs=(gcc-aarch64-linux-gnu gcc-arm-linux-gnueabihf libc6-dev-arm64-cross libc6-dev-armhf-cross qemu-user-static
            libmbedtls-dev:arm64 libgpiod-dev:arm64 libmbedtls-dev:armhf libgpiod-dev:armhf)

missing=()
check() { for p in "$@"; do dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q '^install ok installed' || missing+=("$p"); done; }

check "${host_pkgs[@]}"
if [ "${1:-}" != "--host-only" ]; then check "${cross_pkgs[@]}"; fi

if [ ${#missing[@]} -eq 0 ]; then
  echo "toolchain: all packages present"
  exit 0
fi
need_root "$@"
echo "toolchain: installing ${missing[*]}"
if [ "${1:-}" != "--host-only" ]; then
  dpkg --print-foreign-architectures | grep -qx arm64 || dpkg --add-architecture arm64
  dpkg --print-foreign-architectures | grep -qx armhf || dpkg --add-architecture armhf
fi
export DEBIAN_FRONTEND=noninteractive
# Mirrors are sometimes mid-sync: retry the index update, then the install.
for i in 1 2 3; do apt-get update -qq && break; echo "toolchain: apt-get update failed (try $i), retrying" >&2; sleep $((i * 5)); done
for i in 1 2 3; do
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null && break
  [ "$i" -eq 3 ] && { echo "toolchain: apt-get install failed" >&2; exit 1; }
  echo "toolchain: apt-get install failed (try $i), retrying" >&2; sleep $((i * 5)); apt-get update -qq || true
done
echo "toolchain: done"
