#!/usr/bin/env bash
# Storage errors under a relaying node (issue 5): faultfs.so (LD_PRELOAD, built here)
# makes the journal's write/fdatasync/fsync/ftruncate/rename (and, for EROFS, opening
# it for writing) fail while $FAULT_FILE exists. One client relays through the node
# and signs receipts the whole time (credit window 1 MiB, commit interval 1 s). For
# ENOSPC, EIO and EROFS in turn:
#   fault on  -> within 5 s status shows `storage_error`, the LED state `storage-error`,
#                the log an error; for 3 s the node keeps relaying (no paused circuit,
#                traffic grows) and credits nothing (committed and receipted stay put);
#   fault off -> within 12 s (reopen every 10 s) the storage is back, committed grows,
#                `wisp journal check` is ok.
# At the end the journal holds exactly what the client signed for, and its loss is ~0.
source "$(dirname "$0")/lib.bash"
wisp=${WISP_BIN:-.build-firmware/x86_64/wisp}
[ -x "$wisp" ] || fail "no wisp binary (Toolchain/build.sh x86_64)"
gcc -O2 -Wall -shared -fPIC -o "$state/faultfs.so" Tests/e2e/faultfs.c -ldl || fail "cannot build faultfs.so"
port=$((20000 + RANDOM % 20000)) echo_port=$((port + 1))
python3 Tests/e2e/wisppeer.py echo $echo_port 100 >/dev/null & pids+=($!)
# The client starts only once the echo service listens: before that the exit's datagrams
# meet a closed port, and each ICMP port-unreachable fails the next send (ECONNREFUSED,
# counted send_failed): Python's start-up on a loaded machine cost 1.2 % loss that way.
wait_udp $echo_port
sd=$state/node fault=$state/fault sock=$state/st.sock log=$state/node.log
"$wisp" keygen --state-dir "$sd" >/dev/null 2>&1 || fail "keygen"
fp=$("$wisp" id --state-dir "$sd" 2>/dev/null | sed -n 's/^fingerprint //p')
LD_PRELOAD=$state/faultfs.so FAULT_FILE=$fault "$wisp" run --clock-sync assume --listen 127.0.0.1:$port --state-dir "$sd" \
  --exit 127.0.0.1:$echo_port --lab-addresses yes --credit-window 1048576 --commit-interval 1 --status-socket "$sock" --duration 100 \
  2>"$log" & node=$!
pids+=($node)
for _ in $(seq 200); do [ -S "$sock" ] && break; sleep 0.02; done
[ -S "$sock" ] || fail "node did not come up: $(cat "$log")"
"$wisp" client --via 127.0.0.1:$port --exit 127.0.0.1:$echo_port --keys "$fp" --seconds 90 --rate-kbit 8000 \
  >"$state/client.out" 2>&1 & client=$!
pids+=($client)

t0=$(date +%s%N)
now() { echo $(( ($(date +%s%N) - t0) / 1000000 )); }        # ms since the client started
ts() { local m; m=$(now); printf '%d.%01d s' $((m / 1000)) $((m % 1000 / 100)); }
status() { "$wisp" status --json --socket "$sock" 2>/dev/null || true; }
num() { sed -n "s/.*\"$1\":\([0-9]*\).*/\1/p" <<<"$2"; }
err() { sed -n 's/.*"storage_error":\(null\|"[^"]*"\).*/\1/p' <<<"$1"; }
leds() { sed -n 's/.*"leds":"\([^"]*\)".*/\1/p' <<<"$1"; }

# Credit flows first.
for _ in $(seq 50); do s=$(status); [ "$(num committed_bytes "$s")" -gt 0 ] 2>/dev/null && break; sleep 0.2; done
[ "$(num committed_bytes "$s")" -gt 0 ] || fail "no committed credit before any fault: $s"
echo "e2e journal-faults: $(ts) credit flowing: committed $(num committed_bytes "$s") bytes"

