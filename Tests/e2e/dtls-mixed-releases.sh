#!/usr/bin/env bash
# A bookworm node (mbedTLS 2.28, libgpiod 1.6) and a trixie node (mbedTLS 3.6, libgpiod 2)
# in one mesh, end to end on loopback through real wisp processes:
#   client ==DTLS==> node A (bookworm) ==DTLS==> node B (trixie, exit) --> echo
# with clients of both releases; the node link is rekeyed every MiB (resumption by ticket
# across the two versions) while messages cross it. Then an "upgrade": A and B restart with
# each other's release on the same state directories. The dialling node's saved link session
# (links/FP.session, mbedTLS's own format, stamped with its version) was written by the other
# version: it is refused cleanly (logged), a full handshake follows, the file is rewritten
# by the new version, traffic flows; a further restart resumes with it.
# Default builds are x86_64 (fast); WISP_MIXED_TRIXIE=aarch64-trixie runs B under qemu.
source "$(dirname "$0")/lib.bash"
old=${WISP_MIXED_BOOKWORM:-x86_64} new=${WISP_MIXED_TRIXIE:-x86_64-trixie}
base=$((21000 + RANDOM % 20000))
a=$base b=$((base + 1)) e=$((base + 2))
log=$(mktemp -d /tmp/wisp-mixed-e2e.XXXXXX)
trap 'cleanup; rm -rf "$log"' EXIT

# Each binary links its own release's libraries (a qemu or ld.so run could fall back to others).
needs() { readelf -d ".build-firmware/${1%-bookworm}/wisp" | sed -n 's/.*Shared library: \[\(.*\)\]/\1/p' | tr '\n' ' '; }
grep -q 'libmbedtls.so.14 ' <<<"$(needs $old) " && grep -q 'libgpiod.so.2 ' <<<"$(needs $old) " || fail "$old needs: $(needs $old)"
grep -q 'libmbedtls.so.21 ' <<<"$(needs $new) " && grep -q 'libgpiod.so.3 ' <<<"$(needs $new) " || fail "$new needs: $(needs $new)"
vo=$(Toolchain/run.sh $old --version | sed -n 's/^libraries: //p') vn=$(Toolchain/run.sh $new --version | sed -n 's/^libraries: //p')
grep -q 'Mbed TLS 2\.28' <<<"$vo" && grep -q 'Mbed TLS 3\.6' <<<"$vn" || fail "versions: $old: $vo; $new: $vn"
check "$old: $vo; $new: $vn"

