#!/usr/bin/env bash
# Real applications over the mesh (issue 17's acceptance), in network namespaces whose
# addresses exist only inside them:
#
#   host A (wc$$-a): wisp forward x4, wireguard-go client, dig, curl, ping     ─┐
#   host B (wc$$-b): wisp forward                                               ├─ bridge 10.78.0.0/24
#   relays r1..r4 (one namespace each), exits x1 and x2                        ─┘
#   x1 ── veth 10.88.1.0/24 ──┐
#   x2 ── veth 10.88.2.0/24 ──┴─ server (wc$$-srv): wireguard-go server, python http.server,
#                                 a UDP "who are you" service, dnsmasq
#
# Hosts A and B have no route to 10.88.0.0/16: only the mesh carries their traffic. Every
# node runs with the default `links = required` (node links are DTLS, pinned by --peer).
#
#   1. WireGuard whose endpoint is a `wisp forward` (3 hops, sealed, x1 exits): ping across
#      the tunnel, a TCP bulk transfer inside it (sha256 checked, throughput printed)
#   2. dig through a second forward to dnsmasq behind x2 (answers checked)
#   3. forwards on hosts A and B to one destination at once: each gets only its own replies
#   4. a destination x1 does not serve: REFUSED, logged by the forward, counted by x1
#   5. kill -9 the middle relay of the WireGuard path during a 20 pps ping and a transfer:
#      the forward reroutes (log), the tunnel keeps working, the outage is printed in ms
# Each point prints `e2e consumer N PASS|FAIL ...`; the script fails if any point failed.
source "$(dirname "$0")/lib.bash"
[ "$(id -u)" -eq 0 ] || fail "needs root (network namespaces)"
# The tools come from Debian packages; --force-unsafe-io makes dpkg skip its fsyncs (seconds
# instead of tens of seconds; a test machine loses nothing it needs on a crash).
need_tools ip:iproute2 wireguard-go:wireguard-go wg:wireguard-tools dnsmasq:dnsmasq-base dig:bind9-dnsutils \
  ping:iputils-ping curl:curl python3:python3 sha256sum:coreutils
wisp=.build-firmware/x86_64/wisp
[ -x "$wisp" ] || fail "no $wisp (Toolchain/build.sh x86_64 first)"
W() { Toolchain/run.sh x86_64 "$@"; }

p=wc$$-                      # namespace prefix, unique per run
wgc=wgc$$ wgs=wgs$$          # WireGuard interfaces: /var/run/wireguard is shared by all namespaces
net=10.78.0
declare -A ipof=([a]=10 [b]=11 [r1]=21 [r2]=22 [r3]=23 [r4]=24 [x1]=31 [x2]=32)
declare -A pidof=() fpof=()
nodes=(r1 r2 r3 r4 x1 x2)
wg_dest=10.88.1.2:51820 who_dest=10.88.1.2:9000 bad_dest=10.88.1.2:9999 dns_dest=10.88.2.53:53
namespaces=()
results=()
consumer_cleanup() {
  local n q
  exec 2>/dev/null   # the shell's "Killed" notices for the processes below
  for q in "${pids[@]:-}"; do [ -n "$q" ] && kill -9 "$q" 2>/dev/null || true; done
  for n in "${namespaces[@]:-}"; do
    [ -n "$n" ] || continue
    for q in $(ip netns pids "$n" 2>/dev/null); do kill -9 "$q" 2>/dev/null || true; done
  done
  wait 2>/dev/null || true
  for n in "${namespaces[@]:-}"; do [ -n "$n" ] && ip netns del "$n" 2>/dev/null || true; done
  rm -f "/var/run/wireguard/$wgc.sock" "/var/run/wireguard/$wgs.sock" 2>/dev/null || true
  rm -rf "$state"
}
trap consumer_cleanup EXIT
trap 'exit 130' INT TERM
in_ns() { local n=$1; shift; ip netns exec "$p$n" "$@"; }
# result N PASS|FAIL TEXT: the point's line (a FAIL does not stop the later points).
result() { echo "e2e consumer $1 $2: $3"; results+=("$1 $2"); }
# wait_for SECONDS FILE PATTERN: true once FILE has a line matching PATTERN (bounded).
wait_for() {
  local i
  for ((i = 0; i < $1 * 10; i++)); do grep -qs -- "$3" "$2" && return 0; sleep 0.1; done
  return 1
}
t0=$SECONDS

