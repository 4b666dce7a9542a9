#!/usr/bin/env bash
# Tests/Bench/bench.sh — `make bench`: the wisp relay against a minimal C relay and socat.
#
#   Tests/Bench/bench.sh            (from anywhere; it works from the repo root)
#
# Environment (all optional; settle.sh has its own, SETTLE_*):
#   WISP_BIN=path          the relay to measure (default .build-firmware/x86_64/wisp)
#   BENCH_DURATION=3       seconds of traffic per run (1..30)
#   BENCH_SIZES="64 512 1400"
#   BENCH_CIRCUIT_CAPACITY=32768   --circuits given to every wisp run
#   BENCH_NO_PIN=1         do not pin processes to CPUs
#   BENCH_REPEAT=2         runs per relay and size in the main table (the best one counts)
#   BENCH_ONLY=relay       the main table only (relay figures and ratios; about 2 minutes)
#   WISP_START_BIN=path    another build (the commit a change started from) measured in the
#                          main table too, in the same rounds as the others: interleaved
#                          `relay_…_start_SIZE` figures; WISP_START_FRAME_VERSION=0xD1 for a
#                          build that speaks wire protocol v1
#
# Prints a table, then one line per figure: `bench NAME VALUE UNIT` (or `bench NAME n/a`
# where a figure could not be measured). Exits non-zero when any wisp figure is n/a or a
# tool could not be built. See Tests/Bench/README.md for what each figure means.
#
# Only ever sends to 127.0.0.1. Every process it starts is killed on exit (trap EXIT);
# every wait is bounded.
set -uo pipefail
cd "$(dirname "$0")/../.."
root=$PWD
here=$root/Tests/Bench
build=$root/.build-bench
WISP=${WISP_BIN:-$root/.build-firmware/x86_64/wisp}
DUR=${BENCH_DURATION:-3}
SIZES=${BENCH_SIZES:-64 512 1400}
CAP=${BENCH_CIRCUIT_CAPACITY:-32768}
REPEAT=${BENCH_REPEAT:-2}
case $REPEAT in [1-5]) ;; *) echo "bench: BENCH_REPEAT must be 1..5" >&2; exit 2 ;; esac
case $DUR in [1-9]|[12][0-9]|30) ;; *) echo "bench: BENCH_DURATION must be 1..30" >&2; exit 2 ;; esac

# ---------------------------------------------------------------- processes and clean-up
source "$(dirname "${BASH_SOURCE[0]}")/cleanup.bash"
bench_scratch bench

# Forgets a reaped process, so the EXIT trap never signals a recycled pid.
forget() {
  local p keep=()
  for p in "${pids[@]}"; do [ "$p" = "$1" ] || keep+=("$p"); done
  pids=("${keep[@]}")
}

# Stops one process we started: TERM, up to 2 s, then KILL.
stop() {
  local p=$1
  kill -TERM "$p" 2>/dev/null
  for _ in $(seq 20); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
  kill -KILL "$p" 2>/dev/null
  wait "$p" 2>/dev/null
  forget "$p"
}

# Waits (bounded: $2 seconds) for a process we started to end by itself.
await() {
  local p=$1 limit=$2 i
  for ((i = 0; i < limit * 10; i++)); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
  kill -0 "$p" 2>/dev/null && stop "$p"
  wait "$p" 2>/dev/null
  forget "$p"
}

# ---------------------------------------------------------------- dependencies and build
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else "$@"; fi; }
apt_updated=
need() { # need COMMAND PACKAGE
  command -v "$1" >/dev/null 2>&1 && return 0
  echo "bench: installing $2" >&2
  if [ -z "$apt_updated" ]; then as_root apt-get update -qq >/dev/null; apt_updated=1; fi
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq "$2" >/dev/null
  command -v "$1" >/dev/null 2>&1 || { echo "bench: could not install $2" >&2; return 1; }
}
need gcc gcc || exit 2
need socat socat || exit 2
need taskset util-linux || BENCH_NO_PIN=1

mkdir -p "$build"
for t in gen sink baseline_relay; do
  gcc -O2 -Wall -o "$build/$t" "$here/$t.c" || { echo "bench: building $t failed" >&2; exit 2; }
done
START=${WISP_START_BIN:-}
if [ -n "$START" ]; then
  [ -x "$START" ] || { echo "bench: WISP_START_BIN=$START is not an executable" >&2; exit 2; }
  start_help=$(timeout 5 "$START" run --help 2>&1) || { echo "bench: '$START run --help' failed" >&2; exit 2; }
  for t in gen sink; do
    gcc -O2 -Wall -DWISP_VERSION="${WISP_START_FRAME_VERSION:-0xD2}" -o "$build/${t}_start" "$here/$t.c" ||
      { echo "bench: building ${t}_start failed" >&2; exit 2; }
  done
