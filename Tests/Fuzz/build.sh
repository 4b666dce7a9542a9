#!/usr/bin/env bash
# Tests/Fuzz/build.sh — one sanitizer build of every fuzz target (libFuzzer + AddressSanitizer).
#
# Compiles WispCore, CPosix, WispOS and WispTLS once with `-sanitize=fuzzer,address` (coverage
# instrumentation and ASan) into .build-fuzz/, then links each Tests/Fuzz/fuzz-*.swift
# against them with libFuzzer's main. SwiftPM is not used: a fuzz target has no `main`
# of its own, which a normal `swift build` of the package could not link.
# Prints the path of every target built; incremental (a module is rebuilt when a source
# under it is newer than its archive).
set -euo pipefail
cd "$(dirname "$0")/../.."
out=$PWD/.build-fuzz
mkdir -p "$out/CPosix"
san=(-sanitize=fuzzer,address)
swiftflags=(-O -g -wmo -swift-version 6 -parse-as-library "${san[@]}" -I "$out" -Xcc -fmodule-map-file="$out/CPosix/module.modulemap" -I "$PWD/Sources/CMbedTLS")

newer() {  # newer OUTPUT INPUT...: true when OUTPUT is missing or older than an input
  local o=$1; shift
  [ -e "$o" ] || return 0
  [ -n "$(find "$@" -newer "$o" -print -quit)" ]
}

# CPosix: the C shim, with a module map of its own (SwiftPM writes one for a C target).
if newer "$out/libCPosix.a" Sources/CPosix; then
  cat >"$out/CPosix/module.modulemap" <<MAP
module CPosix {
  header "$PWD/Sources/CPosix/include/shim.h"
  export *
}
MAP
  clang -O1 -g -fsanitize=fuzzer-no-link,address -ISources/CPosix/include -c Sources/CPosix/shim.c -o "$out/CPosix/shim.o"
  ar rcs "$out/libCPosix.a" "$out/CPosix/shim.o"
fi

module() {  # module NAME: Sources/NAME/*.swift into .build-fuzz/libNAME.a and NAME.swiftmodule
  local name=$1
  if newer "$out/lib$name.a" "Sources/$name" "$out/libCPosix.a" "$out/libWispCore.a"; then
    echo "fuzz build: $name" >&2
    swiftc "${swiftflags[@]}" -module-name "$name" -emit-module -emit-module-path "$out/$name.swiftmodule" \
      -emit-library -static -o "$out/lib$name.a" "Sources/$name"/*.swift
  fi
}
module WispCore
module WispOS
module WispTLS

libs=(-L "$out" -lWispTLS -lWispOS -lWispCore -lCPosix -lmbedtls -lmbedx509 -lmbedcrypto)
# One target (its own module, so two can compile at once).
target() {  # target SRC BIN
  local src=$1 bin=$2 t
  t=$(basename "$src" .swift); t=${t#fuzz-}
  echo "fuzz build: fuzz-$t" >&2
  # Several files: the driver leaves per-file module pieces in its working directory,
  # so it runs in a directory of its own under the build directory (never the checkout's top level).
  mkdir -p "$out/work-$t"
  (root=$PWD; cd "$out/work-$t" && swiftc "${swiftflags[@]}" -module-name "Fuzz_${t//-/_}" "$root/$src" "$root/Tests/Fuzz/FuzzSupport.swift" \
    "$root/Tests/WispCoreTests/ReceiptTestSupport.swift" "${libs[@]}" -o "$bin")
}
todo=() bins=()
for src in Tests/Fuzz/fuzz-*.swift; do
  t=$(basename "$src" .swift); t=${t#fuzz-}
  bin=$out/fuzz-$t
  bins+=("$bin")
  if newer "$bin" "$src" Tests/Fuzz/FuzzSupport.swift Tests/WispCoreTests/ReceiptTestSupport.swift "$out/libWispTLS.a" "$out/libWispOS.a" "$out/libWispCore.a"; then
    todo+=("$src")
  fi
done
# The targets' compilations are one process each: FUZZ_JOBS (default: the cores, at most 4) at a time.
jobs=${FUZZ_JOBS:-$(nproc)}
[ "$jobs" -ge 1 ] 2>/dev/null || jobs=1
[ "$jobs" -le 4 ] || jobs=4
failed=0
for ((i = 0; i < ${#todo[@]}; i += jobs)); do
  pids=()
  for ((j = i; j < i + jobs && j < ${#todo[@]}; j++)); do
    t=$(basename "${todo[$j]}" .swift)
    target "${todo[$j]}" "$out/$t" &
    pids+=($!)
  done
  for p in "${pids[@]}"; do wait "$p" || failed=1; done
  [ $failed = 0 ] || { echo "fuzz build: a target failed to compile" >&2; exit 1; }
done
for bin in "${bins[@]}"; do echo "$bin"; done
