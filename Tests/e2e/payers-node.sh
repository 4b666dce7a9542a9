#!/usr/bin/env bash
# A node with a payer list (issue 15), firmware build, real keys: the list is loaded at
# start and shown in status (version, age, payers; JSON and metrics); on SIGHUP a newer
# version replaces it, while an older version, one signed by another key and a damaged
# file are refused with a log line and the list in force kept; a node whose list cannot
# be verified does not start. Then `wisp client` through the node: with the listed payer
# key its circuit is bound and paid; with an unlisted key nothing is earned, the receipts
# are refused `unlisted_payer` and the circuit is closed at the bind timeout.
# Without a list the node says `payers unverified`.
source "$(dirname "$0")/lib.bash"
wisp=${WISP_BIN:-.build-firmware/x86_64/wisp}
[ -x "$wisp" ] || fail "no wisp binary (Toolchain/build.sh x86_64)"
w=$(Toolchain/host-build.sh) || fail "no host build for the settlement tools"
d=$state
for k in settle stranger payer other node; do "$wisp" keygen --state-dir "$d/$k" >/dev/null || fail "keygen $k"; done
fpr() { "$wisp" id --state-dir "$1" | sed -n 's/^fingerprint //p'; }
S=$(fpr "$d/settle") P=$(fpr "$d/payer") N=$(fpr "$d/node")
now=$(date +%s) day=86400
printf 'payer %s %d %d 100000000 %d\n' "$P" $((now - day)) $((now + day)) $day >"$d/input"
sign() {  # VERSION KEYDIR OUT
  "$w" payers sign --key "$d/$2/node.key" --version "$1" --out "$3" "$d/input" >/dev/null || fail "payers sign $1"
}
sign 5 settle "$d/list5"; sign 6 settle "$d/list6"; sign 4 settle "$d/list4"; sign 9 stranger "$d/list9"
sed 's/100000000/100000001/' "$d/list6" >"$d/damaged"

port=$((20000 + RANDOM % 20000)) echo_port=$((port + 1))
python3 Tests/e2e/wisppeer.py echo $echo_port 60 >/dev/null & pids+=($!)
wait_udp $echo_port
# A list no pinned key signed: the node refuses to start, saying why.
set +e
"$wisp" run --clock-sync assume --listen 127.0.0.1:$port --state-dir "$d/node" --payers "$d/list9" --settlement-keys "$S" --duration 5 2>"$d/bad.log"
rc=$?
set -e
[ $rc != 0 ] && grep -q 'cannot load the payer list' "$d/bad.log" && grep -q 'signed validly by 0 pinned' "$d/bad.log" \
  || { cat "$d/bad.log"; fail "a node started with a list no pinned key signed (rc $rc)"; }

cp "$d/list5" "$d/payers"
"$wisp" run --clock-sync assume --listen 127.0.0.1:$port --state-dir "$d/node" --exit 127.0.0.1:$echo_port --links optional --lab-addresses yes \
  --payers "$d/payers" --settlement-keys "$S" --bind-timeout 2 --commit-interval 0 --status-socket "$d/st.sock" \
  --duration 50 2>"$d/node.log" & node=$!; pids+=($node)
for _ in $(seq 100); do [ -S "$d/st.sock" ] && break; sleep 0.1; done
version() { "$wisp" status --socket "$d/st.sock" --json | sed -n 's/.*"payers":{"verified":true,"version":\([0-9]*\).*/\1/p'; }
[ "$(version)" = 5 ] || fail "status does not show payer list version 5"
"$wisp" status --socket "$d/st.sock" | grep -q '^payers:    list version 5, [0-9]* s old, 1 payer(s), unlisted refused' \
  || { "$wisp" status --socket "$d/st.sock"; fail "status text"; }