fi
gcc -O2 -Wall -fPIC -shared -o "$build/malloc_count.so" "$here/malloc_count.c" -ldl ||
  { echo "bench: building malloc_count.so failed" >&2; exit 2; }

# ---------------------------------------------------------------- CPU pinning
# The machine has 2 cores. Each relay (wisp, the C baseline and socat alike) runs alone on
# CPU 1; the generator and the sink share CPU 0. Pinning keeps the relay from being
# migrated onto the generator's core mid-run, which made results jump between runs, and it
# gives all three relays exactly the same conditions. With fewer than 2 CPUs (or
# BENCH_NO_PIN=1) nothing is pinned. The shard runs let the relay use both cores.
# These are command prefixes (arrays, not functions) so that `$!` of a background job is
# the tool's own pid (taskset execs it), which the clean-up can signal.
if [ -z "${BENCH_NO_PIN:-}" ] && [ "$(nproc)" -ge 2 ]; then
  pin_relay=(taskset -c 1) pin_load=(taskset -c 0) pin_both=(taskset -c 0,1)
  pin_note="relay on CPU 1, generator+sink on CPU 0"
else
  pin_relay=() pin_load=() pin_both=()
  pin_note="no CPU pinning"
fi

# ---------------------------------------------------------------- ports
# A private range picked at random (20000-39999), skipping ports already bound.
next_port=$((20000 + RANDOM % 19000))
port_busy() { grep -qi ":$(printf '%04X' "$1") " /proc/net/udp 2>/dev/null; }
new_port() {
  local i
  for ((i = 0; i < 200; i++)); do
    next_port=$((next_port + 1)); [ $next_port -lt 40000 ] || next_port=20000
    port_busy $next_port || { port=$next_port; return 0; }
  done
  echo "bench: no free port" >&2; exit 2
}

# ---------------------------------------------------------------- the wisp binary
wisp_ok=1 wisp_why=
if [ ! -x "$WISP" ]; then
  wisp_ok=0 wisp_why="no binary at ${WISP#$root/}"
elif ! run_help=$(timeout 5 "$WISP" run --help 2>&1); then
  wisp_ok=0 wisp_why="'wisp run --help' failed"
fi
wisp_has() { [ $wisp_ok = 1 ] && grep -q -- "$1" <<<"$run_help"; }

# ---------------------------------------------------------------- one measured run
# run_relay KIND SIZE [options]   KIND = wisp | baseline | socat
#   options: --circuits N (wisp: circuits the generator makes), --gso on|off, --shards N,
#            --sockets K (generator source sockets), --alloc (LD_PRELOAD the counter and
#            bracket it), --rss (read VmHWM while the relay runs), --pin-both (relay may
#            use both CPUs), --dur S (seconds of traffic instead of BENCH_DURATION)
# Sets: r_pps r_gbps (sink-measured; empty = n/a), r_offered (generator's packets/s),
# r_rss (kB), r_allocs, r_note.
relay_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat" 2>/dev/null || echo 0; }