# --- the network ---------------------------------------------------------------------------
ip netns add "${p}br" || fail "cannot create network namespaces here"
namespaces+=("${p}br")
ip -n "${p}br" link add br0 type bridge
ip -n "${p}br" link set br0 up
for n in a b "${nodes[@]}" srv; do
  ip netns add "$p$n"; namespaces+=("$p$n")
  ip -n "$p$n" link set lo up
done
for n in a b "${nodes[@]}"; do
  ip link add name eth0 netns "$p$n" type veth peer name "v$n" netns "${p}br"
  ip -n "${p}br" link set "v$n" master br0 up
  ip -n "$p$n" addr add "$net.${ipof[$n]}/24" dev eth0
  ip -n "$p$n" link set eth0 up
done
for i in 1 2; do
  ip link add name srv0 netns "${p}x$i" type veth peer name "x$i" netns "${p}srv"
  ip -n "${p}x$i" addr add "10.88.$i.1/24" dev srv0
  ip -n "${p}x$i" link set srv0 up
  ip -n "${p}srv" link set "x$i" up
done
ip -n "${p}srv" addr add 10.88.1.2/24 dev x1
ip -n "${p}srv" addr add 10.88.2.53/24 dev x2
if in_ns a ping -c 1 -W 1 10.88.1.2 >/dev/null 2>&1; then fail "host A reaches the server without the mesh"; fi
check "namespaces: ${#namespaces[@]} (2 hosts, 4 relays, 2 exits, server, bridge); host A has no route to 10.88.0.0/16"

# --- the server's applications ---------------------------------------------------------------
umask 077
wg genkey >"$state/c.key"; wg pubkey <"$state/c.key" >"$state/c.pub"
wg genkey >"$state/s.key"; wg pubkey <"$state/s.key" >"$state/s.pub"
umask 022
ip netns exec "${p}srv" wireguard-go -f "$wgs" >"$state/wgs.log" 2>&1 & pids+=($!)
for _ in $(seq 50); do [ -S "/var/run/wireguard/$wgs.sock" ] && break; sleep 0.1; done
in_ns srv wg set "$wgs" private-key "$state/s.key" listen-port 51820 peer "$(cat "$state/c.pub")" allowed-ips 10.99.0.1/32
ip -n "${p}srv" addr add 10.99.0.2/24 dev "$wgs"
ip -n "${p}srv" link set "$wgs" mtu 1348 up     # the forward's 1380-byte budget - 32, both peers
mkdir -p "$state/www"
head -c $((8 << 20)) /dev/urandom >"$state/www/blob"
blob_sum=$(sha256sum <"$state/www/blob" | cut -d' ' -f1)
ip netns exec "${p}srv" python3 -m http.server 8080 --bind 10.99.0.2 --directory "$state/www" >"$state/http.log" 2>&1 & pids+=($!)
ip netns exec "${p}srv" dnsmasq --keep-in-foreground --log-facility=- --no-resolv --no-hosts --bind-interfaces \
  --listen-address=10.88.2.53 --port=53 --user=root --pid-file= --address=/example.test/10.88.2.53 \
  --host-record=www.example.test,10.88.2.80 --txt-record=txt.example.test,"wisp says hello" --log-queries \
  >"$state/dnsmasq.log" 2>&1 & pids+=($!)
# The "who are you" service: answers every datagram with "<payload>|<sender address:port>".
cat >"$state/who.py" <<'PY'
import socket, sys, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind((sys.argv[1], int(sys.argv[2]))); s.settimeout(0.5)
end = time.time() + float(sys.argv[3])
while time.time() < end:
    try:
        b, a = s.recvfrom(2048)
    except socket.timeout:
        continue
    s.sendto(b + b'|%s:%d' % (a[0].encode(), a[1]), a)
PY
ip netns exec "${p}srv" python3 "$state/who.py" 10.88.1.2 9000 150 & pids+=($!)

# --- the nodes ---------------------------------------------------------------------------------
for n in "${nodes[@]}"; do
  W keygen --state-dir "$state/$n" >/dev/null
  fpof[$n]=$("$wisp" id --state-dir "$state/$n" | sed -n 's/^fingerprint //p')
  [ -n "${fpof[$n]}" ] || fail "no fingerprint for $n"
