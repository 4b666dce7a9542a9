#!/usr/bin/env bash
# Tests/Fuzz/fuzz.sh [SECONDS [TARGET...]] — builds every fuzz target once (Tests/Fuzz/build.sh)
# and runs each for SECONDS (default: $FUZZ_SECONDS, else 60) with AddressSanitizer and leak
# detection. `make fuzz` runs it; Tests/run-all.sh runs it for 8 s per target.
#
# Corpus per target: .build-fuzz/corpus/TARGET (what this machine's runs found; kept
# between runs), Tests/Fuzz/corpus/TARGET (the seeds in the repository) and
# .build-fuzz/seeds/TARGET (the same seeds written afresh by the target from the current
# encoders). Prints `fuzz TARGET execs N` per target; a crash, leak, timeout or broken
# invariant fails the run, leaves the input as .build-fuzz/crash-TARGET-* and prints
# libFuzzer's report. Exit status: 0 when every target ran clean.
set -uo pipefail
cd "$(dirname "$0")/../.."
seconds=${1:-${FUZZ_SECONDS:-60}}
shift || true
out=.build-fuzz
log=$(mktemp -d /tmp/wisp-fuzz.XXXXXX)

if ! Tests/Fuzz/build.sh >"$log/build.log" 2>&1; then
  grep -v 'Cannot export local symbol' "$log/build.log" | tail -n 40
  echo "fuzz build failed"
  exit 1
fi
if [ $# -eq 0 ]; then
  set -- $(sed -n 's|^.*\.build-fuzz/fuzz-||p' "$log/build.log")
  [ $# -gt 0 ] || { echo "fuzz: the build named no target"; exit 1; }
fi

# The Swift runtime's own crash handler would race AddressSanitizer's report: off.
export SWIFT_BACKTRACE=enable=no
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}
# One target: its output in $log/$t.out, exit 1 when it failed.
fuzz_one() {
  local t=$1 bin=$out/fuzz-$1 start rc execs cov
  [ -x "$bin" ] || { echo "fuzz $t: no such target ($bin)"; return 1; }
  mkdir -p "$out/corpus/$t" "$out/seeds/$t" Tests/Fuzz/corpus/"$t"
  rm -f "$out/seeds/$t"/*
  WISP_FUZZ_SEEDS="$out/seeds/$t" "$bin" >/dev/null 2>&1 || true
  start=$SECONDS
  "$bin" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -detect_leaks=1 -print_final_stats=1 \
    -artifact_prefix="$out/crash-$t-" "$out/corpus/$t" "Tests/Fuzz/corpus/$t" "$out/seeds/$t" >"$log/$t.log" 2>&1
  rc=$?
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log/$t.log" | tail -n 1)
  cov=$(grep -oE 'cov: [0-9]+' "$log/$t.log" | tail -n 1 | cut -d' ' -f2)
  echo "fuzz $t execs ${execs:-0}"
  echo "fuzz $t coverage ${cov:-0} edges, $((SECONDS - start)) s, corpus $(ls "$out/corpus/$t" | wc -l) inputs"
  if [ $rc -ne 0 ]; then
    echo "FAIL fuzz $t (exit $rc): the report, then the input:"
    grep -v '^ *0x[0-9a-f]*:' "$log/$t.log" | grep -A 40 -E 'ERROR|Fatal error|deadly signal|timeout|out-of-memory' | head -n 60
    ls "$out/crash-$t-"* 2>/dev/null
    return 1
  fi
}

# libFuzzer runs one thread: FUZZ_JOBS targets at a time (default: the cores, at most 4),
# their output printed in the order of the targets.
jobs=${FUZZ_JOBS:-$(nproc)}
[ "$jobs" -ge 1 ] 2>/dev/null || jobs=1
[ "$jobs" -le 4 ] || jobs=4
failed=()
targets=("$@")
for ((i = 0; i < ${#targets[@]}; i += jobs)); do
  pids=()
  for ((j = i; j < i + jobs && j < ${#targets[@]}; j++)); do
    fuzz_one "${targets[$j]}" >"$log/${targets[$j]}.out" 2>&1 &
    pids+=($!)
  done
  j=$i
  for p in "${pids[@]}"; do
    wait "$p" || failed+=("${targets[$j]}")
    cat "$log/${targets[$j]}.out"
    j=$((j + 1))
  done
done
echo "fuzz logs in $log"
[ ${#failed[@]} -eq 0 ] || { echo "fuzz failed: ${failed[*]}"; exit 1; }
