#!/usr/bin/env bash
# The mesh end to end, in network namespaces: one namespace per relay, one for the client,
# one for the echo service, one for the impairment proxy, all on a bridge (in a namespace
# of its own) with private 10.77.0.0/24 addresses that exist only inside these namespaces.
#
#   1. basic:    client -> 3 of 4 x86_64 relays (chosen by probe RTT) -> echo; every message
#                arrives exactly once; each relay's receipts match the bytes it relayed
#   2. impaired: client -> r1 -> [150 ms + 5 % loss proxy] -> r2 -> r3 -> echo; the client's
#                loss equals the proxy's dropped DATA frames (about 10 % of round trips)
#   3. failover: kill -9 the middle relay mid-transfer; the client reroutes within a few
#                seconds; the relay restarts on its state dir (journal check ok) and a later
#                circuit through it works
#   4. ARM:      client -> x86_64 + aarch64 (qemu) + armv7 (qemu) relays -> echo
# Prints per scenario: bytes, throughput, credits per node, reroute time.
source "$(dirname "$0")/lib.bash"
[ "$(id -u)" -eq 0 ] || fail "needs root (network namespaces)"
if ! command -v ip >/dev/null; then
  for i in 1 2 3; do apt-get update -qq && break; sleep $((i * 5)); done
  for i in 1 2 3; do DEBIAN_FRONTEND=noninteractive apt-get install -y -qq iproute2 >/dev/null && break; sleep $((i * 5)); done
fi
wisp=.build-firmware/x86_64/wisp
[ -x "$wisp" ] || fail "no $wisp (Toolchain/build.sh x86_64 first)"
for t in aarch64 armv7; do [ -x .build-firmware/$t/wisp ] || fail "no .build-firmware/$t/wisp"; done

p=wm$$-                       # namespace prefix, unique per run
net=10.77.0
declare -A ipof=([c]=10 [r1]=11 [r2]=12 [r3]=13 [r4]=14 [imp]=50 [e]=99)
declare -A pidof=()
window=4194304                # the nodes' default credit window
logs=$state/logs
mkdir -p "$logs"
namespaces=()
mesh_cleanup() {
  for pid in "${pids[@]:-}"; do [ -n "$pid" ] && kill -9 "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  for n in "${namespaces[@]:-}"; do [ -n "$n" ] && ip netns del "$n" 2>/dev/null || true; done
  rm -rf "$state"
}
trap mesh_cleanup EXIT
trap 'exit 130' INT TERM      # so that the EXIT trap cleans up on a signal too
# Foreground only: what runs in the background is started with `ip netns exec` itself
# (a backgrounded function would be a subshell, and $! not the process to signal).
in_ns() { local n=$1; shift; ip netns exec "$p$n" "$@"; }

# --- the network: a bridge namespace, one veth pair per member ---------------------------
ip netns add "${p}br" || fail "cannot create network namespaces here"
namespaces+=("${p}br")
ip -n "${p}br" link add br0 type bridge
ip -n "${p}br" link set br0 up
for n in c r1 r2 r3 r4 imp e; do
  ip netns add "$p$n"; namespaces+=("$p$n")
  ip link add name eth0 netns "$p$n" type veth peer name "v$n" netns "${p}br"
  ip -n "${p}br" link set "v$n" master br0 up
  ip -n "$p$n" addr add "$net.${ipof[$n]}/24" dev eth0
  ip -n "$p$n" link set eth0 up
  ip -n "$p$n" link set lo up
done
check "namespaces: $(ip netns list | grep -c "^$p") (client, 4 relays, impairment proxy, echo service, bridge) on $net.0/24"

svc=$net.${ipof[e]}:9000
addr() { echo "$net.${ipof[$1]}:7400"; }

