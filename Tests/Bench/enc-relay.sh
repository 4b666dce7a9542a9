#!/usr/bin/env bash
# Tests/Bench/enc-relay.sh — the encrypted relay next to the AEAD ceiling, in one run.
#
#   wisp client ==DTLS==> relay R (measured, one shard) ==DTLS==> exit node X --> sink
#
# R opens every record from the client and seals it again for X: one seal + one open per
# packet, exactly what `wisp tls-bench` (a developer tool: the host build, Toolchain/host-build.sh)
# times as the raw AEAD ceiling (ChaCha20-Poly1305,
# the suite the default board order picks). Figures: R's forwarded packets per second of
# R's own CPU time (user + system from /proc), at 512 and 1400 bytes of payload, and
#   enc_relay_ratio_aead_1400 = R's packets per CPU-second at 1400 B / AEAD ceiling pps.
# Then the same at 1400 B with R on 2 shards (`_2shards` figures): the node link's session
# lives on shard 0, the second shard applies the link rules.
# Prints `bench NAME VALUE UNIT` lines. Loopback only; every process ends by itself.
set -uo pipefail
cd "$(dirname "$0")/../.."
root=$PWD
WISP=${WISP_BIN:-$root/.build-firmware/x86_64/wisp}
build=$root/.build-bench
DUR=${BENCH_ENC_SECONDS:-4}
tmp=$(mktemp -d /tmp/wisp-encbench.XXXXXX)
pids=()
trap 'for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null; done; wait 2>/dev/null; rm -rf "$tmp"' EXIT
[ -x "$build/sink" ] || { mkdir -p "$build"; cc -O2 -o "$build/sink" Tests/Bench/sink.c || exit 1; }
[ -f "$build/malloc_count.so" ] || cc -O2 -shared -fPIC -o "$build/malloc_count.so" Tests/Bench/malloc_count.c -ldl || exit 1

ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat" 2>/dev/null || echo 0; }
packets() { "$WISP" status --socket "$1" --json 2>/dev/null | python3 -c 'import json,sys; print(json.load(sys.stdin)["traffic"]["packets"])'; }

WISP_DEV=$(WISP_DEV_BIN=${WISP_DEV_BIN:-} Toolchain/host-build.sh) || { echo "enc-relay: no host build for tls-bench" >&2; exit 1; }
ceiling=$("$WISP_DEV" tls-bench --seconds 2 --suite chacha 2>/dev/null | awk '$1 == "bench" && $2 == "aead_ceiling_pps_1400_chacha" { print $3 }')
[ -n "$ceiling" ] || { echo "enc-relay: tls-bench gave no AEAD ceiling" >&2; exit 1; }

"$WISP" keygen --state-dir "$tmp/r" >/dev/null
"$WISP" keygen --state-dir "$tmp/x" >/dev/null
fr=$("$WISP" id --state-dir "$tmp/r" | sed -n 's/^fingerprint //p')
fx=$("$WISP" id --state-dir "$tmp/x" | sed -n 's/^fingerprint //p')
base=$((31000 + RANDOM % 20000))

# 512 and 1400 B on one shard, then 1400 B with 2 shards (sessions live on shard 0, the
# other shard applies the link rules: the figure shows what a second shard costs or gives).
for run in 512:1 1400:1 1400:2; do
  size=${run%:*} shards=${run#*:}
  r=$base x=$((base + 1)) s=$((base + 2)) base=$((base + 10))
  "$build/sink" --port $s --duration $((DUR + 20)) --idle 3 >"$tmp/sink.$run" 2>&1 & pids+=($!)
  # R counts its allocations (LD_PRELOAD counter, written on SIGUSR2) to show that the
  # encrypted hot path allocates nothing either.
  MALLOC_COUNT_FILE=$tmp/mc LD_PRELOAD=$build/malloc_count.so \
  "$WISP" run --listen 127.0.0.1:$r --state-dir "$tmp/r" --peer X=127.0.0.1:$x=$fx --credit-window 0 --shards $shards --lab-addresses yes \
    --status-socket "$tmp/r.sock" --duration $((DUR + 20)) 2>"$tmp/r.$run.log" & rp=$!; pids+=($rp)
  "$WISP" run --listen 127.0.0.1:$x --state-dir "$tmp/x" --peer R=127.0.0.1:$r=$fr --exit 127.0.0.1:$s --credit-window 0 --lab-addresses yes \
    --duration $((DUR + 20)) 2>"$tmp/x.$run.log" & pids+=($!)
  for _ in $(seq 100); do grep -q 'msg="session up"' "$tmp/r.$run.log" && break; sleep 0.1; done
  # The client sends as fast as it can (no echoes come back from the sink).
  "$WISP" client --via 127.0.0.1:$r,127.0.0.1:$x --keys "$fr,$fx" --exit 127.0.0.1:$s --dtls on \
    --seconds $((DUR + 2)) --size $size --rate-kbit 10000000 >"$tmp/client.$run" 2>&1 & cp=$!; pids+=($cp)
  sleep 1.5
  p0=$(packets "$tmp/r.sock"); t0=$(ticks $rp); w0=$(date +%s.%N)
  rm -f "$tmp/mc"; kill -USR2 $rp; sleep 0.1; a0=$(cat "$tmp/mc" 2>/dev/null)
  sleep "$DUR"
  rm -f "$tmp/mc"; kill -USR2 $rp; sleep 0.1; a1=$(cat "$tmp/mc" 2>/dev/null)
  p1=$(packets "$tmp/r.sock"); t1=$(ticks $rp); w1=$(date +%s.%N)
  wait $cp 2>/dev/null
  kill -TERM $rp 2>/dev/null
  sealed=$(grep -o 'records_sealed=[0-9]*' "$tmp/r.$run.log" | tail -1)
  read -r pps per_cpu mbit <<<"$(awk -v p0="$p0" -v p1="$p1" -v t0="$t0" -v t1="$t1" -v w0="$w0" -v w1="$w1" \
      -v hz="$(getconf CLK_TCK)" -v size="$size" 'BEGIN {
        n = p1 - p0; w = w1 - w0; c = (t1 - t0) / hz
        printf "%.0f %.0f %.1f", n / w, (c > 0 ? n / c : 0), n * size * 8 / w / 1e6 }')"
  sfx=$([ "$shards" = 1 ] || echo "_${shards}shards")
  echo "enc-relay $size B, $shards shard(s): $((p1 - p0)) packets in ${DUR} s = $pps pps ($mbit Mbit/s), $per_cpu per relay CPU-second; $sealed" >&2
  allocs=$(awk -v a="${a0:-}" -v b="${a1:-}" -v n="$((p1 - p0))" 'BEGIN { if (a != "" && b != "" && n > 0) printf "%.4f", (b - a) / n }')
  echo "enc-relay $size B: $(( ${a1:-0} - ${a0:-0} )) allocations in the window (SIGUSR2 bracket) = ${allocs:-n/a} per packet" >&2
  echo "bench enc_relay_allocs_per_packet_$size$sfx ${allocs:-n/a} allocs"
  echo "bench enc_relay_pps_$size$sfx $pps pps"
  echo "bench enc_relay_pps_per_core_$size$sfx $per_cpu pps"
  if [ $size = 1400 ] && [ "$shards" = 1 ]; then
    echo "bench enc_relay_aead_ceiling_pps_1400 $ceiling pps"
    echo "bench enc_relay_ratio_aead_1400 $(awk -v a="$per_cpu" -v c="$ceiling" 'BEGIN { printf "%.2f", a / c }') x"
  fi
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null; done
  wait 2>/dev/null
  pids=()
done
