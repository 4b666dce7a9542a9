#!/usr/bin/env bash
# Issue 15, live: two nodes on one path (A then B, B the exit to an echo service), both with
# a payer list, and `wisp client` with the listed payer's key. Each node's claim verifies
# against the list; `credits settle` over both claims shows, per node, exactly what the
# client says it signed for that hop; a claim given twice counts once. A client given a
# spending cap stops under it and says so; a receipt for one circuit cannot pay for another. Then a dishonest client (Python, real P-256 signatures with the same listed
# payer key) tries to ride for free: it binds each new circuit with a 0-byte receipt and
# never pays, rotating circuits; the bytes echoed back in total stay within one credit
# window W for the payer. The same client never binding gets only its source's few unbound
# allowances, however many circuits it opens. Last, RECEIPT frames for
# the next node carry nothing for free: the first node charges them like DATA.
source "$(dirname "$0")/lib.bash"
wisp=${WISP_BIN:-.build-firmware/x86_64/wisp}
[ -x "$wisp" ] || fail "no wisp binary (Toolchain/build.sh x86_64)"
w=$(Toolchain/host-build.sh) || fail "no host build for the settlement tools"
python3 -c 'import cryptography' 2>/dev/null || need_tools python3:python3-cryptography
python3 -c 'import cryptography' || fail "python3-cryptography is needed for the dishonest client"
d=$state
for k in settle payer A B; do "$wisp" keygen --state-dir "$d/$k" >/dev/null || fail "keygen $k"; done
fpr() { "$wisp" id --state-dir "$1" | sed -n 's/^fingerprint //p'; }
S=$(fpr "$d/settle") P=$(fpr "$d/payer") FA=$(fpr "$d/A") FB=$(fpr "$d/B")
now=$(date +%s)
printf 'payer %s %d %d 1000000000000 86400\n' "$P" $((now - 86400)) $((now + 86400)) >"$d/input"
"$w" payers sign --key "$d/settle/node.key" --version 1 --out "$d/payers" "$d/input" >/dev/null || fail "payers sign"

port=$((20000 + RANDOM % 20000)) pa=$port pb=$((port + 1)) echo_port=$((port + 2))
python3 Tests/e2e/wisppeer.py echo $echo_port 90 >/dev/null & pids+=($!)
wait_udp $echo_port
W=262144 U=32768
node() {  # NAME PORT EXTRA...
  local n=$1 p=$2; shift 2
  "$wisp" run --clock-sync assume --listen 127.0.0.1:$p --state-dir "$d/$n" --name $n --links optional --lab-addresses yes \
    --payers "$d/payers" --settlement-keys "$S" --credit-window $W --unbound-allowance $U --bind-timeout 3 \
    --commit-interval 0 --status-socket "$d/$n.sock" --duration 80 "$@" 2>"$d/$n.log" &
  pids+=($!)
}
node A $pa; apid=${pids[-1]}
UPS=4   # B's unbound allowances per source (the default is 16): part 5b shows the cap
node B $pb --exit 127.0.0.1:$echo_port --unbound-per-source $UPS; bpid=${pids[-1]}
for s in A B; do for _ in $(seq 100); do [ -S "$d/$s.sock" ] && break; sleep 0.1; done; done

# 1. An honest client through A and B.
"$wisp" client --via 127.0.0.1:$pa,127.0.0.1:$pb --exit 127.0.0.1:$echo_port --keys "$FA,$FB" --dtls off \
  --payer-key "$d/payer/node.key" --seconds 3 --rate-kbit 1600 --size 500 >"$d/client.out" 2>&1 \
  || { cat "$d/client.out"; fail "honest client"; }
hops=$(grep -o 'this circuit: hop 1 [0-9]*, hop 2 [0-9]*' "$d/client.out" | tail -1)
s1=$(sed -n 's/.*hop 1 \([0-9]*\),.*/\1/p' <<<"$hops") s2=$(sed -n 's/.*hop 2 \([0-9]*\)$/\1/p' <<<"$hops")
[ -n "$s1" ] && [ -n "$s2" ] && [ "$s1" -gt 100000 ] || { cat "$d/client.out"; fail "the client reports no signed amounts per hop ($hops)"; }
sleep 1   # the last receipts reach the worker and are committed (commit_interval 0)
for n in A B; do
  "$wisp" credits export --state-dir "$d/$n" --payers "$d/payers" --out "$d/$n.claim" >/dev/null 2>"$d/$n.export" \
    || { cat "$d/$n.export"; fail "export $n"; }
  "$wisp" credits verify --payers "$d/payers" --settlement-keys "$S" "$d/$n.claim" >"$d/$n.verify" 2>&1 \
    || { cat "$d/$n.verify"; fail "node $n's claim does not verify against the payer list"; }
