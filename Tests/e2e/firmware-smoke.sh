#!/usr/bin/env bash
# Smoke test of every firmware binary: format, ABI, dependencies, and that the
# binary runs (natively or under qemu-user) and passes its built-in self-test.
source "$(dirname "$0")/lib.bash"
declare -A triple=([x86_64]=x86_64-linux-gnu [aarch64]=aarch64-linux-gnu [armv7]=arm-linux-gnueabihf)
declare -A filearch=([x86_64]="x86-64" [aarch64]="ARM aarch64" [armv7]="ARM, EABI5")
for t in x86_64 aarch64 armv7; do
  bin=.build-firmware/$t/wisp
  file -b "$bin" | grep -q "${filearch[$t]}" || fail "$t: file says $(file -b "$bin")"
  ! readelf -d "$bin" | grep -q libswift || fail "$t links a Swift runtime library"
  out=$(Toolchain/run.sh $t --version)
  echo "$out" | head -1 | grep -qx "wisp [0-9.]* ${triple[$t]} embedded" || fail "$t --version printed: $out"
  Toolchain/run.sh $t selftest | tail -1 | grep -qx '[0-9]* passed, 0 failed' || fail "$t selftest"
  set +e; Toolchain/run.sh $t frobnicate 2>/dev/null; rc=$?; set -e
  [ $rc -eq 2 ] || fail "$t: unknown command exited $rc, not 2"
  check "$t: $(file -b "$bin" | cut -d, -f1-2), $(stat -c %s "$bin") bytes, --version ok, selftest ok, bad usage exit 2"
done
readelf -A .build-firmware/armv7/wisp | grep -q 'Tag_ABI_VFP_args: VFP registers' || fail "armv7 is not hard-float"
check "armv7: Tag_ABI_VFP_args: VFP registers"
