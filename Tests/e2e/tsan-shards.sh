#!/usr/bin/env bash
# The node's threads share nothing but their mailboxes, proven under ThreadSanitizer: the
# host build of `wisp` with `-sanitize=thread` runs node A with 2 shards, its control plane
# and its credit worker, relaying a paying client's circuits (receipts verified on the
# worker, answered to the shards) through node B (the firmware build, exit) to an echo
# service — clients 3 and 4 over DTLS sessions with A, whose handshakes run on A's
# handshake worker and are handed to shard 0 — while the test asks for status (text and JSON), metrics and SIGUSR1 lines, and
# reloads A twice (SIGHUP, new rate cap and peers). Any data race, lock-order problem or
# leak TSan reports fails the test, and so does a duplicated message or a loss above 20 %.
source "$(dirname "$0")/lib.bash"
scratch=.build-tsan
swift build --sanitize=thread --scratch-path "$scratch" --product wisp 2>&1 | tail -1
tsan=$scratch/debug/wisp
[ -x "$tsan" ] || fail "no ThreadSanitizer build at $tsan"
base=$((23000 + RANDOM % 20000))
a=$base b=$((base + 1)) e=$((base + 2)) m=$((base + 3))
log=$(mktemp -d /tmp/wisp-tsan.XXXXXX)
trap 'cleanup; [ -n "${WISP_KEEP:-}" ] && cp -r "$log" "$WISP_KEEP"; rm -rf "$log"' EXIT
export TSAN_OPTIONS="halt_on_error=0 second_deadlock_stack=1 log_path=$log/tsan"

"$tsan" keygen --state-dir "$state/A" >/dev/null
Toolchain/run.sh x86_64 keygen --state-dir "$state/B" >/dev/null
fa=$("$tsan" id --state-dir "$state/A" | sed -n 's/^fingerprint //p')
fb=$(Toolchain/run.sh x86_64 id --state-dir "$state/B" | sed -n 's/^fingerprint //p')
[ ${#fa} = 64 ] && [ ${#fb} = 64 ] || fail "no fingerprints"
conf() {  # conf RATE: A's config file
  cat >"$log/a.conf" <<CONF
name = A
listen = 127.0.0.1:$a
state_dir = $state/A
status_socket = $log/a.sock
metrics = 127.0.0.1:$m
shards = 2
rate_mbit = $1
peers = b=127.0.0.1:$b
lab_addresses = yes
links = optional
CONF
}
conf 0
"$tsan" run --config "$log/a.conf" --duration 60 2>"$log/a.log" & apid=$!; pids+=($apid)
# An exit destination serves one circuit at a time today: one echo service per client.
Toolchain/run.sh x86_64 run --listen 127.0.0.1:$b --state-dir "$state/B" --name B --exit 127.0.0.1:$((e + 10)) \
  --exit 127.0.0.1:$((e + 11)) --exit 127.0.0.1:$((e + 12)) --exit 127.0.0.1:$((e + 13)) \
  --credit-window 0 --lab-addresses yes --links optional --duration 60 2>"$log/b.log" & pids+=($!)
for i in 0 1 2 3; do python3 Tests/e2e/wisppeer.py echo $((e + 10 + i)) 60 >/dev/null & pids+=($!); done
for i in 0 1 2 3; do wait_udp $((e + 10 + i)); done
for _ in $(seq 100); do [ -S "$log/a.sock" ] && break; sleep 0.1; done
[ -S "$log/a.sock" ] || { cat "$log/a.log"; fail "node A (TSan build) did not come up"; }

# Clients: each builds a circuit (its id picks the shard) and signs receipts for A and B.
clients=()
for i in 1 2 3 4; do
  dtls=off; [ $i -ge 3 ] && dtls=on
  timeout 40 Toolchain/run.sh x86_64 client --via 127.0.0.1:$a,127.0.0.1:$b --keys "$fa,$fb" --exit 127.0.0.1:$((e + 9 + i)) \
    --dtls $dtls --seconds 6 --size 1000 --rate-kbit 3000 >"$log/client$i.out" 2>&1 & clients+=($!); pids+=($!)
done
# Meanwhile: the control plane asks the shards, reloads them, prints status lines.
for round in 1 2 3 4 5 6; do
  sleep 1
  "$tsan" status --socket "$log/a.sock" >/dev/null 2>&1 || fail "status failed (round $round)"
  "$tsan" status --socket "$log/a.sock" --json >"$log/status.json" 2>/dev/null || fail "status --json failed"
  python3 -c 'import urllib.request,sys; urllib.request.urlopen("http://127.0.0.1:%s/metrics" % sys.argv[1], timeout=5).read()' $m \
    || fail "metrics failed"
  kill -USR1 $apid
  if [ $round = 2 ] || [ $round = 4 ]; then conf $((round * 100)); kill -HUP $apid; fi
done
for c in "${clients[@]}"; do wait "$c" || true; done
total=0
for i in 1 2 3 4; do
  line=$(grep '^client: sent' "$log/client$i.out") || { cat "$log/client$i.out"; fail "client $i did not finish"; }
  sent=$(sed -n 's/^client: sent \([0-9]*\), echoed back \([0-9]*\), duplicates \([0-9]*\).*/\1/p' <<<"$line")
  back=$(sed -n 's/^client: sent \([0-9]*\), echoed back \([0-9]*\), duplicates \([0-9]*\).*/\2/p' <<<"$line")
  dups=$(sed -n 's/^client: sent \([0-9]*\), echoed back \([0-9]*\), duplicates \([0-9]*\).*/\3/p' <<<"$line")
  # The TSan build is several times slower than the firmware: a little loss is allowed here
  # (the relay tests on the firmware allow none); duplicates never.
  [ "${sent:-0}" -gt 100 ] && [ $((back * 10)) -ge $((sent * 8)) ] && [ "$dups" = 0 ] || { cat "$log/client$i.out"; fail "client $i: $line"; }
  total=$((total + back))
done
kill -TERM $apid; rc=0; wait $apid || rc=$?
if ls "$log"/tsan* >/dev/null 2>&1; then
  grep -E '^WARNING: ThreadSanitizer|^  (Read|Write|Previous)|^    #[0-3] ' "$log"/tsan* | head -40
  fail "ThreadSanitizer reported $(cat "$log"/tsan* | grep -c '^WARNING: ThreadSanitizer') problem(s)"
fi
[ $rc = 0 ] || { tail -20 "$log/a.log"; fail "node A exited with status $rc"; }
grep -q 'msg="reloaded"' "$log/a.log" || fail "node A did not reload"
accepted=$(grep -o 'receipts_accepted=[0-9]*' "$log/a.log" | tail -1 | cut -d= -f2)
[ "${accepted:-0}" -gt 0 ] || { tail -5 "$log/a.log"; fail "no receipt reached A's credit worker"; }
ups=$(grep -c 'msg="session up".*kind=client' "$log/a.log")
[ "$ups" -ge 2 ] || { grep session "$log/a.log" | tail -5; fail "the DTLS clients' sessions did not come up on A ($ups)"; }
check "ThreadSanitizer: node with 2 shards, control plane, credit worker and handshake worker relayed $total messages for 4 paying clients ($accepted receipts verified off the shards, $ups DTLS sessions handed from the handshake worker to shard 0) through 6 status/metrics rounds and 2 reloads: no race reported"
