#!/usr/bin/env bash
# The running node's DTLS sessions (`wisp run`, not the tls-probe tool) against OpenSSL as an
# independent peer, on 127.0.0.1 only, every wait bounded:
#   - openssl s_client -dtls1_2 with a client certificate completes a mutually authenticated
#     handshake with the node (cookie exchange first), both suites; the node learns its key;
#   - the node dials openssl s_server -dtls1_2 -Verify 1 as a pinned node link;
#   - refusals, each counted by reason in the node's status and logged: a CBC suite, DTLS 1.0,
#     a node link whose key is not the pinned one.
source "$(dirname "$0")/lib.bash"
command -v openssl >/dev/null || fail "openssl is not installed"
W=.build-firmware/x86_64/wisp
work=$(mktemp -d /tmp/wisp-node-ossl.XXXXXX)
trap 'cleanup; rm -rf "$work"' EXIT
base=$((26000 + RANDOM % 20000))
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 30 -subj /CN=openssl-peer \
  -keyout "$work/ossl.key" -out "$work/ossl.crt" 2>/dev/null
fp_ossl=$(openssl pkey -in "$work/ossl.key" -pubout -outform DER | sha256sum | cut -d' ' -f1)
refused() { $W status --socket "$work/n.sock" --json | python3 -c "import json,sys; print(json.load(sys.stdin)['sessions']['refused']['$1'])"; }
sessions() { $W status --socket "$work/n.sock" --json | python3 -c "import json,sys; s=json.load(sys.stdin)['sessions']; print(s['handshakes_full'], s['hello_verify_requests'])"; }

# --- the node as server <- openssl s_client ----------------------------------------------------
n=$base
$W run --lab-addresses yes --listen 127.0.0.1:$n --state-dir "$state/n" --name N --credit-window 0 --status-socket "$work/n.sock" \
  --duration 60 2>"$work/n.log" & pids+=($!)
for _ in $(seq 50); do [ -S "$work/n.sock" ] && break; sleep 0.1; done
for suite in ECDHE-ECDSA-CHACHA20-POLY1305 ECDHE-ECDSA-AES128-GCM-SHA256; do
  before=$(sessions | cut -d' ' -f1)
  out=$( (sleep 1.5) | timeout 10 openssl s_client -dtls1_2 -connect 127.0.0.1:$n -cipher $suite \
    -cert "$work/ossl.crt" -key "$work/ossl.key" 2>&1 || true)
  grep -q "Cipher is $suite\|Cipher    : $suite" <<<"$out" || { echo "$out" | tail -20; fail "openssl s_client: no $suite session with the node"; }
  after=$(sessions | cut -d' ' -f1)
  [ "$after" -gt "$before" ] || fail "the node counted no full handshake for $suite"
  grep -q "msg=\"session up\".*kind=client.*key=$fp_ossl" "$work/n.log" || fail "the node did not learn openssl's key"
  check "node <- openssl s_client $suite: mutual handshake after a cookie ($(sessions | cut -d' ' -f2) cookies so far), client key $fp_ossl learned"
done

refusal() {  # NAME COUNTER OPENSSL-ARGS...
  local name=$1 counter=$2; shift 2
  local before; before=$(refused "$counter")
  (sleep 1) | timeout 10 openssl s_client -connect 127.0.0.1:$n -cert "$work/ossl.crt" -key "$work/ossl.key" "$@" \
    >"$work/r-$name.out" 2>&1 || true
  for _ in $(seq 20); do [ "$(refused "$counter")" -gt "$before" ] && break; sleep 0.1; done
  [ "$(refused "$counter")" -gt "$before" ] || { tail -5 "$work/n.log"; fail "refusal $name: counter $counter did not move"; }
  check "node refused openssl ($name): $counter=$(refused "$counter"), log: $(grep -o 'msg="session failed".*' "$work/n.log" | tail -1)"
}
refusal cbc-suite no_shared_suite -dtls1_2 -cipher ECDHE-ECDSA-AES128-SHA
refusal dtls1.0 protocol_version -dtls1 -cipher 'DEFAULT:@SECLEVEL=0'

# --- the node dials openssl s_server as a pinned node link -------------------------------------
s=$((base + 1)) m=$((base + 2))
(sleep 12) | timeout 15 openssl s_server -dtls1_2 -accept 127.0.0.1:$s -cert "$work/ossl.crt" -key "$work/ossl.key" \
  -Verify 1 -naccept 1 >"$work/ss.out" 2>&1 & pids+=($!)
sleep 0.5
$W run --lab-addresses yes --listen 127.0.0.1:$m --state-dir "$state/m" --name M --credit-window 0 --peer ossl=127.0.0.1:$s=$fp_ossl \
  --duration 15 2>"$work/m.log" & mpid=$!; pids+=($mpid)
for _ in $(seq 80); do grep -q 'msg="session up".*name=ossl' "$work/m.log" && break; sleep 0.1; done
grep -q 'msg="session up".*name=ossl.*role=client.*kind=node' "$work/m.log" || { cat "$work/m.log" "$work/ss.out"; fail "no node link to openssl s_server"; }
check "node -> openssl s_server -Verify 1: pinned node link up ($(grep -o 'suite=[^ ]*' "$work/m.log" | head -1))"
kill -TERM $mpid; wait $mpid 2>/dev/null || true

# A node link whose peer presents another key: refused, counted, logged.
s=$((base + 3)) m=$((base + 4))
wrong=$(printf '%064d' 1)
(sleep 12) | timeout 15 openssl s_server -dtls1_2 -accept 127.0.0.1:$s -cert "$work/ossl.crt" -key "$work/ossl.key" \
  -Verify 1 >"$work/ss2.out" 2>&1 & pids+=($!)
sleep 0.5
$W run --lab-addresses yes --listen 127.0.0.1:$m --state-dir "$state/m" --name M --credit-window 0 --peer ossl=127.0.0.1:$s=$wrong \
  --duration 8 2>"$work/m2.log" & mpid=$!; pids+=($mpid)
wait $mpid 2>/dev/null || true
grep -q "session failed.*name=ossl.*peer key is not pinned: fingerprint $fp_ossl" "$work/m2.log" || { cat "$work/m2.log"; fail "wrong pin not refused"; }
grep -q 'session_refusals=\[.*not_pinned=[1-9]' "$work/m2.log" || fail "wrong pin not counted"
check "node link with a wrong pin refused: $(grep -o 'not_pinned=[0-9]*' "$work/m2.log" | tail -1)"