Toolchain/run.sh $old keygen --state-dir "$state/A" >/dev/null
Toolchain/run.sh $new keygen --state-dir "$state/B" >/dev/null
fa=$(Toolchain/run.sh $old id --state-dir "$state/A" | sed -n 's/^fingerprint //p')
fb=$(Toolchain/run.sh $new id --state-dir "$state/B" | sed -n 's/^fingerprint //p')
[ ${#fa} = 64 ] && [ ${#fb} = 64 ] || fail "no fingerprints ($fa / $fb)"

start() {  # start A-BUILD B-BUILD RUN: both nodes, A's and B's logs run-N
  local ba=$1 bb=$2 n=$3
  Toolchain/run.sh $ba run --listen 127.0.0.1:$a --state-dir "$state/A" --name A --peer B=127.0.0.1:$b=$fb --lab-addresses yes \
    --links required --rekey-mib 1 --credit-window 0 --status-socket "$log/a.sock" --duration 60 2>"$log/a$n.log" & apid=$!; pids+=($apid)
  Toolchain/run.sh $bb run --listen 127.0.0.1:$b --state-dir "$state/B" --name B --exit 127.0.0.1:$e --lab-addresses yes \
    --peer A=127.0.0.1:$a=$fa --links required --rekey-mib 1 --credit-window 0 --duration 60 2>"$log/b$n.log" & bpid=$!; pids+=($bpid)
}
stop() { kill -TERM $apid $bpid; wait $apid || fail "A exited non-zero"; wait $bpid || fail "B exited non-zero"; }
wait_up() {  # wait_up RUN: the link seen up from A; prints A's "session up" line
  local n=$1
  for _ in $(seq 300); do
    grep -q 'msg="session up".*name=B' "$log/a$n.log" 2>/dev/null && { grep 'msg="session up".*name=B' "$log/a$n.log" | head -1; return 0; }
    sleep 0.1
  done
  cat "$log/a$n.log" "$log/b$n.log" >&2; fail "run $n: the A-B link did not come up"
}
run_client() {  # run_client BUILD SECONDS OUT: every message back exactly once
  timeout 40 Toolchain/run.sh $1 client --via 127.0.0.1:$a,127.0.0.1:$b --keys "$fa,$fb" --exit 127.0.0.1:$e \
    --dtls on --seconds "$2" --size 1000 --rate-kbit 4000 >"$3" 2>&1 || { cat "$3"; fail "client ($1) failed"; }
  local line sent back dups
  line=$(grep '^client: sent' "$3")
  read -r sent back dups < <(sed -n 's/^client: sent \([0-9]*\), echoed back \([0-9]*\), duplicates \([0-9]*\).*/\1 \2 \3/p' <<<"$line")
  [ -n "$sent" ] && [ "$sent" -gt 50 ] && [ "$sent" = "$back" ] && [ "$dups" = 0 ] || { cat "$3"; fail "client ($1): lost or duplicated: $line"; }
  echo "$back/$sent"
}
python3 Tests/e2e/wisppeer.py echo $e 120 >/dev/null & pids+=($!)

# 1. Mixed link: A bookworm, B trixie.
start $old $new 1
up=$(wait_up 1)
check "link A ($old) <-> B ($new) up: $(grep -o 'suite=[A-Z0-9-]*' <<<"$up")"
r1=$(run_client $old 3 "$log/c1.out")
r2=$(run_client $new 3 "$log/c2.out")
rekeys=$(cat "$log/a1.log" "$log/b1.log" | grep -c 'msg="session rekeyed"' || true)
resumed=$(cat "$log/a1.log" "$log/b1.log" | grep -c 'msg="session rekeyed".*resumed=1' || true)
[ "$rekeys" -ge 2 ] && [ "$resumed" -ge 1 ] || { grep -h session "$log/a1.log" "$log/b1.log"; fail "the mixed link was not rekeyed by resumption ($rekeys rekeys, $resumed resumed)"; }
check "encrypted relay through the mixed link: $old client $r1, $new client $r2 messages back exactly once; $rekeys rekey log lines ($resumed resumed by ticket across versions)"
stop
# The dialling node (the lower fingerprint) kept the link's session for its next start.
if [ -n "$(ls "$state/A/links/" 2>/dev/null)" ]; then dialer=A; else dialer=B; fi
file=$(ls "$state/$dialer/links/"*.session 2>/dev/null | head -1)
[ -n "$file" ] || fail "no saved link session in A or B"
sum1=$(sha256sum <"$file")
dialer_before=$([ $dialer = A ] && echo $old || echo $new)

# 2. "Upgrade": A and B restart with each other's release.
start $new $old 2
up=$(wait_up 2)
grep -q 'resumed=0' <<<"$up" || fail "run 2: a session saved by $dialer_before was resumed by the other version: $up"
dl=$log/$(tr AB ab <<<$dialer)2.log
grep -q 'msg="saved link session refused, full handshake instead"' "$dl" || { cat "$dl"; fail "node $dialer did not say its saved session was refused"; }
! grep -q 'level=error' "$log/a2.log" "$log/b2.log" || { grep -h 'level=error' "$log/a2.log" "$log/b2.log"; fail "errors after the upgrade"; }
r3=$(run_client $old 2 "$log/c3.out")
check "after the upgrade (A $new, B $old): $dialer's saved session from $dialer_before refused cleanly, full handshake, $r3 messages back"
stop
sum2=$(sha256sum <"$file")
[ "$sum1" != "$sum2" ] || fail "the saved session was not rewritten by the new version"

# 3. The same builds again: the rewritten file resumes.
start $new $old 3
up=$(wait_up 3)
grep -q 'resumed=1' <<<"$up" || { cat "$log/a3.log" "$log/b3.log"; fail "run 3: the session saved after the upgrade did not resume: $up"; }
! grep -q 'saved link session refused' "$log/a3.log" "$log/b3.log" || fail "run 3: the new session file was refused"
r4=$(run_client $new 2 "$log/c4.out")
check "restart on the same releases: the session the new version saved resumed (resumed=1), $r4 messages back"
stop
echo "e2e dtls-mixed-releases: $old <-> $new, $rekeys rekeys, upgrade refused and redone the saved session of $dialer"
