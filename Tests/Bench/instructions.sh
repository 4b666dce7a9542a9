#!/usr/bin/env bash
# Tests/Bench/instructions.sh — user-space instructions per relayed packet, counted by
# callgrind (exact and repeatable where wall-clock figures on a shared machine are not).
#
#   Tests/Bench/instructions.sh [BIN[:FRAME_VERSION]]...
#       default: .build-firmware/x86_64/wisp.debug (the unstripped firmware, for names);
#       FRAME_VERSION 0xD1 for a build that speaks wire protocol v1 (default 0xD2)
#
# Environment: BENCH_SIZES (default "64 512 1400"), COUNT (DATA frames sent per run,
# default 100000), RUNS (runs per binary and size, default 1; the figures of every run
# are printed), KEEP_DIR (keep each run's callgrind file there, as binN-SIZE-RUN.callgrind).
#
# Each run: sink, the relay under `valgrind --tool=callgrind`, and the bench generator on
# one circuit (`gen --circuit`, the same as `make bench`'s main table), all on 127.0.0.1.
# The relay is slower under valgrind than the generator, so its socket stays full and
# every receive batch is whole, as in the bench. Prints, per binary and size:
#   instr NAME SIZE drain=<Ir of RelayLoop.drain, inclusive, per packet the sink got>
#         total=<Ir of the whole process per packet> packets=<DATA frames the sink got>
# `drain` is steps 2–7 of the pipeline (receive, classify, handle, seal, queue, send),
# user space only (system calls count as the instructions that issue them). Processes are
# pinned like the bench (relay CPU 1, generator and sink CPU 0) and killed on exit.
set -uo pipefail
cd "$(dirname "$0")/../.."
root=$PWD
here=$root/Tests/Bench
build=$root/.build-bench
SIZES=${BENCH_SIZES:-64 512 1400}
COUNT=${COUNT:-100000}
RUNS=${RUNS:-1}
source "$here/cleanup.bash"
bench_scratch instructions
command -v valgrind >/dev/null && command -v callgrind_annotate >/dev/null ||
  { echo "instructions: needs valgrind (apt-get install valgrind)" >&2; exit 2; }
bins=("$@")
[ ${#bins[@]} -gt 0 ] || bins=("$root/.build-firmware/x86_64/wisp.debug")
pin_relay=() pin_load=()
[ "$(nproc)" -ge 2 ] && pin_relay=(taskset -c 1) pin_load=(taskset -c 0)
mkdir -p "$build"

port=$((20000 + RANDOM % 19000))
new_port() { port=$((port + 1)); [ $port -lt 40000 ] || port=20000; }

nbin=0
for spec in "${bins[@]}"; do
  nbin=$((nbin + 1))
  bin=${spec%%:*} ver=0xD2
  [ "$spec" != "$bin" ] && ver=${spec#*:}
  [ -x "$bin" ] || { echo "instructions: $bin is not an executable" >&2; exit 2; }
  for t in gen sink; do
    gcc -O2 -Wall -DWISP_VERSION="$ver" -o "$build/${t}_$ver" "$here/$t.c" || exit 2
  done
  help=$(timeout 5 "$bin" run --help 2>&1)
  has() { grep -q -- "$1" <<<"$help"; }
  for size in $SIZES; do
    for ((run = 1; run <= RUNS; run++)); do
      new_port; sport=$port; new_port; rport=$port
      out=$tmp/cg.$RANDOM
      args=(run --listen "127.0.0.1:$rport" --circuits 32768 --duration 120 --stats-interval 0
            --credit-window 0 --state-dir "$tmp/state-$RANDOM")
      has --lab-addresses && args+=(--lab-addresses yes --links optional)
      has --shards && args+=(--shards 1)
      has --circuits-per-source && args+=(--circuits-per-source 0 --pending-per-source 0)
      "${pin_load[@]}" "$build/sink_$ver" --port "$sport" --duration 120 --idle 3 >"$tmp/sink" 2>&1 &
      sp=$!; pids+=($sp)
      "${pin_relay[@]}" valgrind --tool=callgrind --callgrind-out-file="$out" "$bin" "${args[@]}" \
        >"$tmp/relay" 2>&1 &
      rp=$!; pids+=($rp)
      up=0
      for _ in $(seq 60); do
        "${pin_load[@]}" "$build/gen_$ver" --ping --port "$rport" --timeout 1 >/dev/null 2>&1 && { up=1; break; }
      done
      [ $up = 1 ] || { echo "instructions: relay did not answer PING: $(tail -n 3 "$tmp/relay")" >&2; exit 1; }
      "${pin_load[@]}" "$build/gen_$ver" --circuit --sink-port "$sport" --circuits 1 --create-timeout 20 \
        --port "$rport" --size "$size" --duration 60 --batch 32 --count "$COUNT" >"$tmp/gen" 2>"$tmp/generr"
      for _ in $(seq 100); do kill -0 "$sp" 2>/dev/null || break; sleep 0.1; done  # the sink ends 3 s idle
      kill -TERM "$rp"
      for _ in $(seq 300); do kill -0 "$rp" 2>/dev/null || break; sleep 0.1; done
      wait "$rp" 2>/dev/null
      packets=$(awk '/^sink packets/ { print $3 }' "$tmp/sink")
      [ -n "$packets" ] && [ "$packets" -gt 0 ] && [ -s "$out" ] ||
        { echo "instructions: no result ($(cat "$tmp/sink" "$tmp/generr" | tail -n 3 | tr '\n' ' '))" >&2; exit 1; }
      total=$(awk '/^(summary|totals):/ { print $2; exit }' "$out")
      drain=$(callgrind_annotate --inclusive=yes --threshold=100 "$out" 2>/dev/null |
        awk '/RelayLoop.*drain|drain.*RelayLoop|RelayLoopC5drain/ { gsub(",", "", $1); print $1; exit }')
      awk -v n="$(basename "$bin")" -v s="$size" -v d="${drain:-0}" -v t="$total" -v p="$packets" -v b="$bin" \
        'BEGIN { printf "instr %s %s drain=%.0f total=%.0f packets=%d  (%s)\n", n, s, d / p, t / p, p, b }'
      [ -n "${KEEP_DIR:-}" ] && mkdir -p "$KEEP_DIR" && cp "$out" "$KEEP_DIR/bin$nbin-$size-$run.callgrind"
    done
  done
done
