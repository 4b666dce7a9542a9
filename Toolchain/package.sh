#!/usr/bin/env bash
# Toolchain/package.sh — builds the wisp .deb packages (what `make package` runs).
#
#   Toolchain/package.sh [bookworm|trixie ...] [amd64|arm64|armhf ...]
#                        (default: both releases, all three architectures: six packages)
#
# One package per Debian release and architecture, from that release's firmware
# (.build-firmware/<target>/wisp for bookworm, .build-firmware/<target>-trixie/wisp for trixie;
# Toolchain/build.sh is run for the ones missing):
#   .build-packages/wisp_VERSION-1~deb12u1_ARCH.deb   bookworm (Debian 12)
#   .build-packages/wisp_VERSION-1~deb13u1_ARCH.deb   trixie (Debian 13, Raspberry Pi OS today)
# The versions sort bookworm < trixie < a plain VERSION-1, so a system upgraded from bookworm
# to trixie takes the trixie package. Depends come from the release's own shlibs and symbols
# files (see depends_of). The armhf package carries a preinst that refuses ARMv6 processors.
# Runs lintian on each package (installed if missing) and fails on any lintian error.
# Contents: /usr/bin/wisp, wisp.service and the template wisp-forward@.service (bookworm:
# /lib/systemd/system, trixie: /usr/lib/systemd/system), /etc/wisp/wisp.conf (conffile),
# /usr/share/wisp/boards/NAME.conf, /usr/share/doc/wisp/, /usr/share/man/man1/wisp.1.gz.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
pkgsrc=Toolchain/package
out=.build-packages
source $pkgsrc/release-apt.bash
releases=() arches=()
for a in "$@"; do
  case $a in
    bookworm|trixie) releases+=("$a") ;;
    amd64|arm64|armhf) arches+=("$a") ;;
    *) echo "package.sh: unknown release or architecture '$a' (known: bookworm trixie amd64 arm64 armhf)" >&2; exit 2 ;;
  esac
done
[ ${#releases[@]} -gt 0 ] || releases=(bookworm trixie)
[ ${#arches[@]} -gt 0 ] || arches=(amd64 arm64 armhf)

upstream=$(sed -n 's/.*static let version = "\(.*\)".*/\1/p' Sources/WispCore/Version.swift)
[ -n "$upstream" ] || { echo "package.sh: no version in Sources/WispCore/Version.swift" >&2; exit 1; }
maintainer="wisp maintainers <maintainers@users.noreply.b-seed-dc910da2.example>"
# Timestamps from the last commit, so two builds of one commit give the same files.
epoch=$(git log -1 --format=%ct 2>/dev/null || date +%s)
export SOURCE_DATE_EPOCH=$epoch

debian_of() { case $1 in bookworm) echo 12 ;; trixie) echo 13 ;; esac; }
version_of() { echo "$upstream-1~deb$(debian_of "$1")u1"; }
target_of() { case $1 in amd64) echo x86_64 ;; arm64) echo aarch64 ;; armhf) echo armv7 ;; esac; }
firmware_of() {  # firmware_of RELEASE ARCH: the build.sh output directory
  case $1 in bookworm) echo ".build-firmware/$(target_of "$2")" ;; *) echo ".build-firmware/$(target_of "$2")-$1" ;; esac
}

missing=()
for rel in "${releases[@]}"; do
  for a in "${arches[@]}"; do
    [ -x "$(firmware_of "$rel" "$a")/wisp" ] || missing+=("$(target_of "$a")-$rel")
  done
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "package: building firmware for ${missing[*]}"
  Toolchain/build.sh "${missing[@]}"
fi

