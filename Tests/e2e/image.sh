#!/usr/bin/env bash
# The SD-card image (issue 9), proven in emulation (QEMU raspi3b, no network), for the
# default release (trixie; RELEASE=bookworm tests the bookworm image):
#   1. build .build-image/wisp-VERSION-rpi3b-RELEASE.img.xz, then a second time into a temp
#      folder: the two raw images must be byte-identical (reproducible build); the Raspberry
#      Pi Imager entry written next to it must match the image (sizes, SHA-256);
#   2. put a wisp.conf on the boot partition (mtools) and boot the image as the SD card
#      through Toolchain/image/qemu-boot.sh (which reads config.txt/cmdline.txt like the
#      Pi firmware); the first boot is cut at a random moment, the next one must finish:
#      data partition checked, wisp.conf moved to it, READY, GPIO17 (status LED) on via
#      pinctrl-bcm2835 after the lamp test;
#   3. power cuts: QEMU is killed hard WISP_IMAGE_CUTS times (default 3; `make image-test`
#      runs 20) at random moments before or after READY; after each, the next boot must
#      check clean, reach READY and show the same state (A/B state, config, key);
#   4. A/B: slot B gets the root and is made pending: it confirms itself and stays; then a
#      broken root in slot A made pending never confirms, is tried 3 times, and the 4th
#      boot falls back to slot B; a replaced wisp.conf keeps the old one as wisp.conf.old;
#   5. the data partition, read on the host with debugfs, holds what it should.
# Also: the time client (chrony) is in the root slot with its libraries and configuration
# and started by wisp-init, runs on the first boot, and wisp reports the clock unsynced
# there (no network in QEMU).
# trixie image, 2 shared cores, package cache warm: 191 s (64 s of it the two builds);
# `make image-test` (20 cuts) 506 s. The bookworm image (RELEASE=bookworm): 161 s.
source "$(dirname "$0")/lib.bash"
cuts=${WISP_IMAGE_CUTS:-3}
work=$(mktemp -d /tmp/wisp-image-test.XXXXXX)
qpid=
trap 'cleanup; [ -z "$qpid" ] || kill -9 "$qpid" 2>/dev/null || true; rm -rf "$work"' EXIT
# The emulator is this test's own need (Toolchain/image.sh installs the build tools).
need_tools qemu-system-aarch64:qemu-system-arm mcopy:mtools sfdisk:fdisk debugfs:e2fsprogs
t0=$SECONDS

# 1. Build twice.
release=${RELEASE:-trixie}
Toolchain/image.sh rpi3b | tee "$work/build1.out"
version=$(sed -n 's/.*static let version = "\(.*\)".*/\1/p' Sources/WispCore/Version.swift)
img=.build-image/wisp-$version-rpi3b-$release.img
[ -f "$img.xz" ] || fail "no $img.xz"
sdate=$(sed -n 's/.*SOURCE_DATE_EPOCH \([0-9]*\).*/\1/p' "$work/build1.out")
SOURCE_DATE_EPOCH=$sdate WISP_IMAGE_NO_XZ=1 WISP_IMAGE_OUT=$work/build2 Toolchain/image.sh rpi3b >"$work/build2.out"
h1=$(sha256sum <"$img" | cut -d' ' -f1) h2=$(sha256sum <"$work/build2/wisp-$version-rpi3b-$release.img" | cut -d' ' -f1)
[ "$h1" = "$h2" ] || fail "two builds differ: $h1 vs $h2"
rm -rf "$work/build2"
xzsize=$(stat -c %s "$img.xz")
# trixie's 6.12 kernel Image (38 MB) and the Wi-Fi user space (wpa_supplicant, OpenSSL) and
# firmware and chrony with GnuTLS make the trixie image about 26 MB compressed.
[ "$xzsize" -le $((30 * 1024 * 1024)) ] || fail "image.xz is $xzsize bytes (target 30 MB)"
grep -q "Debian $release, kernel" "$work/build1.out" || fail "not built from $release"
check "image: $(basename "$img.xz") $xzsize bytes compressed, $(stat -c %s "$img") raw; two builds identical (sha256 $h1)"
# The Raspberry Pi Imager entry against the image it describes.
json=${img%.img}.imager.json
python3 - "$json" "$img" "$img.xz" <<'PY' >"$work/imager.out" || fail "Imager entry $json does not match the image: $(cat "$work/imager.out")"
import hashlib, json, os, sys
j, raw, xz = sys.argv[1:]
e = json.load(open(j))['os_list'][0]
sha = lambda p: hashlib.sha256(open(p, 'rb').read()).hexdigest()
want = {'extract_size': os.path.getsize(raw), 'extract_sha256': sha(raw),
        'image_download_size': os.path.getsize(xz), 'image_download_sha256': sha(xz),
        'init_format': 'cloudinit', 'devices': ['pi3-64bit']}
