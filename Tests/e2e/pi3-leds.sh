#!/usr/bin/env bash
# Emulated Raspberry Pi 3 with real GPIO: the aarch64 firmware drives the status
# LEDs through libgpiod on the kernel's pinctrl-bcm2835 driver (QEMU raspi3b) — both
# builds in one run: the trixie build (libgpiod 2.2, libgpiod.so.3; mbedTLS 3.6) and the
# bookworm build (libgpiod 1.6, libgpiod.so.2; mbedTLS 2.28), on a trixie guest.
#
#   1. host tools: qemu-system-aarch64 and cpio (apt-get, retried);
#   2. guest parts, downloaded once into .build-pi3/debs-trixie and .build-pi3/debs: from
#      Debian trixie (private apt state, Toolchain/image/debian.bash): kernel 6.12 Image +
#      bcm2837-rpi-3-b.dtb + bcm2835_wdt.ko, busybox-static, libc6 2.41, libgpiod3,
#      libmbedtls21/x509-7/crypto16; from bookworm (the host's apt): libgpiod2 and gpiod 1.6
#      (its gpioinfo prints what the checks read), libmbedtls14/x509-1/crypto7;
#   3. an initramfs: busybox as /init's shell, both wisp builds, their libraries, Board/rpi3b;
#   4. boot; in the guest, for each build and for ready, relaying, storage-error and
#      clock-unsynced, run
#      `wisp leds show STATE --board /board/rpi3b` and sample /sys/kernel/debug/gpio
#      while it runs, then check the lines are released; power off through the watchdog;
#   5. check the samples on the host, per build.
# Takes about 30 s with the cache.
source "$(dirname "$0")/lib.bash"
cache=.build-pi3
mkdir -p "$cache/debs"
work=$(mktemp -d "$PWD/$cache/run.XXXXXX")
trap 'cleanup; rm -rf "$work"' EXIT

# 1. Host tools.
need_tools qemu-system-aarch64:qemu-system-arm cpio:cpio

# 2. Guest packages.
fetch() {  # fetch PACKAGE...: bookworm arm64 packages (host apt) into the cache unless present
  local missing=()
  for p in "$@"; do ls "$cache/debs/${p%%:*}_"*.deb >/dev/null 2>&1 || missing+=("$p:arm64"); done
  [ ${#missing[@]} -eq 0 ] && return 0
  for try in 1 2 3; do
    (cd "$cache/debs" && apt-get download -o Acquire::Retries=3 "${missing[@]}" >/dev/null 2>&1) && return 0
    apt-get update -o Acquire::Retries=3 >/dev/null 2>&1 || true
    sleep $((try * 5))
  done
  fail "cannot download ${missing[*]}"
}
fetch libgpiod2 gpiod libmbedtls14 libmbedx509-1 libmbedcrypto7
trixie_pkgs="busybox-static libc6 libgpiod3 libmbedtls21 libmbedx509-7 libmbedcrypto16"
( source Toolchain/image/debian.bash
  debian_apt trixie "$PWD/$cache/apt-trixie"
  debian_fetch "$cache/debs-trixie" $trixie_pkgs KERNEL ) || fail "cannot download trixie packages"
kernel=$(ls "$cache"/debs-trixie/linux-image-*-arm64_*.deb | sort -V | tail -1)
kdir=$cache/kernel-$(basename "$kernel" .deb)
if [ ! -f "$kdir/Image" ]; then
  rm -rf "$kdir" && mkdir -p "$kdir/x"
  dpkg-deb --fsys-tarfile "$kernel" | tar -x -C "$kdir/x" --wildcards './boot/vmlinuz-*' \
    '*/broadcom/bcm2837-rpi-3-b.dtb' '*/watchdog/bcm2835_wdt.ko*'
  find "$kdir/x" -name bcm2837-rpi-3-b.dtb -exec mv {} "$kdir/" \;
  wdt=$(find "$kdir/x" -name 'bcm2835_wdt.ko*')
  case $wdt in *.xz) xz -dc "$wdt" >"$kdir/bcm2835_wdt.ko" ;; *) mv "$wdt" "$kdir/bcm2835_wdt.ko" ;; esac
  mv "$kdir"/x/boot/vmlinuz-* "$kdir/Image"
  rm -rf "$kdir/x"
fi

# 3. Initramfs.
declare -A bin=([trixie]=.build-firmware/aarch64-trixie/wisp [bookworm]=.build-firmware/aarch64/wisp)
declare -A gpiod_so=([trixie]=libgpiod.so.3 [bookworm]=libgpiod.so.2)
for r in trixie bookworm; do
  [ -x "${bin[$r]}" ] || Toolchain/build.sh "aarch64-$r" >/dev/null
  # Which libgpiod each build is: its own dynamic section says.
  aarch64-linux-gnu-readelf -d "${bin[$r]}" | grep -q "NEEDED.*\[${gpiod_so[$r]}\]" ||
    fail "${bin[$r]} does not need ${gpiod_so[$r]}: $(aarch64-linux-gnu-readelf -d "${bin[$r]}" | grep NEEDED | tr -s ' ')"
  check "$r build: ${bin[$r]} needs $(aarch64-linux-gnu-readelf -d "${bin[$r]}" | sed -n 's/.*NEEDED.*\[\(lib\(gpiod\|mbedtls\)[^]]*\)\].*/\1/p' | tr '\n' ' ')"
