#!/usr/bin/env bash
# Toolchain/build.sh — builds the Embedded Swift `wisp` firmware for targets and Debian releases.
#
#   Toolchain/build.sh                          every target for bookworm and trixie
#   Toolchain/build.sh [--release R] [TARGET...]  TARGET: x86_64, aarch64, armv7 (for release R,
#                                               default bookworm), or TARGET-bookworm, TARGET-trixie
#   Toolchain/build.sh --board NAME             the board's target for both releases
#
# One binary per release: sonames (libmbedtls.so.14 / .so.21, libgpiod.so.2 / .so.3) and
# glibc symbols differ. bookworm builds against the host's libraries (dpkg multiarch for
# arm64/armhf), as before; trixie builds against the sysroots Toolchain/setup.sh makes under
# .build-trixie/sysroot-<arch> (clang --sysroot; no host header or library is used).
# Output: .build-firmware/<target>/wisp (bookworm; also reachable as <target>-bookworm) and
# .build-firmware/<target>-trixie/wisp, each stripped, with wisp.debug (unstripped) beside.
# Prints each binary's `file` line, its dynamic dependencies and stripped size; fails when
# a binary needs another release's mbedTLS or libgpiod, or a Swift runtime library.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
sdks=$root/.build-sdks
emb=/opt/swift/usr/lib/swift/embedded
release=bookworm
args=()
while [ $# -gt 0 ]; do
  case $1 in
    --release) release=${2:-}; shift 2 ;;
    --board)
      board=${2:-}
      known=$(cd Board && ls -d */ | tr -d / | tr '\n' ' ')
      if [ -z "$board" ] || [ ! -f "Board/$board/board.conf" ]; then
        echo "build.sh: unknown board '${board}' (known: $known)" >&2; exit 2
      fi
      bt=($(sed -n 's/^target *= *//p' "Board/$board/board.conf"))
      echo "board $board: target ${bt[*]}"
      for t in "${bt[@]}"; do args+=("$t-bookworm" "$t-trixie"); done
      shift 2 ;;
    *) args+=("$1"); shift ;;
  esac
done
case $release in bookworm|trixie) ;; *) echo "build.sh: unknown release '$release' (known: bookworm trixie)" >&2; exit 2 ;; esac
[ ${#args[@]} -gt 0 ] || args=(x86_64-bookworm aarch64-bookworm armv7-bookworm x86_64-trixie aarch64-trixie armv7-trixie)
targets=()
for a in "${args[@]}"; do
  case $a in *-bookworm|*-trixie) targets+=("$a") ;; *) targets+=("$a-$release") ;; esac
done

