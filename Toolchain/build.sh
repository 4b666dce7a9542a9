#!/usr/bin/env bash
# Toolchain/build.sh — builds the Embedded Swift `wisp` firmware for one or more targets.
#
#   Toolchain/build.sh [x86_64|aarch64|armv7 ...]   (default: all three)
#
# Output: .build-firmware/<target>/wisp (stripped) and wisp.debug (unstripped).
# Prints each binary's `file` line, its dynamic dependencies and stripped size.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
sdks=$root/.build-sdks
emb=/opt/swift/usr/lib/swift/embedded
targets=("$@")
if [ "${1:-}" = "--board" ]; then
  board=${2:-}
  known=$(cd Board && ls -d */ | tr -d / | tr '\n' ' ')
  if [ -z "$board" ] || [ ! -f "Board/$board/board.conf" ]; then
    echo "build.sh: unknown board '${board}' (known: $known)" >&2; exit 2
  fi
  targets=($(sed -n 's/^target *= *//p' "Board/$board/board.conf"))
  echo "board $board: target ${targets[*]}"
fi
[ ${#targets[@]} -gt 0 ] || targets=(x86_64 aarch64 armv7)

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

log=$(mktemp /tmp/wisp-build.XXXXXX)
trap 'rm -f "$log"' EXIT
for t in "${targets[@]}"; do
  case $t in
    x86_64)
      gnu=x86_64-linux-gnu strip=strip
      fresh_scratch .build-embedded-x86_64 "$(echo "${x86_flags[*]}" | sha256sum | cut -d' ' -f1)"
      rm -f .build-embedded-x86_64/release/wisp
      swift build -c release --product wisp --scratch-path .build-embedded-x86_64 \
        "${x86_flags[@]}" >"$log" 2>&1 || { grep -E 'error' "$log" >&2; echo "build.sh: $t build failed" >&2; exit 1; }
      bin=.build-embedded-x86_64/release/wisp ;;
    aarch64|armv7)
      if [ $t = aarch64 ]; then gnu=aarch64-linux-gnu triple=aarch64-none-none-elf
      else gnu=arm-linux-gnueabihf triple=armv7-none-none-eabi; fi
      strip=$gnu-strip
      install_sdk
      fresh_scratch .build-embedded-$t "$(sdk_sum)"
      rm -f .build-embedded-$t/$triple/release/wisp
      swift build -c release --product wisp --scratch-path .build-embedded-$t \
        --swift-sdks-path "$sdks" --swift-sdk $triple \
        --pkg-config-path /usr/lib/$gnu/pkgconfig >"$log" 2>&1 || { grep -E 'error' "$log" >&2; echo "build.sh: $t build failed" >&2; exit 1; }
      bin=.build-embedded-$t/$triple/release/wisp ;;
    *) echo "build.sh: unknown target '$t' (known: x86_64 aarch64 armv7)" >&2; exit 2 ;;
  esac
  [ -x "$bin" ] || { echo "build.sh: $t build failed" >&2; exit 1; }
  out=.build-firmware/$t
  mkdir -p "$out"
  cp "$bin" "$out/wisp.debug"
  $strip -o "$out/wisp" "$bin"
  echo "firmware $t: $(file -b "$out/wisp" | cut -d, -f1-3)"
  echo "firmware $t: needs $(readelf -d "$out/wisp" | sed -n 's/.*Shared library: \[\(.*\)\]/\1/p' | tr '\n' ' ')"
  if readelf -d "$out/wisp" | grep -q 'libswift'; then echo "build.sh: $t links a Swift runtime library" >&2; exit 1; fi
  echo "firmware $t: stripped size $(stat -c %s "$out/wisp") bytes"
done