done
root=$work/root
mkdir -p "$root"/{bin,lib,proc,sys,dev,tmp,board/rpi3b}
for p in $trixie_pkgs; do dpkg-deb -x "$(ls "$cache"/debs-trixie/${p}_*.deb | sort -V | tail -1)" "$work/pkg"; done
for p in libgpiod2 gpiod libmbedtls14 libmbedx509-1 libmbedcrypto7; do
  dpkg-deb -x "$(ls "$cache"/debs/${p}_*.deb | head -1)" "$work/pkg-bookworm"
done
cp "$work/pkg/usr/bin/busybox" "$work/pkg-bookworm/usr/bin/gpioinfo" "$root/bin/"
mkdir -p "$root/lib/aarch64-linux-gnu"
for l in ld-linux-aarch64.so.1 libc.so.6 libm.so.6 libgpiod.so.3 libmbedtls.so.21 libmbedx509.so.7 libmbedcrypto.so.16; do
  f=$(find "$work/pkg" -name "$l" | head -1)
  [ -n "$f" ] || fail "no $l in the trixie packages"
  cp -L "$f" "$root/lib/aarch64-linux-gnu/"
done
for l in libgpiod.so.2 libmbedtls.so.14 libmbedx509.so.1 libmbedcrypto.so.7; do
  f=$(find "$work/pkg-bookworm" -name "$l" | head -1)
  [ -n "$f" ] || fail "no $l in the bookworm packages"
  cp -L "$f" "$root/lib/aarch64-linux-gnu/"
