#!/usr/bin/env bash
# Tests/unit-tests-asan.sh — the host unit tests under AddressSanitizer (and LeakSanitizer),
# with UndefinedBehaviorSanitizer on the C shim (CPosix). A step of Tests/run-all.sh.
#
# What this toolchain (Swift 6.3.1, Linux x86_64) offers: `swift test --sanitize=address`
# works (a separate build in .build-asan, about 100 s, then the tests, about 75 s).
# `--sanitize=undefined` does not: swiftc refuses `-sanitize=undefined` for
# x86_64-unknown-linux-gnu (Swift traps on overflow, bounds and nil by itself; what UBSan
# would add is the C code), so UBSan reaches the C shim through `-Xcc -fsanitize=undefined`
# (its runtime is part of ASan's). `--disable-xctest`: the package has no XCTest tests,
# and XCTest's empty run leaks a few objects of its own, which LeakSanitizer would report.
# Skipped: MeshClientTests' failover test, which measures 300 ms of silence on the wall
# clock; under ASan (2-3x slower) on a loaded machine it sees a second, spurious reroute.
set -euo pipefail
cd "$(dirname "$0")/.."
export SWIFT_BACKTRACE=enable=no   # the Swift crash handler would race the sanitizer's report
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
exec swift test --disable-xctest --sanitize=address -Xcc -fsanitize=undefined --build-path .build-asan \
  --skip aDeadRelayOnThePathIsRoutedAround "$@"
