#!/usr/bin/env bash
# Encrypted relay end to end on loopback, through real wisp processes:
#   wisp client ==DTLS==> node A (x86_64) ==DTLS==> node B (aarch64 under qemu-user, exit) --> echo
# Both nodes run with `--links required`: plain frames from anyone but the exit are refused.
# Checks: every message back exactly once; the node link and the client session are up
# (status JSON), every relayed frame crossed both links as a DTLS record; a sniffing proxy is
# not needed: the nodes count records, and a plain client is refused by reason.
# The node link is rekeyed every MiB (--rekey-mib 1) while the client's messages cross it:
# none may be lost. Then B restarts (same key): A reconnects to it and a second client run
# works again, and the session's close_notify reaches B on A's shutdown.
source "$(dirname "$0")/lib.bash"
arm=${WISP_DTLS_ARM:-aarch64}
base=$((21000 + RANDOM % 20000))
a=$base b=$((base + 1)) e=$((base + 2))
log=$(mktemp -d /tmp/wisp-dtls-e2e.XXXXXX)
trap 'cleanup; rm -rf "$log"' EXIT

Toolchain/run.sh x86_64 keygen --state-dir "$state/A" >/dev/null
Toolchain/run.sh "$arm" keygen --state-dir "$state/B" >/dev/null
fa=$(Toolchain/run.sh x86_64 id --state-dir "$state/A" | sed -n 's/^fingerprint //p')
fb=$(Toolchain/run.sh "$arm" id --state-dir "$state/B" | sed -n 's/^fingerprint //p')
[ ${#fa} = 64 ] && [ ${#fb} = 64 ] || fail "no fingerprints ($fa / $fb)"

start_b() {
  Toolchain/run.sh "$arm" run --listen 127.0.0.1:$b --state-dir "$state/B" --name B --exit 127.0.0.1:$e --lab-addresses yes \
    --peer A=127.0.0.1:$a=$fa --links required --rekey-mib 1 --credit-window 0 --status-socket "$log/b.sock" --duration 60 \
    2>>"$log/b.log" & bpid=$!; pids+=($bpid)
}
Toolchain/run.sh x86_64 run --listen 127.0.0.1:$a --state-dir "$state/A" --name A --peer B=127.0.0.1:$b=$fb --lab-addresses yes \
  --links required --rekey-mib 1 --credit-window 0 --status-socket "$log/a.sock" --duration 60 2>"$log/a.log" & apid=$!; pids+=($apid)
start_b
python3 Tests/e2e/wisppeer.py echo $e 50 >/dev/null & pids+=($!)
wait_udp $e

# The node link comes up by itself (the lower fingerprint dials; qemu is slow: up to 20 s).
up=0
for _ in $(seq 200); do
  if grep -q 'msg="session up".*name=B' "$log/a.log" 2>/dev/null; then up=1; break; fi
  sleep 0.1
done
[ $up = 1 ] || { cat "$log/a.log" "$log/b.log"; fail "the A-B DTLS link did not come up"; }
check "node link A (x86_64) <-> B ($arm, qemu) up: $(grep -o 'suite=[A-Z0-9-]*' "$log/a.log" | head -1)"

run_client() {  # run_client SECONDS OUT
  timeout 30 Toolchain/run.sh x86_64 client --via 127.0.0.1:$a,127.0.0.1:$b --keys "$fa,$fb" --exit 127.0.0.1:$e \
    --dtls on --seconds "$1" --size 1000 --rate-kbit 4000 >"$2" 2>&1 || { cat "$2"; fail "client failed"; }
}
run_client 3 "$log/client1.out"
grep -q 'dtls session with 127.0.0.1:'$a "$log/client1.out" || { cat "$log/client1.out"; fail "no DTLS session with A"; }
line=$(grep '^client: sent' "$log/client1.out")
sent=$(sed -n 's/^client: sent \([0-9]*\), echoed back \([0-9]*\), duplicates \([0-9]*\).*/\1/p' <<<"$line")
back=$(sed -n 's/^client: sent \([0-9]*\), echoed back \([0-9]*\), duplicates \([0-9]*\).*/\2/p' <<<"$line")
dups=$(sed -n 's/^client: sent \([0-9]*\), echoed back \([0-9]*\), duplicates \([0-9]*\).*/\3/p' <<<"$line")
[ -n "$sent" ] && [ "$sent" -gt 100 ] && [ "$sent" = "$back" ] && [ "$dups" = 0 ] || { cat "$log/client1.out"; fail "lost or duplicated: $line"; }
check "encrypted relay x86_64 -> $arm (qemu) -> echo: $back/$sent messages back exactly once"
rekeys=$(cat "$log/a.log" "$log/b.log" | grep -c 'msg="session rekeyed"' || true)
[ "$rekeys" -ge 2 ] || { grep session "$log/a.log" "$log/b.log"; fail "the node link was not rekeyed (1 MiB limit)"; }
check "node link rekeyed during the transfer ($rekeys rekey log lines, both ends; resumed: $(grep -o 'msg="session rekeyed".*resumed=1' "$log/a.log" "$log/b.log" | wc -l)), no message lost"

# Status: both sessions on A, the records, nothing refused but the plain probes.
st=$(Toolchain/run.sh x86_64 status --socket "$log/a.sock" --json)
python3 - "$sent" <<PY "$st"
import json, sys
sent = int(sys.argv[1]); s = json.loads(sys.argv[2])['sessions']
assert s['established'] >= 1, s
assert s['handshakes_full'] >= 2, s          # the node link and the client
# Each message crossed A twice (out and back) in records on each side: opened from the
# client and from B, sealed to B and to the client.
assert s['records_opened'] >= 2 * sent and s['records_sealed'] >= 2 * sent, (s, sent)
assert s['refused']['not_pinned'] == 0 and s['refused']['bad_certificate'] == 0, s
print('check A: records opened %d sealed %d for %d messages; refusals %s' % (
  s['records_opened'], s['records_sealed'], sent, {k: v for k, v in s['refused'].items() if v}))
PY

# A plain client is refused (links required) and counted.
set +e
timeout 20 Toolchain/run.sh x86_64 client --via 127.0.0.1:$a,127.0.0.1:$b --exit 127.0.0.1:$e --dtls off --seconds 1 >"$log/plain.out" 2>&1
rc=$?
set -e
[ $rc != 0 ] || { cat "$log/plain.out"; fail "a plain client got through with links required"; }
st=$(Toolchain/run.sh x86_64 status --socket "$log/a.sock" --json)
refused=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["sessions"]["refused"]["plain_refused"])' "$st")
[ "$refused" -ge 1 ] || fail "plain frames were not counted as refused"
check "plain client refused: plain_refused=$refused"

# B restarts with the same key: A's link fails over to a new session, traffic flows again.
kill -TERM $bpid; wait $bpid 2>/dev/null || true
grep -q 'closed_by_peer\|msg="stopped"' "$log/b.log" || true
start_b
up=0
for _ in $(seq 300); do
  [ "$(grep -c 'msg="session up".*name=B' "$log/a.log")" -ge 2 ] && { up=1; break; }
  sleep 0.1
done
[ $up = 1 ] || { tail -20 "$log/a.log"; tail -20 "$log/b.log"; fail "A did not reconnect to the restarted B"; }
# One round trip: the ticket key comes from B's ticket.seed, and the dialling side kept its
# session (in memory, or in links/FP.session if it was B that restarted).
grep 'msg="session up".*name=B' "$log/a.log" | tail -1 | grep -q 'resumed=1' ||
  { grep 'session up' "$log/a.log" "$log/b.log"; fail "the reconnection after B's restart was not a resumption"; }
check "reconnection after B's restart resumed its session (ticket key from ticket.seed): $(ls "$state"/*/links/ 2>/dev/null | grep -c session) link session file(s) kept"
run_client 2 "$log/client2.out"
line=$(grep '^client: sent' "$log/client2.out")
grep -q 'loss 0.000%' <<<"$line" || { cat "$log/client2.out"; fail "after B's restart: $line"; }
check "after B restarted: link re-established, $line"

kill -TERM $apid; wait $apid 2>/dev/null || true
grep -q 'close_notify_sent=[1-9]' "$log/a.log" || { tail -5 "$log/a.log"; fail "A sent no close_notify on shutdown"; }
for _ in $(seq 50); do grep -q 'msg="session closed".*name=A' "$log/b.log" && break; sleep 0.1; done
grep -q 'msg="session closed".*name=A' "$log/b.log" || { tail -5 "$log/b.log"; fail "B did not see A's close_notify"; }
check "A's shutdown: close_notify sent, B closed the session"
echo "e2e dtls-relay: $(grep -o 'records_sealed=[0-9]* records_opened=[0-9]*' "$log/a.log" | tail -1)"
