#!/usr/bin/env bash
# UDP GRO on the relay's socket: a run of equal-size datagrams sent with UDP GSO reaches
# wisp as one coalesced datagram. Each segment must be forwarded on its own, in order —
# both wisp frames (rewritten in place) and plain replies from an exit destination on the
# exit circuit's own socket (which get a header prepended, so they are copied to pool
# buffers first).
source "$(dirname "$0")/lib.bash"
port=$((20000 + RANDOM % 20000)) dest=$((port + 1))
log=$(mktemp /tmp/wisp-gro.XXXXXX)
Toolchain/run.sh x86_64 run --listen 127.0.0.1:$port --state-dir "$state" --exit 127.0.0.1:$dest --links optional --lab-addresses yes --credit-window 0 --duration 30 2>"$log" & node=$!
pids+=($node)
sleep 0.5
python3 - "$port" "$dest" <<'PY'
import socket, struct, sys
sys.path.insert(0, 'Tests/e2e')
from wisppeer import *
node = ('127.0.0.1', int(sys.argv[1])); dest_port = int(sys.argv[2])
UDP_SEGMENT = 103
c = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); c.bind(('127.0.0.1', 0)); c.settimeout(2)
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(('127.0.0.1', 0)); s.settimeout(2)
# 1. Relay: client -> node -> s, 40 frames of 1008 bytes in one GSO send.
c.sendto(frame(CREATE, 5, hop(1, s.getsockname()[1])), node)
d, _ = s.recvfrom(2048); t, rid, _ = parse(d); s.sendto(frame(CREATED, rid, struct.pack('>I', 77)), node)
d, _ = c.recvfrom(2048); fwd = struct.unpack('>I', parse(d)[2])[0]
c.setsockopt(socket.SOL_UDP, UDP_SEGMENT, 1008)
c.sendto(b''.join(frame(DATA, fwd, struct.pack('>I', i) + b'r' * 996) for i in range(40)), node)
seq = []
for _ in range(40):
    t, cid, b = parse(s.recvfrom(65536)[0]); assert t == DATA and cid == 77 and len(b) == 1000
    seq.append(struct.unpack('>I', b[:4])[0])
assert seq == list(range(40)), seq
print('e2e gro relay: 40 coalesced frames forwarded one by one, in order, ids rewritten')
# 2. Exit: client2 -> node -> dest (exit); dest answers with one GSO run of 30 replies.
c2 = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); c2.bind(('127.0.0.1', 0)); c2.settimeout(2)
dst = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); dst.bind(('127.0.0.1', dest_port)); dst.settimeout(2)
c2.sendto(frame(CREATE, 9, hop(2, dest_port)), node)
t, cid, b = parse(c2.recvfrom(2048)[0]); assert t == CREATED and cid == 9
x = struct.unpack('>I', b)[0]
c2.sendto(frame(DATA, x, b'hello'), node)
d, a = dst.recvfrom(2048); assert d == b'hello'
dst.setsockopt(socket.SOL_UDP, UDP_SEGMENT, 500)
dst.sendto(b''.join(struct.pack('>I', i) + b'e' * 496 for i in range(30)), a)
seq = []
for _ in range(30):
    t, cid, b = parse(c2.recvfrom(65536)[0]); assert t == DATA and cid == 9 and len(b) == 500
    seq.append(struct.unpack('>I', b[:4])[0])
assert seq == list(range(30)), seq
print('e2e gro exit: 30 coalesced replies from the exit destination came back framed, in order')
PY
kill -TERM $node; wait $node || fail "node exited non-zero"
summary=$(grep 'msg="stopped"' "$log")
echo "$summary" | grep -qE 'gro_segments=(7[0-9]|[89][0-9]|[1-9][0-9]{2,})' || { cat "$log"; fail "the node saw no GRO runs"; }
check "gro: $(echo "$summary" | grep -o 'gro_segments=[0-9]*') $(echo "$summary" | grep -o 'gso_segments=[0-9]*')"
rm -f "$log"