sdk_sum() { cat Toolchain/wisp.artifactbundle/info.json Toolchain/wisp.artifactbundle/embedded/*.json | sha256sum | cut -d' ' -f1; }

install_sdk() {
  # Re-install when the bundle in the repo changed (compared by content).
  local stamp=$sdks/.stamp sum
  sum=$(sdk_sum)
  if [ "$(cat "$stamp" 2>/dev/null)" != "$sum" ]; then
    rm -rf "$sdks" && mkdir -p "$sdks"
    swift sdk install --swift-sdks-path "$sdks" "$root/Toolchain/wisp.artifactbundle" >/dev/null
    echo "$sum" >"$stamp"
  fi
}

# A scratch directory is wiped when the compiler flags that filled it change: SwiftPM
# keeps objects built with other flags (seen: adding -function-sections left every
# object as it was, and the binary as large).
fresh_scratch() {  # DIR FLAGS-SUM
  if [ "$(cat "$1/.wisp-flags" 2>/dev/null)" != "$2" ]; then
    rm -rf "$1" && mkdir -p "$1" && echo "$2" >"$1/.wisp-flags"
  fi
}

# Swift and C code in one section per function, so --gc-sections drops what nothing calls.
x86_flags=(-Xswiftc -enable-experimental-feature -Xswiftc Embedded -Xswiftc -O
  -Xswiftc -Xfrontend -Xswiftc -function-sections -Xcc -ffunction-sections -Xcc -fdata-sections
  -Xlinker -L$emb/x86_64-unknown-linux-gnu -Xlinker -lswiftUnicodeDataTables -Xlinker -lm
  -Xlinker --gc-sections)

# --- trixie: a Swift SDK made here (its paths are this checkout's sysroots) ---
trixie_sdks=$root/.build-sdks-trixie
sysroot() { echo "$root/.build-trixie/sysroot-$1"; }

# The toolset for one ARM target: the bookworm one with the sysroot's headers and libraries
# in place of the host's, and --sysroot for clang's link (crt files, libgcc, libc from trixie).
trixie_toolset() {  # GNU-TRIPLE EMBEDDED-TRIPLE SYSROOT EXTRA-CC-FLAGS(JSON list items) EXTRA-LINK(JSON)
  local gnu=$1 triple=$2 sr=$3 cc=$4 link=$5
  cat <<JSON
{
  "schemaVersion": "1.0",
  "swiftCompiler": {
    "extraCLIOptions": [
      "-enable-experimental-feature", "Embedded", "-O",${cc:+ $(echo "$cc" | sed 's/"\([^"]*\)"/"-Xcc", "\1"/g'),}
      "-Xcc", "-isystem", "-Xcc", "$sr/usr/include/$gnu",
      "-Xcc", "-isystem", "-Xcc", "$sr/usr/include",
      "-Xcc", "-D__linux__", "-Xcc", "-D__unix__", "-Xcc", "-D__gnu_linux__",
      "-Xcc", "-ffunction-sections", "-Xcc", "-fdata-sections", "-Xfrontend", "-function-sections",
      "-Xclang-linker", "--target=$gnu", "-Xclang-linker", "--sysroot=$sr"
    ]
  },
  "cCompiler": {
    "extraCLIOptions": [${cc:+ $cc,}
      "-isystem", "$sr/usr/include/$gnu", "-isystem", "$sr/usr/include",
      "-D__linux__", "-D__unix__", "-D__gnu_linux__", "-fPIC", "-O2",
      "-ffunction-sections", "-fdata-sections"
    ]
  },
  "linker": {
    "extraCLIOptions": [
      "-L$emb/$triple",
      "-L$sr/usr/lib/$gnu", "-rpath-link=$sr/usr/lib/$gnu",
      "-lswiftUnicodeDataTables", "-lm", "--gc-sections"${link:+, $link}
    ]
  }
}
JSON
}

install_trixie_sdk() {
  local b=$trixie_sdks/bundle/wisp-trixie.artifactbundle sum
  local new; new=$(mktemp -d /tmp/wisp-trixie-sdk.XXXXXX)
  mkdir -p "$new/embedded"
  sed 's/wisp-embedded-linux/wisp-embedded-linux-trixie/' Toolchain/wisp.artifactbundle/info.json >"$new/info.json"
  cat >"$new/embedded/swift-sdk.json" <<JSON
{
  "schemaVersion": "4.0",
  "targetTriples": {
    "aarch64-none-none-elf": { "sdkRootPath": "/", "toolsetPaths": ["toolset-aarch64.json"] },
    "armv7-none-none-eabi": { "sdkRootPath": "/", "toolsetPaths": ["toolset-armv7.json"] }
  }
}
JSON
  trixie_toolset aarch64-linux-gnu aarch64-none-none-elf "$(sysroot arm64)" "" \
    '"-z", "max-page-size=16384"' >"$new/embedded/toolset-aarch64.json"
  trixie_toolset arm-linux-gnueabihf armv7-none-none-eabi "$(sysroot armhf)" '"-mfloat-abi=hard", "-mfpu=vfpv3-d16"' \
    '"--no-warn-mismatch"' >"$new/embedded/toolset-armv7.json"
  sum=$(cat "$new/info.json" "$new"/embedded/*.json | sha256sum | cut -d' ' -f1)
  if [ "$(cat "$trixie_sdks/.stamp" 2>/dev/null)" != "$sum" ]; then
    rm -rf "$trixie_sdks" && mkdir -p "$trixie_sdks/bundle"
    mv "$new" "$b"
    swift sdk install --swift-sdks-path "$trixie_sdks" "$b" >/dev/null
    echo "$sum" >"$trixie_sdks/.stamp"
  else
    rm -rf "$new"
  fi
  trixie_sum=$sum
}

# x86_64 trixie: the host triple with the amd64 sysroot for headers and the link.
x86_trixie_flags() {
  local sr; sr=$(sysroot amd64)
  echo "${x86_flags[@]}" -Xcc --sysroot=$sr -Xswiftc -sdk -Xswiftc $sr \
    -Xswiftc -Xclang-linker -Xswiftc --sysroot=$sr \
    -Xlinker -L$sr/usr/lib/x86_64-linux-gnu -Xlinker -rpath-link=$sr/usr/lib/x86_64-linux-gnu
}

# What each release's binary must need (and must not).
want_libs() { case $1 in bookworm) echo "libmbedtls.so.14 libgpiod.so.2" ;; trixie) echo "libmbedtls.so.21 libgpiod.so.3" ;; esac; }

for tr in "${targets[@]}"; do
  t=${tr%-*} rel=${tr##*-}
  case $t in x86_64|aarch64|armv7) ;; *) echo "build.sh: unknown target '$t' (known: x86_64 aarch64 armv7)" >&2; exit 2 ;; esac
  case $rel in bookworm|trixie) ;; *) echo "build.sh: unknown release '$rel' (known: bookworm trixie)" >&2; exit 2 ;; esac
done
# Shared set-up once, before any build runs (the builds below may run two at a time).
case " ${targets[*]}" in *-trixie*) Toolchain/setup.sh --sysroots-only >/dev/null ;; esac
case " ${targets[*]}" in *" aarch64-bookworm"*|*" armv7-bookworm"*) install_sdk ;; esac
case " ${targets[*]}" in *" aarch64-trixie"*|*" armv7-trixie"*) install_trixie_sdk ;; esac

# One target: its own scratch directory, output directory and log.
build_one() {
  local tr=$1 t rel scratch out gnu strip flags pc triple arch sdkpath sum libdir pcroot bin needs lib
  t=${tr%-*} rel=${tr##*-}
  # Runs in a subshell of its own: the log and its trap are that subshell's.
  log=$(mktemp /tmp/wisp-build.XXXXXX)
  trap 'rm -f "$log"' EXIT
  if [ $rel = trixie ]; then
    scratch=.build-embedded-$t-trixie out=.build-firmware/$t-trixie
  else
    scratch=.build-embedded-$t out=.build-firmware/$t
  fi
  case $t in
    x86_64)
      gnu=x86_64-linux-gnu strip=strip
      if [ $rel = trixie ]; then flags=($(x86_trixie_flags)); else flags=("${x86_flags[@]}"); fi
      fresh_scratch $scratch "$(echo "${flags[*]}" | sha256sum | cut -d' ' -f1)"
      rm -f $scratch/release/wisp
      pc=()
      [ $rel = trixie ] && pc=(--pkg-config-path "$(sysroot amd64)/usr/lib/$gnu/pkgconfig")
      PKG_CONFIG_SYSROOT_DIR=$([ $rel = trixie ] && sysroot amd64 || true) \
      swift build -c release --product wisp --scratch-path $scratch "${pc[@]}" \
        "${flags[@]}" >"$log" 2>&1 || { grep -E 'error' "$log" >&2; echo "build.sh: $tr build failed" >&2; exit 1; }
      bin=$scratch/release/wisp ;;
    aarch64|armv7)
      if [ $t = aarch64 ]; then gnu=aarch64-linux-gnu triple=aarch64-none-none-elf arch=arm64
      else gnu=arm-linux-gnueabihf triple=armv7-none-none-eabi arch=armhf; fi
      strip=$gnu-strip
      if [ $rel = trixie ]; then
        sdkpath=$trixie_sdks sum=$trixie_sum libdir=$(sysroot $arch)/usr/lib/$gnu pcroot=$(sysroot $arch)
      else
        sdkpath=$sdks sum=$(sdk_sum) libdir=/usr/lib/$gnu pcroot=
      fi
      fresh_scratch $scratch "$sum"
      rm -f $scratch/$triple/release/wisp
      PKG_CONFIG_SYSROOT_DIR=$pcroot \
      swift build -c release --product wisp --scratch-path $scratch \
        --swift-sdks-path "$sdkpath" --swift-sdk $triple \
        --pkg-config-path $libdir/pkgconfig >"$log" 2>&1 || { grep -E 'error' "$log" >&2; echo "build.sh: $tr build failed" >&2; exit 1; }
      bin=$scratch/$triple/release/wisp ;;
  esac
  [ -x "$bin" ] || { echo "build.sh: $tr build failed" >&2; exit 1; }
  mkdir -p "$out"
  cp "$bin" "$out/wisp.debug"
  $strip -o "$out/wisp" "$bin"
  [ $rel = bookworm ] && ln -sfn "$t" ".build-firmware/$t-bookworm"
  needs=$(readelf -d "$out/wisp" | sed -n 's/.*Shared library: \[\(.*\)\]/\1/p' | tr '\n' ' ')
  echo "firmware $t ($rel): $(file -b "$out/wisp" | cut -d, -f1-3)"
  echo "firmware $t ($rel): needs $needs"
  if readelf -d "$out/wisp" | grep -q 'libswift'; then echo "build.sh: $tr links a Swift runtime library" >&2; exit 1; fi
  for lib in $(want_libs $rel); do
    case " $needs" in *" $lib "*) ;; *) echo "build.sh: $tr does not need $lib: linked against another release's libraries" >&2; exit 1 ;; esac
  done
  echo "firmware $t ($rel): stripped size $(stat -c %s "$out/wisp") bytes"
}

# Two builds at a time (each is mostly one compiler process; the machine has 2 cores or
# more), their output printed in the order of the targets.
outs=$(mktemp -d /tmp/wisp-builds.XXXXXX)
trap 'rm -rf "$outs"' EXIT
failed=0
for ((i = 0; i < ${#targets[@]}; i += 2)); do
  pids=()
  for j in $i $((i + 1)); do
    [ $j -lt ${#targets[@]} ] || continue
    ( build_one "${targets[$j]}" ) >"$outs/$j.out" 2>"$outs/$j.err" &
    pids+=($!)
  done
  k=$i
  for p in "${pids[@]}"; do
    wait "$p" || failed=1
    cat "$outs/$k.out"; cat "$outs/$k.err" >&2
    k=$((k + 1))
  done
  [ $failed = 0 ] || exit 1
done