bad = {k: (e.get(k), v) for k, v in want.items() if e.get(k) != v}
for k in ('name', 'description', 'url', 'release_date'):
    if not e.get(k): bad[k] = (e.get(k), 'non-empty')
if not e.get('url', '').endswith(os.path.basename(xz)): bad['url'] = (e.get('url'), xz)
if bad: sys.exit(f'mismatch: {bad}')
print(f"{e['name']}: extract_size {e['extract_size']}, image_download_size {e['image_download_size']}, release_date {e['release_date']}, init_format {e['init_format']}, devices {e['devices']}")
PY
check "Imager entry $(basename "$json"): $(cat "$work/imager.out"); SHA-256 of the .img and .img.xz match"
# The time client in the root slot as built (read from its ext4 with debugfs): chronyd and
# every library it needs, its configuration (rtcsync: chronyd clears the kernel's
# STA_UNSYNC only with it), its user, and wisp-init starting it (the image has no systemd:
# wisp-init is PID 1 and starts what runs).
rootfs=.build-image/work-rpi3b-$release/root.ext4
rcat() { debugfs -R "cat $1" "$rootfs" 2>/dev/null; }
debugfs -R "stat /bin/chronyd" "$rootfs" 2>/dev/null | grep -q 'Type: regular' || fail "no /bin/chronyd in the root slot"
rcat /bin/chronyd >"$work/chronyd"
aarch64-linux-gnu-readelf -h "$work/chronyd" | grep -q 'Machine: *AArch64' || fail "/bin/chronyd is not an aarch64 program"
for l in $(aarch64-linux-gnu-readelf -d "$work/chronyd" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p'); do
  debugfs -R "stat /lib/aarch64-linux-gnu/$l" "$rootfs" 2>/dev/null | grep -q 'Type: \(regular\|symlink\)' || fail "chronyd needs $l, not in the root slot"
done
rcat /etc/chrony/chrony.conf >"$work/chrony.conf"
grep -qx 'rtcsync' "$work/chrony.conf" || fail "chrony.conf without rtcsync"
grep -qE '^(pool|server) ' "$work/chrony.conf" || fail "chrony.conf names no server"
rcat /etc/passwd | grep -q '^_chrony:' || fail "no _chrony user in /etc/passwd"
rcat /bin/wisp-init | grep -qE '^if chronyd -u _chrony .*-f /etc/chrony/chrony.conf' || fail "wisp-init does not start chronyd"
check "time client: /bin/chronyd ($(aarch64-linux-gnu-readelf -d "$work/chronyd" | grep -c NEEDED) libraries, all in the slot), /etc/chrony/chrony.conf ($(grep -E '^(pool|server) ' "$work/chrony.conf" | head -1); rtcsync), user _chrony, started by wisp-init"
check "build: $((SECONDS - t0)) s"

# The card under test: a copy, with a wisp.conf on the boot partition.
card=$work/card.img
cp --sparse=always "$img" "$card"
fat="$card@@$((8192 * 512))"
printf 'name = image-test\nlisten = 0.0.0.0:7400\nboard = rpi3b\n' >"$work/wisp.conf"
mcopy -o -i "$fat" "$work/wisp.conf" ::wisp.conf

n=0
boot() {  # boot: start QEMU on the card in the background; console in $work/boot-N.log,
          # qemu-boot.sh's and QEMU's own messages in $work/boot-N.err
  n=$((n + 1)); log=$work/boot-$n.log err=$work/boot-$n.err; : >"$log"
  WISP_BOOT_DIR=$work/bootfiles WISP_SERIAL=file:$log Toolchain/image/qemu-boot.sh "$card" 2>"$err" &
  qpid=$!; bstart=$(date +%s.%N)
}
said() { echo "qemu-boot.sh/QEMU said: $(tail -5 "$err" | tr '\n' ' ')console: $(tr -d '\r' <"$log" | grep -av gpio | tail -15)"; }
cut_power() {  # a hard power cut: QEMU must still be running (137 = our SIGKILL)
  local rc=0
  kill -9 "$qpid" 2>/dev/null || true
  wait "$qpid" 2>/dev/null || rc=$?
  qpid=
  [ "$rc" = 137 ] || fail "boot $n: QEMU had ended by itself (status $rc) before the power cut $(elapsed) s after start; $(said)"
}
clog() {  # the console's @@ lines; only whole ones (QEMU may be half-way through the last)
  local c
  c=$(tr -d '\r\0' <"$log"; echo .)
  c=${c%.}
  case $c in *$'\n') ;; *$'\n'*) c=${c%$'\n'*} ;; *) c= ;; esac
  printf '%s\n' "$c" | grep -a '^@@ ' || true
}
wait_line() {  # wait_line REGEX SECONDS: wait for a console line; fails on timeout
  local end=$((SECONDS + $2))
  until clog | grep -qE "$1"; do
    [ $SECONDS -lt $end ] || fail "boot $n: no '$1' in $2 s; console: $(tr -d '\r' <"$log" | grep -av gpio | tail -15)"
    kill -0 "$qpid" 2>/dev/null || { sleep 0.3; clog | grep -qE "$1" && return 0; fail "boot $n: QEMU ended before '$1'; $(said)"; }
    sleep 0.2
  done
}
elapsed() { awk "BEGIN{printf \"%.1f\", $(date +%s.%N) - $bstart}"; }
good_boot() {  # good_boot: this boot must check clean, reach READY, light GPIO17; prints its state
  wait_line '^@@ state ' 90
  local fsck
  fsck=$(clog | sed -n 's/^@@ fsck data rc=\([0-9]*\)/\1/p' | head -1)
  case $fsck in 0|1) ;; *) fail "boot $n: e2fsck -p rc '$fsck'" ;; esac
  clog | grep -q '^@@ fsck data -y' && fail "boot $n: needed e2fsck -y"
  # Three samples: GPIO17 lit in at least one (the clock-unsynced beacon is dark 250 ms in
  # 2 s: QEMU has no network, so the clock stays unsynchronised), the others never lit.
  clog | grep -q '^@@ gpio gpio-[0-9]* (GPIO17 |wisp ) out hi' || fail "boot $n: GPIO17 not on: $(clog | grep gpio)"
  clog | grep -q '^@@ gpio gpio-[0-9]* (GPIO27 |wisp ) out lo' || fail "boot $n: GPIO27 not off"
  clog | grep -q '^@@ gpio gpio-[0-9]* (GPIO22 |wisp ) out lo' || fail "boot $n: GPIO22 not off"
  clog | grep -qE '^@@ gpio gpio-[0-9]* \((GPIO27|GPIO22) \|wisp \) out hi' && fail "boot $n: GPIO27 or GPIO22 lit: $(clog | grep gpio)"
  fsck_rc=$fsck
  card_state=$(clog | sed -n 's/^@@ state //p' | head -1)
}
ready_at() { clog | sed -n 's/^@@ ready .*uptime=\([0-9.]*\)/\1/p' | head -1; }