done
check "client signed hop 1 (A) $s1 bytes, hop 2 (B) $s2 bytes; both nodes' claims verify against payer list version 1"

# 2. Settlement over both claims, A's given twice.
"$w" credits settle --payers "$d/payers" --settlement-keys "$S" --csv "$d/A.claim" "$d/B.claim" "$d/A.claim" \
  >"$d/settle.csv" 2>"$d/settle.err" || { cat "$d/settle.csv" "$d/settle.err"; fail "settle (exit $?)"; }
pn() { awk -F, -v p="$P" -v n="$1" '$1 == "payer_node" && $2 == p && $3 == n { print $4 }' "$d/settle.csv"; }
ta=$(pn "$FA") tb=$(pn "$FB")
total=$(awk -F, -v p="$P" '$1 == "payer" && $2 == p { print $4 }' "$d/settle.csv")
[ "$ta" = "$s1" ] && [ "$tb" = "$s2" ] && [ "$total" = $((s1 + s2)) ] \
  || { cat "$d/settle.csv"; fail "settle: payer owes A $ta (client signed $s1), B $tb (client signed $s2), total $total"; }
check "settle over A's claim (twice) and B's: payer total per node A $ta = signed $s1, B $tb = signed $s2, total $total (A's claim counted once)"

# 3. The client stops at the spending cap its user sets, and says so; the nodes hold
# receipts for exactly what it signed.
st() { "$wisp" status --socket "$d/$1.sock" --json; }
receipted() { st $1 | python3 -c 'import json,sys; print(json.load(sys.stdin)["credit"]["receipted_bytes"])'; }
r0=$(( $(receipted A) + $(receipted B) )) cap=300000
"$wisp" client --via 127.0.0.1:$pa,127.0.0.1:$pb --exit 127.0.0.1:$echo_port --keys "$FA,$FB" --dtls off \
  --payer-key "$d/payer/node.key" --max-spend $cap --seconds 6 --rate-kbit 1600 --size 500 >"$d/capped.out" 2>&1 || true
line=$(grep -o "spending cap reached: [0-9]* bytes signed of a cap of $cap" "$d/capped.out" | head -1)
signed=$(sed -n 's/spending cap reached: \([0-9]*\) bytes.*/\1/p' <<<"$line")
[ -n "$signed" ] && [ "$signed" -le $cap ] || { cat "$d/capped.out"; fail "the client did not stop at its cap of $cap (said: '$line')"; }
sleep 1
r1=$(( $(receipted A) + $(receipted B) ))
[ $((r1 - r0)) = "$signed" ] || fail "the nodes hold receipts for $((r1 - r0)) bytes, the capped client says it signed $signed"
check "client with --max-spend $cap: '$line'; the two nodes' receipted bytes rose by exactly $((r1 - r0))"

# 4. A receipt from the listed payer on one circuit cannot pay for another: circuit 1 at B
# is paid honestly; circuit 2 offers only circuit 1's last receipt, so it stays unbound,
# carries at most the unbound allowance and the node refuses the receipt.
rejected() { st B | python3 -c 'import json,sys; print(sum(json.load(sys.stdin)["credit"]["rejected"].values()))'; }
j0=$(rejected)
python3 Tests/e2e/dodge.py reuse $pb $echo_port "$FB" "$d/payer/node.key" >"$d/reuse.out" 2>&1 \
  || { cat "$d/reuse.out"; fail "receipt reuse client"; }
first=$(sed -n 's/^first_echoed \([0-9]*\)$/\1/p' "$d/reuse.out") second=$(sed -n 's/^second_echoed \([0-9]*\)$/\1/p' "$d/reuse.out")
sleep 0.3
j1=$(rejected)
[ "${first:-0}" -ge 40000 ] || { cat "$d/reuse.out"; fail "the honest first circuit got only ${first:-0} bytes echoed"; }
[ "$second" -le $((U / 2 + 500)) ] && [ $((j1 - j0)) -ge 1 ] \
  || { cat "$d/reuse.out"; st B; fail "circuit 1's receipt offered on circuit 2: $second bytes echoed (unbound allowance $U), rejections +$((j1 - j0))"; }
check "circuit 1 paid (${first} bytes echoed); its receipt offered on circuit 2 was refused (rejections +$((j1 - j0))) and circuit 2 carried only the unbound allowance ($second bytes echoed)"

# 5. A dishonest client with the listed payer key: binds with 0 bytes, never pays, rotates.
python3 Tests/e2e/dodge.py 127.0.0.1 $pb 127.0.0.1 $echo_port "$FB" "$d/payer/node.key" 12 >"$d/dodge.out" 2>&1 \
  || { cat "$d/dodge.out"; tail -20 "$d/B.log"; fail "dishonest client"; }
