#!/usr/bin/env bash
# No unpaid work: a client that never pays (no receipt binds its circuit) gets at most the
# unbound allowance relayed, then the circuit pauses (drops counted as `unpaid`, status shows
# it paused, the LED state says unpaid) and is closed at the bind timeout (`unbound_closed`);
# circuits opened one after another get one allowance each, never a window. With
# --credit-window 0 the same traffic flows and nothing is closed.
source "$(dirname "$0")/lib.bash"
port=$((20000 + RANDOM % 20000)) echo_port=$((port + 1))
python3 Tests/e2e/wisppeer.py echo $echo_port 130 >/dev/null & pids+=($!)
wait_udp $echo_port
for window in 200000 0; do
  log=$(mktemp /tmp/wisp-window.XXXXXX)
  .build-firmware/x86_64/wisp run --clock-sync assume --listen 127.0.0.1:$port --state-dir "$state/w$window" --exit 127.0.0.1:$echo_port --links optional --lab-addresses yes \
    --credit-window $window --unbound-allowance 100000 --bind-timeout 15 --status-socket "$state/status-$window.sock" --duration 60 2>"$log" & node=$!
  pids+=($node)
  sleep 0.5
  python3 - "$port" "$echo_port" "$window" "$state/status-$window.sock" <<'PY'
import json, socket, struct, subprocess, sys, time
sys.path.insert(0, 'Tests/e2e')
from wisppeer import *
port, echo_port, window, sock = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
c = Client(timeout=0.3)
fwd = c.build(('127.0.0.1', port), hop(2, echo_port))
back = 0
pad = b'x' * 992
for i in range(500):                       # 500 x 1000 bytes out; echoes come back
    c.s.sendto(frame(DATA, fwd, struct.pack('>Q', i) + pad), ('127.0.0.1', port))
    if i % 20 == 19:
        try:
            while True:
                d, _ = c.s.recvfrom(2048); back += 1
        except socket.timeout:
            pass
try:
    while True:
        d, _ = c.s.recvfrom(2048); back += 1
except socket.timeout:
    pass
st = json.loads(subprocess.run(['.build-firmware/x86_64/wisp', 'status', '--json', '--socket', sock],
                               capture_output=True, text=True, timeout=5).stdout)
relayed = st['traffic']['bytes']
if window:
    assert relayed <= 100000, 'relayed %d > unbound allowance 100000' % relayed
    assert relayed >= 100000 - 2000, 'paused too early: %d of 100000' % relayed
    assert st['credit']['paused_circuits'] == 1 and st['drops']['unpaid'] > 0, st
    assert st['credit']['unbound_open'] == 1 and st['credit']['binds_sent'] == 1, st['credit']
    assert st['leds'].startswith('unpaid'), st['leds']
    # Bind timeout (15 s after CREATE): the unbound circuit is closed (DESTROY 4 to the client).
    for _ in range(200):
        st2 = json.loads(subprocess.run(['.build-firmware/x86_64/wisp', 'status', '--json', '--socket', sock],
                                        capture_output=True, text=True, timeout=5).stdout)
        if st2['credit']['unbound_closed'] == 1:
            break
        time.sleep(0.1)
    assert st2['credit']['unbound_closed'] == 1 and st2['circuits']['open'] == 0, st2['credit']
    # Rotation: 4 more circuits, each sending 150 KB unpaid: one allowance each, never W.
    before = st2['traffic']['bytes']
    for k in range(4):
        c2 = Client(timeout=0.3)
        f2 = c2.build(('127.0.0.1', port), hop(2, echo_port))
        for i in range(150):
            c2.s.sendto(frame(DATA, f2, struct.pack('>Q', i) + pad), ('127.0.0.1', port))
        time.sleep(0.2)
    st3 = json.loads(subprocess.run(['.build-firmware/x86_64/wisp', 'status', '--json', '--socket', sock],
                                    capture_output=True, text=True, timeout=5).stdout)
    rotated = st3['traffic']['bytes'] - before
    assert rotated <= 4 * 100000, 'rotation carried %d > 4 allowances' % rotated
    print('e2e credit window %d: unbound circuit relayed %d bytes unpaid, then paused (unpaid drops %d, %d echoes back, LEDs: %s), closed at the bind timeout; 4 rotated circuits carried %d bytes (<= 4 x 100000)'
          % (window, relayed, st['drops']['unpaid'], back, st['leds'].split(' (')[0], rotated))
else:
    assert relayed == 1000000 and back == 500 and st['drops']['unpaid'] == 0, (relayed, back, st['drops'])
    print('e2e credit window off: relayed all %d bytes, %d echoes back, no unpaid drops' % (relayed, back))
PY
  kill -TERM $node; wait $node || fail "node exited non-zero"
  rm -f "$log"
done
check "credit: no unpaid work beyond the unbound allowance, unbound circuits closed, rotation gets one allowance per circuit; window 0 relays freely"
