#!/usr/bin/env bash
# Tests/run-all.sh — every test of wisp (what `make test` and CI run).
#
# Each step prints PASS or FAIL; the last line is "N passed, M failed" and the
# exit status is non-zero if any step failed.
set -uo pipefail
cd "$(dirname "$0")/.."
export WISP_ROOT=$PWD
passed=0 failed=0 failures=()
logdir=$(mktemp -d /tmp/wisp-test.XXXXXX)

step() {  # step NAME COMMAND...
  local name=$1; shift
  local start=$SECONDS
  echo "=== $name"
  if "$@" >"$logdir/$name.log" 2>&1; then
    passed=$((passed + 1)); echo "PASS $name ($((SECONDS - start)) s)"
    grep -E '^(firmware|bench|e2e|smoke|check|fuzz) ' "$logdir/$name.log" || true
  else
    failed=$((failed + 1)); failures+=("$name"); echo "FAIL $name ($((SECONDS - start)) s)"
    tail -n 60 "$logdir/$name.log"
  fi
}

step import-boundaries Tests/check-imports.sh
step host-unit-tests swift test
# The host build's developer tools the end-to-end scripts use (tls-probe, credits
# selftest-fill, the settlement and payer-list tools; Toolchain/host-build.sh): the debug
# build `swift test` just made, the same code, rather than another full (release) compile.
[ -x .build/debug/wisp ] && export WISP_DEV_BIN=${WISP_DEV_BIN:-$PWD/.build/debug/wisp}
step host-unit-tests-asan Tests/unit-tests-asan.sh
step fuzz-short Tests/Fuzz/fuzz.sh 8
step firmware-build Toolchain/build.sh  # every target, bookworm and trixie
for t in Tests/e2e/*.sh; do
  step "$(basename "$t" .sh)" "$t"
done

echo
[ ${#failures[@]} -eq 0 ] || echo "failed steps: ${failures[*]} (logs in $logdir)"
echo "total: $SECONDS s for every step above (set-up before them not counted)"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