cat "$d/dodge.out" | sed 's/^/  /'
echoed=$(sed -n 's/^echoed_total \([0-9]*\)$/\1/p' "$d/dodge.out")
circuits=$(sed -n 's/^circuits \([0-9]*\)$/\1/p' "$d/dodge.out")
# The node counts DATA both ways; echoed bytes are half of what it relayed. Bound: one W for
# the payer (all its circuits together, debts of closed ones included; the client binds
# before it sends, so nothing rides on unbound allowances) + the one floor U a payer may hold
# beyond it (PayerBook.grant), + one 500-byte frame per circuit.
bound=$(( (W + U) / 2 + circuits * 500 ))
[ -n "$echoed" ] && [ "$echoed" -le "$bound" ] \
  || fail "a payer that never pays got $echoed bytes echoed over $circuits circuits (bound $bound: (W $W + U $U) / 2 + $circuits x 500)"
json=$(st B)
debt=$(python3 -c 'import json,sys; c=json.loads(sys.argv[1])["credit"]; print(c.get("debts",{}).get("owed_bytes",0))' "$json")
check "dishonest payer, $circuits circuits bound with 0-byte receipts and never paid: $echoed bytes echoed in all (bound $bound = (W + U)/2 + ${circuits} x 500: one window, not one per circuit), closed-circuit debt $debt bytes at B (the exit)"

# 5b. The same client never binding at all: each circuit lives on an unbound allowance of
# its source (127.0.0.1), of which B gives $UPS at once and one more every 5 s.
refu() { st B | python3 -c 'import json,sys; print(json.load(sys.stdin)["sources"]["refused_unbound"])'; }
r0=$(refu) t0=$(date +%s)
python3 Tests/e2e/dodge.py 127.0.0.1 $pb 127.0.0.1 $echo_port "$FB" "$d/payer/node.key" 12 nobind >"$d/nobind.out" 2>&1 \
  || { cat "$d/nobind.out"; fail "never-binding client"; }
secs=$(( $(date +%s) - t0 + 1 )) r1=$(refu)
echoed=$(sed -n 's/^echoed_total \([0-9]*\)$/\1/p' "$d/nobind.out")
carried=$(grep -c 'echoed [1-9]' "$d/nobind.out")
allow=$(( UPS + secs / 5 + 1 ))
[ -n "$echoed" ] && [ "$carried" -le "$allow" ] && [ "$echoed" -le $(( allow * U / 2 )) ] && [ $((r1 - r0)) -ge $((12 - allow)) ] \
  || { cat "$d/nobind.out"; fail "a client that never binds: $carried of 12 circuits carried traffic, $echoed bytes echoed in ${secs} s (at most $allow allowances: $UPS + one per 5 s), refused_unbound +$((r1 - r0))"; }
check "a client that never binds: 12 circuits in ${secs} s, $carried carried traffic ($echoed bytes echoed; at most $allow unbound allowances of $U bytes: $UPS at once + one per 5 s), $((r1 - r0)) opened without one"

# 6. RECEIPT frames for another node as free carriage: a circuit A -> B bound at A with a
# 0-byte receipt, then 3,000 RECEIPT frames naming B (235 bytes each, 705,000 bytes): A
# charges them like DATA, so beyond W + U they are dropped `unpaid` at A.
unpaid() { st A | python3 -c 'import json,sys; print(json.load(sys.stdin)["drops"]["unpaid"])'; }
u0=$(unpaid)
python3 Tests/e2e/dodge.py receipts $pa $pb $echo_port "$FA" "$FB" "$d/payer/node.key" 3000 >"$d/rcpt.out" 2>&1 \
  || { cat "$d/rcpt.out"; fail "receipt carriage client"; }
sleep 0.5
u1=$(unpaid)
frames=$(sed -n 's/^receipt_frames \([0-9]*\)$/\1/p' "$d/rcpt.out") rbytes=$(sed -n 's/^receipt_bytes \([0-9]*\)$/\1/p' "$d/rcpt.out")
size=$((rbytes / frames))
# At most (W + U) / size frames fit under A's limit for this payer (its debt from part 1's
# circuits is at B, not A); the rest must be dropped unpaid.
free=$(( (W + U) / size + 1 ))
[ $((u1 - u0)) -ge $((frames - free)) ] \
  || fail "A forwarded RECEIPT frames for B without charging them: $((u1 - u0)) of $frames dropped unpaid (at most $free may pass)"
check "RECEIPT frames for another node are charged: $frames frames of $size bytes through A, $((u1 - u0)) dropped unpaid (at most $free fit in W + U)"
kill -TERM $apid $bpid; wait $apid || fail "A exited non-zero"; wait $bpid || fail "B exited non-zero"
