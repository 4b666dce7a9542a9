#!/usr/bin/env bash
# End-to-end relay on loopback through real wisp processes:
#   client → node A (x86_64 firmware) → node B (aarch64 firmware under qemu-user, exit) → echo
# then the same with node B the armv7 build. Every message must come back exactly once.
source "$(dirname "$0")/lib.bash"
base=$((20000 + RANDOM % 20000))
for arm in aarch64 armv7; do
  a=$base b=$((base + 1)) e=$((base + 2)) base=$((base + 10))
  Toolchain/run.sh x86_64 run --listen 127.0.0.1:$a --state-dir "$state/A-$arm" --name A --links optional --lab-addresses yes --credit-window 0 --duration 30 2>"/tmp/wisp-e2e-A.$$" & pids+=($!)
  Toolchain/run.sh $arm run --listen 127.0.0.1:$b --state-dir "$state/B-$arm" --name B --exit 127.0.0.1:$e --links optional --lab-addresses yes --credit-window 0 --duration 30 2>"/tmp/wisp-e2e-B.$$" & pids+=($!)
  python3 Tests/e2e/wisppeer.py echo $e 25 >/dev/null & pids+=($!)
  wait_udp $e
  sleep 1
  python3 - "$a" "$b" "$e" "$arm" <<'PY'
import sys; sys.path.insert(0, 'Tests/e2e')
from wisppeer import *
a, b, e, arm = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
c = Client()
fwd = c.build(('127.0.0.1', a), hop(1, b) + hop(2, e))
got, dups, secs = c.transfer(('127.0.0.1', a), fwd, 2000, 512)
print('e2e relay x86_64 -> %s (qemu) -> echo: %d/2000 messages back, %d duplicates, %.2f s' % (arm, len(got), dups, secs))
assert len(got) == 2000 and dups == 0, 'lost or duplicated messages'
PY
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  pids=()
  grep -q 'msg="stopped"' "/tmp/wisp-e2e-B.$$" || { cat "/tmp/wisp-e2e-B.$$"; fail "$arm node did not stop cleanly"; }
  echo "e2e $arm node: $(grep -o 'forwarded_packets=[0-9]*' "/tmp/wisp-e2e-B.$$")"
done
rm -f /tmp/wisp-e2e-*.$$