check "node started with payer list version 5 (status: version, age, 1 payer, unlisted refused)"
hup_expect() {  # FILE VERSION-AFTER LOG-PATTERN
  cp "$1" "$d/payers"
  local before; before=$(wc -l <"$d/node.log")
  kill -HUP $node
  for _ in $(seq 50); do tail -n +$((before + 1)) "$d/node.log" | grep -q "$3" && break; sleep 0.1; done
  tail -n +$((before + 1)) "$d/node.log" | grep -q "$3" || { tail -5 "$d/node.log"; fail "SIGHUP with $(basename "$1"): no '$3' in the log"; }
  [ "$(version)" = "$2" ] || fail "after SIGHUP with $(basename "$1") the list in force is $(version), not $2"
}
hup_expect "$d/list6" 6 'payer list in force.*version=6'
hup_expect "$d/list4" 6 'payer list refused.*version 4 is not newer than 6'
hup_expect "$d/list9" 6 'payer list refused.*signed validly by 0 pinned'
hup_expect "$d/damaged" 6 'payer list refused'
hup_expect "$d/list6" 6 'payer list refused.*version 6 is not newer than 6'
check "SIGHUP: version 6 replaced 5; version 4, a stranger's list, a damaged file and 6 again refused with a log line, 6 kept"

# The listed payer: bound and paid.
"$wisp" client --via 127.0.0.1:$port --exit 127.0.0.1:$echo_port --keys "$N" --dtls off --payer-key "$d/payer/node.key" \
  --seconds 2 --rate-kbit 2000 --size 500 >"$d/c1.out" 2>&1 || { cat "$d/c1.out"; fail "client with the listed payer"; }
st=$("$wisp" status --socket "$d/st.sock" --json)
rec=$(sed -n 's/.*"receipted_bytes":\([0-9]*\).*/\1/p' <<<"$st")
[ "${rec:-0}" -gt 100000 ] || { echo "$st"; fail "the listed payer earned the node $rec bytes"; }
# An unlisted payer: its receipts earn nothing, its circuit is closed at the bind timeout.
"$wisp" client --via 127.0.0.1:$port --exit 127.0.0.1:$echo_port --keys "$N" --dtls off --payer-key "$d/other/node.key" \
  --seconds 4 --rate-kbit 2000 --size 500 >"$d/c2.out" 2>&1 || true
st=$("$wisp" status --socket "$d/st.sock" --json)
rec2=$(sed -n 's/.*"receipted_bytes":\([0-9]*\).*/\1/p' <<<"$st")
unlisted=$(sed -n 's/.*"unlisted_payer":\([0-9]*\).*/\1/p' <<<"$st")
closed=$(sed -n 's/.*"unbound_closed":\([0-9]*\).*/\1/p' <<<"$st")
relayed=$(grep -o 'echoed [0-9]*' "$d/c2.out" | tail -1 | grep -o '[0-9]*')
[ "$rec2" = "$rec" ] && [ "${unlisted:-0}" -ge 1 ] && [ "${closed:-0}" -ge 1 ] \
  || { echo "$st"; cat "$d/c2.out"; fail "unlisted payer: receipted $rec -> $rec2, unlisted_payer $unlisted, unbound_closed $closed"; }
check "listed payer earned the node $rec bytes; an unlisted payer earned nothing (unlisted_payer $unlisted), its circuit closed unbound after ${relayed:-0} bytes echoed"
kill -TERM $node; wait $node || fail "node exited non-zero"
"$wisp" run --clock-sync assume --listen 127.0.0.1:$port --state-dir "$d/node" --status-socket "$d/st2.sock" --duration 5 2>/dev/null & n2=$!; pids+=($n2)
for _ in $(seq 100); do [ -S "$d/st2.sock" ] && break; sleep 0.1; done
"$wisp" status --socket "$d/st2.sock" | grep -q 'payers unverified' || fail "no list: status does not say payers unverified"
kill -TERM $n2; wait $n2 || true
check "without a payer list status says payers unverified"
