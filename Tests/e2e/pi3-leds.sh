#!/usr/bin/env bash
# Emulated Raspberry Pi 3 with real GPIO: the aarch64 firmware drives the status
# LEDs through libgpiod on the kernel's pinctrl-bcm2835 driver (QEMU raspi3b).
#
#   1. host tools: qemu-system-aarch64 and cpio (apt-get, retried);
#   2. guest parts from Debian bookworm arm64 packages, downloaded once into
#      .build-pi3/debs: kernel Image + bcm2837-rpi-3-b.dtb + bcm2835_wdt.ko,
#      busybox-static, libc6, libgpiod2, libmbedtls14/x509-1/crypto7;
#   3. an initramfs: busybox as /init's shell, wisp, its libraries, Board/rpi3b;
#   4. boot; in the guest, for ready, relaying and storage-error, run
#      `wisp leds show STATE --board /board/rpi3b` and sample
#      /sys/kernel/debug/gpio while it runs, then check the lines are released;
#      power off through the watchdog (QEMU exits);
#   5. check the samples on the host.
# Takes about 16 s with the cache, about 25 s cold (60 MB of packages).
source "$(dirname "$0")/lib.bash"
cache=.build-pi3
mkdir -p "$cache/debs"
work=$(mktemp -d "$PWD/$cache/run.XXXXXX")
trap 'cleanup; rm -rf "$work"' EXIT

# 1. Host tools.
need_tools qemu-system-aarch64:qemu-system-arm cpio:cpio

# 2. Guest packages (the kernel ABI is looked up: old ones leave the archive).
fetch() {  # fetch PACKAGE...: apt-get download into the cache unless present
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
kernel=$(ls "$cache"/debs/linux-image-*-arm64_*.deb 2>/dev/null | head -1 || true)
if [ -z "$kernel" ]; then
  abi=$(apt-cache depends linux-image-arm64:arm64 | sed -n 's/.*Depends: \(linux-image-[0-9].*-arm64\).*/\1/p' | head -1)
  [ -n "$abi" ] || fail "cannot find the arm64 kernel package (apt-get update?)"
  fetch "$abi"
  kernel=$(ls "$cache"/debs/linux-image-*-arm64_*.deb | head -1)
fi
fetch busybox-static libc6 libgpiod2 gpiod libmbedtls14 libmbedx509-1 libmbedcrypto7

kdir=$cache/kernel
if [ ! -f "$kdir/Image" ]; then
  rm -rf "$kdir" && mkdir -p "$kdir/x"
  dpkg-deb --fsys-tarfile "$kernel" | tar -x -C "$kdir/x" --wildcards './boot/vmlinuz-*' \
    '*/broadcom/bcm2837-rpi-3-b.dtb' '*/watchdog/bcm2835_wdt.ko*'
  mv "$kdir"/x/boot/vmlinuz-* "$kdir/Image"
  find "$kdir/x" -name bcm2837-rpi-3-b.dtb -exec mv {} "$kdir/" \;
  wdt=$(find "$kdir/x" -name 'bcm2835_wdt.ko*')
  case $wdt in *.xz) xz -dc "$wdt" >"$kdir/bcm2835_wdt.ko" ;; *) mv "$wdt" "$kdir/bcm2835_wdt.ko" ;; esac
  rm -rf "$kdir/x"
fi

# 3. Initramfs.
[ -x .build-firmware/aarch64/wisp ] || Toolchain/build.sh aarch64 >/dev/null
root=$work/root
mkdir -p "$root"/{bin,lib,proc,sys,dev,tmp,board/rpi3b}
for p in busybox-static libc6 libgpiod2 gpiod libmbedtls14 libmbedx509-1 libmbedcrypto7; do
  dpkg-deb -x "$(ls "$cache"/debs/${p}_*.deb | head -1)" "$work/pkg"
done
cp "$work/pkg/bin/busybox" "$work/pkg/usr/bin/gpioinfo" "$root/bin/"
mkdir -p "$root/lib/aarch64-linux-gnu"
for l in ld-linux-aarch64.so.1 libc.so.6 libm.so.6 libgpiod.so.2 libmbedtls.so.14 libmbedx509.so.1 libmbedcrypto.so.7; do
  f=$(find "$work/pkg" -name "$l" | head -1)
  [ -n "$f" ] || fail "no $l in the packages"
  cp -L "$f" "$root/lib/aarch64-linux-gnu/"