done
ln -s aarch64-linux-gnu/ld-linux-aarch64.so.1 "$root/lib/ld-linux-aarch64.so.1"
cp "${bin[trixie]}" "$root/bin/wisp-trixie"
cp "${bin[bookworm]}" "$root/bin/wisp-bookworm"
cp Board/rpi3b/board.conf "$root/board/rpi3b/"
cp "$kdir/bcm2835_wdt.ko" "$root/lib/"
cat >"$root/init" <<'INIT'
#!/bin/busybox sh
/bin/busybox --install -s /bin
mount -t proc proc /proc; mount -t sysfs sys /sys; mount -t devtmpfs dev /dev
mount -t debugfs debugfs /sys/kernel/debug
insmod /lib/bcm2835_wdt.ko
leds() { grep -E 'GPIO(17|27|22) ' /sys/kernel/debug/gpio | sed 's/^ *//; s/  */ /g'; }
echo "@@ kernel $(uname -r) libc $(ls /lib/aarch64-linux-gnu/libc.so.6)"
for build in trixie bookworm; do
for s in ready relaying storage-error clock-unsynced; do
  state=$build-$s
  wisp-$build leds show $s --board /board/rpi3b --seconds 4 >/tmp/out 2>&1 &
  pid=$!
  sleep 1
  gpioinfo gpiochip0 | grep -E '"GPIO(17|27|22)"' | tr -s ' \t' ' ' | sed "s/^ //; s/^/@@ $state during /"
  i=0
  while [ $i -lt 30 ] && kill -0 $pid 2>/dev/null; do leds | sed "s/^/@@ $state /"; usleep 80000; i=$((i + 1)); done
  wait $pid; rc=$?
  sed "s/^/@@ $state out /" /tmp/out
  echo "@@ $state rc $rc"
  echo "@@ $state held-after $(grep -c '|wisp' /sys/kernel/debug/gpio)"
  gpioinfo gpiochip0 | grep -E '"GPIO(17|27|22)"' | tr -s ' \t' ' ' | sed "s/^ //; s/^/@@ $state after /"
  # gpiolib keeps the last direction in its flags; the pin controller shows the real function.
  grep -hE '\(gpio(17|27|22)\)' /sys/kernel/debug/pinctrl/*/pins | sed "s/^/@@ $state pin /"
done
done
echo "@@ done"
poweroff -f
INIT
chmod +x "$root/init"
(cd "$root" && find . | cpio -o -H newc 2>/dev/null | gzip -1) >"$work/initramfs.cpio.gz"

# 4. Boot.
start=$SECONDS
timeout 150 qemu-system-aarch64 -M raspi3b -accel tcg,thread=single -m 1G \
  -dtb "$kdir/bcm2837-rpi-3-b.dtb" -kernel "$kdir/Image" -initrd "$work/initramfs.cpio.gz" \
  -append "console=ttyAMA0 panic=-1 quiet" -display none -no-reboot -serial "file:$work/console.log" \
  -monitor none &
pids+=($!)
wait "${pids[-1]}" || fail "qemu failed or timed out; console: $(tail -20 "$work/console.log")"
log=$(tr -d '\r' <"$work/console.log" | grep '^@@ ' || true)
grep -E '^@@ (kernel|[a-z-]+ (out|during|after|pin|rc) )' <<<"$log" || true
grep -q '^@@ kernel 6\.12\.' <<<"$log" || fail "not trixie's 6.12 kernel: $(grep '^@@ kernel' <<<"$log")"
cp "$work/console.log" "$cache/last-console.log"  # kept for a failed check (git-ignored)
grep -q '^@@ done' <<<"$log" || fail "the guest did not finish: $(tail -20 "$work/console.log")"
check "boot and run: $((SECONDS - start)) s"

# 5. Checks. A sampled line looks like: "gpio-529 (GPIO17 |wisp ) out hi".
level() {  # level STATE LINE: the distinct levels seen, e.g. "hi lo"
  grep "^@@ $1 gpio-[0-9]* (GPIO$2 |wisp" <<<"$log" | awk '{print $NF}' | sort -u | tr '\n' ' ' | sed 's/ $//'
}
for b in trixie bookworm; do
for s in ready relaying storage-error clock-unsynced; do
  grep -q "^@@ $b-$s rc 0" <<<"$log" || fail "$b-$s: wisp exited non-zero"
  grep -q "^@@ $b-$s out leds: 3 LED(s) on gpiochip0 \[pinctrl-bcm2835\]: GPIO17,GPIO27,GPIO22" <<<"$log" || fail "$b-$s: chip not found by label"
  grep -q "^@@ $b-$s out leds: lines off and released" <<<"$log" || fail "$b-$s: no release message"
  grep -q "^@@ $b-$s held-after 0" <<<"$log" || fail "$b-$s: lines still requested after exit"
  [ "$(grep -c "^@@ $b-$s during line .*\"wisp\" output active-high \[used\]" <<<"$log")" = 3 ] || fail "$b-$s: gpioinfo during"
  [ "$(grep -c "^@@ $b-$s after line [0-9]*: \"GPIO[0-9]*\" unused " <<<"$log")" = 3 ] || fail "$b-$s: lines still used after exit"
  [ "$(grep -c "^@@ $b-$s pin .*function gpio_in" <<<"$log")" = 3 ] || fail "$b-$s: pins not back to inputs"
  check "$b-$s: $(( $(grep -c "^@@ $b-$s gpio-" <<<"$log") / 3 )) samples of /sys/kernel/debug/gpio while wisp ran; distinct lines: $(grep "^@@ $b-$s gpio-" <<<"$log" | sed 's/^@@ [a-z-]* //; s/ *$//' | sort -u | tr '\n' ';')"
done
[ "$(level $b-ready 17)" = hi ] && [ "$(level $b-ready 27)" = lo ] && [ "$(level $b-ready 22)" = lo ] \
  || fail "$b ready: GPIO17 '$(level $b-ready 17)' GPIO27 '$(level $b-ready 27)' GPIO22 '$(level $b-ready 22)'"
check "$b build, ready: GPIO17 (status) steady hi, GPIO27 and GPIO22 lo, consumer wisp"
[ "$(level $b-relaying 17)" = hi ] && [ "$(level $b-relaying 27)" = "hi lo" ] && [ "$(level $b-relaying 22)" = lo ] \
  || fail "$b relaying: GPIO17 '$(level $b-relaying 17)' GPIO27 '$(level $b-relaying 27)' GPIO22 '$(level $b-relaying 22)'"
check "$b build, relaying: GPIO17 hi, GPIO27 (activity) flickers hi/lo, GPIO22 lo"
[ "$(level $b-storage-error 17)" = lo ] && [ "$(level $b-storage-error 27)" = lo ] && [ "$(level $b-storage-error 22)" = "hi lo" ] \
  || fail "$b storage-error: GPIO17 '$(level $b-storage-error 17)' GPIO27 '$(level $b-storage-error 27)' GPIO22 '$(level $b-storage-error 22)'"
check "$b build, storage-error: GPIO22 (error) blinks its code, GPIO17 and GPIO27 lo"
[ "$(level $b-clock-unsynced 17)" = "hi lo" ] && [ "$(level $b-clock-unsynced 27)" = lo ] && [ "$(level $b-clock-unsynced 22)" = lo ] \
  || fail "$b clock-unsynced: GPIO17 '$(level $b-clock-unsynced 17)' GPIO27 '$(level $b-clock-unsynced 27)' GPIO22 '$(level $b-clock-unsynced 22)'"
check "$b build, clock-unsynced: GPIO17 (status) beacon hi/lo ($(grep -c "^@@ $b-clock-unsynced gpio-[0-9]* (GPIO17 |wisp ) out lo" <<<"$log") of $(grep -c "^@@ $b-clock-unsynced gpio-[0-9]* (GPIO17 " <<<"$log") samples lo), GPIO27 and GPIO22 lo"
check "$b build, every run: gpioinfo showed consumer \"wisp\" outputs while running; lines unused at exit and their pins back to gpio_in"
done
