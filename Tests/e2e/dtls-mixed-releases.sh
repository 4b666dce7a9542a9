#!/usr/bin/env bash
# A bookworm node (mbedTLS 2.28, libgpiod 1.6) and a trixie node (mbedTLS 3.6, libgpiod 2)
# in one mesh, end to end on loopback through real wisp processes:
#   client ==DTLS==> node A (x86_64) ==DTLS==> node B (aarch64 under qemu-user, exit) --> echo
# first with A on bookworm and B on trixie, with clients of both releases; the node link is
# rekeyed every MiB (resumption by ticket across the two versions) while messages cross it.
# Then an "upgrade": A and B restart on the other release (A trixie, B bookworm) with the
# same state directories. The dialling node's saved link session (links/FP.session,
# mbedTLS's own format, stamped with its version) was written by the other version: it is
# refused cleanly (logged), a full handshake follows, the file is rewritten by the new
# version, traffic flows; a further restart resumes with it.
# (B, the exit, runs under qemu as in dtls-relay.sh: with both nodes native the exit's sends
# to the echo service fail now and then, drops.send_failed, on either release. Clients send
# 2 Mbit/s: at 4, a qemu exit stalled by other load on this machine lost about 1 % of the
# messages now and then, on either release.)
source "$(dirname "$0")/lib.bash"
old=x86_64 new=x86_64-trixie          # A's builds, and the clients'
bold=aarch64 bnew=aarch64-trixie      # B's builds
base=$((21000 + RANDOM % 20000))
a=$base b=$((base + 1)) e=$((base + 2))
log=$(mktemp -d /tmp/wisp-mixed-e2e.XXXXXX)
trap 'cleanup; [ -n "${WISP_KEEP_LOGS:-}" ] && echo "logs kept in $log" || rm -rf "$log"' EXIT

# Each binary links its own release's libraries (a qemu or ld.so run could fall back to others).
needs() { readelf -d ".build-firmware/${1%-bookworm}/wisp" | sed -n 's/.*Shared library: \[\(.*\)\]/\1/p' | tr '\n' ' '; }
for t in $old $bold; do
  grep -q 'libmbedtls.so.14 ' <<<"$(needs $t) " && grep -q 'libgpiod.so.2 ' <<<"$(needs $t) " || fail "$t needs: $(needs $t)"
  v=$(Toolchain/run.sh $t --version | sed -n 's/^libraries: //p'); grep -qi 'mbed TLS 2\.28' <<<"$v" || fail "$t: $v"
done
for t in $new $bnew; do
  grep -q 'libmbedtls.so.21 ' <<<"$(needs $t) " && grep -q 'libgpiod.so.3 ' <<<"$(needs $t) " || fail "$t needs: $(needs $t)"
  v=$(Toolchain/run.sh $t --version | sed -n 's/^libraries: //p'); grep -qi 'mbed TLS 3\.6' <<<"$v" || fail "$t: $v"
done
check "$old, $bold: $(Toolchain/run.sh $old --version | sed -n 's/^libraries: //p'); $new, $bnew: $(Toolchain/run.sh $new --version | sed -n 's/^libraries: //p')"

# A state directory written by a bookworm build (fixture of state-compat.sh) read by the
# trixie build: the key parses under mbedTLS 3.6 to the same fingerprint, the certificate
# verifies and is kept byte for byte, the journal opens with its credit.
fx=Tests/e2e/fixtures/state-8f350f7/A
mkdir -p "$state/fx" && cp -r "$fx" "$state/fx/A" && chmod 700 "$state/fx/A" && chmod 600 "$state/fx/A/node.key" \
  "$state/fx/A/ticket.seed" "$state/fx/A/credits.journal" "$state"/fx/A/links/*.session
[ "$(Toolchain/run.sh $new id --state-dir "$state/fx/A" | sed -n 's/^fingerprint //p')" = 68cfaa449965d7478f9dff16f1f53db859791fcee48bb401802efe617306c37b ] ||
  fail "$new: the bookworm-era key has another fingerprint"
cmp -s "$fx/node.crt" "$state/fx/A/node.crt" || fail "$new rewrote the bookworm-era certificate"
Toolchain/run.sh $new journal check --state-dir "$state/fx/A" | grep -q ' 2048000 bytes$' || fail "$new: the bookworm-era journal lost its credit"
check "$new on a bookworm-era state directory: same fingerprint, certificate kept, journal ok (2048000 bytes)"

Toolchain/run.sh $old keygen --state-dir "$state/A" >/dev/null
Toolchain/run.sh $bnew keygen --state-dir "$state/B" >/dev/null
fa=$(Toolchain/run.sh $old id --state-dir "$state/A" | sed -n 's/^fingerprint //p')
fb=$(Toolchain/run.sh $bnew id --state-dir "$state/B" | sed -n 's/^fingerprint //p')
[ ${#fa} = 64 ] && [ ${#fb} = 64 ] || fail "no fingerprints ($fa / $fb)"

start() {  # start A-BUILD B-BUILD RUN [REKEY-MIB]: both nodes, A's and B's logs run-N
  local ba=$1 bb=$2 n=$3 mib=${4:-16384}
  Toolchain/run.sh $ba run --listen 127.0.0.1:$a --state-dir "$state/A" --name A --peer B=127.0.0.1:$b=$fb --lab-addresses yes \
    --links required --rekey-mib $mib --credit-window 0 --status-socket "$log/a.sock" --duration 60 2>"$log/a$n.log" & apid=$!; pids+=($apid)
  Toolchain/run.sh $bb run --listen 127.0.0.1:$b --state-dir "$state/B" --name B --exit 127.0.0.1:$e --lab-addresses yes \
    --peer A=127.0.0.1:$a=$fa --links required --rekey-mib $mib --credit-window 0 --duration 60 2>"$log/b$n.log" & bpid=$!; pids+=($bpid)
}
stop() { kill -TERM $apid $bpid; wait $apid || fail "A exited non-zero"; wait $bpid || fail "B exited non-zero"; }
wait_up() {  # wait_up RUN: the link seen up from A; prints A's "session up" line
  local n=$1
  for _ in $(seq 400); do
    grep -q 'msg="session up".*name=B' "$log/a$n.log" 2>/dev/null && { grep 'msg="session up".*name=B' "$log/a$n.log" | head -1; return 0; }
    sleep 0.1
  done
  cat "$log/a$n.log" "$log/b$n.log" >&2; fail "run $n: the A-B link did not come up"
}
run_client() {  # run_client BUILD SECONDS OUT: every message back exactly once
  timeout 40 Toolchain/run.sh $1 client --via 127.0.0.1:$a,127.0.0.1:$b --keys "$fa,$fb" --exit 127.0.0.1:$e \
    --dtls on --seconds "$2" --size 1000 --rate-kbit 2000 >"$3" 2>&1 || { cat "$3"; fail "client ($1) failed"; }
  local line sent back dups
  line=$(grep '^client: sent' "$3")
  read -r sent back dups < <(sed -n 's/^client: sent \([0-9]*\), echoed back \([0-9]*\), duplicates \([0-9]*\).*/\1 \2 \3/p' <<<"$line")
  [ -n "$sent" ] && [ "$sent" -gt 50 ] && [ "$sent" = "$back" ] && [ "$dups" = 0 ] || { cat "$3"; fail "client ($1): lost or duplicated: $line"; }
  echo "$back/$sent"
}
python3 Tests/e2e/wisppeer.py echo $e 120 >/dev/null & pids+=($!)
wait_udp $e

