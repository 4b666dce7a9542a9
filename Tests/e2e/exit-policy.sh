#!/usr/bin/env bash
# The exit policy on a real node (CONFIG.md "Exit policy"), without lab mode, in a network
# namespace of its own (addresses 10.77.0.1, the node, and 10.77.0.2, the destinations,
# exist only there):
#   1. `wisp config check` prints the policy as written; a bad rule in the file or on the
#      command line is an error naming it;
#   2. with `exit_policy = reject 10.77.0.2:5301, accept 10.77.0.2:5300-5310, accept *:*`
#      a CREATE to 10.77.0.2:5300 is served (every DATA echoed), one to :5301 is REFUSED 3
#      (`exit_policy`), one to :5311 is REFUSED 7 (`forbidden_address`: a private address
#      that only `accept *:*` matches), and nothing reaches those two destinations;
#      `wisp status` (text and JSON) shows the policy and the counters;
#   3. SIGHUP with `exit_policy = accept 10.77.0.2:5302`: the live circuit to :5300 stops
#      (its DATA dropped, `exit_not_allowed`), a new one to :5300 is REFUSED 7 (a private
#      address no accept rule inside its block matches), one to :5302 is served.
source "$(dirname "$0")/lib.bash"
[ "$(id -u)" -eq 0 ] || fail "needs root (network namespaces)"
need_tools ip:iproute2 python3:python3
W=.build-firmware/x86_64/wisp
[ -x "$W" ] || fail "no $W (Toolchain/build.sh x86_64 first)"
ns=wpol$$
conf=$state/wisp.conf
sock=$state/s.sock
trap 'for p in "${pids[@]:-}"; do [ -n "$p" ] && kill -9 "$p" 2>/dev/null || true; done; ip netns del $ns 2>/dev/null || true; rm -rf "$state"' EXIT
trap 'exit 130' INT TERM
ip netns add $ns || fail "cannot create a network namespace here"
ip -n $ns link set lo up
ip -n $ns addr add 10.77.0.1/32 dev lo
ip -n $ns addr add 10.77.0.2/32 dev lo

policy='reject 10.77.0.2:5301, accept 10.77.0.2:5300-5310, accept *:*'
cat >"$conf" <<EOF
name = policy
listen = 10.77.0.1:7400
state_dir = $state/node
status_socket = $sock
links = optional
credit_window = 0
exit_policy = $policy
EOF
# 1. The policy as `wisp config check` reads it.
$W config check "$conf" >"$state/check.out" || { cat "$state/check.out"; fail "config check failed"; }
grep -qF "exit_policy=$policy (first match wins" "$state/check.out" || { cat "$state/check.out"; fail "config check does not print the policy"; }
check "config check: $(grep -o 'exit_policy=.*' "$state/check.out")"
# Bad rules are clear errors: a file (exit 1, naming the line), the command line (exit 2).
printf 'exit_policy = accept 10.77.0.0/8:53\n' >"$state/bad.conf"
rc=0; $W config check "$state/bad.conf" >"$state/bad.out" 2>&1 || rc=$?
[ $rc = 1 ] && grep -qF "bad.conf:1: 'exit_policy': 'accept 10.77.0.0/8:53': address bits beyond the prefix length are set" "$state/bad.out" \
  || { cat "$state/bad.out"; fail "a bad exit_policy line was not named (rc $rc)"; }
rc=0; $W run --listen 127.0.0.1:7 --state-dir "$state/x" --exit-policy 'allow *:53' --duration 1 >"$state/bad2.out" 2>&1 || rc=$?
[ $rc = 2 ] && grep -qF "option '--exit-policy': 'allow *:53': a rule starts with accept or reject, not 'allow'" "$state/bad2.out" \
  || { cat "$state/bad2.out"; fail "a bad --exit-policy was not refused (rc $rc)"; }
check "bad rules: $(head -1 "$state/bad.out" | sed "s|$state/||") | $(head -1 "$state/bad2.out")"

ip netns exec $ns $W run --config "$conf" --duration 60 2>"$state/node.log" & node=$!
pids+=($node)
for _ in $(seq 50); do [ -S "$sock" ] && break; sleep 0.1; done
[ -S "$sock" ] || { cat "$state/node.log"; fail "the node did not start"; }
grep -q 'msg="exit policy" rules="reject 10.77.0.2:5301' "$state/node.log" || { cat "$state/node.log"; fail "the policy is not logged"; }
$W status --socket "$sock" >"$state/status.txt"
grep -qF "policy:    $policy (first match wins; no match: reject)" "$state/status.txt" || { cat "$state/status.txt"; fail "status text shows no policy"; }