run_relay() {
  local kind=$1 size=$2; shift 2
  local circuits=1 gso= shards= sockets=1 alloc=0 rss=0 both=0 dur=$DUR gengso=()
  while [ $# -gt 0 ]; do
    case $1 in
      --circuits) circuits=$2; shift ;;
      --gso) gso=$2; shift ;;
      --shards) shards=$2; shift ;;
      --sockets) sockets=$2; shift ;;
      --alloc) alloc=1 ;;
      --rss) rss=1 ;;
      --pin-both) both=1 ;;
      --gen-gso) gengso=(--gso) ;;
      --dur) dur=$2; shift ;;
    esac
    shift
  done
  r_pps= r_gbps= r_rss= r_allocs= r_note= r_offered= r_core=
  local sp rp gp sport rport life=$((dur + 12))
  local pin=("${pin_relay[@]}"); [ $both = 1 ] && pin=("${pin_both[@]}")
  new_port; sport=$port
  new_port; rport=$port
  local log=$tmp/$kind-$size-$RANDOM
  # The sink outlives the generator; it ends by itself 1 s after the last DATA.
  local gen=$build/gen sink=$build/sink
  [ $kind = start ] && gen=$build/gen_start sink=$build/sink_start
  "${pin_load[@]}" "$sink" --port "$sport" --duration "$life" --idle 1 >"$log.sink" 2>&1 &
  sp=$!; pids+=($sp)
  case $kind in
    baseline)
      "${pin[@]}" "$build/baseline_relay" --listen "$rport" --to "$sport" --duration "$life" \
        >"$log.relay" 2>&1 & ;;
    socat)
      # UDP4-RECV: one socket receiving datagrams from any peer, no replies;
      # UDP4-SENDTO: every datagram read is sent as one datagram to the sink.
      "${pin[@]}" socat -u -b 2048 "UDP4-RECV:$rport,bind=127.0.0.1,rcvbuf=8388608" \
        "UDP4-SENDTO:127.0.0.1:$sport,sndbuf=8388608" >"$log.relay" 2>&1 & ;;
    wisp|start)
      local bin=$WISP help=$run_help
      [ $kind = start ] && bin=$START help=$start_help
      has() { grep -q -- "$1" <<<"$help"; }
      # The generator signs no receipts: relay without requiring them, state in the temp dir.
      local args=(run --listen "127.0.0.1:$rport" --circuits "$CAP" --duration "$life" --stats-interval 0
                  --credit-window 0 --state-dir "$tmp/state-$RANDOM")
      [ -n "$gso" ] && args+=(--gso "$gso")
      # The generator sends plain frames to a sink on loopback: lab mode, plain links
      # (builds from before these options had both by default).
      has --lab-addresses && args+=(--lab-addresses yes --links optional)
      # One event loop unless a run asks otherwise: the baseline and socat are single-
      # threaded and pinned to one CPU, so wisp gets the same single core.
      [ -z "$shards" ] && has --shards && shards=1
      [ -n "$shards" ] && args+=(--shards "$shards")
      # The generator builds every circuit from one address: lift the per-source shares
      # (a node's defaults refuse one address more than 512 circuits, 64 pending).
      has --circuits-per-source && args+=(--circuits-per-source 0 --pending-per-source 0)
      if [ $alloc = 1 ]; then
        MALLOC_COUNT_FILE=$log.mc LD_PRELOAD=$build/malloc_count.so \
          "${pin[@]}" "$bin" "${args[@]}" >"$log.relay" 2>&1 &
      else
        "${pin[@]}" "$bin" "${args[@]}" >"$log.relay" 2>&1 &
      fi ;;
  esac
  rp=$!; pids+=($rp)
  # Readiness: wisp answers PING with PONG; the others just get 0.3 s.
  sleep 0.3
  if [ "$kind" = wisp ] || [ "$kind" = start ]; then
    "${pin_load[@]}" "$gen" --ping --port "$rport" --timeout 2 >/dev/null 2>&1 ||
      r_note="no PONG;"
  fi
  if ! kill -0 "$rp" 2>/dev/null; then
    r_note="$kind exited at start: $(tail -n 2 "$log.relay" | tr '\n' ' ')"
    stop "$sp"; stop "$rp"
    return 1
  fi
  local mode=(--raw)
  { [ "$kind" = wisp ] || [ "$kind" = start ]; } && mode=(--circuit --sink-port "$sport" --circuits "$circuits" --sockets "$sockets" --create-timeout 8)
  "${pin_load[@]}" "$gen" "${mode[@]}" "${gengso[@]}" --port "$rport" --size "$size" --duration "$dur" \
    --batch 32 --count 100000000 >"$log.gen" 2>"$log.generr" &
  gp=$!; pids+=($gp)
  # The relay's CPU time (user + system, /proc/PID/stat fields 14-15) while the generator
  # runs: packets per relay CPU-second measure the relay even when the generator, not the
  # relay, sets the pace. Loopback delivery to the sink runs in the sender's context, so
  # every relay is charged the same kernel work for it.
  local cpu0 cpu1
  cpu0=$(relay_ticks "$rp")
  if [ $alloc = 1 ]; then
    alloc_bracket "$gp" "$rp" "$sp" "$log"
  fi
  await "$gp" $((dur + 12))
  cpu1=$(relay_ticks "$rp")
  if [ $rss = 1 ] && kill -0 "$rp" 2>/dev/null; then
    # VmHWM: the peak resident set, read while the relay still runs.
    r_rss=$(awk '/^VmHWM:/ {print $2}' "/proc/$rp/status" 2>/dev/null)
  fi
  await "$sp" 5
  stop "$rp"
  if grep -q '^gen sent 0 ' "$log.gen" || ! grep -q '^gen sent' "$log.gen"; then
    r_note+=" generator: $(tail -n 1 "$log.generr")"
    return 1
  fi
  local line
  line=$(grep '^gen sent' "$log.gen")
  set -- $line # gen sent N bytes B seconds T ...
  r_offered=$(awk -v n="$3" -v t="$7" 'BEGIN { if (t > 0) printf "%.0f", n / t }')
  line=$(grep '^sink packets' "$log.sink")
  set -- $line
  # sink packets N bytes B seconds T pps X gbps Y creates C other O
  if [ -n "$line" ] && [ "$3" -gt 0 ]; then
    r_pps=$9 r_gbps=${11}
    r_core=$(awk -v n="$3" -v a="$cpu0" -v b="$cpu1" -v hz="$(getconf CLK_TCK)" \
      'BEGIN { if (b > a) printf "%.0f", n / ((b - a) / hz) }')
  else
    r_note+=" sink got no DATA"
    return 1
  fi
  return 0
}

