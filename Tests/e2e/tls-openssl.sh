#!/usr/bin/env bash
# DTLS 1.2 interop of wisp with an independent implementation (OpenSSL), on 127.0.0.1
# only, every wait bounded by `timeout`:
#   - `wisp tls-probe` (a developer tool: the host build, Toolchain/host-build.sh)
#       as server <- openssl s_client (client certificate, ChaCha20 and AES-GCM),
#       as client -> openssl s_server -Verify 1,
#       refusals, each with a clear log line: wrong pinned fingerprint (both roles), a damaged
#       certificate whose key is pinned, a CBC suite (both roles), DTLS 1.0 (both roles);
#   - the identity commands of the x86_64 firmware (keygen, id) against openssl's view;
#   - the ARM firmware under qemu (aarch64, armv7), whose binary has no tls-probe: its node
#       (`wisp run`) <- openssl s_client with ChaCha20, and -> openssl s_server -Verify 1
#       with AES-GCM as a pinned node link.
# WISP_TLS_TARGETS (default "x86_64 aarch64 armv7") names the firmware builds to try.
source "$(dirname "$0")/lib.bash"
command -v openssl >/dev/null || fail "openssl is not installed"
targets=(${WISP_TLS_TARGETS:-x86_64 aarch64 armv7})
probe=$(Toolchain/host-build.sh) || fail "no host build for 'wisp tls-probe'"
work=$(mktemp -d /tmp/wisp-tls-e2e.XXXXXX)
base=$((17000 + RANDOM % 20000))
n=0
next_port() { n=$((n + 1)); p=$((base + n)); }  # sets $p (no subshell, so n advances)

# --- identities -------------------------------------------------------------------------
Toolchain/run.sh x86_64 keygen --state-dir "$work/wisp" >/dev/null
set +e; Toolchain/run.sh x86_64 keygen --state-dir "$work/wisp" 2>"$work/keygen.err"; rc=$?; set -e
[ $rc -eq 1 ] && grep -q 'exists: keeping it' "$work/keygen.err" || fail "keygen replaced an existing key (rc $rc)"
[ "$(stat -c %a "$work/wisp/node.key")" = 600 ] || fail "node.key is not mode 0600"
fp_wisp=$(Toolchain/run.sh x86_64 id --state-dir "$work/wisp" | sed -n 's/^fingerprint //p')
fp_ossl_view=$(openssl pkey -in "$work/wisp/node.key" -pubout -outform DER | sha256sum | cut -d' ' -f1)
[ "$fp_wisp" = "$fp_ossl_view" ] || fail "wisp id fingerprint $fp_wisp != openssl's $fp_ossl_view"
openssl x509 -in "$work/wisp/node.crt" -noout 2>/dev/null || fail "node.crt does not parse in openssl"
check "identity: 0600 key kept without --force, fingerprint $fp_wisp matches openssl"

openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 30 -subj /CN=openssl-peer \
  -keyout "$work/ossl.key" -out "$work/ossl.crt" 2>/dev/null
fp_ossl=$(openssl pkey -in "$work/ossl.key" -pubout -outform DER | sha256sum | cut -d' ' -f1)
# A damaged copy: same key, last byte of the signature flipped.
openssl x509 -in "$work/ossl.crt" -outform DER -out "$work/bad.der"
python3 - "$work/bad.der" <<'PY'
import sys
p = sys.argv[1]; b = bytearray(open(p, 'rb').read()); b[-1] ^= 0x01; open(p, 'wb').write(b)
PY
openssl x509 -inform DER -in "$work/bad.der" -out "$work/bad.crt"
wrong=$(printf '%064d' 0)

# --- helpers ------------------------------------------------------------------------------
# wisp_server PORT OUT PIN... : starts `tls-probe --role server` in the background.
wisp_server() {
  local p=$1 out=$2; shift 2
  local pins=(); for f in "$@"; do pins+=(--pin "$f"); done
  timeout 40 "$probe" tls-probe --role server --listen 127.0.0.1:$p --state-dir "$work/wisp" \
    "${pins[@]}" --timeout 30 >"$out.out" 2>"$out.err" &
  server_pid=$!; pids+=($server_pid)
  for _ in $(seq 100); do grep -q listening "$out.err" 2>/dev/null && return; sleep 0.05; done
  fail "wisp server did not start: $(cat "$out.err")"
}
# s_client PORT OPENSSL-ARGS... : one line to the server, bounded.
s_client() {
  local p=$1; shift
  (echo "hello from openssl"; sleep 2) | timeout 10 openssl s_client -connect 127.0.0.1:$p \
    -cert "$work/ossl.crt" -key "$work/ossl.key" -quiet "$@" 2>&1 || true
}
wait_server() { local rc=0; wait "$server_pid" || rc=$?; echo $rc; }

