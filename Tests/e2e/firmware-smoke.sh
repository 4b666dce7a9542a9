#!/usr/bin/env bash
# Smoke test of every firmware binary, for both Debian releases: format, ABI, dependencies
# (each release's mbedTLS and libgpiod sonames, read with readelf: qemu-user falls back to the
# host's libraries when one is missing under -L, so a run alone proves nothing), and that the
# binary runs (natively, under qemu-user, or for trixie against the trixie sysroot: qemu -L,
# or trixie's own ld.so for x86_64) and passes its built-in self-test.
source "$(dirname "$0")/lib.bash"
declare -A triple=([x86_64]=x86_64-linux-gnu [aarch64]=aarch64-linux-gnu [armv7]=arm-linux-gnueabihf)
declare -A filearch=([x86_64]="x86-64" [aarch64]="ARM aarch64" [armv7]="ARM, EABI5")
declare -A sonames=([bookworm]="libmbedtls.so.14 libmbedx509.so.1 libmbedcrypto.so.7 libgpiod.so.2"
                    [trixie]="libmbedtls.so.21 libmbedx509.so.7 libmbedcrypto.so.16 libgpiod.so.3")
declare -A mbedtls=([bookworm]="Mbed TLS 2.28" [trixie]="Mbed TLS 3.6")
declare -A gpiod=([bookworm]="libgpiod 1.6" [trixie]="libgpiod 2.")
for tr in x86_64 aarch64 armv7 x86_64-trixie aarch64-trixie armv7-trixie; do
  t=${tr%-trixie}
  rel=bookworm; [ "$t" = "$tr" ] || rel=trixie
  bin=.build-firmware/$tr/wisp
  [ -x "$bin" ] || fail "$bin missing: Toolchain/build.sh $tr"
  file -b "$bin" | grep -q "${filearch[$t]}" || fail "$tr: file says $(file -b "$bin")"
  ! readelf -d "$bin" | grep -q libswift || fail "$tr links a Swift runtime library"
  needs=" $(readelf -d "$bin" | sed -n 's/.*Shared library: \[\(.*\)\]/\1/p' | tr '\n' ' ')"
  for so in ${sonames[$rel]}; do
    case $needs in *" $so "*) ;; *) fail "$tr ($rel) does not need $so; needs:$needs" ;; esac
  done
  out=$(Toolchain/run.sh $tr --version)
  echo "$out" | head -1 | grep -qx "wisp [0-9.]* ${triple[$t]} embedded" || fail "$tr --version printed: $out"
  echo "$out" | grep -qi "${mbedtls[$rel]}.*${gpiod[$rel]}" || fail "$tr --version names other libraries: $out"
  Toolchain/run.sh $tr selftest | tail -1 | grep -qx '[0-9]* passed, 0 failed' || fail "$tr selftest"
  set +e; Toolchain/run.sh $tr frobnicate 2>/dev/null; rc=$?; set -e
  [ $rc -eq 2 ] || fail "$tr: unknown command exited $rc, not 2"
  check "$tr: $(file -b "$bin" | cut -d, -f1-2), $(stat -c %s "$bin") bytes, needs${needs% }, $(echo "$out" | sed -n 's/^libraries: //p'), selftest ok, bad usage exit 2"
done
for tr in armv7 armv7-trixie; do
  readelf -A .build-firmware/$tr/wisp | grep -q 'Tag_ABI_VFP_args: VFP registers' || fail "$tr is not hard-float"
  check "$tr: Tag_ABI_VFP_args: VFP registers"
done
