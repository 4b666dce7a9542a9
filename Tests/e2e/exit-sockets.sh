#!/usr/bin/env bash
# Exit circuits each have a UDP socket of their own (WIRE-PROTOCOL.md, "Exits"): on a node
# with 2 shards, 24 circuits from different clients to ONE destination at once each get
# only their own replies (the destination answers every datagram with its sender's port,
# so a reply that reached the wrong circuit is seen), the exits work on both shards, and
# the sockets close with their circuits (DESTROY): status shows 0 open afterwards.
source "$(dirname "$0")/lib.bash"
port=$((20000 + RANDOM % 20000)); dest=$((port + 1))
log=$(mktemp /tmp/wisp-exits.XXXXXX)
extra=()
# Loopback exits need lab mode where the node knows it (it refuses them otherwise).
if Toolchain/run.sh x86_64 run --help 2>&1 | grep -q -- '--lab-addresses'; then extra+=(--lab-addresses yes); fi
if Toolchain/run.sh x86_64 run --help 2>&1 | grep -q -- '--links'; then extra+=(--links optional); fi
Toolchain/run.sh x86_64 run --listen 127.0.0.1:$port --state-dir "$state" --shards 2 --exit 127.0.0.1:$dest \
  --credit-window 0 --status-socket "$state/s.sock" --duration 40 "${extra[@]}" 2>"$log" & node=$!
pids+=($node)
python3 - "$port" "$dest" "$state/s.sock" "$node" <<'PY'
import json, socket, struct, sys, threading, time
sys.path.insert(0, 'Tests/e2e')
from wisppeer import *
port, dest, sock_path, pid = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4]
node = ('127.0.0.1', port)
# The destination: answers each datagram with "<its payload>|<the sender's port>".
d = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); d.bind(('127.0.0.1', dest)); d.settimeout(0.2)
stop = time.time() + 30
def serve():
    while time.time() < stop:
        try:
            b, a = d.recvfrom(2048)
        except socket.timeout:
            continue
        d.sendto(b + b'|%d' % a[1], a)
threading.Thread(target=serve, daemon=True).start()
def status(): return status_json(sock_path, tries=50)
N = 24
clients, fwd = [], []
for i in range(N):
    c = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); c.bind(('127.0.0.1', 0)); c.settimeout(2)
    for attempt in range(20):
        try:
            c.sendto(frame(CREATE, i + 1, hop(2, dest)), node)
            b, _ = c.recvfrom(2048); break
        except socket.timeout:
            continue
    else:
        raise RuntimeError('no answer to CREATE %d' % i)
    t, cid, body = parse(b)
    assert t == CREATED and cid == i + 1, 'circuit %d: frame type %d' % (i, t)
    clients.append(c); fwd.append(struct.unpack('>I', body[:4])[0])
shards = {f & 1 for f in fwd}
assert shards == {0, 1}, 'exit circuits all on one shard: %r' % shards
ports, wrong = set(), 0
for rnd in range(5):
    for i, c in enumerate(clients):             # all at once: every circuit sends first
        c.sendto(frame(DATA, fwd[i], b'c%d-r%d' % (i, rnd)), node)
    for i, c in enumerate(clients):
        b, _ = c.recvfrom(2048); t, cid, body = parse(b)
        assert t == DATA and cid == i + 1
        payload, _, src = body.rpartition(b'|')
        if payload != b'c%d-r%d' % (i, rnd): wrong += 1
        ports.add((i, int(src)))
per_circuit = {}
for i, p in ports: per_circuit.setdefault(i, set()).add(p)
assert wrong == 0, '%d replies reached the wrong circuit' % wrong
assert all(len(v) == 1 for v in per_circuit.values()), 'a circuit changed exit socket'
assert len({next(iter(v)) for v in per_circuit.values()}) == N, 'two circuits shared an exit socket'
st = status()
assert st['exits']['sockets_open'] == N, st['exits']
for i, c in enumerate(clients): c.sendto(frame(DESTROY, fwd[i], b'\0'), node)
for _ in range(50):
    st = status()
    if st['exits']['sockets_open'] == 0: break
    time.sleep(0.1)
assert st['exits']['sockets_open'] == 0, 'exit sockets still open after DESTROY: %r' % st['exits']
print('check exit-sockets: %d circuits to one destination over 2 shards, 5 rounds each, every reply to its own circuit (%d distinct exit ports), all closed after DESTROY'
      % (N, len({p for _, p in ports})))
PY
kill -TERM $node; wait $node || fail "node exited non-zero"
rm -f "$log"
