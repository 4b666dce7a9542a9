#!/usr/bin/env bash
# End-to-end sealing: client -> A -> [sniffing proxy] -> B (exit, the aarch64 build under
# qemu-user) -> echo. The client's plaintext carries runs of zero bytes; with the relays'
# keys given (sealed) no DATA frame between A and B may contain 16 zero bytes in a row,
# while a plain run (no keys) shows them. A wrong exit key is refused by the client.
source "$(dirname "$0")/lib.bash"
base=$((20000 + RANDOM % 20000)); a=$base b=$((base + 1)) proxy=$((base + 2)) echo_port=$((base + 3))
bin=.build-firmware/x86_64/wisp
Toolchain/run.sh x86_64 run --listen 127.0.0.1:$a --state-dir "$state/A" --lab-addresses yes --links optional --duration 60 2>"$state/A.log" & pids+=($!)
Toolchain/run.sh aarch64 run --listen 127.0.0.1:$b --state-dir "$state/B" --exit 127.0.0.1:$echo_port --lab-addresses yes --links optional --duration 60 2>"$state/B.log" & pids+=($!)
python3 Tests/e2e/wisppeer.py echo $echo_port 55 >/dev/null & pids+=($!)
wait_udp $echo_port
python3 - "$proxy" "$b" "$state/proxy.txt" <<'PY' &
# A UDP proxy between node A and node B that reports how many DATA frames look like plaintext.
import socket, sys, time
listen, b_port, out = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(('127.0.0.1', listen)); s.settimeout(0.2)
a_addr = None; data = plain = 0; end = time.time() + 55
while time.time() < end:
    try:
        d, addr = s.recvfrom(4096)
    except socket.timeout:
        continue
    if addr[1] == b_port:
        if a_addr: s.sendto(d, a_addr)
    else:
        a_addr = addr; s.sendto(d, ('127.0.0.1', b_port))
    if len(d) > 8 and d[0] == 0xD2 and d[1] == 1:
        data += 1
        if b'\0' * 16 in d[8:]: plain += 1
    with open(out, 'w') as f: f.write('%d %d\n' % (data, plain))
PY
pids+=($!)
sleep 2
for n in A B; do Toolchain/run.sh x86_64 id --state-dir "$state/$n" >/dev/null || fail "no key for $n"; done
fa=$($bin id --state-dir "$state/A" | sed -n 's/^fingerprint *//p')
fb=$($bin id --state-dir "$state/B" | sed -n 's/^fingerprint *//p')
# Node A extends to the proxy, which stands in for B's address: A's hop names the proxy.
out=$($bin client --via 127.0.0.1:$a,127.0.0.1:$proxy --exit 127.0.0.1:$echo_port --keys "$fa,$fb" --seconds 3 --rate-kbit 2000 2>&1)
echo "$out" | tail -1
echo "$out" | grep -q 'sealed end to end' || fail "the client did not seal"
echo "$out" | grep -q 'loss 0.000%' || fail "sealed transfer lost messages"
read -r data plain <"$state/proxy.txt"
[ "$data" -gt 100 ] && [ "$plain" -eq 0 ] || fail "sealed: $plain of $data DATA frames between A and B look like plaintext"
check "sealed: $data DATA frames between A and B (exit: aarch64 under qemu), none with plaintext; echo service answered every message"
out=$($bin client --via 127.0.0.1:$a,127.0.0.1:$proxy --exit 127.0.0.1:$echo_port --dtls off --seconds 2 --rate-kbit 2000 2>&1)
read -r data2 plain2 <"$state/proxy.txt"
[ "$plain2" -gt "$plain" ] || fail "control run: plaintext frames not seen ($plain2)"
check "control (no keys, not sealed): $((plain2 - plain)) DATA frames with plaintext seen by the same proxy"
set +e; out=$($bin client --via 127.0.0.1:$a,127.0.0.1:$proxy --exit 127.0.0.1:$echo_port --keys "$fa,$fa" --seconds 1 2>&1); rc=$?; set -e
[ $rc -eq 1 ] && echo "$out" | grep -q "exit's key does not match" || fail "a wrong exit key was not refused: $out"
check "wrong exit key: refused by the client ($(echo "$out" | tail -1))"
