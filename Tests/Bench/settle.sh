#!/usr/bin/env bash
# Tests/Bench/settle.sh — settlement of a network's day (issue 15): `wisp credits settle`
# over 10^6 receipts in 1,000 claims from 1,000 nodes and 1,000 payers, every signature
# verified (OpenSSL libcrypto, all cores), every (node, payer, binding) distinct: the worst
# case for memory. Run by `make bench` (bench.sh); standalone from anywhere.
#
# Environment (optional): SETTLE_CLAIMS=1000 SETTLE_RECEIPTS=1000 (per claim) SETTLE_PAYERS=1000,
# WISP_DEV_BIN=path (a host build; default Toolchain/host-build.sh's release build).
#
# The fixtures (payer list, settlement key, claims: about 330 MB for 10^6 receipts) are made
# once with `wisp credits make-claims --bench` (OpenSSL signing on all cores) and cached in
# .build-bench/settle-v2-C-R-P/ (git-ignored), keyed by claim format version and sizes; a
# run without them makes them first and says how long that took.
#
# Prints `bench NAME VALUE UNIT` lines:
#   settle_seconds               wall time of the whole settlement (read, parse, verify, total, JSON out)
#   settle_cpu_seconds           its CPU time (user + system, all threads): on a machine shared with
#                                other work the wall time includes waiting for a core, this does not
#   settle_verified_per_s_per_core  signatures verified per wall second divided by the cores used
#   settle_verified_per_cpu_s    signatures verified per CPU second: what one core sustains
#   settle_peak_rss_kb           peak resident memory of the settling process (getrusage)
#   settle_distinct_keys         distinct (node, payer, binding) keys held
#   settle_mbedtls_verified_per_cpu_s  for comparison: `credits verify` (mbedTLS, one thread) on one
#                                claim, signatures per CPU second (its key fingerprints and parsing included)
set -uo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
C=${SETTLE_CLAIMS:-1000} R=${SETTLE_RECEIPTS:-1000} P=${SETTLE_PAYERS:-1000}
na() { for n in settle_seconds settle_cpu_seconds settle_verified_per_s_per_core settle_verified_per_cpu_s settle_peak_rss_kb settle_distinct_keys settle_mbedtls_verified_per_cpu_s; do
  echo "bench $n n/a"; done; echo "note: settle: $1"; exit 1; }
WISP=$(WISP_DEV_BIN=${WISP_DEV_BIN:-} Toolchain/host-build.sh 2>/tmp/wisp-settle-build.err) || na "no host build ($(tail -n 1 /tmp/wisp-settle-build.err))"
dir=$root/.build-bench/settle-v2-$C-$R-$P
if [ ! -f "$dir/done" ]; then
  rm -rf "$dir"; mkdir -p "$root/.build-bench"
  echo "settle: making fixtures: $C claims x $R receipts, $P payers, in $dir ..." >&2
  t0=$(date +%s%N)
  timeout 1200 "$WISP" credits make-claims --bench "$dir" --claims "$C" --receipts "$R" --payer-count "$P" >&2 ||
    na "make-claims failed"
  echo "settle: fixtures made in $(( ($(date +%s%N) - t0) / 1000000 )) ms (once; cached)" >&2
  touch "$dir/done"
fi
fp=$(cat "$dir/settlement.fp")
out=$(mktemp /tmp/wisp-settle.XXXXXX)
load=$(cut -d' ' -f1 /proc/loadavg)
trap 'rm -f "$out" "$out.err"' EXIT
# Exit 3 is expected only if something is flagged; the fixtures hold nothing to flag.
timeout 600 "$WISP" credits settle --payers "$dir/payers.list" --settlement-keys "$fp" --json --stats \
  "$dir/claims" >"$out" 2>"$out.err"
rc=$?
[ $rc = 0 ] || na "settle exited $rc: $(tail -n 2 "$out.err")"
stats=$(grep '^settle-stats:' "$out.err") || na "no stats line"
field() { sed -n "s/.* $1 \([^ ]*\).*/\1/p" <<<"$stats"; }
echo "settle: $stats" >&2
grep -q "\"receipt_lines\":$((C * R))," "$out" || na "the report does not count $((C * R)) receipt lines"
# mbedTLS for comparison: one claim through `credits verify` (node key + R receipt signatures).
first=$(ls "$dir/claims" | head -n 1)
TIMEFORMAT='%U %S'
cpu=$( { time "$WISP" credits verify "$dir/claims/$first" >/dev/null 2>&1; } 2>&1 ) || na "credits verify of $first failed"
mbed=$(awk -v n=$((R + 1)) -v u="${cpu% *}" -v s="${cpu#* }" 'BEGIN { t = u + s; printf "%.0f", (t > 0 ? n / t : 0) }')
echo "bench settle_seconds $(field seconds) s"
echo "bench settle_cpu_seconds $(field cpu_seconds) s"
echo "bench settle_verified_per_s_per_core $(field verified_per_s_per_core) /s"
echo "bench settle_verified_per_cpu_s $(field verified_per_cpu_s) /s"
echo "bench settle_peak_rss_kb $(field peak_rss_kib) kB"
echo "bench settle_distinct_keys $(field keys) keys"
echo "bench settle_mbedtls_verified_per_cpu_s $mbed /s"
echo "note: settle: load average before the run $load;"\
  "$C claims x $R receipts on $(field threads) threads, $(sed -n 's/.*library "\([^"]*\)".*/\1/p' <<<"$stats") (verify per core: OpenSSL from settle, mbedTLS from credits verify on one claim)"
