#!/usr/bin/env bash
# No unpaid work beyond the credit window: a client that never pays gets at most W bytes
# relayed on its circuit, then the circuit pauses (drops counted as `unpaid`, status shows
# it paused, the LED state says unpaid). With --credit-window 0 the same traffic flows.
source "$(dirname "$0")/lib.bash"
port=$((20000 + RANDOM % 20000)) echo_port=$((port + 1))
python3 Tests/e2e/wisppeer.py echo $echo_port 25 >/dev/null & pids+=($!)
for window in 200000 0; do
  log=$(mktemp /tmp/wisp-window.XXXXXX)
  .build-firmware/x86_64/wisp run --listen 127.0.0.1:$port --state-dir "$state/w$window" --exit 127.0.0.1:$echo_port --links optional --lab-addresses yes \
    --credit-window $window --status-socket "$state/status-$window.sock" --duration 30 2>"$log" & node=$!
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
    assert relayed <= window, 'relayed %d > window %d' % (relayed, window)
    assert relayed >= window - 2000, 'paused too early: %d of %d' % (relayed, window)
    assert st['credit']['paused_circuits'] == 1 and st['drops']['unpaid'] > 0, st
    assert st['leds'].startswith('unpaid'), st['leds']
    print('e2e credit window %d: relayed %d bytes unpaid, then paused (unpaid drops %d, %d echoes back, LEDs: %s)'
          % (window, relayed, st['drops']['unpaid'], back, st['leds'].split(' (')[0]))
else:
    assert relayed == 1000000 and back == 500 and st['drops']['unpaid'] == 0, (relayed, back, st['drops'])
    print('e2e credit window off: relayed all %d bytes, %d echoes back, no unpaid drops' % (relayed, back))
PY
  kill -TERM $node; wait $node || fail "node exited non-zero"
  rm -f "$log"
done
check "credit window: no unpaid work beyond W; window 0 relays freely"