# Allocation bracket (wisp only): after the circuits are up and 1 s of warm-up, snapshot
# the relay's allocation count (SIGUSR2 to wisp) and the sink's packet count (SIGUSR1) at
# t1, again at t2 = t1 + BRACKET seconds; allocs/packet = Δallocs / Δpackets-at-the-sink.
BRACKET=1.5
read_mc() { # waits (bounded) for the counter file the preload writes on SIGUSR2
  local f=$1 i
  for i in $(seq 20); do
    if [ -s "$f" ] && [ "$(tail -c 1 "$f" | od -An -c | tr -d ' ')" = '\n' ]; then cat "$f"; return; fi
    sleep 0.05
  done
}
alloc_bracket() {
  local gp=$1 rp=$2 sp=$3 log=$4 i a1 a2 s1 s2
  for i in $(seq 100); do grep -q 'circuits up' "$log.generr" 2>/dev/null && break; kill -0 "$gp" 2>/dev/null || return; sleep 0.1; done
  sleep 1
  rm -f "$log.mc"; kill -USR2 "$rp" 2>/dev/null; kill -USR1 "$sp" 2>/dev/null
  a1=$(read_mc "$log.mc")
  sleep $BRACKET
  rm -f "$log.mc"; kill -USR2 "$rp" 2>/dev/null; kill -USR1 "$sp" 2>/dev/null
  a2=$(read_mc "$log.mc")
  sleep 0.2
  s1=$(awk '/^snap/ {print $2}' "$log.sink" | sed -n 1p)
  s2=$(awk '/^snap/ {print $2}' "$log.sink" | sed -n 2p)
  if [ -n "$a1" ] && [ -n "$a2" ] && [ -n "$s1" ] && [ -n "$s2" ] && [ "$s2" -gt "$s1" ]; then
    r_allocs=$(awk -v a="$((a2 - a1))" -v p="$((s2 - s1))" 'BEGIN { printf "%.4f", a / p }')
    alloc_detail="$((a2 - a1)) allocations / $((s2 - s1)) packets"
  else
    alloc_detail="bracket failed (allocs '$a1' '$a2', sink '$s1' '$s2')"
  fi
}

# ---------------------------------------------------------------- figures
declare -A fig unit
order=()
put() { fig[$1]=$2; unit[$1]=$3; order+=("$1"); } # VALUE empty = n/a
ratio() { [ -n "$1" ] && [ -n "$2" ] && awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b }'; }
notes=()
optional=() # figures whose n/a is a skip, not a failure

echo "wisp bench: $DUR s per run, $pin_note, sizes $SIZES" >&2
[ $wisp_ok = 1 ] || echo "bench: wisp column n/a: $wisp_why" >&2

# Main table: for each size the three relays take turns, REPEAT rounds, and the best run
# of each counts (other jobs on a shared machine only ever make a run slower). The
# per-core figure is the best of the rounds too, on its own: a run that other jobs
# preempted costs more CPU per packet whatever its packet rate. A run where
# the relay forwarded nearly all the generator offered was limited by the generator, not
# the relay: its figure is a lower bound and a note says so.
declare -A best_pps best_gbps best_off best_core
for size in $SIZES; do
  kinds=(wisp baseline socat); [ -n "$START" ] && kinds=(wisp start baseline socat)
  for ((round = 1; round <= REPEAT; round++)); do
    for kind in "${kinds[@]}"; do
      [ $kind = wisp ] && [ $wisp_ok = 0 ] && continue
      echo "bench: $kind, $size-byte payloads, run $round/$REPEAT ..." >&2
      if run_relay $kind "$size"; then
        if awk -v a="$r_pps" -v b="${best_pps[$kind]:-0}" 'BEGIN { exit !(a > b) }'; then
          best_pps[$kind]=$r_pps best_gbps[$kind]=$r_gbps best_off[$kind]=$r_offered
        fi
        if [ -n "$r_core" ] && awk -v a="$r_core" -v b="${best_core[$kind]:-0}" 'BEGIN { exit !(a > b) }'; then
          best_core[$kind]=$r_core
        fi
      else
        notes+=("$kind $size run $round: $r_note")
      fi
    done
  done
  for kind in "${kinds[@]}"; do
    put relay_pps_${kind}_$size "${best_pps[$kind]:-}" pps
    put relay_gbps_${kind}_$size "${best_gbps[$kind]:-}" Gbit/s
    put relay_pps_per_core_${kind}_$size "${best_core[$kind]:-}" pps/cpu-s
    if [ -n "${best_pps[$kind]:-}" ] &&
       awk -v a="${best_pps[$kind]}" -v o="${best_off[$kind]}" 'BEGIN { exit !(a >= 0.95 * o) }'; then
      notes+=("$kind $size: forwarded ≥95% of the offered ${best_off[$kind]} pps — generator-limited, a lower bound")
    fi
  done
  unset best_pps best_gbps best_off best_core; declare -A best_pps best_gbps best_off best_core best_core
  put relay_ratio_baseline_$size "$(ratio "${fig[relay_pps_wisp_$size]}" "${fig[relay_pps_baseline_$size]}")" x
  put relay_ratio_socat_$size "$(ratio "${fig[relay_pps_wisp_$size]}" "${fig[relay_pps_socat_$size]}")" x
  put relay_ratio_baseline_per_core_$size "$(ratio "${fig[relay_pps_per_core_wisp_$size]}" "${fig[relay_pps_per_core_baseline_$size]}")" x
  put relay_ratio_socat_per_core_$size "$(ratio "${fig[relay_pps_per_core_wisp_$size]}" "${fig[relay_pps_per_core_socat_$size]}")" x
  if [ -n "$START" ]; then
    put relay_ratio_baseline_per_core_start_$size "$(ratio "${fig[relay_pps_per_core_start_$size]}" "${fig[relay_pps_per_core_baseline_$size]}")" x
    put relay_ratio_per_core_wisp_over_start_$size "$(ratio "${fig[relay_pps_per_core_wisp_$size]}" "${fig[relay_pps_per_core_start_$size]}")" x
  fi
