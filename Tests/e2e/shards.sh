#!/usr/bin/env bash
# Two shards on one port: the kernel's reuseport program must steer every frame to the
# shard that owns its circuit, in both directions, for many circuits.
source "$(dirname "$0")/lib.bash"
port=$((20000 + RANDOM % 20000))
log=$(mktemp /tmp/wisp-shards.XXXXXX)
Toolchain/run.sh x86_64 run --listen 127.0.0.1:$port --state-dir "$state" --shards 2 --links optional --lab-addresses yes --credit-window 0 --duration 30 2>"$log" & node=$!
pids+=($node)
sleep 0.5
python3 - "$port" <<'PY'
import socket, struct, sys, time
sys.path.insert(0, 'Tests/e2e')
from wisppeer import *
node = ('127.0.0.1', int(sys.argv[1]))
c = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); c.bind(('127.0.0.1', 0)); c.settimeout(2)
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(('127.0.0.1', 0)); s.settimeout(2)
N = 64
fwd, back = {}, {}
for i in range(1, N + 1):            # client ids 1..N: both low-bit parities, so both shards
    c.sendto(frame(CREATE, i, hop(1, s.getsockname()[1])), node)
    d, _ = s.recvfrom(2048); t, rid, _ = parse(d); assert t == CREATE
    back[i] = rid
    s.sendto(frame(CREATED, rid, struct.pack('>I', 1000 + i)), node)
    d, _ = c.recvfrom(2048); t, cid, b = parse(d); assert t == CREATED and cid == i
    fwd[i] = struct.unpack('>I', b)[0]
shards = {fwd[i] & 1 for i in fwd} | {back[i] & 1 for i in back}
assert shards == {0, 1}, 'circuits all on one shard: %r' % shards
ok = 0
for i in range(1, N + 1):
    c.sendto(frame(DATA, fwd[i], b'out%d' % i), node)
    d, _ = s.recvfrom(2048); t, cid, b = parse(d)
    assert t == DATA and cid == 1000 + i and b == b'out%d' % i
    s.sendto(frame(DATA, back[i], b'in%d' % i), node)
    d, _ = c.recvfrom(2048); t, cid, b = parse(d)
    assert t == DATA and cid == i and b == b'in%d' % i
    ok += 1
print('e2e shards: %d circuits over 2 shards, both directions forwarded for all %d' % (N, ok))
PY
kill -TERM $node; wait $node || fail "node exited non-zero"
grep -q 'circuits_created=64 ' "$log" || { cat "$log"; fail "expected 64 circuits"; }
grep -q 'unknown_circuit' "$log" && { cat "$log"; fail "frames reached the wrong shard"; }
check "shards: 64 circuits on 2 shards, no frame reached the wrong shard"
rm -f "$log"