# 2. First boot: cut at a random moment of it, then a full one.
boot
sleep "$(awk -v r=$RANDOM 'BEGIN{printf "%.1f", 1 + r % 50 / 10}')"
cut_power
check "cut 1 (during the first boot) at $(elapsed) s after start: $(clog | tr '\n' ';' | cut -c1-120)"
boot
good_boot
ref=$card_state
clog | grep -qE '^@@ config installed' || grep -aq 'wisp.conf from the boot partition installed' "$work/boot-1.log" \
  || fail "wisp.conf was not installed from the boot partition"
mdir -b -i "$fat" :: | grep -qi '/wisp.conf$' && fail "wisp.conf is still on the boot partition"
grep -aq 'msg="listening"' "$log" || fail "no listening line from wisp"
# Time: chronyd runs; QEMU has no network, so the clock stays unsynchronised and wisp,
# reading the kernel (clock_sync = kernel, the default), says so.
clog | grep -q '^@@ time chronyd=running' || fail "chronyd is not running: $(clog | grep '^@@ time')"
grep -aq 'msg="clock" clock=unsynced clock_sync=kernel adjtimex=5' "$log" || fail "wisp did not report an unsynchronised clock: $(grep -a 'msg="clock"' "$log")"
check "first boot: $(clog | sed -n 's/^@@ //p' | grep '^time'); wisp: $(tr -d '\r' <"$log" | grep -ao 'msg="clock".*' | head -1)"
check "first boot: READY (wisp listening) at $(ready_at) s uptime, $(elapsed) s after QEMU started; fsck rc $fsck_rc"
check "first boot: wisp.conf moved from the boot partition to the data partition; GPIO17 out hi, GPIO27/GPIO22 out lo (pinctrl-bcm2835, consumer wisp)"
check "first boot: state $ref"
cut_power

