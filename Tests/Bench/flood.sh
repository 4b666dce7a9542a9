#!/usr/bin/env bash
# Tests/Bench/flood.sh — issue 14's flood acceptance as a benchmark: an established sealed
# circuit's throughput with and without a flood of hostile RECEIPTs and sealed CREATEs at
# 10x the node-wide budgets, the worker thread's CPU against what the budgets allow, RSS.
#
#   Tests/Bench/flood.sh          (from anywhere; called by bench.sh)
#
# One exit node (`wisp run`, one shard, an exit to a Python UDP echo, the default credit
# window, `links = optional`, `lab_addresses = yes` when this build knows the key) and a
# `wisp client` holding one sealed circuit through it (--keys pins the exit: sealed end to
# end, signing receipts) run on CPU 0; the flooder (flood_peer.py) runs alone on CPU 1.
#   1. calibration: the cost of one signature check and of one key agreement on the
#      worker thread, from receipts (then sealed CREATEs) sent below every budget, 4 s each;
#   2. the client sends for FLOOD_SECONDS unloaded (after FLOOD_WARM s), then for
#      FLOOD_SECONDS with the flood: FLOOD_FACTOR x receipts_per_second bad-signature
#      RECEIPTs on circuits the flooder built, and FLOOD_FACTOR x key_agreements_per_second
#      sealed CREATEs (each CREATED destroyed at once), from FLOOD_SOURCES addresses in
#      127.0.0.0/8, so that the node-wide budgets bind, not only the per-source one.
# Throughput is the client's echoes per second (its per-second lines, time-stamped as they
# arrive). The node's threads are told apart by creation order (they are not named): the
# main thread is the control loop, the first thread it spawns the credit worker, the next
# the shard. CPU from /proc/PID/task/TID/stat, RSS (VmRSS) from /proc/PID/status.
#
# Environment (optional): WISP_BIN, FLOOD_CLIENT_BIN (the client's build; default
# WISP_BIN), FLOOD_SECONDS=20 (5..30), FLOOD_WARM=3, FLOOD_FACTOR=10,
# FLOOD_SOURCES=16, FLOOD_KBIT=30000 (the client's rate; a Python echo tops out near
# 40 Mbit/s), FLOOD_SIZE=1200, FLOOD_CREDIT_WINDOW (bytes; unset: the node's default,
# 4 MiB; 0 relays without requiring receipts, which separates the CPU the flood takes from
# its effect on the circuit's receipts), BENCH_NO_PIN=1.
#
# Prints `bench flood_NAME VALUE UNIT` lines and `check flood NAME PASS|FAIL figure` lines
# (against issue 14: ratio >= 0.80, RSS delta <= 1024 kB, worker CPU within the budget).
# A benchmark: exits non-zero only when the harness fails (a process that did not start,
# no figures), never for a FAIL check. Sends only to 127.0.0.0/8; every process it starts
# is killed on exit; every wait is bounded.
set -uo pipefail
cd "$(dirname "$0")/../.."
root=$PWD
WISP=${WISP_BIN:-$root/.build-firmware/x86_64/wisp}
CLIENT=${FLOOD_CLIENT_BIN:-$WISP}
SECS=${FLOOD_SECONDS:-20}
WARM=${FLOOD_WARM:-3}
FACTOR=${FLOOD_FACTOR:-10}
NSRC=${FLOOD_SOURCES:-16}
KBIT=${FLOOD_KBIT:-30000}
SIZE=${FLOOD_SIZE:-1200}
case $SECS in [5-9]|[12][0-9]|30) ;; *) echo "flood: FLOOD_SECONDS must be 5..30" >&2; exit 2 ;; esac
case $WARM in [1-9]) ;; *) echo "flood: FLOOD_WARM must be 1..9" >&2; exit 2 ;; esac
case $FACTOR in [1-9]|[1-4][0-9]|50) ;; *) echo "flood: FLOOD_FACTOR must be 1..50" >&2; exit 2 ;; esac
case $NSRC in [1-9]|[1-5][0-9]|6[0-4]) ;; *) echo "flood: FLOOD_SOURCES must be 1..64" >&2; exit 2 ;; esac
# The node-wide budgets this run configures (the shipped defaults, CONFIG.md).
RPS=200 KPS=200 PER_SOURCE=50

harness() { echo "flood: harness error: $*" >&2; echo "bench flood_throughput_ratio n/a"; exit 1; }
[ -x "$WISP" ] || harness "no wisp binary at $WISP (Toolchain/build.sh x86_64)"
[ -x "$CLIENT" ] || harness "no client binary at $CLIENT"
command -v python3 >/dev/null || harness "python3 missing"

