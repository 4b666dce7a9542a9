#!/usr/bin/env bash
# Payer lists, claims and settlement end to end, with real keys (`wisp keygen`) and the
# host build's settlement tools: a settlement key signs a payer list; claims are built with
# `credits make-claims` (exactly what `credits export` writes, the receipts signed by the
# payer keys given); then
#   1. a minted claim (receipts signed by a key the node made itself) is rejected by
#      `credits verify --payers` with the reason `unlisted_payer`, and its node flagged by settle;
#   2. a claim exported twice, and a later cumulative export, are counted once;
#   3. a payer whose receipts across three nodes exceed its budget is flagged;
#   4. lists signed by other keys, or below the threshold, are refused; bad files are named.
# (The live two-node case, claims exported by running nodes, is the lead's e2e.)
source "$(dirname "$0")/lib.bash"
w=$(Toolchain/host-build.sh) || fail "no host build for the settlement tools"
dir=$(mktemp -d /tmp/wisp-settle.XXXXXX)
trap 'cleanup; [ -n "${KEEP:-}" ] || rm -rf "$dir"' EXIT
cd "$dir"
for k in settle settle2 stranger payer small minted nodeA nodeB nodeC; do
  "$w" keygen --state-dir "$k" >/dev/null || fail "keygen $k"
done
fpr() { "$w" id --state-dir "$1" | sed -n 's/^fingerprint //p'; }
S=$(fpr settle) S2=$(fpr settle2) X=$(fpr stranger)
now=$(date +%s) day=86400
cat >input <<EOF
# payer FINGERPRINT VALID-FROM VALID-UNTIL BUDGET PERIOD
payer $(fpr payer) $((now - day)) $((now + day)) 100000000 $day
payer $(fpr small) $((now - day)) $((now + day)) 1000 $day
EOF
"$w" payers sign --key settle/node.key --key settle2/node.key --version 7 --out list input >/dev/null || fail "payers sign"
"$w" payers check --settlement-keys "$S" list | grep -q '^valid payer list version 7, .* 2 payers' || fail "payers check"
"$w" payers check --settlement-keys "$S,$S2" --threshold 2 list >/dev/null || fail "2 of 2 settlement keys"
check "payer list version 7 signed by 2 settlement keys, 2 payers"

# 4a. Wrong pins and thresholds are refused, with the reason.
set +e
out=$("$w" payers check --settlement-keys "$X" list 2>&1); rc=$?
set -e
[ $rc = 1 ] && grep -q 'signed validly by 0 pinned settlement keys, 1 needed' <<<"$out" || fail "stranger's pin accepted ($rc: $out)"
"$w" payers sign --key settle/node.key --version 8 --out list1 input >/dev/null
set +e; out=$("$w" payers check --settlement-keys "$S,$S2" --threshold 2 list1 2>&1); rc=$?; set -e
[ $rc = 1 ] && grep -q '1 pinned settlement key, 2 needed' <<<"$out" || fail "1-of-2 list passed a threshold of 2 ($rc: $out)"
sed 's/ 1000 86400$/ 1000000 86400/' list >list.raised
set +e; out=$("$w" payers check --settlement-keys "$S" list.raised 2>&1); rc=$?; set -e
[ $rc = 1 ] || fail "a raised budget still verifies ($out)"
check "list refused: unpinned signer, 1 of 2 signatures under threshold 2, raised budget (${out#wisp: })"