done
ln -s aarch64-linux-gnu/ld-linux-aarch64.so.1 "$root/lib/ld-linux-aarch64.so.1"
cp .build-firmware/aarch64/wisp "$root/bin/wisp"
cp Board/rpi3b/board.conf "$root/board/rpi3b/"
cp "$kdir/bcm2835_wdt.ko" "$root/lib/"
cat >"$root/init" <<'INIT'
#!/bin/busybox sh
/bin/busybox --install -s /bin
mount -t proc proc /proc; mount -t sysfs sys /sys; mount -t devtmpfs dev /dev
mount -t debugfs debugfs /sys/kernel/debug
insmod /lib/bcm2835_wdt.ko
leds() { grep -E 'GPIO(17|27|22) ' /sys/kernel/debug/gpio | sed 's/^ *//; s/  */ /g'; }
echo "@@ chips $(cat /sys/bus/gpio/devices/gpiochip0/of_node/name 2>/dev/null) $(ls /dev | grep -c gpiochip)"
for state in ready relaying storage-error; do
  wisp leds show $state --board /board/rpi3b --seconds 4 >/tmp/out 2>&1 &
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
grep -E '^@@ [a-z-]+ (out|during|after|pin|rc) ' <<<"$log" || true
cp "$work/console.log" "$cache/last-console.log"  # kept for a failed check (git-ignored)
grep -q '^@@ done' <<<"$log" || fail "the guest did not finish: $(tail -20 "$work/console.log")"
check "boot and run: $((SECONDS - start)) s"

# 5. Checks. A sampled line looks like: "gpio-529 (GPIO17 |wisp ) out hi".
level() {  # level STATE LINE: the distinct levels seen, e.g. "hi lo"
  grep "^@@ $1 gpio-[0-9]* (GPIO$2 |wisp" <<<"$log" | awk '{print $NF}' | sort -u | tr '\n' ' ' | sed 's/ $//'
}
for s in ready relaying storage-error; do
  grep -q "^@@ $s rc 0" <<<"$log" || fail "$s: wisp exited non-zero"
  grep -q "^@@ $s out leds: 3 LED(s) on gpiochip0 \[pinctrl-bcm2835\]: GPIO17,GPIO27,GPIO22" <<<"$log" || fail "$s: chip not found by label"
  grep -q "^@@ $s out leds: lines off and released" <<<"$log" || fail "$s: no release message"
  grep -q "^@@ $s held-after 0" <<<"$log" || fail "$s: lines still requested after exit"
  [ "$(grep -c "^@@ $s during line .*\"wisp\" output active-high \[used\]" <<<"$log")" = 3 ] || fail "$s: gpioinfo during"
  [ "$(grep -c "^@@ $s after line [0-9]*: \"GPIO[0-9]*\" unused " <<<"$log")" = 3 ] || fail "$s: lines still used after exit"
  [ "$(grep -c "^@@ $s pin .*function gpio_in" <<<"$log")" = 3 ] || fail "$s: pins not back to inputs"
  check "$s: $(( $(grep -c "^@@ $s gpio-" <<<"$log") / 3 )) samples of /sys/kernel/debug/gpio while wisp ran"
done
[ "$(level ready 17)" = hi ] && [ "$(level ready 27)" = lo ] && [ "$(level ready 22)" = lo ] \
  || fail "ready: GPIO17 '$(level ready 17)' GPIO27 '$(level ready 27)' GPIO22 '$(level ready 22)'"
check "ready: GPIO17 (status) steady hi, GPIO27 and GPIO22 lo, consumer wisp"
[ "$(level relaying 17)" = hi ] && [ "$(level relaying 27)" = "hi lo" ] && [ "$(level relaying 22)" = lo ] \
  || fail "relaying: GPIO17 '$(level relaying 17)' GPIO27 '$(level relaying 27)' GPIO22 '$(level relaying 22)'"
check "relaying: GPIO17 hi, GPIO27 (activity) flickers hi/lo, GPIO22 lo"
[ "$(level storage-error 17)" = lo ] && [ "$(level storage-error 27)" = lo ] && [ "$(level storage-error 22)" = "hi lo" ] \
  || fail "storage-error: GPIO17 '$(level storage-error 17)' GPIO27 '$(level storage-error 27)' GPIO22 '$(level storage-error 22)'"
check "storage-error: GPIO22 (error) blinks its code, GPIO17 and GPIO27 lo"
check "every run: gpioinfo showed consumer \"wisp\" outputs while running; lines unused at exit and their pins back to gpio_in"