done
addr() { echo "$net.${ipof[$1]}:7400"; }
peer() { echo "$1=$(addr "$1")=${fpof[$1]}"; }
for n in "${nodes[@]}"; do
  args=(--clock-sync assume --listen "$(addr "$n")" --state-dir "$state/$n" --name "$n" --lab-addresses yes --duration 170
        --status-socket "$state/$n.sock")
  for m in "${nodes[@]}"; do [ "$m" != "$n" ] && args+=(--peer "$(peer "$m")"); done
  case $n in
    x1) args+=(--exit "$wg_dest" --exit "$who_dest") ;;
    x2) args+=(--exit "$dns_dest") ;;
  esac
  ip netns exec "$p$n" Toolchain/run.sh x86_64 run "${args[@]}" >"$state/$n.log" 2>&1 &
  pidof[$n]=$!; pids+=($!)
done
for n in "${nodes[@]}"; do
  wait_for 10 "$state/$n.log" 'msg="listening"' || { cat "$state/$n.log"; fail "node $n did not start"; }
done
relays="$(peer r1),$(peer r2),$(peer r3),$(peer r4)"
# start_forward HOST NAME LISTEN_PORT DEST ARGS...: a forward on 127.0.0.1 in HOST's namespace.
start_forward() {
  local h=$1 name=$2 port=$3 dest=$4; shift 4
  ip netns exec "$p$h" Toolchain/run.sh x86_64 forward --listen "127.0.0.1:$port" --to "$dest" \
    --status-socket "$state/f-$name.sock" "$@" >"$state/f-$name.log" 2>&1 &
  pidof[f-$name]=$!; pids+=($!)
  wait_for 10 "$state/f-$name.log" '^forward: 127.0.0.1' || { cat "$state/f-$name.log"; fail "forward $name did not start"; }
}
start_forward a wg 51000 "$wg_dest" --peers "$relays,$(peer x1)" --hops 3 --exit-via x1
start_forward a dns 5353 "$dns_dest" --peers "$relays,$(peer x2)" --hops 3 --exit-via x2
start_forward a whoA 9000 "$who_dest" --peers "$relays,$(peer x1)" --hops 3 --exit-via x1
start_forward b whoB 9000 "$who_dest" --peers "$relays,$(peer x1)" --hops 3 --exit-via x1
start_forward a bad 9999 "$bad_dest" --via "$(addr r1),$(addr r2),$(addr x1)" --keys "${fpof[r1]},${fpof[r2]},${fpof[x1]}"
echo "set-up: ${#namespaces[@]} namespaces, 6 nodes, 5 forwards, WireGuard server, dnsmasq in $((SECONDS - t0)) s"

# --- 1. WireGuard through the forward ------------------------------------------------------------
echo "=== 1. WireGuard: host A -> wisp forward -> 3 relays (sealed) -> x1 -> WireGuard server"
ip netns exec "${p}a" wireguard-go -f "$wgc" >"$state/wgc.log" 2>&1 & pids+=($!)
for _ in $(seq 50); do [ -S "/var/run/wireguard/$wgc.sock" ] && break; sleep 0.1; done
in_ns a wg set "$wgc" private-key "$state/c.key" peer "$(cat "$state/s.pub")" allowed-ips 10.99.0.2/32 \
  endpoint 127.0.0.1:51000 persistent-keepalive 25