# 3. Power cuts at random moments; each following boot must come up clean.
before=0 after=0
for i in $(seq 2 "$cuts"); do
  boot
  d=$(awk -v r=$RANDOM 'BEGIN{printf "%.1f", 0.5 + r % 130 / 10}')
  sleep "$d"
  if clog | grep -q '^@@ ready'; then when=after; after=$((after + 1)); else when=before; before=$((before + 1)); fi
  cut_power
  boot
  good_boot
  [ "$card_state" = "$ref" ] || fail "after cut $i: state changed: '$card_state' vs '$ref'"
  check "cut $i at ${d} s ($when READY); next boot: fsck rc $fsck_rc, READY at $(ready_at) s, state unchanged"
  # The verification boot is cut too, right after its state line (after READY).
  cut_power
done
check "power cuts: $cuts, $((before + 1)) before READY (incl. first boot), $after after READY + $((cuts - 1)) cuts right after a verification boot's READY; every next boot clean"

# Host-side edits while the card is "out of the Pi": the data partition (p4, MiB 224-512)
# is replayed/checked with the host's e2fsck, then edited with debugfs (nothing mounted).
part_out() { dd if="$card" of="$work/p$1" bs=1M skip=$2 count=$3 conv=sparse status=none; }
part_in() { dd if="$work/p$1" of="$card" bs=1M seek=$2 conv=notrunc,sparse status=none; }
set_ab() {  # set_ab CURRENT PENDING TRIES
  part_out 4 224 288
  e2fsck -fy "$work/p4" >/dev/null 2>&1 || [ $? -le 1 ] || fail "host e2fsck of the data partition"
  printf 'current=%s\npending=%s\ntries=%s\n' "$1" "$2" "$3" >"$work/ab"
  debugfs -w -R "rm /system/ab" "$work/p4" >/dev/null 2>&1
  debugfs -w -R "write $work/ab /system/ab" "$work/p4" >/dev/null 2>&1
  part_in 4 224
}