# start_relay NAME ARCH STATEDIR [OPTION...]: a relay in its namespace, allowed to exit to the service.
start_relay() {
  local n=$1 arch=$2 dir=$3 log=$logs/$1.$RANDOM.log
  shift 3
  ip netns exec "$p$n" Toolchain/run.sh "$arch" run --clock-sync assume --listen "$(addr "$n")" --state-dir "$dir" --name "$n" \
    --exit "$svc" --lab-addresses yes --links optional --duration 90 "$@" 2>"$log" &
  pidof[$n]=$!; pids+=($!)
  eval "log_$n=$log"
  for _ in $(seq 100); do grep -qs 'msg="listening"' "$log" && break; sleep 0.1; done
  grep -q 'msg="listening"' "$log" || { cat "$log"; fail "relay $n ($arch) did not start"; }
}
fp() { "$wisp" id --state-dir "$1" | sed -n 's/^fingerprint //p'; }
# stop_relay NAME [RECOVERED_BYTES]: SIGTERM, then check and print its credits.
stop_relay() {
  local n=$1 base=${2:-0} log pid=${pidof[$1]}
  eval "log=\$log_$n"
  kill -TERM "$pid" 2>/dev/null || true
  wait "$pid" || true
  grep -q 'msg="stopped"' "$log" || { cat "$log"; fail "relay $n did not stop cleanly"; }
  local line fwd rec com
  line=$(grep 'msg="stopped"' "$log")
  fwd=$(echo "$line" | sed -n 's/.* forwarded_bytes=\([0-9]*\).*/\1/p')
  rec=$(echo "$line" | sed -n 's/.* receipted_bytes=\([0-9]*\).*/\1/p')
  com=$(echo "$line" | sed -n 's/.* committed_bytes=\([0-9]*\).*/\1/p')
  eval "total_$n=$com"        # the journal's committed total, for a later run on the same state dir
  rec=$((rec - base)) com=$((com - base))
  [ "$com" -eq "$rec" ] || fail "$n: committed $com != receipted $rec at stop"
  [ "$rec" -le "$fwd" ] || fail "$n: receipted $rec > relayed $fwd"
  [ $((fwd - rec)) -le $window ] || fail "$n: $((fwd - rec)) bytes relayed beyond the credit window"
  echo "e2e credits $n: relayed $fwd bytes, receipted $rec, committed $com, unreceipted $((fwd - rec))$([ "$base" -gt 0 ] && echo " (beyond $base in its journal before)")"
  eval "fwd_$n=$fwd rec_$n=$rec"
}
start_echo() { ip netns exec "${p}e" python3 Tests/e2e/impair.py echo "$svc" 60 >"$logs/echo.out" & echo_pid=$!; pids+=($echo_pid); wait_udp "${svc##*:}" "${p}e"; }
stop_echo() { kill -TERM "$echo_pid" 2>/dev/null || true; wait "$echo_pid" || true; cat "$logs/echo.out"; }
# client_field OUT FIELD: numbers from the client's summary line.
summary() { grep '^client: sent' "$1"; }
sent_of() { summary "$1" | sed -n 's/^client: sent \([0-9]*\),.*/\1/p'; }
back_of() { summary "$1" | sed -n 's/.*echoed back \([0-9]*\),.*/\1/p'; }
dups_of() { summary "$1" | sed -n 's/.*duplicates \([0-9]*\),.*/\1/p'; }
report() {  # SCENARIO OUT
  local s; s=$(summary "$2")
  echo "e2e $1: $(echo "$s" | grep -o 'bytes sent [0-9]* echoed [0-9]*'), $(echo "$s" | grep -o '[0-9.]* Mbit/s'),"\
       "$(echo "$s" | grep -o 'loss [0-9.]*%'), duplicates $(dups_of "$2"), $(echo "$s" | grep -o 'rtt p50 [0-9.]* ms p99 [0-9.]* ms')"
}
# show_relays: stops the relays still running and prints what each counted at its stop
# (drops by reason): where a lost message went.
show_relays() {
  local n log
  for n in "${!pidof[@]}"; do
    kill -0 "${pidof[$n]}" 2>/dev/null || continue
    kill -TERM "${pidof[$n]}" 2>/dev/null || true
    wait "${pidof[$n]}" 2>/dev/null || true
    eval "log=\$log_$n"
    echo "relay $n at its stop: $(grep -o 'msg="stopped".*' "$log" | grep -oE '(forwarded_bytes|receipted_bytes|receipts_accepted|receipts_rejected|credit_queue_refused)=[0-9]+|drops=.*' | tr '\n' ' ')"
  done
}
# exactly_once OUT: no loss, no duplicate, and the echo service saw each message once.
exactly_once() {
  local sent back dups echo_line
  sent=$(sent_of "$1") back=$(back_of "$1") dups=$(dups_of "$1")
  [ -n "$sent" ] && [ "$sent" -gt 100 ] || { cat "$1"; fail "$2: the client sent nothing"; }
  [ "$back" -eq "$sent" ] && [ "$dups" -eq 0 ] || { cat "$1"; cat "$logs/echo.out"; show_relays; fail "$2: $sent sent, $back back, $dups duplicates"; }
  echo_line=$(cat "$logs/echo.out")
  [[ "$echo_line" == "echo: datagrams $sent bytes "*" distinct $sent duplicates 0" ]] \
    || fail "$2: the echo service saw '$echo_line' for $sent messages"
}
start_all=$SECONDS

