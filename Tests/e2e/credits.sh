#!/usr/bin/env bash
# Credit journal end to end: fill a journal with ECDSA-signed receipts, export a
# claim, verify it, reject tampered copies; then kill -9 a process that appends and
# commits in a loop at 50+ random moments and check that the journal stays healthy
# and credit never drops below the last commit the process reported.
# The filling is `credits selftest-fill`, a developer tool of the host build
# (Toolchain/host-build.sh); checking, export and verification use the firmware.
source "$(dirname "$0")/lib.bash"
wisp=${WISP_BIN:-.build-firmware/x86_64/wisp}
[ -x "$wisp" ] || wisp=.build/debug/wisp
[ -x "$wisp" ] || fail "no wisp binary (build first)"
fill=$(Toolchain/host-build.sh) || fail "no host build for 'credits selftest-fill'"
dir=$(mktemp -d /tmp/wisp-credits.XXXXXX)
trap 'cleanup; rm -rf "$dir"' EXIT

# 1. Signed receipts, claim export and verification.
"$fill" credits selftest-fill --state-dir "$dir/s" --receipts 24 --clients 4 >/dev/null
"$wisp" journal check --state-dir "$dir/s" | grep -q '^status      ok$' || fail "journal check after fill"
"$wisp" credits export --state-dir "$dir/s" --out "$dir/claim.txt" >/dev/null
"$wisp" credits verify "$dir/claim.txt" >/dev/null || fail "fresh claim does not verify"
check "claim with $(grep -c '^receipt ' "$dir/claim.txt") receipts verifies"

# 2. Tampered copies fail with exit 1.
expect_invalid() {  # FILE WHAT
  set +e; out=$("$wisp" credits verify "$1" 2>&1); rc=$?; set -e
  [ $rc -eq 1 ] || fail "$2: verify exited $rc ($out)"
  check "$2 rejected: ${out#invalid: }"
}
cp "$dir/claim.txt" "$dir/flip.txt"
size=$(stat -c %s "$dir/flip.txt")
for off in 40 $((size / 2)) $((size - 20)); do
  cp "$dir/claim.txt" "$dir/flip.txt"
  b=$(dd if="$dir/flip.txt" bs=1 skip=$off count=1 2>/dev/null | od -An -tu1 | tr -d ' ')
  printf "$(printf '\\%03o' $((b ^ 1)))" | dd of="$dir/flip.txt" bs=1 seek=$off conv=notrunc 2>/dev/null
  expect_invalid "$dir/flip.txt" "byte flip at $off"
done
# Claim v2: receipt PAYER-KEY BINDING BYTES EPOCH SIG (CLAIM-FORMAT.md), the amount is field 4.
awk '/^receipt / && !done { $4 = $4 + 1000; done = 1 } { print }' "$dir/claim.txt" > "$dir/raised.txt"
expect_invalid "$dir/raised.txt" "raised amount"
total=$(sed -n 's/^total //p' "$dir/claim.txt")
awk -v t=$((total + 1000)) '/^receipt / && !done { $4 = $4 + 1000; done = 1 } /^total / { $2 = t } { print }' \
  "$dir/claim.txt" > "$dir/raised2.txt"
expect_invalid "$dir/raised2.txt" "raised amount with total fixed"

# 3. kill -9 during append+commit loops.
state=$dir/k
"$fill" credits selftest-fill --state-dir "$state" --receipts 1 >/dev/null
last=0
kills=0
deadline=$((SECONDS + 40))
while [ $kills -lt 55 ] && [ $SECONDS -lt $deadline ]; do
  "$fill" credits selftest-fill --state-dir "$state" --loop --clients 2 >"$dir/loop.out" 2>"$dir/loop.err" &
  pid=$!
  pids=("$pid")
  sleep "0.0$((RANDOM % 9 + 1))$((RANDOM % 10))"
  kill -9 "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  kills=$((kills + 1))
  reported=$(sed -n 's/^committed \([0-9]*\)$/\1/p' "$dir/loop.out" | tail -1)
  [ -n "$reported" ] && [ "$reported" -gt "$last" ] && last=$reported
  "$wisp" journal check --state-dir "$state" >"$dir/check.out" || { cat "$dir/check.out"; fail "journal check after kill $kills"; }
  now=$("$wisp" credits --state-dir "$state" | sed -n 's/^receipted   \([0-9]*\) bytes.*/\1/p')
  [ "$now" -ge "$last" ] || fail "kill $kills: credit $now below last commit $last"
  last=$now
done
[ $kills -ge 50 ] || fail "only $kills kills in the time limit"
"$wisp" credits export --state-dir "$state" --out "$dir/after.txt" >/dev/null
"$wisp" credits verify "$dir/after.txt" >/dev/null || fail "claim after kills does not verify"
check "kill -9 x$kills during commits: journal check ok each time, credit never below last commit (final $last bytes), claim verifies"