ip netns exec $ns python3 - "$sock" "$node" "$conf" <<'PY'
import json, os, signal, socket, struct, sys, threading, time
sys.path.insert(0, 'Tests/e2e')
from wisppeer import *
sock_path, pid, conf = sys.argv[1], int(sys.argv[2]), sys.argv[3]
node = ('10.77.0.1', 7400)
DEST = 0x0A4D0002  # 10.77.0.2
got = {}
stop = time.time() + 40
def serve(port):
    d = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); d.bind(('10.77.0.2', port)); d.settimeout(0.2)
    while time.time() < stop:
        try:
            b, a = d.recvfrom(2048)
        except socket.timeout:
            continue
        got[port] = got.get(port, 0) + 1
        d.sendto(b, a)
for p in (5300, 5301, 5302, 5311):
    threading.Thread(target=serve, args=(p,), daemon=True).start()
time.sleep(0.2)
def status(): return status_json(sock_path)
c = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); c.bind(('10.77.0.1', 0)); c.settimeout(1)
def create(cid, port):
    for _ in range(10):
        c.sendto(frame(CREATE, cid, hop(2, port, DEST)), node)
        try:
            t, rid, body = parse(c.recvfrom(2048)[0])
        except socket.timeout:
            continue
        assert rid == cid, 'answer for circuit %d, not %d' % (rid, cid)
        if t == CREATED: return ('created', struct.unpack('>I', body[:4])[0])
        if t == REFUSED: return ('refused', body[0])
        raise SystemExit('FAILED: frame type %d for a CREATE' % t)
    raise SystemExit('FAILED: no answer to CREATE to port %d' % port)
def echoed(fwd, n, cid):
    back = 0
    for i in range(n):
        c.sendto(frame(DATA, fwd, b'm%d' % i), node)
        try:
            t, rid, body = parse(c.recvfrom(2048)[0])
            if t == DATA and rid == cid and body == b'm%d' % i: back += 1
        except socket.timeout:
            pass
    return back

# 2. The policy at CREATE.
k, fwd = create(1, 5300)
assert k == 'created', 'CREATE to :5300 (accepted) got %s %r' % (k, fwd)
assert echoed(fwd, 20, 1) == 20, 'DATA to :5300 not all echoed'
assert create(2, 5301) == ('refused', 3), 'CREATE to :5301 (reject rule) not REFUSED 3'
assert create(3, 5311) == ('refused', 7), 'CREATE to :5311 (private, only *:* matches) not REFUSED 7'
st = status()
assert st['drops']['exit_policy'] == 1 and st['exits']['policy_refused'] == 1, st['exits']
assert st['drops']['forbidden_address'] == 1, st['drops']
assert st['exits']['policy'] == ['reject 10.77.0.2:5301', 'accept 10.77.0.2:5300-5310', 'accept *:*'], st['exits']
time.sleep(0.3)
assert 5301 not in got and 5311 not in got, 'a refused destination was reached: %r' % got
print('check policy at CREATE: :5300 served (20/20 echoed, %d at the destination), :5301 REFUSED 3 (exit_policy=%d), :5311 REFUSED 7 (forbidden_address=%d); nothing reached :5301 or :5311'
      % (got.get(5300, 0), st['drops']['exit_policy'], st['drops']['forbidden_address']))

# 3. Reload: the policy now accepts :5302 only.
text = open(conf).read().replace('exit_policy = reject 10.77.0.2:5301, accept 10.77.0.2:5300-5310, accept *:*',
                                 'exit_policy = accept 10.77.0.2:5302')
open(conf, 'w').write(text)
os.kill(pid, signal.SIGHUP)
for _ in range(50):
    if status()['exits']['policy'] == ['accept 10.77.0.2:5302']: break
    time.sleep(0.1)
else:
    raise SystemExit('FAILED: the reload did not replace the policy')
before = got.get(5300, 0)
assert echoed(fwd, 5, 1) == 0, 'DATA on a circuit whose destination left the policy came back'
time.sleep(0.3)
assert got.get(5300, 0) == before, 'DATA reached :5300 after the reload'
st = status()
assert st['drops']['exit_not_allowed'] >= 5, st['drops']
# 10.77.0.2 is private: with no accept rule inside its block matching :5300 it is closed.
r = create(4, 5300)
assert r == ('refused', 7), 'CREATE to :5300 after the reload: %r, not REFUSED 7' % (r,)
k, fwd2 = create(5, 5302)
assert k == 'created', 'CREATE to :5302 after the reload got %s %r' % (k, fwd2)
assert echoed(fwd2, 10, 5) == 10, 'DATA to :5302 not all echoed'
st = status()
print('check reload: live circuit to :5300 stopped (exit_not_allowed=%d), new CREATE to :5300 REFUSED 7 (forbidden_address=%d), :5302 served (10/10)'
      % (st['drops']['exit_not_allowed'], st['drops']['forbidden_address']))
PY
kill -TERM $node; wait $node || fail "node exited non-zero"