mk() {  # OUT NODE PAYER-KEY... -- extra options
  local out=$1 node=$2; shift 2
  local keys=()
  while [ $# -gt 0 ] && [ "$1" != -- ]; do keys+=(--payer-key "$1/node.key"); shift; done
  [ $# -gt 0 ] && shift
  "$w" credits make-claims --node-key "$node/node.key" "${keys[@]}" --payers list --epoch "$now" "$@" --out "$out" ||
    fail "make-claims $out"
}
pins=(--payers list --settlement-keys "$S")

# 1. Minted: node A signs receipts with its own fresh key.
mk minted.claim nodeA minted -- --receipts 3 --bytes 1000000000000
"$w" credits verify minted.claim >/dev/null || fail "the minted claim is not even well formed"
set +e; out=$("$w" credits verify "${pins[@]}" minted.claim); rc=$?; set -e
[ $rc = 3 ] || fail "minted claim: verify --payers exited $rc, not 3 ($out)"
[ "$(grep -c ": unlisted_payer (payer $(fpr minted), 1000000000000 bytes" <<<"$out")" = 3 ] || fail "minted claim: no unlisted_payer per receipt ($out)"
grep -q '0 accepted (0 bytes), 3 rejected' <<<"$out" || fail "minted claim: something accepted ($out)"
check "minted claim rejected by verify --payers: $(grep -m1 '^rejected' <<<"$out")"

# 2. Exported twice: A's claim for the listed payer, the same file again, then a later
#    export of the same bindings (same seed) at a higher cumulative amount.
mk a1.claim nodeA payer -- --receipts 4 --bytes 5000 --seed 11
cp a1.claim a1-again.claim
mk a2.claim nodeA payer -- --receipts 4 --bytes 8000 --seed 11
"$w" credits verify "${pins[@]}" a1.claim >/dev/null || fail "A's claim does not verify under the list"
# 3. Overspend: the small payer (budget 1000 per day) spends 400 at each of A, B and C.
mk sa.claim nodeA small -- --receipts 1 --bytes 400 --seed 21
mk sb.claim nodeB small -- --receipts 1 --bytes 400 --seed 22
mk sc.claim nodeC small -- --receipts 1 --bytes 400 --seed 23
printf 'wisp-claim-v2\nnode-key 04\n' >bad.claim
set +e
"$w" credits settle "${pins[@]}" --json a1.claim a1-again.claim a2.claim sa.claim sb.claim sc.claim minted.claim bad.claim missing.claim >settle.json 2>settle.err
rc=$?
"$w" credits settle "${pins[@]}" --csv a1.claim a1-again.claim a2.claim sa.claim sb.claim sc.claim minted.claim >settle.csv 2>/dev/null
"$w" credits settle "${pins[@]}" a1.claim a1-again.claim a2.claim >settle.txt 2>/dev/null
rc_clean=$?
set -e
[ $rc = 3 ] || fail "settle with flags exited $rc, not 3 ($(cat settle.err))"
[ $rc_clean = 0 ] || fail "settle without anything to flag exited $rc_clean"
python3 - "$(fpr payer)" "$(fpr small)" "$(fpr minted)" "$(fpr nodeA)" "$(fpr nodeB)" "$(fpr nodeC)" <<'PY' || fail "settlement report"
import json, sys
payer, small, minted, A, B, C = sys.argv[1:]
r = json.load(open('settle.json'))
p = {x['payer']: x for x in r['payers']}
n = {x['node']: x for x in r['nodes']}
assert r['claims'] == 9, r['claims']
assert p[payer]['bytes'] == 4 * 8000 and p[payer]['receipts'] == 4, p[payer]   # once each, highest amount
assert not p[payer]['flagged']
assert p[small]['bytes'] == 1200 and p[small]['nodes'] == 3 and p[small]['flagged'], p[small]
assert p[small]['over_budget'][0]['bytes'] == 1200
assert minted not in p
assert n[A]['rejected']['unlisted_payer'] == 3 and n[A]['flagged'] and n[A]['bytes'] == 32400, n[A]
assert not n[B]['flagged'] and n[B]['bytes'] == 400 and not n[C]['flagged']
files = sorted(x['file'] for x in r['problems'])
assert files == ['bad.claim', 'missing.claim'], r['problems']
assert any('No such file' in x['error'] for x in r['problems']), r['problems']
pn = {(x['payer'], x['node']): x['bytes'] for x in r['payer_nodes']}
assert pn[(payer, A)] == 32000 and pn[(small, B)] == 400
print(f"check settle: payer {payer[:12]}… paid {p[payer]['bytes']} bytes once (claim given twice + cumulative re-export);"
      f" small payer {p[small]['bytes']} > budget 1000 across 3 nodes flagged; node A flagged for 3 unlisted_payer")
PY
grep -q "^payer,$(fpr small),,1200,3,,1,over_budget@" settle.csv || fail "CSV: small payer not flagged ($(grep small settle.csv))"
grep -q 'OVER BUDGET' settle.txt && fail "table flags a payer without overspend"
grep -q "^  $(fpr payer) .* 32000 " settle.txt || fail "table: payer total ($(cat settle.txt))"
check "settle: table, JSON and CSV agree; exit 3 when flagged, 0 when clean"

# 4b. Settling against a list the pins do not vouch for stops before reading any claim.
set +e; out=$("$w" credits settle --payers list --settlement-keys "$X" a1.claim 2>&1); rc=$?; set -e
[ $rc = 1 ] && grep -q 'refused' <<<"$out" || fail "settle with an unvouched list: exit $rc ($out)"
check "settle refuses a payer list its pins do not vouch for: ${out#wisp: }"
