#!/usr/bin/env bash
# Which thread pays for a node's full DTLS handshakes: N mutually authenticated handshakes
# (openssl s_client, ChaCha20-Poly1305, a new client key each run of this script) against
# one node on loopback, 2 per second (the per-source admission rate). Prints each thread's
# CPU time (schedstat, ns) over the run, minus what it spends idle (measured for 10 s
# first), per handshake, and the handshake worker's own figures from its stop line.
#
#   Tests/Bench/handshake-threads.sh [WISP [N]]    (default: the x86_64 firmware, N = 40)
#
# Threads are listed by id (creation order), the main thread (control plane) first; the
# handshake worker is the first one spawned (it starts with the session table, before the
# credit worker and the shards), and its stop line says how long it ran handshake steps.
# Before the handshake worker existed, the thread with the handshake CPU was shard 0.
set -euo pipefail
W=${1:-.build-firmware/x86_64/wisp}
N=${2:-40}
[ -x "$W" ] || { echo "no $W: run Toolchain/build.sh x86_64" >&2; exit 1; }
d=$(mktemp -d /tmp/wisp-hs-threads.XXXXXX)
pid=
trap '[ -n "$pid" ] && kill -TERM $pid 2>/dev/null; rm -rf "$d"' EXIT
port=$((30000 + RANDOM % 20000))
"$W" keygen --state-dir "$d/A" >/dev/null
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 30 -subj /CN=bench \
  -keyout "$d/k.pem" -out "$d/c.pem" 2>/dev/null
"$W" run --listen 127.0.0.1:$port --state-dir "$d/A" --name A --credit-window 0 --handshake-rate 0 \
  --status-socket "$d/a.sock" --duration 300 2>"$d/a.log" & pid=$!
for _ in $(seq 50); do [ -S "$d/a.sock" ] && break; sleep 0.1; done
snap() { for t in /proc/$pid/task/*; do echo "$(basename "$t") $(cut -d' ' -f1 "$t/schedstat")"; done | sort -n; }
now() { date +%s%N; }
snap >"$d/idle0"; t0=$(now)
sleep 10
snap >"$d/idle1"; t1=$(now)
for _ in $(seq "$N"); do
  sleep 0.45
  echo | timeout 5 openssl s_client -dtls1_2 -connect 127.0.0.1:$port -cert "$d/c.pem" -key "$d/k.pem" \
    -cipher ECDHE-ECDSA-CHACHA20-POLY1305 >/dev/null 2>&1 || true
done
snap >"$d/run1"; t2=$(now)
full=$("$W" status --socket "$d/a.sock" --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["sessions"]["handshakes_full"])')
kill -TERM $pid; wait $pid || true; pid=
join "$d/idle0" "$d/idle1" | join - "$d/run1" | awk -v n="$full" -v idle=$((t1 - t0)) -v run=$((t2 - t1)) -v main="$(head -1 "$d/idle0" | cut -d' ' -f1)" '
  { rows[NR] = $0 } END {
    printf "%d full handshakes in %.1f s\n", n, run / 1e9
    for (i = 1; i <= NR; i++) {
      split(rows[i], f, " ")
      name = (i == 1) ? "main" : "thread " i - 1
      base = (f[3] - f[2]) * run / idle; used = f[4] - f[3]
      printf "%-8s tid %s: %7.1f ms (idle share %5.1f ms), %.3f ms per full handshake above idle\n",
        name, f[1], used / 1e6, base / 1e6, (n ? (used - base) / 1e6 / n : 0)
    }
  }'
grep -o 'msg="handshake worker stopped".*' "$d/a.log" || echo "(no handshake worker in this build)"