done

# BENCH_ONLY=relay: the main table's figures alone (with WISP_START_BIN, the interleaved
# ratios against the start build), without the other parts.
if [ "${BENCH_ONLY:-}" = relay ]; then
  for n in "${notes[@]}"; do echo "note: $n"; done
  status=0
  for name in "${order[@]}"; do
    echo "bench $name ${fig[$name]:-n/a} ${unit[$name]}"
    [ -n "${fig[$name]}" ] || status=1
  done
  exit $status
fi

alloc_detail=
if [ $wisp_ok = 1 ]; then
  echo "bench: wisp allocations per packet ..." >&2
  # Warm-up 1 s + bracket 1.5 s must fit in the traffic time: at least 4 s.
  run_relay wisp 64 --alloc --circuits 64 --dur $((DUR > 4 ? DUR : 4)) || notes+=("allocs: $r_note")
  put allocs_per_packet "$r_allocs" allocs/packet
  [ -n "$alloc_detail" ] && notes+=("allocs: $alloc_detail")
  for n in 1000 10000; do
    echo "bench: wisp peak RSS with $n circuits ..." >&2
    run_relay wisp 512 --circuits $n --rss || notes+=("rss $n: $r_note")
    put rss_kb_$((n / 1000))k_circuits "$r_rss" kB
  done
  for g in off on; do
    echo "bench: wisp 1400 bytes --gso $g ..." >&2
    if wisp_has --gso; then
      run_relay wisp 1400 --gso $g || notes+=("gso $g: $r_note")
    else r_pps= r_gbps=; notes+=("gso: 'wisp run --help' does not list --gso"); fi
    put relay_pps_wisp_1400_gso_$g "$r_pps" pps
    put relay_gbps_wisp_1400_gso_$g "$r_gbps" Gbit/s
  done
  # The same with a generator that sends UDP GSO: on loopback the run reaches wisp as one
  # coalesced datagram (UDP GRO), which it forwards segment by segment, sent with GSO.
  echo "bench: wisp 1400 bytes, GSO generator (GRO + GSO) ..." >&2
  run_relay wisp 1400 --gso on --gen-gso || notes+=("gro: $r_note")
  put relay_pps_wisp_1400_gro_gso "$r_pps" pps
  put relay_gbps_wisp_1400_gro_gso "$r_gbps" Gbit/s
  put gro_gain_over_plain_1400 "$(ratio "${fig[relay_pps_wisp_1400_gro_gso]}" "${fig[relay_pps_wisp_1400_gso_off]}")" x
  # The plain generator offers only ~0.2-0.26 M packets/s, so at 1400 B every relay that
  # keeps up reads as that ceiling. Fed by the same GSO generator (the kernel hands the
  # baseline and socat separate datagrams; wisp takes the runs whole with GRO), the three
  # relays are compared above that ceiling.
  for k in baseline socat; do
    echo "bench: $k 1400 bytes, GSO generator ..." >&2
    run_relay $k 1400 --gen-gso || notes+=("$k gso generator: $r_note")
    put relay_pps_${k}_1400_gsogen "$r_pps" pps
  done
  put relay_ratio_baseline_1400_gsogen "$(ratio "${fig[relay_pps_wisp_1400_gro_gso]}" "${fig[relay_pps_baseline_1400_gsogen]}")" x
  put relay_ratio_socat_1400_gsogen "$(ratio "${fig[relay_pps_wisp_1400_gro_gso]}" "${fig[relay_pps_socat_1400_gsogen]}")" x
  if wisp_has --shards; then
    for s in 1 2; do
      echo "bench: wisp --shards $s ..." >&2
      # Both shard runs: relay may use both CPUs, 2 generator sockets (2 source ports so
      # a SO_REUSEPORT hash can spread them), 64 circuits, 64-byte payloads.
      run_relay wisp 64 --shards $s --sockets 2 --circuits 64 --pin-both || notes+=("shards $s: $r_note")
      put relay_pps_wisp_64_shards_$s "$r_pps" pps
    done
    put shard_scaling_2_over_1 "$(ratio "${fig[relay_pps_wisp_64_shards_2]}" "${fig[relay_pps_wisp_64_shards_1]}")" x
  else
    notes+=("shards: 'wisp run --help' does not list --shards (skipped)")
    optional+=(relay_pps_wisp_64_shards_1 relay_pps_wisp_64_shards_2 shard_scaling_2_over_1)
    put relay_pps_wisp_64_shards_1 "" pps; put relay_pps_wisp_64_shards_2 "" pps
    put shard_scaling_2_over_1 "" x
  fi