# 1. Mixed link: A bookworm, B trixie; rekeyed every MiB.
start $old $bnew 1 1
up=$(wait_up 1)
check "link A ($old) <-> B ($bnew, qemu) up: $(grep -o 'suite=[A-Z0-9-]*' <<<"$up")"
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
dialer_before=$([ $dialer = A ] && echo $old || echo $bnew)

# 2. "Upgrade": A and B restart on the other release (A trixie, B bookworm).
start $new $bold 2
up=$(wait_up 2)
grep -q 'resumed=0' <<<"$up" || fail "run 2: a session saved by $dialer_before was resumed by the other version: $up"
dl=$log/$(tr AB ab <<<$dialer)2.log
grep -q 'msg="saved link session refused, full handshake instead"' "$dl" || { cat "$dl"; fail "node $dialer did not say its saved session was refused"; }
! grep -q 'level=error' "$log/a2.log" "$log/b2.log" || { grep -h 'level=error' "$log/a2.log" "$log/b2.log"; fail "errors after the upgrade"; }
r3=$(run_client $old 2 "$log/c3.out")
check "after the upgrade (A $new, B $bold): $dialer's saved session from $dialer_before refused cleanly, full handshake, $r3 messages back"
stop
sum2=$(sha256sum <"$file")
[ "$sum1" != "$sum2" ] || fail "the saved session was not rewritten by the new version"

# 3. The same builds again: the rewritten file resumes.
start $new $bold 3
up=$(wait_up 3)
grep -q 'resumed=1' <<<"$up" || { cat "$log/a3.log" "$log/b3.log"; fail "run 3: the session saved after the upgrade did not resume: $up"; }
! grep -q 'saved link session refused' "$log/a3.log" "$log/b3.log" || fail "run 3: the new session file was refused"
r4=$(run_client $new 2 "$log/c4.out")
check "restart on the same releases: the session the new version saved resumed (resumed=1), $r4 messages back"
stop
# 4. A refused handshake across releases: the client does not pin the node's key and says so
# with an alert; the node names the alert (2.28 reads it from the record, 3.6 from the
# plaintext alert record it was handed: its received alert is private).
for pair in "$new $old" "$old $new"; do
  read -r srv cli <<<"$pair"
  p=$((base + 5)) wrong=$(printf 'ab%.0s' $(seq 32))
  rm -rf "$state/S"; Toolchain/run.sh $srv keygen --state-dir "$state/S" >/dev/null
  Toolchain/run.sh $srv run --listen 127.0.0.1:$p --state-dir "$state/S" --name S --lab-addresses yes --duration 20 2>"$log/s.log" & spid=$!; pids+=($spid)
  for _ in $(seq 50); do grep -q 'msg="listening"' "$log/s.log" && break; sleep 0.1; done
  set +e; timeout 15 Toolchain/run.sh $cli client --via 127.0.0.1:$p --keys $wrong --exit 127.0.0.1:$e --dtls on --seconds 1 >"$log/r.out" 2>&1; set -e
  grep -q 'peer key is not pinned' "$log/r.out" || { cat "$log/r.out"; fail "$cli client: no refusal of an unpinned key"; }
  for _ in $(seq 50); do grep -q 'msg="session failed".*alert' "$log/s.log" && break; sleep 0.1; done
  kill -TERM $spid; wait $spid || true
  why=$(grep -o 'msg="session failed".*' "$log/s.log" | head -1)
  grep -q 'alert unknown_ca' <<<"$why" || { cat "$log/s.log"; fail "$srv node did not name the $cli client's alert: $why"; }
  check "$cli client refuses an unpinned $srv node: the node logs $(grep -o 'error="[^"]*"' <<<"$why")"
done
echo "e2e dtls-mixed-releases: $old <-> $bnew, then $new <-> $bold; $rekeys rekeys, upgrade refused and redone the saved session of $dialer"
