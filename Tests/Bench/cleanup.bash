# Shared by the benchmark scripts (sourced): a scratch directory and an exit trap that
# stops every process in `pids` (TERM, then KILL after a second) and removes the scratch.
#   bench_scratch NAME   sets tmp=/tmp/wisp-NAME.XXXXXX and installs the traps
pids=()
bench_cleanup() {
  local p
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null; done
  for p in "${pids[@]}"; do
    for _ in 1 2 3 4 5 6 7 8 9 10; do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$p" 2>/dev/null
  done
  wait 2>/dev/null
  rm -rf "$tmp"
}
bench_scratch() {
  tmp=$(mktemp -d "/tmp/wisp-$1.XXXXXX")
  trap bench_cleanup EXIT
  trap 'exit 130' INT TERM
}