# --- wisp server <- openssl s_client ------------------------------------------------------
t=host
for suite in ECDHE-ECDSA-CHACHA20-POLY1305 ECDHE-ECDSA-AES128-GCM-SHA256; do
  next_port; wisp_server $p "$work/srv-$suite" "$fp_ossl"
  reply=$(s_client $p -dtls1_2 -cipher $suite)
  rc=$(wait_server)
  [ "$rc" = 0 ] || fail "wisp server ($suite) exited $rc: $(cat "$work/srv-$suite.err")"
  grep -q 'received hello from openssl' "$work/srv-$suite.out" || fail "wisp did not receive the line ($suite)"
  echo "$reply" | grep -q '^hello from openssl$' || fail "openssl got no echo ($suite): $reply"
  grep -q "handshake complete.*fingerprint=$fp_ossl.*cookie_rounds=1" "$work/srv-$suite.err" || fail "no cookie round ($suite)"
  check "$t wisp server <- openssl s_client $suite: $(grep -o 'suite=[^ ]*' "$work/srv-$suite.err"), cookie exchange, echo ok"
done

# --- wisp client -> openssl s_server ------------------------------------------------------
# s_server_bg PORT OUT OPENSSL-ARGS...
s_server_bg() {
  local p=$1 out=$2; shift 2
  (echo "hello from openssl-server"; sleep 6) | timeout 12 openssl s_server -accept 127.0.0.1:$p \
    -cert "$work/ossl.crt" -key "$work/ossl.key" -Verify 1 -naccept 1 -quiet "$@" >"$out.out" 2>"$out.err" &
  pids+=($!)
  sleep 0.5
}
wisp_client() {  # PORT OUT PIN-ARGS...
  local p=$1 out=$2; shift 2
  local rc=0
  timeout 30 "$probe" tls-probe --role client --connect 127.0.0.1:$p --state-dir "$work/wisp-client" \
    "$@" --timeout 20 >"$out.out" 2>"$out.err" || rc=$?
  echo $rc
}
next_port; s_server_bg $p "$work/ss" -dtls1_2
rc=$(wisp_client $p "$work/cli" --pin "$fp_ossl")
[ "$rc" = 0 ] || fail "wisp client exited $rc: $(cat "$work/cli.err")"
grep -q '^reply hello from openssl-server$' "$work/cli.out" || fail "wisp client got no reply: $(cat "$work/cli.out")"
sleep 0.3; grep -q 'hello from wisp' "$work/ss.out" || fail "openssl s_server did not receive the line"
check "$t wisp client -> openssl s_server -Verify 1: $(grep -o 'suite=[^ ]*' "$work/cli.err"), line both ways"

next_port; s_server_bg $p "$work/ss-learn" -dtls1_2
rc=$(wisp_client $p "$work/cli-learn" --learn)
[ "$rc" = 0 ] && grep -q "^learned $fp_ossl$" "$work/cli-learn.out" || fail "learn mode: rc $rc $(cat "$work/cli-learn.out")"
check "$t wisp client --learn recorded openssl's fingerprint"

# --- refusals -----------------------------------------------------------------------------
refused_server() {  # NAME EXPECTED-LOG OPENSSL-ARGS...  (wisp server pins $pin_for_refusal)
  local name=$1 expect=$2; shift 2
  next_port; wisp_server $p "$work/r-$name" "$pin_for_refusal"
  s_client $p "$@" >"$work/r-$name.ossl"
  local rc; rc=$(wait_server)
  [ "$rc" = 1 ] || fail "refusal '$name': wisp server exited $rc"
  grep -q "$expect" "$work/r-$name.err" || fail "refusal '$name': no '$expect' in: $(cat "$work/r-$name.err")"
  ! grep -q 'received' "$work/r-$name.out" || fail "refusal '$name': data got through"
  check "$t refused ($name): $(grep -o 'msg="session refused".*' "$work/r-$name.err")"
}
refused_client() {  # NAME EXPECTED-LOG S_SERVER-ARGS -- WISP-ARGS
  local name=$1 expect=$2; shift 2
  local sargs=(); while [ "$1" != -- ]; do sargs+=("$1"); shift; done; shift
  next_port; s_server_bg $p "$work/rcs-$name" "${sargs[@]}"
  local rc; rc=$(wisp_client $p "$work/rc-$name" "$@")
  [ "$rc" = 1 ] || fail "client refusal '$name': wisp client exited $rc"
  grep -q "$expect" "$work/rc-$name.err" || fail "client refusal '$name': no '$expect' in: $(cat "$work/rc-$name.err")"
  ! grep -q '^reply' "$work/rc-$name.out" || fail "client refusal '$name': data got through"
  check "$t client refused ($name): $(grep -o 'msg="session refused".*' "$work/rc-$name.err")"
}
pin_for_refusal=$wrong
refused_server wrong-pin "peer key is not pinned: fingerprint $fp_ossl" -dtls1_2
pin_for_refusal=$fp_ossl
# The damaged certificate carries the pinned key, so only the self-signature check refuses it.
refused_server damaged-cert "not validly self-signed" -dtls1_2 -cert "$work/bad.crt"
refused_server cbc-suite "no shared cipher suite" -dtls1_2 -cipher ECDHE-ECDSA-AES128-SHA
refused_server dtls1.0 "does not speak DTLS 1.2" -dtls1 -cipher 'DEFAULT:@SECLEVEL=0'
refused_client wrong-pin "peer key is not pinned" -dtls1_2 -- --pin "$wrong"
refused_client cbc-suite "handshake_failure" -dtls1_2 -cipher ECDHE-ECDSA-AES128-SHA -- --pin "$fp_ossl"
# A DTLS 1.0-only s_server negotiates 1.0 down from our 1.2 offer, then finds none of our
# AEAD suites (they need 1.2) and sends handshake_failure before any 1.0 ServerHello.
refused_client dtls1.0 "handshake_failure\|protocol_version\|does not speak DTLS 1.2" -dtls1 -cipher 'DEFAULT:@SECLEVEL=0' -- --pin "$fp_ossl"