# 4a. An update that confirms: slot B gets the root of slot A and becomes pending; a new
#     wisp.conf on the boot partition replaces the old one (kept as wisp.conf.old).
part_out 2 128 48; part_in 2 176  # p2 -> p3
set_ab a b 0
printf 'name = image-test-2\nlisten = 0.0.0.0:7400\nboard = rpi3b\n' >"$work/wisp.conf"
mcopy -o -i "$fat" "$work/wisp.conf" ::wisp.conf
boot; good_boot
clog | grep -q '^@@ ab slot=b pending=yes tries=1' || fail "slot B was not tried: $(clog | grep ab)"
clog | grep -q '^@@ ab confirmed b' || fail "slot B did not confirm"
clog | grep -q '^@@ config installed' || fail "the new wisp.conf was not installed"
check "A/B: pending slot b booted (try 1), READY at $(ready_at) s, confirmed: $(clog | grep '^@@ ab' | tr '\n' ';')"
cut_power
boot; good_boot
clog | grep -q '^@@ ab slot=b pending=no' || fail "the confirmed slot b did not stay: $(clog | grep ab)"
check "A/B: next boot stays on the confirmed slot: $(clog | grep '^@@ ab' | tr '\n' ';') state $card_state"
cut_power

# 4b. An update that never confirms: slot A gets a root whose wisp fails; pending, with a
#     short confirm timeout (cmdline.txt, as a user could edit it).
part_out 2 128 48
printf '#!/bin/sh\necho "broken wisp" >&2\nexit 1\n' >"$work/wisp-broken"; chmod 755 "$work/wisp-broken"
debugfs -w -R "rm /bin/wisp" "$work/p2" >/dev/null 2>&1
debugfs -w -R "write $work/wisp-broken /bin/wisp" "$work/p2" >/dev/null 2>&1
debugfs -w -R "sif /bin/wisp mode 0100755" "$work/p2" >/dev/null 2>&1
part_in 2 128
set_ab b a 0
mtype -i "$fat" ::cmdline.txt | tr -d '\r' | sed 's/$/ wisp.confirm_timeout=6/' >"$work/cmdline.txt"
mcopy -o -i "$fat" "$work/cmdline.txt" ::cmdline.txt
for try in 1 2 3; do
  boot
  wait_line '^@@ ab unconfirmed reboot' 60
  clog | grep -q "^@@ ab slot=a pending=yes tries=$try" || fail "try $try: $(clog | grep ab)"
  clog | grep -q '^@@ ready' && fail "the broken slot reached READY"
  wait "$qpid" 2>/dev/null || true; qpid=  # reboot -f ends QEMU (-no-reboot)
  check "A/B: broken pending slot a, try $try: not READY in 6 s, rebooted"
done
boot; good_boot
clog | grep -q '^@@ ab fallback to b from a' || fail "no fallback: $(clog | grep ab)"
clog | grep -q '^@@ ab slot=b pending=no tries=0' || fail "not back on slot b: $(clog | grep ab)"
check "A/B: 4th boot falls back: $(clog | grep '^@@ ab' | tr '\n' ';') READY at $(ready_at) s"
cut_power

# 5. The data partition as the host sees it.
part_out 4 224 288
e2fsck -fy "$work/p4" >/dev/null 2>&1 || [ $? -le 1 ] || fail "data partition does not check on the host"
e2fsck -fn "$work/p4" >/dev/null 2>&1 || fail "data partition not clean after the journal replay"
ls_data=$(debugfs -R "ls -p /etc" "$work/p4" 2>/dev/null; debugfs -R "ls -p /wisp" "$work/p4" 2>/dev/null)
for f in wisp.conf wisp.conf.old node.key credits.journal; do grep -q "/$f/" <<<"$ls_data" || fail "no $f on the data partition"; done
debugfs -R "cat /etc/wisp.conf" "$work/p4" 2>/dev/null | grep -q 'name = image-test-2' || fail "wrong wisp.conf"
debugfs -R "cat /etc/wisp.conf.old" "$work/p4" 2>/dev/null | grep -q 'name = image-test$' || fail "wrong wisp.conf.old"
[ "$(debugfs -R "cat /system/ab" "$work/p4" 2>/dev/null | tr '\n' ' ')" = "current=b pending= tries=0 " ] || fail "A/B state on disk"
check "data partition (host e2fsck clean): /etc/wisp.conf (image-test-2), /etc/wisp.conf.old (image-test), /wisp/node.key, /wisp/credits.journal, /system/ab = current=b"
check "image test: $n boots, $((SECONDS - t0)) s"