source "$(dirname "${BASH_SOURCE[0]}")/cleanup.bash"
bench_scratch flood

if [ -z "${BENCH_NO_PIN:-}" ] && [ "$(nproc)" -ge 2 ] && command -v taskset >/dev/null; then
  pin_node=(taskset -c 0) pin_flood=(taskset -c 1) pin_note="node, client and echo on CPU 0, flooder on CPU 1"
else
  pin_node=() pin_flood=() pin_note="no CPU pinning"
fi

# ---------------------------------------------------------------- ports, node, echo, client
base=$((20000 + RANDOM % 19000))
port_busy() { grep -qi ":$(printf '%04X' "$1") " /proc/net/udp 2>/dev/null; }
for _ in $(seq 50); do port_busy $base || port_busy $((base + 1)) || break; base=$((base + 7)); done
port=$base echo_port=$((base + 1))
sock=$tmp/status.sock

printf 'listen = 127.0.0.1:%d\nlab_addresses = yes\n' $port >"$tmp/lab-probe.conf"
if "$WISP" config check "$tmp/lab-probe.conf" >/dev/null 2>&1; then lab='lab_addresses = yes'; else lab=''; fi

life=$((SECS * 2 + WARM + 40))
"${pin_node[@]}" python3 Tests/e2e/wisppeer.py echo $echo_port $life >/dev/null 2>&1 & pids+=($!)
mkdir -p "$tmp/state"
"$WISP" keygen --state-dir "$tmp/state" >/dev/null 2>&1 || harness "wisp keygen failed"
fp=$("$WISP" id --state-dir "$tmp/state" 2>/dev/null | sed -n 's/^fingerprint *//p')
[ -n "$fp" ] || harness "no fingerprint from wisp id"
cat >"$tmp/node.conf" <<EOF
name = flood
listen = 127.0.0.1:$port
state_dir = $tmp/state
status_socket = $sock
links = optional
shards = 1
exits = 127.0.0.1:$echo_port
receipts_per_second = $RPS
key_agreements_per_second = $KPS
expensive_per_source = $PER_SOURCE
$lab
EOF
[ -n "${FLOOD_CREDIT_WINDOW:-}" ] && echo "credit_window = $FLOOD_CREDIT_WINDOW" >>"$tmp/node.conf"
"${pin_node[@]}" "$WISP" run --clock-sync assume --config "$tmp/node.conf" --duration $life 2>"$tmp/node.log" & node=$!
pids+=($node)
for _ in $(seq 100); do [ -S "$sock" ] && break; sleep 0.05; done
[ -S "$sock" ] || harness "the node did not start: $(tail -n 2 "$tmp/node.log" | tr '\n' ' ')"