else
  for n in allocs_per_packet rss_kb_1k_circuits rss_kb_10k_circuits relay_pps_wisp_1400_gso_off \
           relay_pps_wisp_1400_gro_gso relay_gbps_wisp_1400_gro_gso gro_gain_over_plain_1400 \
           relay_pps_baseline_1400_gsogen relay_pps_socat_1400_gsogen relay_ratio_baseline_1400_gsogen \
           relay_ratio_socat_1400_gsogen \
           relay_gbps_wisp_1400_gso_off relay_pps_wisp_1400_gso_on relay_gbps_wisp_1400_gso_on \
           relay_pps_wisp_64_shards_1 relay_pps_wisp_64_shards_2 shard_scaling_2_over_1; do
    put $n "" ""
  done
fi

# DTLS costs measured inside one wisp process (no network): `wisp tls-bench` prints its own
# `bench NAME VALUE UNIT` lines, which are taken over as they are. tls-bench is a developer
# tool, not in the firmware: it runs from the host build (Toolchain/host-build.sh, release;
# the DTLS and AEAD work is mbedTLS's either way). Skipped (a note) when there is no host
# build; n/a (a failure) when it runs and fails.
tls_lines=()
WISP_DEV=$(WISP_DEV_BIN=${WISP_DEV_BIN:-} "$root/Toolchain/host-build.sh" 2>"$tmp/host-build.err") || WISP_DEV=
if [ $wisp_ok = 1 ]; then
  if [ -n "$WISP_DEV" ] && timeout 5 "$WISP_DEV" help tls-bench >/dev/null 2>&1; then
    echo "bench: wisp tls-bench --seconds 2 (host build) ..." >&2
    if tls_out=$(timeout 180 "${pin_relay[@]}" "$WISP_DEV" tls-bench --seconds 2 2>"$tmp/tls-bench.err"); then
      while read -r _ name value u; do
        [ -n "$name" ] && put "$name" "$value" "$u" && tls_lines+=("$name")
      done < <(grep '^bench ' <<<"$tls_out")
      while IFS= read -r line; do notes+=("tls-bench: $line"); done < <(grep '^note: ' <<<"$tls_out" | sed 's/^note: //')
    fi
    [ ${#tls_lines[@]} -gt 0 ] || { put tls_bench "" ""; notes+=("tls-bench failed: $(tail -n 1 "$tmp/tls-bench.err")"); }
  else
    notes+=("tls-bench: no host build with tls-bench ($(tail -n 1 "$tmp/host-build.err" 2>/dev/null); skipped)")
  fi
fi

# Settlement of a network's day (issue 15): `credits settle` over 10^6 receipts in 1,000
# claims, from the host build (settlement is server-side software; settle.sh caches its
# fixtures in .build-bench/). It prints its own `bench settle_…` lines.
if [ -n "$WISP_DEV" ]; then
  echo "bench: settlement, 10^6 receipts in 1,000 claims (settle.sh; first run makes fixtures) ..." >&2
  settle_out=$(WISP_DEV_BIN="$WISP_DEV" timeout 1800 "$root/Tests/Bench/settle.sh" 2>"$tmp/settle.err") ||
    notes+=("settle.sh failed: $(tail -n 1 "$tmp/settle.err")")
  while read -r _ n v u; do [ "$v" = n/a ] && v=; [ -n "$n" ] && put "$n" "$v" "$u"; done < <(grep '^bench ' <<<"$settle_out")
  while IFS= read -r line; do notes+=("${line#note: }"); done < <(grep '^note: ' <<<"$settle_out")
  [ -n "${fig[settle_seconds]:-}" ] || put settle_seconds "" ""
else
  notes+=("settle: no host build (skipped)")
fi

# Other CPU-heavy processes on this machine make every figure lower and noisier: name them.
busy=$(ps -eo pcpu=,comm= --sort=-pcpu 2>/dev/null |
  awk '$1 >= 15 && $2 !~ /^(gen|sink|baseline_relay|socat|wisp|taskset|ps|awk)$/ { printf "%s %s%%, ", $2, $1 }')
[ -n "$busy" ] && notes+=("other busy processes (lifetime CPU): ${busy%, } — figures are lower and noisier than on an idle machine")

# The encrypted relay: client and exit through DTLS sessions, next to the AEAD ceiling.
if [ $wisp_ok = 1 ]; then
  echo "bench: encrypted relay (enc-relay.sh) ..." >&2
  enc_out=$(WISP_BIN="$WISP" WISP_DEV_BIN="$WISP_DEV" timeout 180 "$root/Tests/Bench/enc-relay.sh") || notes+=("enc-relay.sh failed")
  while read -r _ n v u; do [ -n "$n" ] && put "$n" "$v" "$u"; done < <(grep '^bench ' <<<"$enc_out")
  [ -n "${fig[enc_relay_ratio_aead_1400]:-}" ] || put enc_relay_ratio_aead_1400 "" ""
fi

while read -r _ n v u; do put "$n" "$v" "$u"; done < <("$root/Tests/Bench/journal-wear.sh" 2>/dev/null | tee /dev/stderr | grep "^bench journal_" || echo "bench journal_bytes_per_hour")

# The flood (issue 14's acceptance): a sealed circuit's throughput under hostile RECEIPTs and
# sealed CREATEs at 10x the node-wide budgets, the worker's CPU, RSS. flood.sh prints its
# own `bench flood_…` lines and `check flood NAME PASS|FAIL …` lines (against the issue's
# thresholds), which are printed again at the end; a FAIL check is a figure, not a failure.
flood_checks=()
if [ $wisp_ok = 1 ]; then
  echo "bench: flood (flood.sh, about 90 s) ..." >&2
  flood_out=$(WISP_BIN="$WISP" timeout 300 "$root/Tests/Bench/flood.sh" 2>"$tmp/flood.err") ||
    notes+=("flood.sh failed: $(tail -n 1 "$tmp/flood.err")")
  while read -r _ n v u; do [ "$v" = n/a ] && v=; [ -n "$n" ] && put "$n" "$v" "$u"; done < <(grep '^bench ' <<<"$flood_out")
  while IFS= read -r line; do flood_checks+=("$line"); done < <(grep '^check flood ' <<<"$flood_out")
  while IFS= read -r line; do notes+=("flood: ${line#note: }"); done < <(grep '^note: ' <<<"$flood_out")
  [ -n "${fig[flood_throughput_ratio]:-}" ] || put flood_throughput_ratio "" ""
fi
# `wisp forward` (issue 17): WireGuard through a 3-hop sealed path next to a direct path, in
# network namespaces (root only: without root forward.sh prints n/a, and they are a skip).
if [ $wisp_ok = 1 ]; then
  echo "bench: wisp forward, 3 hops vs direct (forward.sh, about 30 s) ..." >&2
  fwd_out=$(WISP_BIN="$WISP" timeout 180 "$root/Tests/Bench/forward.sh" 2>"$tmp/forward.err") ||
    notes+=("forward.sh failed: $(tail -n 1 "$tmp/forward.err")")
  while read -r _ n v u; do [ "$v" = n/a ] && v=; [ -n "$n" ] && put "$n" "$v" "$u"; done < <(grep '^bench ' <<<"$fwd_out")
  while IFS= read -r line; do notes+=("forward: ${line#note: }"); done < <(grep '^note: ' <<<"$fwd_out")
  [ "$(id -u)" = 0 ] || optional+=(forward_tcp_mbit_3hop forward_tcp_mbit_direct forward_tcp_up_mbit_3hop forward_tcp_up_mbit_direct
                                   forward_tcp_ratio forward_rtt_ms_3hop forward_rtt_ms_direct forward_added_rtt_ms)
  [ -n "${fig[forward_tcp_ratio]:-}" ] || put forward_tcp_ratio "" ""
fi
# ---------------------------------------------------------------- report
v() { local x=${fig[$1]:-}; echo "${x:-n/a}"; }
kpps() { local x=${fig[$1]:-}; [ -n "$x" ] && awk -v p="$x" 'BEGIN { printf "%.0f", p / 1000 }' || echo n/a; }
echo
echo "relay throughput on loopback (sink-measured; $DUR s per run; $pin_note)"
printf '%-8s | %-20s | %-20s | %-20s | %-9s | %-9s\n' payload "wisp kpps  Gbit/s" "baseline kpps Gbit/s" "socat kpps  Gbit/s" wisp/base wisp/socat
printf '%s\n' "---------+----------------------+----------------------+----------------------+-----------+-----------"
for size in $SIZES; do
  printf '%-8s | %9s %10s | %9s %10s | %9s %10s | %9s | %9s\n' "$size B" \
    "$(kpps relay_pps_wisp_$size)" "$(v relay_gbps_wisp_$size)" \
    "$(kpps relay_pps_baseline_$size)" "$(v relay_gbps_baseline_$size)" \
    "$(kpps relay_pps_socat_$size)" "$(v relay_gbps_socat_$size)" \
    "$(v relay_ratio_baseline_$size)" "$(v relay_ratio_socat_$size)"
done
echo
echo "the same runs per relay CPU-second (user + system time of the relay process; packets/s one core sustains)"
printf '%-8s | %-14s | %-14s | %-14s | %-9s | %-9s\n' payload "wisp kpps/core" "base kpps/core" "socat kpps/core" wisp/base wisp/socat
for size in $SIZES; do
  printf '%-8s | %14s | %14s | %14s | %9s | %9s\n' "$size B" \
    "$(kpps relay_pps_per_core_wisp_$size)" "$(kpps relay_pps_per_core_baseline_$size)" "$(kpps relay_pps_per_core_socat_$size)" \
    "$(v relay_ratio_baseline_per_core_$size)" "$(v relay_ratio_socat_per_core_$size)"
done
echo
printf '%-34s %s\n' "wisp allocations per packet" "$(v allocs_per_packet)" \
  "wisp peak RSS, 1,000 circuits" "$(v rss_kb_1k_circuits) kB" \
  "wisp peak RSS, 10,000 circuits" "$(v rss_kb_10k_circuits) kB" \
  "wisp 1400 B, --gso off" "$(kpps relay_pps_wisp_1400_gso_off) kpps, $(v relay_gbps_wisp_1400_gso_off) Gbit/s" \
  "wisp 1400 B, --gso on" "$(kpps relay_pps_wisp_1400_gso_on) kpps, $(v relay_gbps_wisp_1400_gso_on) Gbit/s" \
  "wisp 1400 B, GSO generator (GRO)" "$(kpps relay_pps_wisp_1400_gro_gso) kpps, $(v relay_gbps_wisp_1400_gro_gso) Gbit/s" \
  "baseline / socat 1400 B, GSO gen." "$(kpps relay_pps_baseline_1400_gsogen) / $(kpps relay_pps_socat_1400_gsogen) kpps; wisp is $(v relay_ratio_baseline_1400_gsogen)x / $(v relay_ratio_socat_1400_gsogen)x" \
  "wisp --shards 2 / --shards 1" "$(v shard_scaling_2_over_1)"
if [ ${#tls_lines[@]} -gt 0 ]; then
  printf '%-34s %s\n' "DTLS full handshakes (1 core CPU)" "$(v handshakes_full_per_s)/s both sides, $(v handshakes_full_server_per_s)/s server only" \
    "DTLS resumed handshakes" "$(v handshakes_resumed_per_s)/s both sides" \
    "AEAD seal+open 1400 B chacha/aes" "$(v aead_seal_open_1400_chacha_ns) / $(v aead_seal_open_1400_aes_ns) ns" \
    "DTLS record 1400 B (first suite)" "$(v dtls_record_seal_open_1400_ns) ns, ratio to AEAD $(v enc_relay_ratio_aead_1400)"
fi
if [ ${#notes[@]} -gt 0 ] || [ $wisp_ok = 0 ]; then
  echo
  [ $wisp_ok = 1 ] || echo "note: wisp: $wisp_why"
  for n in "${notes[@]}"; do echo "note: $n"; done
fi
echo
status=0
for name in "${order[@]}"; do
  if [ -n "${fig[$name]}" ]; then
    echo "bench $name ${fig[$name]} ${unit[$name]}"
  else
    echo "bench $name n/a"
    case " ${optional[*]} " in *" $name "*) ;; *) status=1 ;; esac
  fi
done
for line in "${flood_checks[@]}"; do echo "$line"; done
# A baseline or socat figure missing means the harness itself is broken.
for name in "${order[@]}"; do
  case $name in relay_pps_baseline_*|relay_pps_socat_*) [ -n "${fig[$name]}" ] || status=1 ;; esac
done
exit $status
