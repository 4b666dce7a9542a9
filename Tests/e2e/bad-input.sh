#!/usr/bin/env bash
# A running node under hostile input: truncated, oversized, random datagrams, wrong
# versions, DTLS records (to the session table: no_session, bad_hello) and frames for
# unknown circuits, interleaved with a good
# transfer. The node must stay up, deliver every good message exactly once, and its
# drop counters (printed when it stops) must show each reason.
source "$(dirname "$0")/lib.bash"
port=$((20000 + RANDOM % 20000)) echo_port=$((port + 1))
log=$(mktemp /tmp/wisp-bad.XXXXXX)
Toolchain/run.sh x86_64 run --listen 127.0.0.1:$port --state-dir "$state" --exit 127.0.0.1:$echo_port --links optional --lab-addresses yes --credit-window 0 --duration 30 2>"$log" & node=$!
pids+=($node)
python3 Tests/e2e/wisppeer.py echo $echo_port 25 >/dev/null & pids+=($!)
wait_udp $echo_port
sleep 0.5
python3 - "$port" "$echo_port" <<'PY'
import os, random, socket, sys, threading, time
sys.path.insert(0, 'Tests/e2e')
from wisppeer import *
port, echo_port = int(sys.argv[1]), int(sys.argv[2])
node = ('127.0.0.1', port)
c = Client()
fwd = c.build(node, hop(2, echo_port))
stop = False
sent = {}
def hostile():
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    rnd = random.Random(7)
    cases = [
        ('truncated', lambda: frame(DATA, fwd, b'x' * 10)[:rnd.randrange(1, 8)]),
        ('truncated-body', lambda: HDR.pack(VERSION, DATA, 100, fwd) + b'short'),
        ('length_mismatch', lambda: HDR.pack(VERSION, DATA, 2, fwd) + b'longer than two'),
        ('oversized', lambda: frame(DATA, fwd, os.urandom(1500))),
        ('jumbo', lambda: os.urandom(9000)),
        ('random', lambda: os.urandom(rnd.randrange(1, 1400))),
        ('bad_version', lambda: bytes([0xD7]) + frame(DATA, fwd, b'x')[1:]),
        ('bad_type', lambda: HDR.pack(VERSION, 0x42, 0, fwd)),
        ('dtls', lambda: bytes([22, 0xFE, 0xFD]) + os.urandom(40)),
        ('dtls-hello', lambda: bytes([22, 0xFE, 0xFD, 0, 0, 0, 0, 0, 0, 0, 0, 0, 40, 1]) + os.urandom(30)),
        ('unknown_circuit', lambda: frame(DATA, rnd.randrange(1, 1 << 32), b'guess')),
        ('bad_body', lambda: frame(CREATED, fwd, b'123')),
        ('bad hop', lambda: frame(CREATE, 99, b'\x09' * 8)),
        ('unexpected CREATED', lambda: frame(CREATED, rnd.randrange(1, 1 << 32), b'\0\0\0\1')),
        ('empty', lambda: b''),
    ]
    n = 0
    end = time.time() + 10
    while not stop and time.time() < end and n < 60000:
        name, make = cases[n % len(cases)]
        s.sendto(make(), node)
        sent[name] = sent.get(name, 0) + 1
        n += 1
        if n % 200 == 0:
            time.sleep(0.001)
t = threading.Thread(target=hostile); t.start()
got, dups, secs = c.transfer(node, fwd, 3000, 256)
stop = True; t.join()
print('e2e bad-input: %d hostile datagrams sent alongside; good transfer %d/3000 back, %d duplicates, %.2f s'
      % (sum(sent.values()), len(got), dups, secs))
assert len(got) == 3000 and dups == 0
PY
kill -TERM $node; wait $node || fail "node exited non-zero after hostile input"
summary=$(grep 'msg="stopped"' "$log") || { cat "$log"; fail "node did not stop cleanly"; }
echo "e2e node summary: ${summary#*msg=\"stopped\" }"
for reason in truncated length_mismatch oversized not_wisp bad_version bad_type no_session bad_hello unknown_circuit bad_body unexpected_reply; do
  echo "$summary" | grep -qE "(^| |\[)$reason=[1-9]" || fail "drop counter $reason is zero"
done
check "bad-input: node up, good traffic intact, every drop reason counted"
rm -f "$log"
