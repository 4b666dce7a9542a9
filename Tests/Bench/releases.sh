#!/usr/bin/env bash
# Tests/Bench/releases.sh — the x86_64 firmware built for Debian bookworm (mbedTLS 2.28.3)
# next to the one built for trixie (mbedTLS 3.6.6, run against the trixie sysroot with its
# own ld.so and glibc), in one run, the two builds alternating (ROUNDS times, best kept):
#   - full DTLS handshakes: N mutually authenticated handshakes (openssl s_client,
#     ECDHE-ECDSA-CHACHA20-POLY1305, a P-256 client certificate) against one node: the CPU
#     time of the node's handshake worker thread (the first thread it spawns; schedstat,
#     so other load on the machine does not count) over the handshakes, minus its idle
#     share, per full handshake, and the handshakes/s that is on one core;
#   - AEAD on the record path: an encrypted relay R between a client and an exit node
#     (client ==DTLS==> R ==DTLS==> X --> sink), 1400 B payloads as fast as the client
#     sends; R opens and seals every record (ChaCha20-Poly1305): R's packets per second of
#     its own CPU time. Client, R and X are all the build being measured.
# Prints `bench NAME VALUE UNIT` lines (names end in _bookworm / _trixie). Loopback only;
# every process ends by itself or is stopped on exit.
#   Environment: RELEASES_HANDSHAKES=20  RELEASES_SECONDS=3  RELEASES_ROUNDS=2
set -uo pipefail
cd "$(dirname "$0")/../.."
root=$PWD
source Tests/Bench/cleanup.bash
bench_scratch releases
N=${RELEASES_HANDSHAKES:-20} DUR=${RELEASES_SECONDS:-3} ROUNDS=${RELEASES_ROUNDS:-2}
build=$root/.build-bench
[ -x "$build/sink" ] || { mkdir -p "$build"; cc -O2 -o "$build/sink" Tests/Bench/sink.c || exit 1; }
for t in x86_64 x86_64-trixie; do
  [ -x .build-firmware/$t/wisp ] || { echo "releases: no .build-firmware/$t/wisp: Toolchain/build.sh $t" >&2; exit 1; }
done
# One path per build (the trixie one through run.sh, which execs trixie's ld.so in place:
# the process id is the program's, for /proc figures).
printf '#!/bin/sh\nexec "%s/Toolchain/run.sh" x86_64 "$@"\n' "$root" >"$tmp/wisp-bookworm"
printf '#!/bin/sh\nexec "%s/Toolchain/run.sh" x86_64-trixie "$@"\n' "$root" >"$tmp/wisp-trixie"
chmod +x "$tmp/wisp-bookworm" "$tmp/wisp-trixie"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 30 -subj /CN=bench \
  -keyout "$tmp/k.pem" -out "$tmp/c.pem" 2>/dev/null || { echo "releases: openssl req failed" >&2; exit 1; }
ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat" 2>/dev/null || echo 0; }
declare -A best_hs best_relay lib

handshakes() {  # handshakes RELEASE: ms of worker-thread CPU per full handshake
  local W=$tmp/wisp-$1 port=$((30000 + RANDOM % 20000)) pid full worker c0 c1 c2 t0 t1 t2
  rm -rf "$tmp/hs"; "$W" keygen --state-dir "$tmp/hs" >/dev/null
  "$W" run --listen 127.0.0.1:$port --state-dir "$tmp/hs" --name A --credit-window 0 --handshake-rate 0 \
    --status-socket "$tmp/hs.sock" --duration 120 2>"$tmp/hs.log" & pid=$!; pids+=($pid)
  for _ in $(seq 50); do [ -S "$tmp/hs.sock" ] && break; sleep 0.1; done
  worker=$(ls /proc/$pid/task | sort -n | sed -n 2p)
  cpu() { cut -d' ' -f1 "/proc/$pid/task/$worker/schedstat" 2>/dev/null || echo 0; }
  c0=$(cpu) t0=$(date +%s%N); sleep 3; c1=$(cpu) t1=$(date +%s%N)
  for _ in $(seq "$N"); do
    sleep 0.45  # below the per-source admission rate (2 per second)
    echo | timeout 5 openssl s_client -dtls1_2 -connect 127.0.0.1:$port -cert "$tmp/c.pem" -key "$tmp/k.pem" \
      -cipher ECDHE-ECDSA-CHACHA20-POLY1305 >/dev/null 2>&1 || true
  done
  c2=$(cpu) t2=$(date +%s%N)
  full=$("$W" status --socket "$tmp/hs.sock" --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["sessions"]["handshakes_full"])')
  kill -TERM $pid; wait $pid 2>/dev/null
  awk -v n="$full" -v c0="$c0" -v c1="$c1" -v c2="$c2" -v t0="$t0" -v t1="$t1" -v t2="$t2" 'BEGIN {
    idle = (c1 - c0) * (t2 - t1) / (t1 - t0); if (n > 0 && c2 > c1) printf "%.3f", (c2 - c1 - idle) / 1e6 / n }'
}

