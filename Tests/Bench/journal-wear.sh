#!/usr/bin/env bash
# Journal wear at the node's maximum relay rate (issue 5: <= 2 MB per hour).
#
# One wisp node (shipped defaults: commit_interval 30 s, credit window 4 MiB) relays for
# BENCH_WEAR_CLIENTS `wisp client`s that sign receipts, each asking for more than loopback
# gives (--rate-kbit ${BENCH_WEAR_KBIT:-30000}), through to a UDP echo service, for BENCH_WEAR_SECONDS. The
# node's /proc/PID/io is read after a 2 s warm-up and at the end: `write_bytes` is what
# reached the storage layer (page-granular: every page dirtied counts 4 KiB), `wchar` what
# the process passed to write(2) (journal and logs). Both are scaled to an hour. The state
# dir is on a disk-backed file system (.build-wear/ in the repository, git-ignored): on
# tmpfs write_bytes stays 0. Prints `bench journal_… VALUE UNIT` lines; 127.0.0.1 only.
set -euo pipefail
source "$(dirname "$0")/../e2e/err-trap.bash"  # FAILED: line N of … on an unexpected exit
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
WISP=${WISP_BIN:-$root/.build-firmware/x86_64/wisp}
SECS=${BENCH_WEAR_SECONDS:-32}
CLIENTS=${BENCH_WEAR_CLIENTS:-3}
[ -x "$WISP" ] || { echo "note: journal-wear: no $WISP"; echo "bench journal_bytes_per_hour n/a"; exit 1; }
mkdir -p .build-wear
dir=$(mktemp -d "$root/.build-wear/run.XXXXXX")
pids=()
cleanup() { cp "$dir"/client.1 /tmp/j2-wear-client.out 2>/dev/null || true; for p in "${pids[@]:-}"; do [ -n "$p" ] && kill -9 "$p" 2>/dev/null || true; done; rm -rf "$dir"; }
trap cleanup EXIT
fs=$(stat -f -c %T "$dir"); dev=$(df --output=source "$dir" | tail -1)
port=$((20000 + RANDOM % 20000)) echo_port=$((port + 1))
exits=()
for c in $(seq "$CLIENTS"); do  # one echo service per client: a Python echo tops out near 40 Mbit/s
  python3 Tests/e2e/wisppeer.py echo $((echo_port + c)) $((SECS + 15)) >/dev/null & pids+=($!)
  exits+=(--exit 127.0.0.1:$((echo_port + c)))
done
"$WISP" keygen --state-dir "$dir/s" >/dev/null 2>&1
fp=$("$WISP" id --state-dir "$dir/s" 2>/dev/null | sed -n 's/^fingerprint //p')
"$WISP" run --clock-sync assume --listen 127.0.0.1:$port --state-dir "$dir/s" "${exits[@]}" --status-socket "$dir/st.sock" --lab-addresses yes \
  --duration $((SECS + 15)) 2>"$dir/node.log" & node=$!
pids+=($node)
for _ in $(seq 200); do [ -S "$dir/st.sock" ] && break; sleep 0.02; done
for c in $(seq "$CLIENTS"); do
  "$WISP" client --via 127.0.0.1:$port --exit 127.0.0.1:$((echo_port + c)) --keys "$fp" --seconds $((SECS + 3)) \
    --rate-kbit ${BENCH_WEAR_KBIT:-30000} >"$dir/client.$c" 2>&1 & pids+=($!)
done
io() { sed -n "s/^$1: //p" /proc/$node/io; }
num() { sed -n "s/.*\"$1\":\([0-9]*\).*/\1/p"; }
sleep 2
wb0=$(io write_bytes) wc0=$(io wchar) t0=$(date +%s%N)
b0=$("$WISP" status --json --socket "$dir/st.sock" | sed 's/.*"traffic":{"packets":[0-9]*,"bytes":\([0-9]*\).*/\1/')
sleep "$SECS"
wb1=$(io write_bytes) wc1=$(io wchar) t1=$(date +%s%N)
st=$("$WISP" status --json --socket "$dir/st.sock")
b1=$(sed 's/.*"traffic":{"packets":[0-9]*,"bytes":\([0-9]*\).*/\1/' <<<"$st")
jsize=$(stat -c %s "$dir/s/credits.journal")
kill -TERM $node; wait $node || true
summary=$(grep 'msg="stopped"' "$dir/node.log" | tail -1)
receipts=$(sed -n 's/.* receipts_accepted=\([0-9]*\).*/\1/p' <<<"$summary")
up=$(num uptime_s <<<"$st")
ns=$((t1 - t0))
per_hour() { awk -v d="$1" -v ns="$ns" 'BEGIN { printf "%.0f", d * 3600e9 / ns }'; }
wbh=$(per_hour $((wb1 - wb0))) wch=$(per_hour $((wc1 - wc0)))
mbit=$(awk -v b=$((b1 - b0)) -v ns="$ns" 'BEGIN { printf "%.1f", b * 8 * 1000 / ns }')
rps=$(awk -v r="${receipts:-0}" -v s="${up:-1}" 'BEGIN { printf "%.1f", r / (s > 0 ? s : 1) }')
echo "journal wear: $CLIENTS client(s) signing receipts, $SECS s measured after 2 s warm-up, state dir on $fs ($dev)"
echo "  relayed $((b1 - b0)) bytes = $mbit Mbit/s; $receipts receipts accepted in $up s = $rps receipts/s"
echo "  write_bytes +$((wb1 - wb0)), wchar +$((wc1 - wc0)); journal file now $jsize bytes"
echo "  per hour: write_bytes $wbh bytes, wchar $wch bytes (issue 5 target: write_bytes <= 2000000)"
echo "bench journal_bytes_per_hour $wbh bytes"
echo "bench journal_wchar_per_hour $wch bytes"
echo "bench journal_receipts_per_s $rps receipts/s"
echo "bench journal_relay_mbit $mbit Mbit/s"
