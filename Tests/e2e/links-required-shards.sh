#!/usr/bin/env bash
# `links = required` holds on every shard: a node with 2 shards, a node link and
# `--links required` gets plain CREATEs and DATA frames from a stranger's 128 source ports,
# with circuit ids of both parities (the kernel steers them to both shards). Nothing may
# leave the node: the next hop (a sink) and the senders receive nothing, and status counts
# every frame as `plain_refused`. The same traffic to a node with `--links optional` reaches
# the sink from both shards (the test sees forwarding when it happens).
# Before the shards shared the link rules, the required node forwarded every frame that
# the kernel steered to shard 1.
source "$(dirname "$0")/lib.bash"
base=$((22000 + RANDOM % 20000))
log=$(mktemp -d /tmp/wisp-links-shards.XXXXXX)
trap 'cleanup; rm -rf "$log"' EXIT
Toolchain/run.sh x86_64 keygen --state-dir "$state/P" >/dev/null
fp=$(Toolchain/run.sh x86_64 id --state-dir "$state/P" | sed -n 's/^fingerprint //p')
[ ${#fp} = 64 ] || fail "no fingerprint for the peer"

probe() {  # probe MODE PORT: starts a node, sends the stranger's frames, prints "sink=N back=N"
  local mode=$1 port=$2
  Toolchain/run.sh x86_64 run --listen 127.0.0.1:$port --state-dir "$state/N-$mode" --name N --shards 2 \
    --peer P=127.0.0.1:$((port + 5))=$fp --links "$mode" --lab-addresses yes --status-socket "$log/$mode.sock" --duration 30 \
    2>"$log/$mode.log" & local node=$!; pids+=($node)
  for _ in $(seq 50); do [ -S "$log/$mode.sock" ] && break; sleep 0.1; done
  python3 - "$port" <<'PY'
import socket, struct, sys, time
sys.path.insert(0, 'Tests/e2e')
from wisppeer import *
node = ('127.0.0.1', int(sys.argv[1]))
sink = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); sink.bind(('127.0.0.1', 0)); sink.setblocking(False)
sink.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
senders = []
for i in range(128):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(('127.0.0.1', 0)); s.setblocking(False)
    senders.append(s)
sent = 0
for i, s in enumerate(senders):
    for k in range(4):                 # ids 4i..4i+3: both parities, so both shards
        cid = 1 + 4 * i + k
        s.sendto(frame(CREATE, cid, hop(1, sink.getsockname()[1])), node); sent += 1
        s.sendto(frame(DATA, cid, b'stranger'), node); sent += 1
    time.sleep(0.002)
time.sleep(1.0)
def count(sock):
    n = 0
    while True:
        try: sock.recvfrom(4096); n += 1
        except BlockingIOError: return n
print('sent=%d sink=%d back=%d' % (sent, count(sink), sum(count(s) for s in senders)))
PY
  Toolchain/run.sh x86_64 status --socket "$log/$mode.sock" --json >"$log/$mode.json"
  kill -TERM $node; wait $node || fail "the $mode node exited non-zero"
}

read -r sent sink back < <(probe required $base | sed 's/[a-z]*=//g')
refused=$(python3 -c 'import json,sys; j=json.load(open(sys.argv[1])); print(j["sessions"]["refused"]["plain_refused"])' "$log/required.json")
shards=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["shards"])' "$log/required.json")
[ "$shards" = 2 ] || fail "expected 2 shards, status says $shards"
[ "$sink" = 0 ] && [ "$back" = 0 ] || { cat "$log/required.log"; fail "links required, 2 shards: $sink frames reached the next hop, $back came back to the stranger"; }
[ "$refused" -ge "$sent" ] || { cat "$log/required.json"; fail "plain_refused=$refused, expected at least $sent"; }
check "links required on 2 shards: $sent plain frames from 128 source ports, $sink forwarded, $back answered, plain_refused=$refused"

read -r sent2 sink2 back2 < <(probe optional $((base + 10)) | sed 's/[a-z]*=//g')
# 512 CREATEs are extended to the sink (their DATA waits for a CREATED that never comes);
# more than 256 means both shards forwarded.
[ "$sink2" -ge 400 ] || { cat "$log/optional.log"; fail "links optional: only $sink2 of 512 CREATEs reached the sink (the test cannot see forwarding)"; }
check "control: links optional on 2 shards extends $sink2 of 512 CREATEs to the sink (both shards)"
