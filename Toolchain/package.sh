#!/usr/bin/env bash
# Toolchain/package.sh — builds the wisp .deb packages (what `make package` runs).
#
#   Toolchain/package.sh [amd64|arm64|armhf ...]   (default: all three)
#
# Output: .build-packages/wisp_VERSION-1_ARCH.deb from the Embedded firmware in
# .build-firmware/<target>/wisp (Toolchain/build.sh is run for targets that are missing).
# Runs lintian on each package (installed if missing) and fails on any lintian error.
# Contents: /usr/bin/wisp, /lib/systemd/system/wisp.service, /etc/wisp/wisp.conf (conffile),
# /usr/share/wisp/boards/NAME.conf, /usr/share/doc/wisp/, /usr/share/man/man1/wisp.1.gz.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
pkgsrc=Toolchain/package
out=.build-packages
arches=("$@")
[ ${#arches[@]} -gt 0 ] || arches=(amd64 arm64 armhf)

upstream=$(sed -n 's/.*static let version = "\(.*\)".*/\1/p' Sources/WispCore/Version.swift)
[ -n "$upstream" ] || { echo "package.sh: no version in Sources/WispCore/Version.swift" >&2; exit 1; }
version=$upstream-1
maintainer="wisp maintainers <maintainers@users.noreply.b-seed-dc910da2.example>"
# Timestamps from the last commit, so two builds of one commit give the same files.
epoch=$(git log -1 --format=%ct 2>/dev/null || date +%s)
export SOURCE_DATE_EPOCH=$epoch

target_of() { case $1 in amd64) echo x86_64 ;; arm64) echo aarch64 ;; armhf) echo armv7 ;;
  *) echo "package.sh: unknown architecture '$1' (known: amd64 arm64 armhf)" >&2; exit 2 ;; esac; }
gnu_of() { case $1 in amd64) echo x86_64-linux-gnu ;; arm64) echo aarch64-linux-gnu ;; armhf) echo arm-linux-gnueabihf ;; esac; }

missing=()
for a in "${arches[@]}"; do
  t=$(target_of "$a")
  [ -x .build-firmware/$t/wisp ] || missing+=("$t")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "package: building firmware for ${missing[*]}"
  Toolchain/build.sh "${missing[@]}"
fi

