#!/usr/bin/env bash
# A state directory written by the commit issue 13 started from (Tests/e2e/fixtures/
# state-8f350f7: keys, certificates, ticket seeds, credit journals, a saved link session)
# starts unchanged with today's build: the same fingerprints, the journals open with their
# 2,048,000 receipted bytes, the node link A-B comes up (resumed with the saved session
# while its ticket is fresh, else refused cleanly and a full handshake follows), and the
# key files are left byte for byte as they were.
source "$(dirname "$0")/lib.bash"
fx=Tests/e2e/fixtures/state-8f350f7
wisp=.build-firmware/x86_64/wisp
cp -r "$fx/A" "$fx/B" "$state/"
# git keeps no file modes: a real state directory has its secrets owner-only.
chmod 700 "$state/A" "$state/B" "$state/A/links"
chmod 600 "$state"/A/node.key "$state"/B/node.key "$state"/A/ticket.seed "$state"/B/ticket.seed \
  "$state"/A/credits.journal "$state"/B/credits.journal "$state"/A/links/*.session
fa=68cfaa449965d7478f9dff16f1f53db859791fcee48bb401802efe617306c37b
fb=ce04774bc68f957a76eed8ce5bacfa3a18df3bd9e13dd329b757b14dc422070e
before=$(cd "$state" && sha256sum A/node.key A/node.crt B/node.key B/node.crt A/ticket.seed B/ticket.seed)
[ "$("$wisp" id --state-dir "$state/A" | sed -n 's/^fingerprint //p')" = "$fa" ] || fail "node A's fingerprint changed"
[ "$("$wisp" id --state-dir "$state/B" | sed -n 's/^fingerprint //p')" = "$fb" ] || fail "node B's fingerprint changed"
for n in A B; do
  "$wisp" journal check --state-dir "$state/$n" >"$state/check.$n" 2>&1 || { cat "$state/check.$n"; fail "journal check $n"; }
  grep -q '^status      ok$' "$state/check.$n" || { cat "$state/check.$n"; fail "journal $n not ok"; }
  grep -q ' 2048000 bytes$' "$state/check.$n" || { cat "$state/check.$n"; fail "journal $n lost its credit"; }
done
check "state of 8f350f7: fingerprints unchanged, both journals ok with 2048000 receipted bytes"

port=$((24000 + RANDOM % 20000))
"$wisp" run --listen 127.0.0.1:$port --state-dir "$state/A" --name A --peer B=127.0.0.1:$((port + 1))=$fb \
  --links required --lab-addresses yes --status-socket "$state/a.sock" --duration 20 2>"$state/a.log" & apid=$!; pids+=($apid)
"$wisp" run --listen 127.0.0.1:$((port + 1)) --state-dir "$state/B" --name B --peer A=127.0.0.1:$port=$fa \
  --links required --lab-addresses yes --duration 20 2>"$state/b.log" & bpid=$!; pids+=($bpid)
up=0
for _ in $(seq 100); do grep -q 'msg="session up".*name=B' "$state/a.log" 2>/dev/null && { up=1; break; }; sleep 0.1; done
[ $up = 1 ] || { cat "$state/a.log" "$state/b.log"; fail "the A-B link did not come up on the old state"; }
resumed=$(grep -o 'msg="session up".*name=B.*resumed=[01]' "$state/a.log" | head -1 | grep -o 'resumed=[01]')
st=$("$wisp" status --socket "$state/a.sock" --json)
receipted=$(sed -n 's/.*"receipted_bytes":\([0-9]*\).*/\1/p' <<<"$st")
[ "$receipted" = 2048000 ] || { echo "$st"; fail "node A shows $receipted receipted bytes, not 2048000"; }
kill -TERM $apid $bpid; wait $apid || fail "A exited non-zero"; wait $bpid || fail "B exited non-zero"
after=$(cd "$state" && sha256sum A/node.key A/node.crt B/node.key B/node.crt A/ticket.seed B/ticket.seed)
[ "$before" = "$after" ] || fail "a key, certificate or ticket seed was rewritten"
check "today's build on the old state: link A-B up ($resumed with the saved session), status shows the 2048000 receipted bytes, keys and seeds unchanged"

# The state of df78dbf (the start of issue 15: journal format 1 with v1 receipts, 3,072,000
# bytes each): `journal check` reads it as it is; a node started on it keeps the credit
# (status, v1 figures), rewrites the journal as format 2 and `journal check` still says
# 3,072,000; the v1 receipts are exported marked v1.
fx=Tests/e2e/fixtures/state-df78dbf
mkdir -p "$state/v15"
cp -r "$fx/A" "$fx/B" "$state/v15/"
chmod 700 "$state/v15/A" "$state/v15/B" "$state/v15/B/links"
chmod 600 "$state"/v15/A/node.key "$state"/v15/B/node.key "$state"/v15/A/ticket.seed "$state"/v15/B/ticket.seed \
  "$state"/v15/A/credits.journal "$state"/v15/B/credits.journal
for n in A B; do
  "$wisp" journal check --state-dir "$state/v15/$n" >"$state/check15.$n" 2>&1 || { cat "$state/check15.$n"; fail "journal check $n (df78dbf)"; }
  grep -q '^status      ok$' "$state/check15.$n" || { cat "$state/check15.$n"; fail "journal $n (df78dbf) not ok"; }
  grep -q ' 3072000 bytes$' "$state/check15.$n" || { cat "$state/check15.$n"; fail "journal $n (df78dbf) lost its credit"; }
done
"$wisp" run --listen 127.0.0.1:$((port + 2)) --state-dir "$state/v15/A" --name A15 --links optional --lab-addresses yes \
  --status-socket "$state/a15.sock" --duration 20 2>"$state/a15.log" & apid=$!; pids+=($apid)
for _ in $(seq 100); do [ -S "$state/a15.sock" ] && break; sleep 0.1; done
st=$("$wisp" status --socket "$state/a15.sock" --json)
receipted=$(sed -n 's/.*"receipted_bytes":\([0-9]*\).*/\1/p' <<<"$st")
v1=$(sed -n 's/.*"v1_bytes":\([0-9]*\).*/\1/p' <<<"$st")
[ "$receipted" = 3072000 ] && [ "$v1" = 3072000 ] || { echo "$st"; fail "node A (df78dbf) shows $receipted receipted bytes ($v1 v1), not 3072000"; }
"$wisp" status --socket "$state/a15.sock" | grep -q 'payers unverified' || fail "status does not say payers unverified"
kill -TERM $apid; wait $apid || fail "A (df78dbf) exited non-zero"
"$wisp" journal check --state-dir "$state/v15/A" >"$state/check15.A2" 2>&1 || { cat "$state/check15.A2"; fail "journal check after the node"; }
grep -q ' 3072000 bytes$' "$state/check15.A2" || { cat "$state/check15.A2"; fail "journal A (df78dbf) lost its credit after the node rewrote it"; }
"$wisp" credits export --state-dir "$state/v15/A" --out "$state/claim15.txt" >/dev/null 2>&1 || fail "credits export (df78dbf)"
[ "$(grep -c '^receipt-v1 ' "$state/claim15.txt")" -ge 1 ] || { cat "$state/claim15.txt"; fail "the v1 receipts are not exported marked v1"; }
check "state of df78dbf: journals (format 1, v1 receipts) ok with 3072000 bytes; a node keeps them (status, v1_bytes, payers unverified), rewrites the journal as format 2 with the same credit; claim marks them receipt-v1"
