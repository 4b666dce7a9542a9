#!/usr/bin/env bash
# Toolchain/setup.sh — idempotent set-up of a Debian bookworm x86_64 machine for wisp.
#
# Installs (only what is missing):
#   host:   libmbedtls-dev, libgpiod-dev, gpiod, openssl, socat, file, binutils
#   cross:  gcc-aarch64-linux-gnu, gcc-arm-linux-gnueabihf, qemu-user-static
#   target: libmbedtls-dev and libgpiod-dev for arm64 and armhf via dpkg multiarch
# and makes (only when missing or out of date) Debian trixie sysroots for arm64, armhf and
# amd64 under .build-trixie/sysroot-<arch>, from trixie's packages fetched with a private
# apt state (.build-trixie/apt): the host's own apt stays on bookworm. See trixie_sysroots.
#
# Usage: Toolchain/setup.sh [--host-only | --sysroots-only]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)

# --- trixie sysroots (no root needed) ---
# Packages per architecture: libc and its headers, the GCC runtime clang links against
# (libgcc-14-dev has crtbegin*.o and libgcc.a, so no cross GCC is needed), kernel headers,
# mbedTLS 3.6 and libgpiod 2 with their shared libraries.
# linux-libc-dev is Architecture: all in trixie (every architecture's asm headers in one).
trixie_pkgs=(libc6 libc6-dev libgcc-s1 libgcc-14-dev libmbedtls-dev libmbedtls21
             libmbedcrypto16 libmbedx509-7 libgpiod-dev libgpiod3 libstdc++6)
trixie_all_pkgs=(linux-libc-dev)
trixie_arches=(arm64 armhf amd64)

trixie_sysroots() {
  local base=$root/.build-trixie apt=$root/.build-trixie/apt want have a
  # The stamp names the package list and script version: anything else means rebuild.
  want=$(printf '%s\n' v2 "${trixie_pkgs[@]}" "${trixie_all_pkgs[@]}" | sha256sum | cut -d' ' -f1)
  have=1
  for a in "${trixie_arches[@]}"; do
    [ "$(cat "$base/sysroot-$a/.wisp-stamp" 2>/dev/null)" = "$want" ] || have=0
  done
  if [ $have = 1 ]; then echo "toolchain: trixie sysroots present (${trixie_arches[*]})"; return 0; fi
  # The mirror is the one the host's own sources use for bookworm. trixie's main suite only
  # (its point releases carry the mbedTLS and libgpiod security updates wisp builds against).
  local mirror
  mirror=$(apt_uri 'bookworm')
  [ -n "$mirror" ] || { echo "setup.sh: no bookworm mirror found in /etc/apt sources" >&2; exit 1; }
  mkdir -p "$apt/state/lists/partial" "$apt/cache/archives/partial" "$base/debs"
  local keyring=/usr/share/keyrings/debian-archive-keyring.gpg
  echo "deb [arch=arm64,armhf,amd64 signed-by=$keyring] $mirror trixie main" >"$apt/sources.list"
  local opts=(-o "Dir::State=$apt/state" -o "Dir::Cache=$apt/cache" -o "Dir::Etc::SourceList=$apt/sources.list"
              -o Dir::Etc::SourceParts=/dev/null -o "Dir::State::status=$apt/state/status"
              -o APT::Architectures::=amd64 -o APT::Architectures::=arm64 -o APT::Architectures::=armhf
              -o Debug::NoLocking=1 -o APT::Sandbox::User=root -q)
  touch "$apt/state/status"
  local i
  for i in 1 2 3; do apt-get "${opts[@]}" update >/dev/null && break
    [ $i -eq 3 ] && { echo "setup.sh: trixie apt-get update failed" >&2; exit 1; }
    echo "toolchain: trixie apt-get update failed (try $i), retrying" >&2; sleep $((i * 5)); done
  for a in "${trixie_arches[@]}"; do
    local list=() p sr=$base/sysroot-$a
    for p in "${trixie_pkgs[@]}"; do list+=("$p:$a"); done
    list+=("${trixie_all_pkgs[@]}")
    mkdir -p "$base/debs/$a"
    for i in 1 2 3; do (cd "$base/debs/$a" && apt-get "${opts[@]}" download "${list[@]}" >/dev/null) && break
      [ $i -eq 3 ] && { echo "setup.sh: trixie download for $a failed" >&2; exit 1; }
      echo "toolchain: trixie download for $a failed (try $i), retrying" >&2; sleep $((i * 5)); done
    rm -rf "$sr" && mkdir -p "$sr"
    # Newest version of each package only (older downloads may linger in the cache).
    for p in "${trixie_pkgs[@]}" "${trixie_all_pkgs[@]}"; do
      local deb
      deb=$(ls "$base/debs/$a/${p}_"*"_$a.deb" "$base/debs/$a/${p}_"*"_all.deb" 2>/dev/null | sort -V | tail -1 || true)
      [ -n "$deb" ] || { echo "setup.sh: $p:$a not downloaded" >&2; exit 1; }
      dpkg-deb -x "$deb" "$sr"
    done
    # trixie's libc.so linker script names /lib/<triple>/libc.so.6: make /lib lead to usr/lib.
    [ -e "$sr/lib" ] || ln -s usr/lib "$sr/lib"
    # amd64's names /lib64/ld-linux-x86-64.so.2.
    [ ! -d "$sr/usr/lib64" ] || [ -e "$sr/lib64" ] || ln -s usr/lib64 "$sr/lib64"
    echo "$want" >"$sr/.wisp-stamp"
    echo "toolchain: trixie sysroot $a: mbedTLS $(sed -n 's/^#define MBEDTLS_VERSION_STRING *"\(.*\)"/\1/p' "$sr/usr/include/mbedtls/build_info.h"), libgpiod $(sed -n 's/^Version: *//p' "$sr"/usr/lib/*/pkgconfig/libgpiod.pc)"
  done
}

# The first URI of a deb822 or one-line apt source that serves SUITE.
apt_uri() {
  local suite=$1 f uri=
  for f in /etc/apt/sources.list.d/*.sources; do
    [ -f "$f" ] && [ -z "$uri" ] || continue
    uri=$(awk -v s="$suite" 'BEGIN{RS=""; FS="\n"}
      { u=""; ok=0
        for (i=1;i<=NF;i++) { if ($i ~ /^URIs:/) { sub(/^URIs: */,"",$i); split($i,w," "); u=w[1] }
                              if ($i ~ /^Suites:/) { n=split($i,w," "); for (j=2;j<=n;j++) if (w[j]==s) ok=1 } }
        if (ok && u!="") { print u; exit } }' "$f")
  done
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
    [ -f "$f" ] && [ -z "$uri" ] || continue
    uri=$(awk -v s="$suite" '$1=="deb" { i=2; if ($2 ~ /^\[/) { while ($i !~ /\]$/) i++; i++ }
                                         if ($(i+1)==s) { print $i; exit } }' "$f")
  done
  echo "$uri"
}

if [ "${1:-}" = "--sysroots-only" ]; then trixie_sysroots; exit 0; fi

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
  [ "${1:-}" = "--host-only" ] || trixie_sysroots
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
[ "${1:-}" = "--host-only" ] || trixie_sysroots