# --- the ARM firmware under qemu: its node's DTLS sessions ------------------------------------
# wait_log FILE PATTERN SECONDS
wait_log() { for _ in $(seq $(($3 * 10))); do grep -q "$2" "$1" 2>/dev/null && return 0; sleep 0.1; done; return 1; }
for t in "${targets[@]}"; do
  [ "$t" = x86_64 ] && continue
  # The node as server <- openssl s_client: cookie, mutual authentication, client key learned.
  next_port; node=$p
  timeout 60 Toolchain/run.sh $t run --lab-addresses yes --listen 127.0.0.1:$node --state-dir "$work/node-$t" --name $t --shards 1 \
    --credit-window 0 --duration 50 2>"$work/node-$t.log" & npid=$!; pids+=($npid)
  wait_log "$work/node-$t.log" 'msg="listening"' 20 || fail "$t node did not start: $(cat "$work/node-$t.log")"
  out=$( (sleep 3) | timeout 30 openssl s_client -dtls1_2 -connect 127.0.0.1:$node -cipher ECDHE-ECDSA-CHACHA20-POLY1305 \
    -cert "$work/ossl.crt" -key "$work/ossl.key" 2>&1 || true)
  grep -q "Cipher is ECDHE-ECDSA-CHACHA20-POLY1305\|Cipher    : ECDHE-ECDSA-CHACHA20-POLY1305" <<<"$out" \
    || { echo "$out" | tail -20; fail "$t node: no ChaCha20 session with openssl s_client"; }
  wait_log "$work/node-$t.log" "msg=\"session up\".*kind=client.*key=$fp_ossl" 10 \
    || { cat "$work/node-$t.log"; fail "$t node did not learn openssl's key"; }
  kill -TERM $npid 2>/dev/null || true; wait $npid 2>/dev/null || true
  check "$t (qemu) node <- openssl s_client: $(grep -o 'msg="session up".*' "$work/node-$t.log" | grep -o 'suite=[^ ]*' | head -1), client key learned"
  # The node as client -> openssl s_server -Verify 1, AES-GCM only: a pinned node link.
  next_port; srv=$p
  # stdin held open by a process substitution, not a pipeline: `wait` on a pipeline's last
  # process waits for the whole pipeline (its `sleep 40` too, 40 s per target).
  timeout 45 openssl s_server -dtls1_2 -accept 127.0.0.1:$srv -cert "$work/ossl.crt" -key "$work/ossl.key" \
    -Verify 1 -naccept 1 -cipher ECDHE-ECDSA-AES128-GCM-SHA256 < <(sleep 40) >"$work/ss-$t.out" 2>&1 & spid=$!; pids+=($spid)
  sleep 0.5
  next_port
  timeout 60 Toolchain/run.sh $t run --lab-addresses yes --listen 127.0.0.1:$p --state-dir "$work/node-$t" --name $t --credit-window 0 \
    --peer ossl=127.0.0.1:$srv=$fp_ossl --duration 45 2>"$work/link-$t.log" & npid=$!; pids+=($npid)
  wait_log "$work/link-$t.log" 'msg="session up".*name=ossl' 40 \
    || { cat "$work/link-$t.log" "$work/ss-$t.out"; fail "$t node: no node link to openssl s_server"; }
  grep -q 'msg="session up".*name=ossl.*role=client.*kind=node.*suite=[^ ]*AES' "$work/link-$t.log" \
    || { grep 'session up' "$work/link-$t.log"; fail "$t node link is not a client-side AES-GCM node session"; }
  kill -TERM $npid 2>/dev/null || true; wait $npid 2>/dev/null || true
  kill $spid 2>/dev/null || true; wait $spid 2>/dev/null || true
  check "$t (qemu) node -> openssl s_server -Verify 1: pinned node link up ($(grep -o 'msg="session up".*' "$work/link-$t.log" | grep -o 'suite=[^ ]*' | head -1))"
done
rm -rf "$work"
echo "tls-openssl: all checks passed"
