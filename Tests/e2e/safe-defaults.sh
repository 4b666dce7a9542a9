#!/usr/bin/env bash
# The node's and the client's defaults hold (issue 14, "Safe defaults" and "Addresses a
# node will send to"), on loopback with the firmware build:
#   1. a node with the default `links = required` answers no plain PING, yet the client's
#      RTT probe finds it (a DTLS ClientHello answered by a stateless HelloVerifyRequest):
#      `wisp client --peers` with the node's fingerprint (and a payer key) builds a circuit in a pinned DTLS
#      session (the default) and every message comes back;
#   2. a client without the first hop's key stops with a clear error (exit 2);
#      `--trust-first-hop` goes ahead and warns on stderr;
#   3. a node without lab mode refuses a CREATE that extends to loopback (REFUSED 7,
#      counted `forbidden_address`), and refuses to start with a loopback `--exit`.
source "$(dirname "$0")/lib.bash"
W=.build-firmware/x86_64/wisp
[ -x "$W" ] || fail "no $W (Toolchain/build.sh x86_64 first)"
port=$((20000 + RANDOM % 20000)) echo_port=$((port + 1)) pub=$((port + 2))
log=$(mktemp -d /tmp/wisp-defaults.XXXXXX)
trap 'cleanup; rm -rf "$log"' EXIT
for n in N P payer; do $W keygen --state-dir "$state/$n" >/dev/null; done
fp=$($W id --state-dir "$state/N" | sed -n 's/^fingerprint //p')
fpp=$($W id --state-dir "$state/P" | sed -n 's/^fingerprint //p')
[ ${#fp} = 64 ] && [ ${#fpp} = 64 ] || fail "no fingerprints"
python3 Tests/e2e/wisppeer.py echo $echo_port 40 >/dev/null & pids+=($!)
wait_udp $echo_port
# N: the defaults, but lab mode (its exit is on loopback).
$W run --listen 127.0.0.1:$port --state-dir "$state/N" --name N --exit 127.0.0.1:$echo_port --lab-addresses yes \
  --status-socket "$log/n.sock" --duration 40 2>"$log/n.log" & pids+=($!)
# P: the defaults, no lab mode, no exit.
$W run --listen 127.0.0.1:$pub --state-dir "$state/P" --name P --status-socket "$log/p.sock" --duration 40 \
  2>"$log/p.log" & pids+=($!)
for _ in $(seq 50); do [ -S "$log/n.sock" ] && [ -S "$log/p.sock" ] && break; sleep 0.1; done
[ -S "$log/n.sock" ] && [ -S "$log/p.sock" ] || { cat "$log/n.log" "$log/p.log"; fail "nodes did not start"; }
grep -q 'links=required' "$log/n.log" || { cat "$log/n.log"; fail "links are not required by default"; }
grep -q 'msg="lab addresses on.*lab_addresses=yes' "$log/n.log" || { cat "$log/n.log"; fail "N did not log lab mode"; }
grep -q 'msg="address policy" lab_addresses=no' "$log/p.log" || { cat "$log/p.log"; fail "P did not log its address policy"; }

# 1. No PONG for a stranger's plain PING; the client's probe and pinned session work.
python3 - "$port" <<'PY'
import socket, sys
sys.path.insert(0, 'Tests/e2e')
from wisppeer import *
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(('127.0.0.1', 0)); s.settimeout(0.3)
for i in range(3): s.sendto(frame(PING, 0, bytes(16)), loopback(('127.0.0.1', int(sys.argv[1]))))
try:
    s.recvfrom(2048); raise SystemExit('FAILED: a links=required node answered a plain PING')
except socket.timeout:
    pass
PY
check "links = required (default): 3 plain PINGs from a stranger, no PONG"
timeout 30 $W client --peers "n=127.0.0.1:$port=$fp" --hops 1 --exit 127.0.0.1:$echo_port --seconds 2 --rate-kbit 1000 --payer-key "$state/payer/node.key" \
  >"$log/c1.out" 2>"$log/c1.err" || { cat "$log/c1.out" "$log/c1.err"; fail "the default client failed"; }
grep -q '^client: probed 1 peers: n [0-9.]* ms;' "$log/c1.out" || { cat "$log/c1.out"; fail "the probe did not reach N"; }
grep -q "^client: dtls session with 127.0.0.1:$port" "$log/c1.out" || { cat "$log/c1.out"; fail "no DTLS session by default"; }
grep -q 'loss 0.000%' "$log/c1.out" || { cat "$log/c1.out"; fail "messages lost"; }
[ ! -s "$log/c1.err" ] || { cat "$log/c1.err"; fail "the pinned client printed to stderr"; }
cookies=$($W status --json --socket "$log/n.sock" | python3 -c "import json,sys; print(json.load(sys.stdin)['sessions']['hello_verify_requests'])")
check "probe: $(grep -o 'peers: n [0-9.]* ms' "$log/c1.out") (N answered $cookies cookie requests); pinned DTLS session, $(grep -o 'echoed back [0-9]*' "$log/c1.out"), loss 0"

# 2. No key for the first hop: a clear error; --trust-first-hop warns and works.
rc=0; timeout 20 $W client --via 127.0.0.1:$port --exit 127.0.0.1:$echo_port --seconds 1 >"$log/c2.out" 2>&1 || rc=$?
[ $rc = 2 ] && grep -q 'no pinned key for the first hop' "$log/c2.out" \
  || { cat "$log/c2.out"; fail "an unpinned first hop was not refused (rc $rc)"; }
check "unpinned first hop refused: $(head -1 "$log/c2.out")"
timeout 20 $W client --via 127.0.0.1:$port --exit 127.0.0.1:$echo_port --trust-first-hop --seconds 1 \
  >"$log/c3.out" 2>"$log/c3.err" || { cat "$log/c3.out" "$log/c3.err"; fail "--trust-first-hop failed"; }
grep -q 'WARNING: --trust-first-hop' "$log/c3.err" || { cat "$log/c3.err"; fail "--trust-first-hop did not warn"; }
grep -q "learned 127.0.0.1:$port key $fp" "$log/c3.out" || { cat "$log/c3.out"; fail "the trusted key is not N's"; }
check "--trust-first-hop: warned on stderr, learned N's key, $(grep -o 'loss [0-9.]*%' "$log/c3.out")"

# 3. P (no lab mode) does not extend to loopback; a loopback --exit is a start-up error.
rc=0; timeout 20 $W client --via 127.0.0.1:$pub,127.0.0.1:$port --keys "$fpp,$fp" --exit 127.0.0.1:$echo_port --seconds 1 \
  >"$log/c4.out" 2>&1 || rc=$?
[ $rc = 1 ] && grep -q 'refused (reason 7' "$log/c4.out" || { cat "$log/c4.out"; fail "P extended to loopback (rc $rc)"; }
forbidden=$($W status --json --socket "$log/p.sock" | python3 -c "import json,sys; print(json.load(sys.stdin)['drops']['forbidden_address'])")
[ "$forbidden" -ge 1 ] || fail "P did not count forbidden_address"
lab=$($W status --socket "$log/p.sock" | sed -n 's/^addresses: //p')
check "P without lab mode: extend to 127.0.0.1 refused ($(grep -o 'reason 7[^)]*' "$log/c4.out")), forbidden_address=$forbidden; status: addresses: $lab"
rc=0; $W run --listen 127.0.0.1:$((pub + 5)) --state-dir "$state/Q" --exit 127.0.0.1:$echo_port --duration 1 \
  >/dev/null 2>"$log/q.err" || rc=$?
[ $rc = 2 ] && grep -q "'--exit': 127.0.0.1:$echo_port is loopback" "$log/q.err" || { cat "$log/q.err"; fail "a loopback --exit started (rc $rc)"; }
check "loopback --exit without lab mode: $(head -1 "$log/q.err")"
