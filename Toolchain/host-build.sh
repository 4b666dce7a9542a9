#!/usr/bin/env bash
# Toolchain/host-build.sh — the host (developer) build of wisp: full Swift for this machine,
# with the developer tools the device firmware leaves out (tls-probe, tls-bench,
# credits selftest-fill; Sources/wisp/DeveloperTools.swift). Runs
# `swift build -c release --product wisp` when .build/release/wisp is missing or older
# than a source, and prints the binary's path (build output goes to stderr on failure).
#
#   bin=$(Toolchain/host-build.sh)      WISP_DEV_BIN=PATH: use that binary, build nothing
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -n "${WISP_DEV_BIN:-}" ]; then echo "$WISP_DEV_BIN"; exit 0; fi
bin=$PWD/.build/release/wisp
if [ ! -x "$bin" ] || [ -n "$(find Sources Package.swift -newer "$bin" -print -quit)" ]; then
  log=$(mktemp /tmp/wisp-host-build.XXXXXX)
  if ! swift build -c release --product wisp >"$log" 2>&1; then
    grep -E 'error' "$log" >&2 || tail -20 "$log" >&2
    rm -f "$log"
    echo "host-build.sh: swift build -c release failed" >&2
    exit 1
  fi
  rm -f "$log"
fi
echo "$bin"
