#!/usr/bin/env bash
# `make run`'s demo, on the firmware build: it must build its circuit, lose nothing on
# loopback, end by itself, and finish with the per-node summary.
source "$(dirname "$0")/lib.bash"
out=$(Toolchain/run.sh x86_64 demo --seconds 2 --base-port $((20000 + RANDOM % 20000)))
echo "$out" | tail -6
echo "$out" | grep -q 'loss 0.000%' || fail "demo lost messages"
[ "$(echo "$out" | grep -c '^  node [ABC]: [1-9][0-9]* packets')" = 3 ] || fail "a demo node relayed nothing"
check "demo: 3 nodes relayed, no loss, ended by itself"