relay() {  # relay RELEASE: R's packets per CPU-second at 1400 B
  local W=$tmp/wisp-$1 base=$((31000 + RANDOM % 20000)) rp cp fr fx p0 p1 t0 t1 r x s
  r=$base x=$((base + 1)) s=$((base + 2))
  rm -rf "$tmp/r" "$tmp/x"
  "$W" keygen --state-dir "$tmp/r" >/dev/null; "$W" keygen --state-dir "$tmp/x" >/dev/null
  fr=$("$W" id --state-dir "$tmp/r" | sed -n 's/^fingerprint //p'); fx=$("$W" id --state-dir "$tmp/x" | sed -n 's/^fingerprint //p')
  "$build/sink" --port $s --duration $((DUR + 20)) --idle 3 >/dev/null 2>&1 & pids+=($!)
  "$W" run --listen 127.0.0.1:$r --state-dir "$tmp/r" --peer X=127.0.0.1:$x=$fx --credit-window 0 --lab-addresses yes \
    --status-socket "$tmp/r.sock" --duration $((DUR + 20)) 2>"$tmp/r.log" & rp=$!; pids+=($rp)
  "$W" run --listen 127.0.0.1:$x --state-dir "$tmp/x" --peer R=127.0.0.1:$r=$fr --exit 127.0.0.1:$s --credit-window 0 \
    --lab-addresses yes --duration $((DUR + 20)) 2>"$tmp/x.log" & pids+=($!)
  for _ in $(seq 100); do grep -q 'msg="session up"' "$tmp/r.log" && break; sleep 0.1; done
  "$W" client --via 127.0.0.1:$r,127.0.0.1:$x --keys "$fr,$fx" --exit 127.0.0.1:$s --dtls on \
    --seconds $((DUR + 2)) --size 1400 --rate-kbit 10000000 >"$tmp/client.out" 2>&1 & cp=$!; pids+=($cp)
  sleep 1.5
  pk() { "$W" status --socket "$tmp/r.sock" --json 2>/dev/null | python3 -c 'import json,sys; print(json.load(sys.stdin)["traffic"]["packets"])'; }
  p0=$(pk); t0=$(ticks $rp)
  sleep "$DUR"
  p1=$(pk); t1=$(ticks $rp)
  wait $cp 2>/dev/null
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null; done
  wait 2>/dev/null; pids=()
  awk -v n=$((p1 - p0)) -v c=$((t1 - t0)) -v hz="$(getconf CLK_TCK)" 'BEGIN { if (c > 0 && n > 0) printf "%.0f", n / (c / hz) }'
}

for rel in bookworm trixie; do lib[$rel]=$("$tmp/wisp-$rel" --version | sed -n 's/^libraries: //p'); done
for round in $(seq "$ROUNDS"); do
  for rel in bookworm trixie; do
    h=$(handshakes $rel); p=$(relay $rel)
    echo "releases: round $round, $rel (${lib[$rel]}): ${h:-n/a} ms worker CPU per full handshake, ${p:-n/a} relayed pps per R CPU-second (1400 B)" >&2
    if [ -n "$h" ] && { [ -z "${best_hs[$rel]:-}" ] || awk -v a="$h" -v b="${best_hs[$rel]}" 'BEGIN { exit !(a < b) }'; }; then best_hs[$rel]=$h; fi
    if [ -n "$p" ] && { [ -z "${best_relay[$rel]:-}" ] || [ "$p" -gt "${best_relay[$rel]}" ]; }; then best_relay[$rel]=$p; fi
  done
done
rc=0
for rel in bookworm trixie; do
  h=${best_hs[$rel]:-} p=${best_relay[$rel]:-}
  [ -n "$h" ] && [ -n "$p" ] || rc=1
  echo "bench handshake_full_worker_ms_$rel ${h:-n/a} ms"
  echo "bench handshakes_full_per_core_s_$rel $([ -n "$h" ] && awk -v h="$h" 'BEGIN { printf "%.0f", 1000 / h }' || echo n/a) /s"
  echo "bench enc_relay_pps_per_core_1400_$rel ${p:-n/a} pps"
done
echo "note: bookworm = ${lib[bookworm]}, trixie = ${lib[trixie]}; best of $ROUNDS alternating rounds; figures on a shared machine are noisy"
exit $rc