for mode in ENOSPC EIO EROFS; do
  errors_before=$(grep -c 'level=error msg="journal storage failed' "$log" || true)
  echo "$mode" >"$fault"
  on=$(now)
  echo "e2e journal-faults: $(ts) $mode on"
  for _ in $(seq 50); do s=$(status); [ "$(err "$s")" != null ] && [ -n "$(err "$s")" ] && break; sleep 0.1; done
  e=$(err "$s")
  [ "$e" != null ] && [ -n "$e" ] || fail "$mode: no storage_error in status within 5 s: $s"
  detected=$(now)
  for _ in $(seq 20); do [[ "$(leds "$(status)")" == *storage-error* ]] && break; sleep 0.1; done
  l=$(leds "$(status)")
  [[ "$l" == *storage-error* ]] || fail "$mode: LED state is '$l', not storage-error"
  [ "$(grep -c 'level=error msg="journal storage failed' "$log" || true)" -gt "$errors_before" ] ||
    fail "$mode: no error logged"
  echo "e2e journal-faults: $(ts) $mode detected after $((detected - on)) ms: storage_error=$e leds='${l%% (*}'"
  s1=$(status); sleep 3; s2=$(status)
  for k in committed_bytes receipted_bytes; do
    [ "$(num $k "$s1")" = "$(num $k "$s2")" ] || fail "$mode: $k moved during the fault ($(num $k "$s1") -> $(num $k "$s2"))"
  done
  p1=$(num packets "$s1") p2=$(num packets "$s2")
  [ $((p2 - p1)) -gt 1000 ] || fail "$mode: the node stopped relaying during the fault ($p1 -> $p2 packets)"
  [ "$(num paused_circuits "$s2")" = 0 ] || fail "$mode: a paying circuit paused during the fault: $s2"
  echo "e2e journal-faults: $(ts) $mode held 3 s: relayed $((p2 - p1)) packets, no circuit paused, committed stays $(num committed_bytes "$s2")"
  committed_off=$(num committed_bytes "$s2")
  rm -f "$fault"
  off=$(now)
  echo "e2e journal-faults: $(ts) $mode off"
  for _ in $(seq 120); do s=$(status); [ "$(err "$s")" = null ] && break; sleep 0.1; done
  [ "$(err "$s")" = null ] || fail "$mode: storage not back within 12 s of the fault ending: $s"
  back=$(now)
  for _ in $(seq 40); do s=$(status); [ "$(num committed_bytes "$s")" -gt "$committed_off" ] && break; sleep 0.1; done
  [ "$(num committed_bytes "$s")" -gt "$committed_off" ] || fail "$mode: credit did not resume: $s"
  grew=$(now)
  [[ "$(leds "$s")" != *storage-error* ]] || sleep 1.1
  [[ "$(leds "$(status)")" != *storage-error* ]] || fail "$mode: LED still shows storage-error"
  "$wisp" journal check --state-dir "$sd" >"$state/check.out" || { cat "$state/check.out"; fail "$mode: journal check"; }
  grep -q '^status      ok$' "$state/check.out" || { cat "$state/check.out"; fail "$mode: journal not ok"; }
  echo "e2e journal-faults: $(ts) $mode recovered: storage back $((back - off)) ms after the fault ended," \
    "committed $committed_off -> $(num committed_bytes "$s") bytes $((grew - off)) ms after; journal check ok"
done
grep -q 'journal storage is back' "$log" || fail "no 'storage is back' log line"

# The end: every byte the client signed for is in the journal, and relaying lost ~nothing.
kill -TERM $client; wait $client || true
sleep 0.3
kill -TERM $node; wait $node || fail "node exited non-zero: $(tail -3 "$log")"
summary=$(tail -1 "$state/client.out")
acked=$(sed -n 's/.* \([0-9]*\) bytes signed in all.*/\1/p' <<<"$summary")
loss=$(sed -n 's/.*loss \([0-9.]*\)%.*/\1/p' <<<"$summary")
credit=$("$wisp" journal check --state-dir "$sd" | sed -n 's/^receipts .* \([0-9]*\) bytes$/\1/p')
echo "e2e journal-faults: $summary"
echo "e2e journal-faults: node $(grep -o 'receipted_bytes=.*receipts_uncredited=[0-9]*' "$log" | tail -1) $(grep 'msg="stopped"' "$log" | grep -o 'drops=.*' | tail -1)"
[ -n "$acked" ] && [ "$credit" = "$acked" ] || fail "journal holds $credit bytes, client signed for $acked"
awk -v l="$loss" 'BEGIN { exit !(l < 1.0) }' || fail "client loss $loss% through three storage faults"
check "storage faults ENOSPC, EIO, EROFS: node kept relaying (loss $loss%), showed storage_error + LED + log, recovered within 12 s; journal holds all $acked bytes the client signed for"
