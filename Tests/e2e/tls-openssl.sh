#!/usr/bin/env bash
# DTLS 1.2 interop of the firmware `wisp tls-probe` with an independent implementation
# (OpenSSL), on 127.0.0.1 only, every wait bounded by `timeout`:
#   - wisp as server  <- openssl s_client (client certificate, ChaCha20 and AES-GCM)
#   - wisp as client  -> openssl s_server -Verify 1
#   - wisp <-> wisp across builds (aarch64 and armv7 under qemu against x86_64)
#   - refusals, each with a clear log line: wrong pinned fingerprint (both roles), a damaged
#     certificate whose key is pinned, a CBC suite (both roles), DTLS 1.0 (both roles).
# WISP_TLS_TARGETS (default "x86_64 aarch64 armv7") names the builds to try; x86_64 runs all cases.
source "$(dirname "$0")/lib.bash"
command -v openssl >/dev/null || fail "openssl is not installed"
targets=(${WISP_TLS_TARGETS:-x86_64 aarch64 armv7})
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
# wisp_server TARGET PORT OUT PIN... : starts `tls-probe --role server` in the background.
wisp_server() {
  local t=$1 p=$2 out=$3; shift 3
  local pins=(); for f in "$@"; do pins+=(--pin "$f"); done
  timeout 40 Toolchain/run.sh "$t" tls-probe --role server --listen 127.0.0.1:$p --state-dir "$work/wisp" \
    "${pins[@]}" --timeout 30 >"$out.out" 2>"$out.err" &
  server_pid=$!; pids+=($server_pid)
  for _ in $(seq 100); do grep -q listening "$out.err" 2>/dev/null && return; sleep 0.05; done
  fail "wisp server ($t) did not start: $(cat "$out.err")"
}
# s_client PORT OPENSSL-ARGS... : one line to the server, bounded.
s_client() {
  local p=$1; shift
  (echo "hello from openssl"; sleep 2) | timeout 10 openssl s_client -connect 127.0.0.1:$p \
    -cert "$work/ossl.crt" -key "$work/ossl.key" -quiet "$@" 2>&1 || true
}
wait_server() { local rc=0; wait "$server_pid" || rc=$?; echo $rc; }

# --- wisp server <- openssl s_client ------------------------------------------------------
t=x86_64
for suite in ECDHE-ECDSA-CHACHA20-POLY1305 ECDHE-ECDSA-AES128-GCM-SHA256; do
  next_port; wisp_server $t $p "$work/srv-$suite" "$fp_ossl"
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
wisp_client() {  # TARGET PORT OUT PIN-ARGS...
  local t=$1 p=$2 out=$3; shift 3
  local rc=0
  timeout 30 Toolchain/run.sh "$t" tls-probe --role client --connect 127.0.0.1:$p --state-dir "$work/wisp-client" \
    "$@" --timeout 20 >"$out.out" 2>"$out.err" || rc=$?
  echo $rc
}
next_port; s_server_bg $p "$work/ss" -dtls1_2
rc=$(wisp_client $t $p "$work/cli" --pin "$fp_ossl")
[ "$rc" = 0 ] || fail "wisp client exited $rc: $(cat "$work/cli.err")"
grep -q '^reply hello from openssl-server$' "$work/cli.out" || fail "wisp client got no reply: $(cat "$work/cli.out")"
sleep 0.3; grep -q 'hello from wisp' "$work/ss.out" || fail "openssl s_server did not receive the line"
check "$t wisp client -> openssl s_server -Verify 1: $(grep -o 'suite=[^ ]*' "$work/cli.err"), line both ways"

next_port; s_server_bg $p "$work/ss-learn" -dtls1_2
rc=$(wisp_client $t $p "$work/cli-learn" --learn)
[ "$rc" = 0 ] && grep -q "^learned $fp_ossl$" "$work/cli-learn.out" || fail "learn mode: rc $rc $(cat "$work/cli-learn.out")"
check "$t wisp client --learn recorded openssl's fingerprint"

# --- refusals -----------------------------------------------------------------------------
refused_server() {  # NAME EXPECTED-LOG OPENSSL-ARGS...  (wisp server pins $pin_for_refusal)
  local name=$1 expect=$2; shift 2
  next_port; wisp_server $t $p "$work/r-$name" "$pin_for_refusal"
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
  local rc; rc=$(wisp_client $t $p "$work/rc-$name" "$@")
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

# --- across builds: ARM builds under qemu -------------------------------------------------
Toolchain/run.sh x86_64 keygen --state-dir "$work/wisp-client" >/dev/null 2>&1 || true
fp_client=$(Toolchain/run.sh x86_64 id --state-dir "$work/wisp-client" | sed -n 's/^fingerprint //p')
for t in "${targets[@]}"; do
  [ "$t" = x86_64 ] && continue
  # ARM server <- openssl, and ARM client -> x86_64 wisp server.
  next_port; wisp_server $t $p "$work/arm-$t" "$fp_ossl"
  reply=$(s_client $p -dtls1_2 -cipher ECDHE-ECDSA-CHACHA20-POLY1305)
  rc=$(wait_server)
  [ "$rc" = 0 ] && echo "$reply" | grep -q '^hello from openssl$' || fail "$t server: rc $rc $(cat "$work/arm-$t.err")"
  check "$t (qemu) wisp server <- openssl s_client: $(grep -o 'suite=[^ ]*' "$work/arm-$t.err"), echo ok"
  next_port; wisp_server x86_64 $p "$work/x-$t" "$fp_client"
  rc=$(wisp_client $t $p "$work/armcli-$t" --pin "$fp_wisp" --suite aes)
  [ "$rc" = 0 ] && grep -q '^reply hello from wisp$' "$work/armcli-$t.out" || fail "$t client: rc $rc $(cat "$work/armcli-$t.err")"
  wait_server >/dev/null
  check "$t (qemu) wisp client -> x86_64 wisp server: $(grep -o 'suite=[^ ]*' "$work/armcli-$t.err"), echo ok"
done
rm -rf "$work"
echo "tls-openssl: all checks passed"