# Depends from the binary and the release's own library packages (downloaded with a private
# apt state, Toolchain/package/release-apt.bash; never this machine's /var/lib/dpkg): each
# NEEDED library's package from the shlibs files, and its minimum version as dpkg-shlibdeps
# computes it: the newest version the package's symbols file gives for any symbol the binary
# takes from it (for libc6 e.g. GLIBC_2.38's 2.38), or the shlibs version when the package
# has no symbols file for that library.
ctl_of() {  # ctl_of RELEASE ARCH PKG: the package's shlibs and symbols into $ctl/PKG.*
  local deb
  [ -f "$ctl/$3.shlibs" ] && return 0
  deb=$(release_fetch "$1" "$2" "$3") || return 1
  dpkg-deb --info "$deb" shlibs 2>/dev/null | grep -v '^udeb:' >"$ctl/$3.shlibs" || true
  dpkg-deb --info "$deb" symbols >"$ctl/$3.symbols" 2>/dev/null || rm -f "$ctl/$3.symbols"
}
shlibs_line() {  # shlibs_line NAME SOVERSION: "PACKAGE (>= V)" from the fetched shlibs
  cat "$ctl"/*.shlibs 2>/dev/null | awk -v n="$1" -v v="$2" '$1 == n && $2 == v { $1 = ""; $2 = ""; sub(/^ +/, ""); print; exit }'
}
symbols_min() {  # symbols_min SYMBOLS-FILE SONAME UNDEFINED-SYMBOLS-FILE
  awk -v so="$2" 'FNR == NR { want[$1] = 1; next }
    /^[^ |*]/ { in_so = ($1 == so); next }
    in_so && /^ / { s = $1; sub(/^\([^)]*\)/, "", s); if (s in want) print $2 }' "$3" "$1" | sort -u | newest
}
newest() {  # the newest of the Debian versions on stdin (dpkg's ordering), or nothing
  local v best=
  while read -r v; do
    [ -n "$v" ] || continue
    if [ -z "$best" ] || dpkg --compare-versions "$v" gt "$best"; then best=$v; fi
  done
  echo "$best"
}
depends_of() {  # depends_of RELEASE ARCH BINARY
  local rel=$1 arch=$2 bin=$3 lib name so line pkg ver cand
  local -A best=()
  ctl=$stage/ctl-$rel-$arch
  mkdir -p "$ctl"
  readelf --dyn-syms -W "$bin" | awk '$7 == "UND" && $8 != "" { s = $8; if (s !~ /@/) s = s "@Base"; print s }' >"$ctl/undefined"
  ctl_of "$rel" "$arch" libc6 || return 1
  for lib in $(readelf -d "$bin" | sed -n 's/.*Shared library: \[\(.*\)\]/\1/p'); do
    name=${lib%%.so.*} so=${lib##*.so.}
    line=$(shlibs_line "$name" "$so")
    if [ -z "$line" ]; then
      # Not in a package fetched so far: Debian names a library package after its soname.
      cand=$(echo "$name" | tr 'A-Z_' 'a-z-')
      case $cand in *[0-9]) cand=$cand-$so ;; *) cand=$cand$so ;; esac
      ctl_of "$rel" "$arch" "$cand" 2>/dev/null || true
      line=$(shlibs_line "$name" "$so")
    fi
    [ -n "$line" ] || { echo "package.sh: no $rel package for $arch provides $lib" >&2; return 1; }
    pkg=${line%% *}
    ver=$(echo "$line" | sed -n 's/^[^ ]* (>= \(.*\))$/\1/p')
    if [ -f "$ctl/$pkg.symbols" ] && grep -q "^$lib " "$ctl/$pkg.symbols"; then
      # A library the binary takes no symbol from (ld-linux-*.so) adds no version.
      ver=$(symbols_min "$ctl/$pkg.symbols" "$lib" "$ctl/undefined")
    fi
    best[$pkg]=$(printf '%s\n' "${best[$pkg]:-}" "$ver" | newest)
  done
  for pkg in $(printf '%s\n' "${!best[@]}" | sort); do
    if [ -n "${best[$pkg]}" ]; then echo "$pkg (>= ${best[$pkg]})"; else echo "$pkg"; fi
  done | paste -sd, | sed 's/,/, /g'
}

mkdir -p "$out"
# Packages of the former naming (no release in the version) would sort above both.
rm -f "$out/wisp_$upstream-1_"*.deb
stage=$(mktemp -d /tmp/wisp-package.XXXXXX)
trap 'rm -rf "$stage"' EXIT

debs=()
for rel in "${releases[@]}"; do
for a in "${arches[@]}"; do
  version=$(version_of "$rel")
  bin=$(firmware_of "$rel" "$a")/wisp
  r=$stage/$rel-$a
  # trixie has merged /usr (DEP 17): no files under the aliased /lib there.
  units=$([ "$rel" = bookworm ] && echo lib/systemd/system || echo usr/lib/systemd/system)
  rm -rf "$r"
  install -d -m 0755 "$r/DEBIAN" "$r/usr/bin" "$r/$units" "$r/etc/wisp" \
    "$r/usr/share/wisp/boards" "$r/usr/share/doc/wisp" "$r/usr/share/man/man1"
  install -m 0755 "$bin" "$r/usr/bin/wisp"
  install -m 0644 $pkgsrc/wisp.service "$pkgsrc/wisp-forward@.service" "$r/$units/"
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
    echo "wisp ($version) $rel; urgency=medium"
    echo
    echo "  * Build for Debian $(debian_of "$rel") \"$rel\" against its own libraries (mbedTLS,"
    echo "    libgpiod, glibc); Depends from that release's shlibs and symbols files."
    echo "  * Package the Embedded wisp relay node: systemd unit with watchdog and"
    echo "    sandbox, default /etc/wisp/wisp.conf, board files, and a headless first"
    echo "    boot (wisp config import-boot of /boot/firmware/wisp.conf)."
    [ "$a" != armhf ] || echo "  * Refuse to install on ARMv6 processors (Raspberry Pi 1, Zero, Zero W)."
    echo
    echo " -- $maintainer  $(LC_ALL=C date -u -R -d @"$epoch")"
  } | gzip -9n >"$r/usr/share/doc/wisp/changelog.Debian.gz"
  sed "s/@VERSION@/$upstream/" $pkgsrc/wisp.1 | gzip -9n >"$r/usr/share/man/man1/wisp.1.gz"
  chmod 0644 "$r/usr/share/doc/wisp/changelog.Debian.gz" "$r/usr/share/man/man1/wisp.1.gz"

  # Control area.
  install -m 0755 $pkgsrc/postinst $pkgsrc/prerm $pkgsrc/postrm "$r/DEBIAN/"
  [ "$a" != armhf ] || install -m 0755 $pkgsrc/preinst.armhf "$r/DEBIAN/preinst"
  echo /etc/wisp/wisp.conf >"$r/DEBIAN/conffiles"
  deps=$(depends_of "$rel" "$a" "$bin")
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
 .
 Built for Debian $(debian_of "$rel") "$rel".
CONTROL
  (cd "$r" && find . -path ./DEBIAN -prune -o -type f -printf '%P\0' | sort -z | xargs -0 md5sum >DEBIAN/md5sums)
  chmod 0644 "$r/DEBIAN/control" "$r/DEBIAN/conffiles" "$r/DEBIAN/md5sums"
  find "$r" -exec touch -h -d @"$epoch" {} +
  deb=$out/wisp_${version}_$a.deb
  dpkg-deb --build --root-owner-group -Zxz "$r" "$deb" >/dev/null
  debs+=("$deb")
  echo "package $rel $a: $deb $(stat -c %s "$deb") bytes, installed $size KB"
  echo "depends $rel $a: $deps, adduser"
done
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
# Two packages at a time (lintian runs one process each), reported in the order built.
lint=$(mktemp -d /tmp/wisp-lintian.XXXXXX)
for ((i = 0; i < ${#debs[@]}; i += 2)); do
  for j in $i $((i + 1)); do
    [ $j -lt ${#debs[@]} ] || continue
    (timeout 300 lintian --no-cfg --display-info "${debs[$j]}" >"$lint/$j" 2>&1 || true) &
  done
  wait
done
errors=0
for ((i = 0; i < ${#debs[@]}; i++)); do
  deb=${debs[$i]}
  report=$(cat "$lint/$i")
  n=$(grep -c '^E: ' <<<"$report" || true)
  w=$(grep -c '^W: ' <<<"$report" || true)
  echo "lintian $(basename "$deb"): $n errors, $w warnings"
  [ -z "$report" ] || sed 's/^/  /' <<<"$report"
  errors=$((errors + n))
done
rm -rf "$lint"
[ "$errors" -eq 0 ] || { echo "package.sh: lintian found $errors errors" >&2; exit 1; }