ip -n "${p}a" addr add 10.99.0.1/24 dev "$wgc"
ip -n "${p}a" link set "$wgc" mtu 1348 up
ok=1 why=
in_ns a ping -c 1 -W 5 10.99.0.2 >/dev/null 2>&1 || true          # the first one builds the circuit
ping_out=$(in_ns a ping -n -c 20 -i 0.05 -W 2 10.99.0.2 2>&1) || true
rx=$(sed -n 's/.* \([0-9]*\) received.*/\1/p' <<<"$ping_out")
rtt=$(sed -n 's/^rtt min\/avg\/max\/mdev = \([^ ]*\) ms/\1/p' <<<"$ping_out")
[ "${rx:-0}" -ge 18 ] || { ok=0 why="ping: ${rx:-0} of 20 answered"; }
df_out=$(in_ns a ping -n -c 3 -i 0.2 -W 2 -M do -s 1320 10.99.0.2 2>&1) || true
df_rx=$(sed -n 's/.* \([0-9]*\) received.*/\1/p' <<<"$df_out")
[ "${df_rx:-0}" -ge 2 ] || { ok=0 why="${why:+$why; }full-MTU DF ping (1348-byte packets): ${df_rx:-0} of 3"; }
wg_path=$(sed -n "s/^forward: 127.0.0.1:[0-9]* -> \(.*\) -> $wg_dest (sealed)\$/\1/p" "$state/f-wg.log" | head -1)
[ -n "$wg_path" ] || { ok=0 why="${why:+$why; }no sealed 3-hop circuit in the forward's log"; }
curl_out=$(in_ns a curl -sS --max-time 60 -o "$state/got" -w '%{size_download} %{time_total} %{speed_download}' \
  http://10.99.0.2:8080/blob 2>&1) || true
read -r c_bytes c_time c_speed <<<"$curl_out"
got_sum=$(sha256sum <"$state/got" 2>/dev/null | cut -d' ' -f1) || true
[ "$got_sum" = "$blob_sum" ] || { ok=0 why="${why:+$why; }curl: '$curl_out', sha256 mismatch"; }
mbit=$(awk -v s="${c_speed:-0}" 'BEGIN { printf "%.1f", s * 8 / 1e6 }')
figures="path A -> $wg_path (sealed); ping ${rx:-0}/20, rtt min/avg/max/mdev ${rtt:-?} ms; DF 1320+28 B ${df_rx:-0}/3;"
figures+=" curl of ${c_bytes:-0} bytes over WireGuard in ${c_time:-?} s = $mbit Mbit/s, sha256 ok"
[ $ok = 1 ] && result 1 PASS "$figures" || result 1 FAIL "$why ($figures)"

# --- 2. DNS through a second forward -----------------------------------------------------------
echo "=== 2. DNS: host A -> wisp forward -> 3 relays -> x2 -> dnsmasq"
ok=1 why= answers=
for q in "example.test A 10.88.2.53" "foo.bar.example.test A 10.88.2.53" "www.example.test A 10.88.2.80" \
         'txt.example.test TXT "wisp says hello"'; do
  read -r name type want <<<"$q"
  got=$(in_ns a dig @127.0.0.1 -p 5353 "$name" "$type" +short +time=3 +tries=2 2>&1 | head -1) || true
  answers+=" $name $type -> $got;"
  [ "$got" = "$want" ] || { ok=0 why="${why:+$why; }$name $type: '$got', expected $want"; }
done
refused=$(in_ns a dig @127.0.0.1 -p 5353 elsewhere.invalid +time=3 +tries=2 2>&1 | sed -n 's/.*status: \([A-Z]*\),.*/\1/p') || true
answers+=" elsewhere.invalid -> ${refused:-no answer}"
[ "$refused" = REFUSED ] || { ok=0 why="${why:+$why; }a name outside the zone: '${refused:-no answer}', expected REFUSED from dnsmasq"; }
seen=$(grep -c 'query\[.*from 10.88.2.1$' "$state/dnsmasq.log" || true)
[ "$seen" -ge 5 ] || { ok=0 why="${why:+$why; }dnsmasq saw $seen queries from the exit 10.88.2.1"; }
dns_path=$(sed -n "s/^forward: 127.0.0.1:[0-9]* -> \(.*\) -> $dns_dest (sealed)\$/\1/p" "$state/f-dns.log" | head -1)
[ $ok = 1 ] && result 2 PASS "via $dns_path;$answers; dnsmasq saw $seen queries, all from the exit x2 (10.88.2.1)" \
  || result 2 FAIL "$why ($answers)"

# --- 3. two hosts, one destination, at once ------------------------------------------------------
echo "=== 3. hosts A and B -> their own forwards -> x1 -> one UDP service, concurrently"
cat >"$state/who-client.py" <<'PY'
# Sends N tagged datagrams (one in flight, resent after a timeout) and checks every reply is
# its own payload plus the address the service saw; prints the tally.
import socket, sys, time
tag, port, n = sys.argv[1].encode(), int(sys.argv[2]), int(sys.argv[3])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(1.5)
ok = wrong = lost = 0; seen = set(); end = time.time() + 40
for i in range(n):
    m = tag + b'-%d-' % i + b'x' * (i % 900)
    for attempt in range(4):
        if time.time() > end: break
        s.sendto(m, ('127.0.0.1', port))
        try:
            while True:
                b, _ = s.recvfrom(4096)
                payload, _, src = b.rpartition(b'|')
                if payload == m:
                    ok += 1; seen.add(src.decode()); break
                if not payload.startswith(tag + b'-'):
                    wrong += 1            # someone else's reply
        except socket.timeout:
            continue
        break
    else:
        lost += 1
print('%s answered %d of %d, wrong %d, lost %d, service saw %s' % (tag.decode(), ok, n, wrong, lost, ' '.join(sorted(seen))))
PY
ip netns exec "${p}a" python3 "$state/who-client.py" hostA 9000 300 >"$state/whoA.out" 2>&1 & ca=$!; pids+=($ca)
ip netns exec "${p}b" python3 "$state/who-client.py" hostB 9000 300 >"$state/whoB.out" 2>&1 & cb=$!; pids+=($cb)
wait $ca || true; wait $cb || true
ok=1 why=
declare -A exitaddr=()
for h in A B; do
  line=$(cat "$state/who$h.out")
  echo "  host $h: $line"
  [[ "$line" == "host$h answered 300 of 300, wrong 0, lost 0, service saw 10.88.1.1:"* ]] || { ok=0 why="${why:+$why; }host $h: $line"; }
  exitaddr[$h]=${line##* saw }
done
[ "${exitaddr[A]}" != "${exitaddr[B]}" ] || { ok=0 why="${why:+$why; }both hosts seen from the same exit socket ${exitaddr[A]}"; }
[ $ok = 1 ] && result 3 PASS "300 of 300 each, 0 foreign replies; the service saw host A as ${exitaddr[A]} and host B as ${exitaddr[B]} (one exit socket per circuit)" \
  || result 3 FAIL "$why"

# --- 4. a destination the exit does not serve ---------------------------------------------------------
echo "=== 4. host A -> forward to $bad_dest, which x1 does not serve"
x1_refusals() {  # the counters an exit refusal lands in, summed (exit policy counters included)
  "$wisp" status --json --socket "$state/x1.sock" | python3 -c '
import json, sys
s = json.load(sys.stdin)
n = sum(v for k, v in s.get("drops", {}).items() if k in ("exit_not_allowed", "refused_create") or "policy" in k)
n += sum(v for k, v in (s.get("exits") or {}).items() if isinstance(v, int) and ("refus" in k or "policy" in k) and "key_agreement" not in k)
print(n)'
}
before=$(x1_refusals)
in_ns a python3 -c 'import socket; s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.sendto(b"hello?", ("127.0.0.1", 9999))'
ok=1 why=
wait_for 10 "$state/f-bad.log" 'refused by the exit' || { ok=0 why="no refusal in the forward's log"; }
after=$(x1_refusals)
refusal=$(grep -m1 'refused by the exit' "$state/f-bad.log" || true)
fstatus=$(W status --socket "$state/f-bad.sock" | grep '^dropped:' || true)
[ "$after" -gt "$before" ] || { ok=0 why="${why:+$why; }x1's refusal counters: $before before, $after after"; }
[[ "$fstatus" == *"refused "[1-9]* ]] || { ok=0 why="${why:+$why; }forward status: $fstatus"; }
x1_drops=$("$wisp" status --json --socket "$state/x1.sock" | python3 -c '
import json, sys; d = json.load(sys.stdin)["drops"]; print(" ".join("%s=%d" % (k, v) for k, v in d.items() if v and ("exit" in k or "refus" in k or "policy" in k)))')
[ $ok = 1 ] && result 4 PASS "forward logged '$refusal'; its status: $fstatus; x1 refusal counters $before -> $after ($x1_drops)" \
  || result 4 FAIL "$why"

# --- 5. kill -9 a relay on the WireGuard path mid-transfer -------------------------------------
echo "=== 5. kill -9 the middle relay of the WireGuard path during a 20 pps ping and a transfer"
mid=$(awk -F' -> ' '{ print $2 }' <<<"$wg_path")
ok=1 why=
if [ -z "$mid" ] || [ -z "${pidof[$mid]:-}" ]; then
  result 5 FAIL "no WireGuard path to take a relay from ('$wg_path')"
else
  ip netns exec "${p}a" ping -D -n -i 0.05 -c 200 -W 1 10.99.0.2 >"$state/ping5.out" 2>&1 & pingpid=$!; pids+=($pingpid)
  ip netns exec "${p}a" curl -sS --max-time 40 --limit-rate 2M -o "$state/got5" http://10.99.0.2:8080/blob >"$state/curl5.out" 2>&1 &
  curlpid=$!; pids+=($curlpid)
  sleep 1.5
  kill_ts=$(date +%s.%N)
  kill -9 "${pidof[$mid]}"; wait "${pidof[$mid]}" 2>/dev/null || true
  echo "  killed $mid (kill -9) with the path $wg_path in use"
  wait $pingpid || true
  wait $curlpid || { ok=0 why="the transfer across the kill failed: $(cat "$state/curl5.out")"; }
  got5=$(sha256sum <"$state/got5" 2>/dev/null | cut -d' ' -f1) || true
  [ "$got5" = "$blob_sum" ] || { ok=0 why="${why:+$why; }the transfer across the kill: sha256 mismatch"; }
  rebuilt=$(grep -m1 "$mid silent for" "$state/f-wg.log" || true)
  new_path=$(sed -n "s/^forward: 127.0.0.1:[0-9]* -> \(.*\) -> $wg_dest (sealed) (rebuilt)\$/\1/p" "$state/f-wg.log" | head -1)
  [ -n "$rebuilt" ] && [ -n "$new_path" ] || { ok=0 why="${why:+$why; }the forward did not log a reroute"; }
  [[ " ${new_path//->/} " != *" $mid "* ]] || { ok=0 why="${why:+$why; }the new path $new_path goes through the dead $mid"; }
  # The outage: the longest gap between consecutive ping replies, and the replies lost.
  read -r sent got gap after <<<"$(awk -v k="$kill_ts" '
    /^\[[0-9.]*\] [0-9]+ bytes from/ { t = substr($1, 2, length($1) - 2) + 0; n++
      if (last > 0 && t - last > gap) gap = t - last; last = t; if (t > k) after++ }
    / packets transmitted/ { sent = $1 }
    END { printf "%d %d %d %d\n", sent, n, gap * 1000, after }' "$state/ping5.out")"
  [ "${after:-0}" -ge 20 ] || { ok=0 why="${why:+$why; }only ${after:-0} ping replies after the kill"; }
  figures="killed $mid on $wg_path; rerouted via $new_path; ping: $got of $sent answered, longest gap $gap ms (outage, 50 ms interval),"
  figures+=" $((sent - got)) lost; 8 MiB transfer at 2 MiB/s across the kill: sha256 $([ "$got5" = "$blob_sum" ] && echo ok || echo MISMATCH)"
  echo "  forward: ${rebuilt:-no reroute logged}"
  if [ $ok = 1 ]; then result 5 PASS "$figures"; else
    result 5 FAIL "$why ($figures)"
    echo "  the forward's log:"; tail -n 40 "$state/f-wg.log" | sed 's/^/    /'
    for n in "${nodes[@]}"; do echo "  $n:"; grep -v 'msg="stats"' "$state/$n.log" | tail -n 12 | sed 's/^/    /'; done
    grep -E '^\[[0-9.]*\] (From|[0-9]+ bytes)' "$state/ping5.out" | awk '{ printf "%s%s", (NR % 8 == 1 ? "\n    " : " "), $0 }' | tail -c 3000
    echo
  fi
fi
echo "  forward status (wisp status --socket):"
W status --socket "$state/f-wg.sock" | sed 's/^/    /' || true
# The same status on SIGUSR1, in the forward's output.
kill -USR1 "${pidof[f-wg]}"
wait_for 5 "$state/f-wg.log" '^senders: ' || fail "no status in the forward's output after SIGUSR1"
check "SIGUSR1: the forward printed its status ($(grep -m1 '^senders: ' "$state/f-wg.log"))"

# Receipts: x1, on every WireGuard circuit, was paid for the bytes carried both ways.
x1_credit=$("$wisp" status --json --socket "$state/x1.sock" | python3 -c 'import json, sys; c = json.load(sys.stdin)["credit"]; print(c["receipted_bytes"] if c else 0)')
echo "e2e consumer receipts: x1 (the exit) holds receipts for $x1_credit bytes"
for n in r1 r2 r3 r4 x1 x2; do [ "$n" = "${mid:-}" ] || kill -TERM "${pidof[$n]}" 2>/dev/null || true; done
failed=0
for r in "${results[@]}"; do [[ "$r" == *" PASS" ]] || failed=1; done
echo "e2e consumer: ${#results[@]} points, $(printf '%s\n' "${results[@]}" | grep -c ' PASS$') passed, in $((SECONDS - t0)) s"
[ ${#results[@]} -eq 5 ] && [ $failed = 0 ] || fail "consumer: $(printf '%s, ' "${results[@]}")"