# Depends from the binary's NEEDED libraries: each library's package and minimum version
# from dpkg's shlibs files for that architecture (the multiarch copies Toolchain/setup.sh
# installed); for libc6 the newest GLIBC_x.y symbol version the binary uses.
depends_of() {  # depends_of ARCH BINARY
  local arch=$1 bin=$2 lib name soname line pkg glibc deps=() seen=" "
  for lib in $(readelf -d "$bin" | sed -n 's/.*Shared library: \[\(.*\)\]/\1/p'); do
    name=${lib%%.so.*} soname=${lib##*.so.}
    line=$(cat /var/lib/dpkg/info/*:"$arch".shlibs 2>/dev/null | awk -v n="$name" -v v="$soname" '$1 == n && $2 == v { $1 = ""; $2 = ""; print; exit }')
    [ -n "$line" ] || { echo "package.sh: no package provides $lib for $arch (run Toolchain/setup.sh)" >&2; return 1; }
    pkg=$(echo $line | cut -d' ' -f1)
    case $seen in *" $pkg "*) continue ;; esac
    seen="$seen$pkg "
    if [ "$pkg" = libc6 ]; then
      glibc=$(readelf -V "$bin" | grep -o 'GLIBC_[0-9.]*' | sed 's/GLIBC_//' | sort -V | tail -1)
      deps+=("libc6 (>= $glibc)")
    else
      deps+=("$(echo $line)")
    fi
  done
  local IFS=,
  echo "${deps[*]}" | sed 's/,/, /g'
}

mkdir -p "$out"
stage=$(mktemp -d /tmp/wisp-package.XXXXXX)
trap 'rm -rf "$stage"' EXIT

for a in "${arches[@]}"; do
  t=$(target_of "$a")
  bin=.build-firmware/$t/wisp
  r=$stage/$a
  rm -rf "$r"
  install -d -m 0755 "$r/DEBIAN" "$r/usr/bin" "$r/lib/systemd/system" "$r/etc/wisp" \
    "$r/usr/share/wisp/boards" "$r/usr/share/doc/wisp" "$r/usr/share/man/man1"
  install -m 0755 "$bin" "$r/usr/bin/wisp"
  install -m 0644 $pkgsrc/wisp.service "$r/lib/systemd/system/wisp.service"
  install -m 0644 $pkgsrc/wisp.conf "$r/etc/wisp/wisp.conf"
  for b in Board/*/board.conf; do
    install -m 0644 "$b" "$r/usr/share/wisp/boards/$(basename "$(dirname "$b")").conf"
  done
  # Documentation: README, CONFIG.md, copyright (machine-readable), changelog.
  install -m 0644 README.md "$r/usr/share/doc/wisp/README.md"
  install -m 0644 Sources/WispCore/CONFIG.md "$r/usr/share/doc/wisp/CONFIG.md"
  {
    echo "Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/"
    echo "Upstream-Name: wisp"
    echo "Upstream-Contact: $maintainer"
    echo
    echo "Files: *"
    echo "Copyright: 2026 The wisp authors"
    echo "License: Expat"
    echo
    echo "License: Expat"
    sed -n '/^Permission is hereby granted/,$p' LICENSE | sed 's/^$/./; s/^/ /'
  } >"$r/usr/share/doc/wisp/copyright"
  chmod 0644 "$r/usr/share/doc/wisp/copyright"
  {
    echo "wisp ($version) bookworm; urgency=medium"
    echo
    echo "  * Package the Embedded wisp relay node: systemd unit with watchdog and"
    echo "    sandbox, default /etc/wisp/wisp.conf, board files, and a headless first"
    echo "    boot (wisp config import-boot of /boot/firmware/wisp.conf)."
    echo
    echo " -- $maintainer  $(LC_ALL=C date -u -R -d @"$epoch")"
  } | gzip -9n >"$r/usr/share/doc/wisp/changelog.Debian.gz"
  sed "s/@VERSION@/$upstream/" $pkgsrc/wisp.1 | gzip -9n >"$r/usr/share/man/man1/wisp.1.gz"
  chmod 0644 "$r/usr/share/doc/wisp/changelog.Debian.gz" "$r/usr/share/man/man1/wisp.1.gz"

  # Control area.
  install -m 0755 $pkgsrc/postinst $pkgsrc/prerm $pkgsrc/postrm "$r/DEBIAN/"
  echo /etc/wisp/wisp.conf >"$r/DEBIAN/conffiles"
  deps=$(depends_of "$a" "$bin")
  size=$(du -k -s --apparent-size --exclude=DEBIAN "$r" | cut -f1)
  cat >"$r/DEBIAN/control" <<CONTROL
Package: wisp
Version: $version
Architecture: $a
Maintainer: $maintainer
Installed-Size: $size
Depends: $deps, adduser
Section: net
Priority: optional
Description: relay node for a bandwidth mesh
 wisp relays other people's packets along encrypted circuits on one UDP port,
 earns credit for the bytes it relays and shows its state on a few LEDs. It is
 one small Embedded Swift binary for Raspberry Pi-class boards.
 .
 This package installs the node as the systemd service wisp.service (watchdog,
 sandboxed, dedicated system user), configured by /etc/wisp/wisp.conf. A
 wisp.conf written to the boot partition is imported at the next start.
CONTROL
  (cd "$r" && find . -path ./DEBIAN -prune -o -type f -printf '%P\0' | sort -z | xargs -0 md5sum >DEBIAN/md5sums)
  chmod 0644 "$r/DEBIAN/control" "$r/DEBIAN/conffiles" "$r/DEBIAN/md5sums"
  find "$r" -exec touch -h -d @"$epoch" {} +
  deb=$out/wisp_${version}_$a.deb
  dpkg-deb --build --root-owner-group -Zxz "$r" "$deb" >/dev/null
  echo "package $a: $deb $(stat -c %s "$deb") bytes, installed $size KB, depends: $deps, adduser"
done

# lintian: no errors allowed; warnings and info are printed.
if ! command -v lintian >/dev/null; then
  echo "package: installing lintian"
  export DEBIAN_FRONTEND=noninteractive
  for i in 1 2 3; do
    timeout 600 apt-get install -y -qq --no-install-recommends lintian >/dev/null && break
    [ "$i" -eq 3 ] && { echo "package.sh: cannot install lintian" >&2; exit 1; }
    echo "package: apt-get install lintian failed (try $i), retrying" >&2
    timeout 300 apt-get update -qq || true; sleep $((i * 5))
  done
fi
errors=0
for a in "${arches[@]}"; do
  deb=$out/wisp_${version}_$a.deb
  report=$(timeout 300 lintian --no-cfg --display-info "$deb" 2>&1 || true)
  n=$(grep -c '^E: ' <<<"$report" || true)
  w=$(grep -c '^W: ' <<<"$report" || true)
  echo "lintian $a: $n errors, $w warnings"
  [ -z "$report" ] || sed 's/^/  /' <<<"$report"
  errors=$((errors + n))
done
[ "$errors" -eq 0 ] || { echo "package.sh: lintian found $errors errors" >&2; exit 1; }