# --- 1. basic: 4 relays, the client picks 3 by RTT -------------------------------------
echo "=== scenario 1: client -> 3 relays (chosen from 4 by probe RTT) -> echo"
peers=""
for n in r1 r2 r3 r4; do start_relay $n x86_64 "$state/s1-$n"; peers+="${peers:+,}$n=$(addr $n)=$(fp "$state/s1-$n")"; done
start_echo
in_ns c "$wisp" client --peers "$peers" --hops 3 --exit "$svc" --seconds 5 --rate-kbit 4000 --size 1200 >"$logs/c1.out" 2>&1 \
  || { cat "$logs/c1.out"; fail "client (basic) failed"; }
stop_echo
grep '^client: \(probed\|path\)' "$logs/c1.out"
report basic "$logs/c1.out"
exactly_once "$logs/c1.out" basic
path=$(sed -n 's/^client: path \(.*\) (.*/\1/p' "$logs/c1.out")
for n in r1 r2 r3 r4; do stop_relay $n; eval "s1_total_$n=\$total_$n"; done
for n in ${path//->/}; do eval "[ \$rec_$n -eq \$fwd_$n ] && [ \$fwd_$n -gt 0 ]" || fail "basic: $n on the path is not fully receipted"; done
check "basic: $(sent_of "$logs/c1.out") messages through $path arrived exactly once; every relay on the path fully receipted"

# --- 2. impaired link r1 -> r2: 150 ms each way, 5 % loss each way -----------------------
echo "=== scenario 2: client -> r1 -> [impair 150 ms, 5 % loss] -> r2 -> r3 -> echo"
for n in r1 r2 r3; do start_relay $n x86_64 "$state/s2-$n"; done
ip netns exec "${p}imp" python3 Tests/e2e/impair.py proxy "$net.${ipof[imp]}:7400" "$(addr r2)" 150 5 60 7 >"$logs/impair.out" & imp_pid=$!
pids+=($imp_pid)
start_echo
keys="$(fp "$state/s2-r1"),$(fp "$state/s2-r2"),$(fp "$state/s2-r3")"
in_ns c "$wisp" client --via "$(addr r1),$net.${ipof[imp]}:7400,$(addr r3)" --keys "$keys" --exit "$svc" \
  --seconds 8 --rate-kbit 1000 --size 1000 >"$logs/c2.out" 2>&1 || { cat "$logs/c2.out"; fail "client (impaired) failed"; }
# r1 extends to the proxy, which relays to r2: the client names the proxy as its second hop.
stop_echo
sleep 0.5   # the client's last receipt is still in the proxy's 150 ms queue
kill -TERM $imp_pid; wait $imp_pid || true
cat "$logs/impair.out"
report impaired "$logs/c2.out"
sent=$(sent_of "$logs/c2.out") back=$(back_of "$logs/c2.out")
lost=$((sent - back))
dropped=$(sed -n 's/.* data_dropped \([0-9]*\) .*/\1/p' "$logs/impair.out")
[ "$(dups_of "$logs/c2.out")" -eq 0 ] || fail "impaired: duplicates"
[ $((lost * 100)) -ge $((sent * 4)) ] && [ $((lost * 100)) -le $((sent * 17)) ] || fail "impaired: $lost of $sent lost, not about 10 %"
diff=$((lost > dropped ? lost - dropped : dropped - lost))
[ $diff -le $((2 + sent / 200)) ] || fail "impaired: client lost $lost but the proxy dropped $dropped DATA frames"
p50=$(summary "$logs/c2.out" | sed -n 's/.*rtt p50 \([0-9]*\)\..*/\1/p')
[ "$p50" -ge 300 ] || fail "impaired: RTT p50 $p50 ms, the proxy adds 300"
for n in r1 r2 r3; do stop_relay $n; done
check "impaired: the transfer completed; client loss $lost/$sent = the proxy's $dropped dropped DATA frames; RTT p50 $p50 ms"

# --- 3. failover: kill -9 the middle relay mid-transfer -----------------------------------
echo "=== scenario 3: kill -9 the middle relay of the circuit mid-transfer"
# The relays run on scenario 1's state dirs: their journals already hold committed credit.
peers=""
for n in r1 r2 r3 r4; do
  mv "$state/s1-$n" "$state/s3-$n"
  eval "before_$n=\$s1_total_$n"
  start_relay $n x86_64 "$state/s3-$n"; peers+="${peers:+,}$n=$(addr $n)=$(fp "$state/s3-$n")"
done
start_echo
ip netns exec "${p}c" "$wisp" client --peers "$peers" --hops 3 --exit-via r4 --exit "$svc" --seconds 9 --rate-kbit 2000 \
  >"$logs/c3.out" 2>&1 & client_pid=$!
pids+=($client_pid)
for _ in $(seq 50); do grep -q '^client: path' "$logs/c3.out" && break; sleep 0.1; done
mid=$(sed -n 's/^client: path [^ ]* -> \([^ ]*\) -> .*/\1/p' "$logs/c3.out")
[ -n "$mid" ] || { cat "$logs/c3.out"; fail "failover: no 3-hop path"; }
sleep 3
kill -9 "${pidof[$mid]}"; wait "${pidof[$mid]}" 2>/dev/null || true
echo "  killed $mid (kill -9) at t=3 s"
wait $client_pid || { cat "$logs/c3.out"; fail "client (failover) failed"; }
stop_echo
grep '^client: \(path\|no echo\|rerouted\|reroutes\)' "$logs/c3.out"
report failover "$logs/c3.out"
reroute=$(sed -n 's/^client: rerouted after \([0-9]*\) ms via \(.*\) (.*/\1/p' "$logs/c3.out")
newpath=$(sed -n 's/^client: rerouted after \([0-9]*\) ms via \(.*\) (.*/\2/p' "$logs/c3.out")
[ -n "$reroute" ] || { cat "$logs/c3.out"; fail "failover: the client did not reroute"; }
[ "$reroute" -le 4000 ] || fail "failover: rerouted after $reroute ms"
[[ " ${newpath//->/} " != *" $mid "* ]] || fail "failover: the new path $newpath goes through the dead $mid"
[ "$(dups_of "$logs/c3.out")" -eq 0 ] || fail "failover: duplicates"
echo "e2e reroute time: $reroute ms (new path $newpath)"
"$wisp" journal check --state-dir "$state/s3-$mid" >"$logs/jc.out" || { cat "$logs/jc.out"; fail "journal check after kill -9"; }
grep -q '^status      ok$' "$logs/jc.out" || { cat "$logs/jc.out"; fail "journal check after kill -9 not ok"; }
sed -n "s/^\\(receipts\\|uncommitted\\|torn tail\\|last commit\\|status\\) */e2e journal check $mid: \\1 /p" "$logs/jc.out"
start_relay "$mid" x86_64 "$state/s3-$mid"
eval "rlog=\$log_$mid"
recovered=$(sed -n 's/.*msg="journal recovered".* receipted_bytes=\([0-9]*\).*/\1/p' "$rlog")
eval "before=\$before_$mid"
[ -n "$recovered" ] && [ "$recovered" -ge "$before" ] || fail "$mid recovered $recovered bytes, below the $before it had committed"
echo "e2e $mid restarted on its state dir: journal check ok, recovered $recovered receipted bytes (committed before: $before;"\
     "receipts of the killed run were within the 30 s group-commit interval)"
# A later circuit through the restarted relay (the first hop and the exit as before).
first=${newpath%% ->*}
start_echo
in_ns c "$wisp" client --via "$(addr "$first"),$(addr "$mid"),$(addr r4)" --keys "$(fp "$state/s3-$first"),$(fp "$state/s3-$mid"),$(fp "$state/s3-r4")" \
  --exit "$svc" --seconds 3 --rate-kbit 2000 >"$logs/c3b.out" 2>&1 || { cat "$logs/c3b.out"; fail "client through the restarted $mid failed"; }
stop_echo
report "rejoined $first->$mid->r4" "$logs/c3b.out"
exactly_once "$logs/c3b.out" "rejoin"
for n in r1 r2 r3 r4; do
  if [ "$n" = "$mid" ]; then stop_relay "$n" "$recovered"; else eval "stop_relay $n \$before_$n"; fi
done
eval "[ \$rec_$mid -gt 0 ] && [ \$rec_$mid -eq \$fwd_$mid ]" || fail "rejoined $mid earned no credit"
check "failover: $mid killed, rerouted after $reroute ms via $newpath; restarted with its journal ($recovered bytes), a later circuit through it works"

# --- 4. ARM: x86_64 + aarch64 + armv7 relays -------------------------------------------
echo "=== scenario 4: client -> x86_64 + aarch64 (qemu) + armv7 (qemu) relays -> echo"
# Under qemu-user an ARM relay verifies the client's binding receipt (ECDSA) in tens of ms,
# hundreds on a loaded machine; until then the circuit carries its unbound allowance and
# drops the rest (`unpaid`): 32 KiB is 65 ms of this client's traffic both ways. 1 MiB
# here (about 2 s of it), so that what this scenario checks is the relaying, not qemu's speed.
ua=(--unbound-allowance 1048576)
start_relay r1 x86_64 "$state/s4-r1" "${ua[@]}"
start_relay r2 aarch64 "$state/s4-r2" "${ua[@]}"
start_relay r3 armv7 "$state/s4-r3" "${ua[@]}"
peers="r1=$(addr r1)=$(fp "$state/s4-r1"),r2=$(addr r2)=$(fp "$state/s4-r2"),r3=$(addr r3)=$(fp "$state/s4-r3")"
start_echo
in_ns c "$wisp" client --peers "$peers" --hops 3 --exit-via r3 --exit "$svc" --seconds 5 --rate-kbit 2000 >"$logs/c4.out" 2>&1 \
  || { cat "$logs/c4.out"; fail "client (ARM) failed"; }
stop_echo
grep '^client: \(probed\|path\)' "$logs/c4.out"
report arm "$logs/c4.out"
exactly_once "$logs/c4.out" ARM
for n in r1 r2 r3; do stop_relay $n; done
for n in r1 r2 r3; do eval "[ \$rec_$n -eq \$fwd_$n ]" || fail "ARM: $n not fully receipted"; done
check "ARM: $(sent_of "$logs/c4.out") messages through x86_64, aarch64 and armv7 relays arrived exactly once, each fully receipted"
echo "e2e mesh-netns: all scenarios in $((SECONDS - start_all)) s"
