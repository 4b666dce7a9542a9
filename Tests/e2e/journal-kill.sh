#!/usr/bin/env bash
# kill -9 of the relaying node, 200 times within 120 s (issue 5; a cycle takes 0.3-0.5 s, so the
# budget leaves room on a loaded machine): a node relays for a `wisp client`
# that signs receipts (credit window 1 MiB, so receipts matter); it is killed with
# SIGKILL at a random moment 0-300 ms into the traffic (every 8th time 0-1.2 s, so
# that interval commits on the 1 s tick are cut too) and restarted on the same state
# dir. Every node runs with `--commit-interval` 0 (a commit per receipt) or 1 (group
# commit on the tick), chosen at random. After each kill:
#   - `wisp journal check` says ok;
#   - the credit in the journal (what the restarted node recovers, also checked in its
#     status) is >= the `committed_bytes` the node reported just before the kill;
#   - it never exceeds what the clients signed for: the sum of every client's
#     `N bytes signed in all` (one hop: what it signed for that hop; checked when that client has ended, one cycle on).
source "$(dirname "$0")/lib.bash"
wisp=${WISP_BIN:-.build-firmware/x86_64/wisp}
[ -x "$wisp" ] || fail "no wisp binary (Toolchain/build.sh x86_64)"
port=$((20000 + RANDOM % 20000)) echo_port=$((port + 1))
budget=${KILL_BUDGET_S:-120} want=${KILLS:-200}
python3 Tests/e2e/wisppeer.py echo $echo_port $((budget + 20)) >/dev/null & pids+=($!)
sd=$state/node
"$wisp" keygen --state-dir "$sd" >/dev/null 2>&1 || fail "keygen"
"$wisp" id --state-dir "$sd" >"$state/id" 2>/dev/null || true
fp=$(sed -n 's/^fingerprint //p' "$state/id")
[ ${#fp} = 64 ] || fail "no node fingerprint ($(cat "$state/id"))"

node=
start_node() {  # INTERVAL
  rm -f "$state/st.sock"
  "$wisp" run --clock-sync assume --listen 127.0.0.1:$port --state-dir "$sd" --exit 127.0.0.1:$echo_port --lab-addresses yes --links optional --credit-window 1048576 \
    --commit-interval "$1" --status-socket "$state/st.sock" --idle-timeout 5 --duration $((budget + 20)) \
    2>>"$state/node.log" &
  node=$!; pids+=($node)
  for _ in $(seq 200); do [ -S "$state/st.sock" ] && return 0; sleep 0.01; done
  fail "node did not come up (see log below)"$'\n'"$(tail -5 "$state/node.log")"
}
field() { sed -n "s/.*\"$1\":\([0-9]*\).*/\1/p"; }
journal_credit() {  # prints the credit in the journal; fails unless the check says ok
  "$wisp" journal check --state-dir "$sd" >"$state/check.out" 2>&1 || { cat "$state/check.out"; fail "journal check after kill $kills"; }
  grep -q '^status      ok$' "$state/check.out" || { cat "$state/check.out"; fail "journal not ok after kill $kills"; }
  sed -n 's/^receipts .* \([0-9]*\) bytes$/\1/p' "$state/check.out"
  grep -q '^torn tail   0 bytes$' "$state/check.out" || echo torn >>"$state/torn"
}

kills=0 acked=0 min= max=0 lost_max=0 group=0 prev_credit=0
declare -a recovered_at=()   # credit recovered after kill k, checked once client k has ended
prev_pid= prev_out= prev_kill=0
settle_client() {  # waits for the previous client, adds what it signed for, checks the upper bound
  [ -n "$prev_pid" ] || return 0
  wait "$prev_pid" 2>/dev/null || true
  local a; a=$(sed -n 's/.* \([0-9]*\) bytes signed in all.*/\1/p' "$prev_out")
  acked=$((acked + ${a:-0}))
  local r=${recovered_at[$prev_kill]:-0}
  [ "$r" -le "$acked" ] || fail "kill $prev_kill: recovered credit $r exceeds everything clients signed for ($acked)"
  prev_pid=
}

interval=$((RANDOM % 2))
start_node $interval
deadline=$((SECONDS + budget))
while [ $kills -lt $want ] && [ $SECONDS -lt $deadline ]; do
  out=$state/client.$((kills % 2))
  # Plain links (--dtls off, the node's links = optional): a client whose node is killed
  # mid-handshake would wait out its DTLS timeout and slow the kill loop down.
  "$wisp" client --via 127.0.0.1:$port --exit 127.0.0.1:$echo_port --keys "$fp" --dtls off --seconds 3 --rate-kbit 16000 \
    >"$out" 2>&1 &
  cpid=$!; pids+=($cpid)
  if [ $((kills % 8)) = 7 ]; then ms=$((RANDOM % 1200)); else ms=$((RANDOM % 300)); fi
  sleep "$(printf '%d.%03d' $((ms / 1000)) $((ms % 1000)))"
  committed=$("$wisp" status --json --socket "$state/st.sock" 2>/dev/null | field committed_bytes)
  kill -9 "$node"; wait "$node" 2>/dev/null || true
  kill -TERM "$cpid" 2>/dev/null || true     # its circuit died with the node; it ends in ~0.2 s
  kills=$((kills + 1))
  [ "$interval" = 1 ] && group=$((group + 1))
  credit=$(journal_credit)
  [ -n "$credit" ] || { cat "$state/check.out"; fail "no credit figure in journal check"; }
  [ "$credit" -ge "${committed:-0}" ] || fail "kill $kills: journal holds $credit bytes, node had committed $committed"
  [ "$credit" -ge "$prev_credit" ] || fail "kill $kills: credit went down ($prev_credit -> $credit)"
  lost=$((credit - ${committed:-0})); [ $lost -gt $lost_max ] && lost_max=$lost
  [ -z "$min" ] && min=$credit
  [ "$credit" -gt "$max" ] && max=$credit
  prev_credit=$credit
  recovered_at[$kills]=$credit
  interval=$((RANDOM % 2))
  start_node $interval
  recovered=$("$wisp" status --json --socket "$state/st.sock" | field receipted_bytes)
  [ "$recovered" = "$credit" ] || fail "kill $kills: restarted node recovered $recovered bytes, journal check said $credit"
  settle_client
  prev_pid=$cpid prev_out=$out prev_kill=$kills
done
settle_client
kill -TERM "$node"; wait "$node" || fail "last node exited non-zero"
torn=0; [ -f "$state/torn" ] && torn=$(wc -l <"$state/torn")
[ $kills -ge "$want" ] || fail "only $kills kills in ${budget} s"
final=$(journal_credit)
[ "$final" -ge "$max" ] && [ "$final" -le "$acked" ] || fail "final credit $final (max seen $max, clients signed $acked)"
"$wisp" credits export --state-dir "$sd" --out "$state/claim" >/dev/null
"$wisp" credits verify "$state/claim" >/dev/null || fail "claim after the kills does not verify"
echo "e2e journal-kill: $kills kills of the relaying node ($group with group commit on the tick, $((kills - group)) with a commit per receipt); $torn left a torn tail"
echo "e2e journal-kill: credit after restarts min $min max $max bytes (final $final); clients signed for $acked bytes; the journal held up to $lost_max bytes beyond the committed_bytes last seen before a kill"
check "kill -9 of the relaying node x$kills: journal check ok every time, credit never below the last commit seen, never above what clients signed; claim verifies"
