#!/usr/bin/env bash
# `make run`'s demo, on the firmware build: it must build its circuit, lose nothing on
# loopback, end by itself, and finish with the per-node summary.
source "$(dirname "$0")/lib.bash"
out=$(Toolchain/run.sh x86_64 demo --seconds 2 --base-port $((20000 + RANDOM % 20000)) 2>/dev/null)
echo "$out" | tail -12
echo "$out" | grep -q 'loss 0.000%' || fail "demo lost messages"
[ "$(echo "$out" | grep -c '^  node [ABC]: [1-9][0-9]* packets')" = 3 ] || fail "a demo node relayed nothing"
# Every link is a DTLS session: each node opened and sealed records.
[ "$(echo "$out" | grep -c 'DTLS records opened [1-9][0-9]*, sealed [1-9]')" = 3 ] || fail "a demo link did not carry DTLS records"
# Credit: every node's journal holds receipts for exactly the bytes it relayed, none rejected.
for n in A B C; do
  relayed=$(echo "$out" | sed -n "s/^  node $n: [0-9]* packets, \([0-9]*\) bytes.*/\1/p")
  receipted=$(echo "$out" | sed -n "s/^  node $n: \([0-9]*\) bytes receipted in [0-9]* receipts, \([0-9]*\) committed (0 rejected).*/\1 \2/p")
  [ -n "$relayed" ] && [ "$receipted" = "$relayed $relayed" ] || fail "node $n relayed $relayed but receipted/committed '$receipted'"
done
dir=$(echo "$out" | sed -n 's/^  journals: \([^ ]*\)\/node.*/\1/p')
.build-firmware/x86_64/wisp journal check --state-dir "$dir/nodeB" | grep -q '^status      ok' || fail "node B's journal is not healthy"
.build-firmware/x86_64/wisp credits export --state-dir "$dir/nodeB" --out "$dir/claim" >/dev/null
.build-firmware/x86_64/wisp credits verify "$dir/claim" >/dev/null || fail "node B's claim does not verify"
rm -rf "$dir"
check "demo: 3 nodes relayed over DTLS links, no loss, ended by itself; each node's journal holds receipts for every byte it relayed; claim verifies"