# The node's threads: TIDs by creation (start time, then TID); main = control loop.
threads() { # prints: worker_tid shard_tid
  local t list=()
  for t in /proc/$node/task/*; do
    t=${t##*/}; [ "$t" = "$node" ] && continue
    list+=("$(awk '{ sub(/.*\) /, ""); print $20 }' /proc/$node/task/$t/stat 2>/dev/null) $t")
  done
  printf '%s\n' "${list[@]}" | sort -n -k1,1 -k2,2 | awk '{ printf "%s ", $2 } END { print "" }'
}
ticks() { awk '{ sub(/.*\) /, ""); print $12 + $13 }' "/proc/$node/task/$1/stat" 2>/dev/null || echo 0; }
ticks_all() { awk '{ sub(/.*\) /, ""); print $12 + $13 }' "/proc/$node/stat" 2>/dev/null || echo 0; }
rss() { awk '/^VmRSS:/ { print $2 }' "/proc/$node/status" 2>/dev/null; }
now() { date +%s.%N; }
hz=$(getconf CLK_TCK)
status_json() { timeout 5 "$WISP" status --json --socket "$sock" 2>/dev/null; }
# count JSON KEY: a counter from a status JSON on stdin (first match).
# Looks in drops, credit, exits and sources (the last two where the build has them).
count() { python3 -c 'import json,sys
s=json.load(sys.stdin); k=sys.argv[1]; v=None
for part in ("drops", "credit", "exits", "sources"):
    if v is None: v=(s.get(part) or {}).get(k)
print(v if v is not None else 0)' "$1"; }

read -r worker shard _ <<<"$(threads)"
[ -n "$worker" ] && [ -n "$shard" ] || harness "could not find the node's worker and shard threads ($(ls /proc/$node/task | tr '\n' ' '))"
rss_start=$(rss)

flood_run() { # SECONDS RECEIPTS/s CREATES/s SOURCES FIRST_IP -> $tmp/flood.out
  timeout $(($1 + 30)) "${pin_flood[@]}" python3 Tests/Bench/flood_peer.py $port $echo_port "$fp" "$@" \
    >"$tmp/flood.out" 2>"$tmp/flood.err"
}
field() { sed -n "s/.* $1 \([0-9.]*\).*/\1/p" "$tmp/flood.out"; }

# ---------------------------------------------------------------- 1. calibration
# 4 sources at 37/s each (under the 50/s per source), 150/s in all (under the 200/s node
# budget): every frame reaches the worker. Worker CPU per operation.
calib() { # KIND RECEIPTS/s CREATES/s -> sets c_ms (worker ms per operation), c_n
  local s0 w0 w1 st0 st1 ob n
  st0=$(status_json)
  w0=$(ticks $worker)
  flood_run 4 "$2" "$3" 4 200 || harness "calibration $1: flooder failed: $(tail -n 1 "$tmp/flood.err")"
  sleep 0.5
  w1=$(ticks $worker)
  st1=$(status_json)
  ob=$(( $(count over_budget <<<"$st1") - $(count over_budget <<<"$st0") + $(count worker_busy <<<"$st1") - $(count worker_busy <<<"$st0") ))
  if [ "$1" = receipt ]; then n=$(( $(field receipts) - ob )); else n=$(field created); fi
  c_n=$n
  c_ms=$(awk -v t=$((w1 - w0)) -v hz=$hz -v n="$n" 'BEGIN { if (n > 0) printf "%.3f", t * 1000 / hz / n }')
  cal_note+="$1: $n operations on the worker ($(cat "$tmp/flood.out" | sed 's/^FLOOD //'); over_budget+worker_busy $ob), worker $((w1 - w0)) ticks; "
}
cal_note=
echo "flood: calibration (per-operation worker cost) ..." >&2
calib receipt 150 0; cost_receipt=$c_ms n_receipt=$c_n
calib keyagreement 0 150; cost_key=$c_ms n_key=$c_n
[ -n "$cost_receipt" ] && [ -n "$cost_key" ] || harness "calibration gave no figure: $cal_note"
rss_calibrated=$(rss)

# ---------------------------------------------------------------- 2. the sealed circuit
total=$((WARM + SECS + 1 + SECS + 7))   # 5 s after the flood: does the circuit recover?
echo "flood: client $KBIT kbit/s, $SIZE B, sealed through the exit; $SECS s unloaded, then $SECS s flood ($pin_note) ..." >&2
# Each line of the client time-stamped as it arrives (EPOCHREALTIME).
( "${pin_node[@]}" "$CLIENT" client --via 127.0.0.1:$port --exit 127.0.0.1:$echo_port --keys "$fp" \
    --seconds $total --size "$SIZE" --rate-kbit "$KBIT" 2>&1 |
  while IFS= read -r line; do printf '%s %s\n' "$EPOCHREALTIME" "$line"; done >"$tmp/client.out" ) &
client=$!; pids+=($client)
t_client=$(now)
for _ in $(seq 100); do grep -q 'client: ' "$tmp/client.out" 2>/dev/null && break; sleep 0.1; done
grep -q 'sealed end to end' "$tmp/client.out" || harness "the client did not seal its circuit: $(tail -n 2 "$tmp/client.out" | tr '\n' ' ')"
sleep "$WARM"
u0=$(now); w_u0=$(ticks $worker); s_u0=$(ticks $shard); a_u0=$(ticks_all)
sleep "$SECS"
u1=$(now); w_u1=$(ticks $worker); s_u1=$(ticks $shard); a_u1=$(ticks_all)
rss_before=$(rss)
st_before=$(status_json)

# ---------------------------------------------------------------- 3. the flood
fr=$((RPS * FACTOR)) fc=$((KPS * FACTOR))
echo "flood: $fr receipts/s + $fc sealed CREATEs/s from $NSRC sources for $SECS s ..." >&2
f_t0=$(now); w_f0=$(ticks $worker); s_f0=$(ticks $shard); a_f0=$(ticks_all)
flood_run "$SECS" $fr $fc "$NSRC" 10 || harness "flooder failed: $(tail -n 1 "$tmp/flood.err")"
f_t1=$(now)   # the flooder's own end: the last send plus 1 s of late answers
w_f1=$(ticks $worker); s_f1=$(ticks $shard); a_f1=$(ticks_all)
rss_after=$(rss)
st_after=$(status_json)
flood_line=$(sed 's/^FLOOD //' "$tmp/flood.out")
flood_secs=$(field seconds)
await_client() { local i; for ((i = 0; i < 150; i++)); do kill -0 $client 2>/dev/null || break; sleep 0.1; done; }
await_client
kill -TERM $node 2>/dev/null
for _ in $(seq 50); do kill -0 $node 2>/dev/null || break; sleep 0.1; done
stopline=$(grep 'msg="stopped"' "$tmp/node.log" | tail -n 1)

# ---------------------------------------------------------------- figures
# Mean echoes/s over the client's per-second lines that arrived within [A, B] (each line
# covers the second before it).
rate_between() {
  awk -v a="$1" -v b="$2" '$3 == "client:" && $1 >= a && $1 <= b { s += $4; n++ }
    END { if (n > 0) printf "%.1f %d", s / n, n; else print "" }' "$tmp/client.out"
}
read -r unl n_unl <<<"$(rate_between "$(awk -v t="$u0" 'BEGIN { printf "%.3f", t + 1 }')" "$u1")"
read -r lod n_lod <<<"$(rate_between "$(awk -v t="$f_t0" 'BEGIN { printf "%.3f", t + 1.5 }')" "$(awk -v t="$f_t0" -v s="$flood_secs" 'BEGIN { printf "%.3f", t + s }')")"
read -r aft n_aft <<<"$(rate_between "$(awk -v t="$f_t1" 'BEGIN { printf "%.3f", t + 1 }')" 9999999999)"
[ -n "${unl:-}" ] && [ -n "${lod:-}" ] || harness "no client figures ($(tail -n 2 "$tmp/client.out" | tr '\n' ' '))"
ratio=$(awk -v l="$lod" -v u="$unl" 'BEGIN { if (u > 0) printf "%.3f", l / u }')
mbit() { awk -v p="$1" -v s="$SIZE" 'BEGIN { printf "%.2f", p * s * 8 / 1e6 }'; }
persec() { awk -v t="$1" -v hz="$hz" -v a="$2" -v b="$3" 'BEGIN { printf "%.3f", t / hz / (b - a) }'; }
w_unl=$(persec $((w_u1 - w_u0)) "$u0" "$u1") s_unl=$(persec $((s_u1 - s_u0)) "$u0" "$u1") a_unl=$(persec $((a_u1 - a_u0)) "$u0" "$u1")
# Flood CPU: from its start to the flooder's end (the last send plus 1 s of late answers,
# so the work the flood left queued counts), per second of flood sending.
w_fl=$(awk -v t=$((w_f1 - w_f0)) -v hz="$hz" -v s="$flood_secs" 'BEGIN { printf "%.3f", t / hz / s }')
s_fl=$(awk -v t=$((s_f1 - s_f0)) -v hz="$hz" -v s="$flood_secs" 'BEGIN { printf "%.3f", t / hz / s }')
a_fl=$(awk -v t=$((a_f1 - a_f0)) -v hz="$hz" -v s="$flood_secs" 'BEGIN { printf "%.3f", t / hz / s }')
# What the budgets allow the hostile traffic: RPS signatures + KPS key agreements a
# second at the calibrated costs, on top of the worker's unloaded load.
allow=$(awk -v r=$RPS -v k=$KPS -v cr="$cost_receipt" -v ck="$cost_key" 'BEGIN { printf "%.3f", (r * cr + k * ck) / 1000 }')
w_host=$(awk -v f="$w_fl" -v u="$w_unl" 'BEGIN { d = f - u; if (d < 0) d = 0; printf "%.3f", d }')
rss_delta=$((rss_after - rss_before))
delta() { echo $(( $(count "$1" <<<"$st_after") - $(count "$1" <<<"$st_before") )); }
c_over=$(delta over_budget) c_busy=$(delta worker_busy) c_src=$(delta source_limit) c_full=$(delta exit_sockets_full)
c_bad=$(delta bad_body) c_unknown=$(delta unknown_circuit) c_paused=$(count paused_circuits <<<"$st_after")
c_receipted=$(delta receipted_bytes) c_unpaid=$(delta unpaid)
c_keys=$(delta key_agreements) c_refexp=$(delta refused_expensive)   # 0 on a build without them
fsent_r=$(field receipts) fsent_c=$(field creates) fcreated=$(field created)
w_ops=$(awk -v w=$((w_f1 - w_f0)) -v hz="$hz" -v c="$fcreated" -v ck="$cost_key" -v cr="$cost_receipt" \
  'BEGIN { r = (w / hz * 1000 - c * ck) / cr; if (r < 0) r = 0; printf "%.0f", r }')

echo
echo "flood benchmark ($pin_note; x86_64 firmware ${WISP#$root/}$([ "$CLIENT" = "$WISP" ] || echo ", client ${CLIENT#$root/}"); ${lab:-no lab_addresses key in this build})"
printf '%-44s %s\n' \
  "worker cost per signature check (calibrated)" "$cost_receipt ms ($n_receipt receipts)" \
  "worker cost per key agreement (calibrated)" "$cost_key ms ($n_key sealed CREATEs)" \
  "client unloaded ($n_unl s)" "$unl echoes/s = $(mbit "$unl") Mbit/s (offered $KBIT kbit/s, $SIZE B)" \
  "client during the flood ($n_lod s)" "$lod echoes/s = $(mbit "$lod") Mbit/s" \
  "ratio loaded / unloaded" "$ratio" \
  "client after the flood (${n_aft:-0} s)" "${aft:-n/a} echoes/s" \
  "flooder" "$flood_line" \
  "worker CPU unloaded / flood" "$w_unl / $w_fl s/s (hostile share $w_host s/s)" \
  "budget allows the hostile traffic" "$allow s/s ($RPS x $cost_receipt ms + $KPS x $cost_key ms)" \
  "shard CPU unloaded / flood" "$s_unl / $s_fl s/s" \
  "whole node CPU unloaded / flood" "$a_unl / $a_fl s/s" \
  "RSS start / calibrated / before / after flood" "$rss_start / $rss_calibrated / $rss_before / $rss_after kB (delta $rss_delta kB)" \
  "counters during the flood" "over_budget +$c_over worker_busy +$c_busy source_limit +$c_src exit_sockets_full +$c_full bad_body +$c_bad unknown_circuit +$c_unknown unpaid +$c_unpaid; credit receipted_bytes +$c_receipted; paused circuits at the end $c_paused" \
  "node's key agreements / refused expensive" "+$c_keys / +$c_refexp (status exits/sources; 0 where this build has no such counters)" \
  "CREATEDs to the flooder (key agreements)" "$fcreated in $flood_secs s = $(awk -v c="$fcreated" -v s="$flood_secs" 'BEGIN { printf "%.0f", c / s }')/s; receipt checks implied by the worker's CPU ≈ $w_ops"
echo "note: client echoes/s, second by second, from the start of the flood: $(awk -v a="$f_t0" -v b="$f_t1" '$3 == "client:" && $1 > a && $1 <= b + 1 { printf "%s ", $4 }' "$tmp/client.out")| after it: $(awk -v b="$f_t1" '$3 == "client:" && $1 > b + 1 { printf "%s ", $4 }' "$tmp/client.out")"
echo "note: client: $(grep -o 'client: sent.*' "$tmp/client.out" | tail -n 1)"
echo "note: credit window: ${FLOOD_CREDIT_WINDOW:-node default (4 MiB)}"
echo "note: calibration: $cal_note"
[ -n "$stopline" ] && echo "note: node stop line: $(grep -o 'receipts_accepted=.*' <<<"$stopline" | cut -c1-200)"
busy=$(ps -eo pcpu=,comm= --sort=-pcpu 2>/dev/null |
  awk '$1 >= 15 && $2 !~ /^(wisp|python3|taskset|ps|awk)$/ { printf "%s %s%%, ", $2, $1 }')
[ -n "$busy" ] && echo "note: other busy processes (lifetime CPU): ${busy%, } — figures are noisier than on an idle machine"
echo
echo "bench flood_unloaded_echoes_per_s $unl echoes/s"
echo "bench flood_loaded_echoes_per_s $lod echoes/s"
echo "bench flood_throughput_ratio $ratio x"
echo "bench flood_after_echoes_per_s ${aft:-n/a} echoes/s"
echo "bench flood_worker_cpu_s_per_s $w_fl s/s"
echo "bench flood_worker_cpu_hostile_s_per_s $w_host s/s"
echo "bench flood_worker_budget_s_per_s $allow s/s"
echo "bench flood_shard_cpu_s_per_s $s_fl s/s"
echo "bench flood_receipt_check_ms $cost_receipt ms"
echo "bench flood_key_agreement_ms $cost_key ms"
echo "bench flood_rss_delta_kb $rss_delta kB"
pf() { [ "$1" = 1 ] && echo PASS || echo FAIL; }
echo "check flood throughput_ratio $(pf "$(awk -v r="$ratio" 'BEGIN { print (r >= 0.80) }')") $ratio (>= 0.80)"
echo "check flood rss_delta $(pf "$(( rss_delta <= 1024 ))") $rss_delta kB (<= 1024)"
echo "check flood worker_cpu $(pf "$(awk -v h="$w_host" -v a="$allow" 'BEGIN { print (h <= a) }')") $w_host s/s for the hostile traffic (<= $allow)"
exit 0
