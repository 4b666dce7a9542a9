#!/usr/bin/env bash
# The image's Wi-Fi path, proven on the emulated Raspberry Pi 3 (QEMU raspi3b, Debian trixie
# image): the image (built by Toolchain/image.sh, unchanged) must associate with a WPA2-PSK
# access point and get an address by DHCP, configured only from files on its boot partition.
#
# The radios: trixie's kernel has mac80211_hwsim (two simulated radios, wlan0 and wlan1).
# The test adds a second cpio to the card's initrd.img (the kernel unpacks both) and
# `rdinit=/wisp-test/ap-init` to cmdline.txt: before the image's own /init, ap-init loads
# mac80211_hwsim and starts the access point — Debian's hostapd (WPA2-PSK, CCMP) and busybox
# udhcpd — in a second network namespace inside the guest, in a private tmpfs (the image's
# switch_root empties the initramfs), with radio phy1 moved into it. Then the image boots as
# usual and its wisp-init finds a Wi-Fi interface (wlan0) and brings it up with wpa_supplicant
# and udhcpc. The access point prints "@@ ap ..." lines (station connected, lease, ping).
#
#   boot 1: Raspberry Pi Imager's files: network-config (SSID with a space and quotes, the PSK
#           as 64 hex digits, as Imager writes it; regulatory-domain GB) and user-data
#           (#cloud-config hostname, users, SSH keys: ignored with a log line);
#   boot 2: wisp.conf with wifi_country/wifi_ssid/wifi_passphrase (another access point), and
#           a network-config with a 7-character passphrase, which is rejected;
#   then the data partition, read on the host: wifi.conf 0600 without the passphrase,
#   wisp.conf without the wifi_ lines, the host name.
# About 70 s with the package and kernel caches warm (two boots of about 28 s each).
# What this cannot show: the Zero 2 W's own radio (Broadcom/Cypress SDIO chip, its firmware
# and NVRAM files, antenna): hwsim stands in for the driver below cfg80211.
source "$(dirname "$0")/lib.bash"
work=$(mktemp -d /tmp/wisp-image-wifi.XXXXXX)
qpid=
trap 'cleanup; [ -z "$qpid" ] || kill -9 "$qpid" 2>/dev/null || true; rm -rf "$work"' EXIT
need_tools qemu-system-aarch64:qemu-system-arm mcopy:mtools sfdisk:fdisk debugfs:e2fsprogs cpio:cpio
t0=$SECONDS

# 1. The image (default release, trixie), built into the test's folder.
WISP_IMAGE_NO_XZ=1 WISP_IMAGE_OUT=$work/build Toolchain/image.sh rpi3b >"$work/build.out" ||
  fail "image build: $(tail -5 "$work/build.out")"
img=$(ls "$work"/build/wisp-*-rpi3b-trixie.img)
kver=$(sed -n 's/.*kernel \([^ ,]*\),.*/\1/p' "$work/build.out")
kdir=.build-image/kernel-$kver
[ -d "$kdir/lib/modules/$kver" ] || fail "no unpacked kernel $kdir"
check "image built: $(basename "$img"), kernel $kver ($((SECONDS - t0)) s)"

# 2. The access point's parts: hostapd from trixie, the hwsim modules from the same kernel.
source Toolchain/image/debian.bash
debian_apt trixie "$PWD/.build-image/apt-trixie"
cache=.build-image/debs-trixie
debian_fetch "$cache" hostapd libnl-3-200 libnl-genl-3-200 libnl-route-3-200 libssl3t64 zlib1g libzstd1 iw libc6 busybox-static
pkg=$work/pkg
for p in hostapd libnl-3-200 libnl-genl-3-200 libnl-route-3-200 libssl3t64 zlib1g libzstd1 iw libc6 busybox-static; do
  dpkg-deb -x "$(debian_deb "$cache" $p)" "$pkg"
done
t=$work/t/wisp-test
ap=$t/ap
mkdir -p "$ap"/{bin,lib/aarch64-linux-gnu,etc,proc,sys,dev,tmp,run} "$t/mods" "$t/root"
cp "$pkg/usr/bin/busybox" "$ap/bin/"
for a in sh ip ping udhcpd dumpleases sleep cat grep sed echo kill ls; do ln -s busybox "$ap/bin/$a"; done
cp "$pkg/usr/sbin/hostapd" "$pkg/usr/sbin/iw" "$ap/bin/"
for l in ld-linux-aarch64.so.1 libc.so.6 libm.so.6 libnl-3.so.200 libnl-genl-3.so.200 libnl-route-3.so.200 libssl.so.3 libcrypto.so.3 libz.so.1 libzstd.so.1; do
  f=$(find "$pkg" -name "$l" | head -1); [ -n "$f" ] || fail "no $l"
  cp -L "$f" "$ap/lib/aarch64-linux-gnu/"
done
ln -s aarch64-linux-gnu/ld-linux-aarch64.so.1 "$ap/lib/ld-linux-aarch64.so.1"
for m in mac80211_hwsim ccm cmac; do modprobe -d "$kdir" -S "$kver" --show-depends "$m" | awk '$1 == "insmod" {print $2}'; done |
  awk '!seen[$0]++' >"$work/mods.txt"
while read -r ko; do
  n=$(basename "$ko"); n=${n%.xz}
  case $ko in *.xz) xz -dc "$ko" >"$t/mods/$n" ;; *) cp "$ko" "$t/mods/$n" ;; esac
  echo "$n" >>"$t/mods/order"
done <"$work/mods.txt"
cat >"$t/ap-init" <<'EOF'
#!/bin/busybox sh
# Test only: start a Wi-Fi access point in its own network namespace, then the image's /init.
/bin/busybox mount -t proc proc /proc
/bin/busybox mount -t sysfs sys /sys
/bin/busybox mount -t devtmpfs dev /dev
T=/wisp-test
for m in $(/bin/busybox cat $T/mods/order); do /bin/busybox insmod $T/mods/$m || echo "@@ ap insmod $m failed" >/dev/console; done
# The access point: a new network and mount namespace, chrooted into a private tmpfs copy.
/bin/busybox unshare -n -m /bin/busybox sh -c '
  /bin/busybox mount -t tmpfs -o size=48m ap /wisp-test/root &&
  /bin/busybox cp -a /wisp-test/ap/. /wisp-test/root/ &&
  /bin/busybox mount -t proc proc /wisp-test/root/proc &&
  /bin/busybox mount -t sysfs sys /wisp-test/root/sys &&
  /bin/busybox mount -t devtmpfs dev /wisp-test/root/dev &&
  exec /bin/busybox chroot /wisp-test/root /bin/sh /etc/ap-run.sh' </dev/null >/dev/console 2>&1 &
pid=$!
i=0
until LD_LIBRARY_PATH=$T/ap/lib/aarch64-linux-gnu $T/ap/bin/iw phy phy1 set netns $pid 2>/dev/null; do
  i=$((i + 1)); [ $i -gt 50 ] && { echo "@@ ap cannot move phy1 into the access point's namespace" >/dev/console; break; }
  /bin/busybox usleep 100000
done
/bin/busybox umount /sys /proc  # /dev stays (the console is open on it); /init finds it mounted
exec /init
EOF
cat >"$ap/etc/ap-run.sh" <<'EOF'
# Inside the access point's namespace and chroot.
export PATH=/bin
/bin/busybox --install -s /bin
i=0
while [ ! -e /sys/class/net/wlan1 ]; do i=$((i + 1)); [ $i -gt 100 ] && { echo "@@ ap no wlan1"; exit 1; }; usleep 100000; done
ip link set lo up
ip addr add 192.168.77.1/24 dev wlan1
hostapd -B -P /run/hostapd.pid -f /tmp/hostapd.log /etc/hostapd.conf || { echo "@@ ap hostapd failed: $(cat /tmp/hostapd.log)"; exit 1; }
: >/tmp/udhcpd.leases
udhcpd /etc/udhcpd.conf
echo "@@ ap up ssid=$(sed -n 's/^ssid=//p' /etc/hostapd.conf)"
i=0 said=
while [ $i -lt 900 ]; do
  if [ -z "$said" ] && grep -q AP-STA-CONNECTED /tmp/hostapd.log; then
    echo "@@ ap $(grep -m1 AP-STA-CONNECTED /tmp/hostapd.log | sed 's/.*\(AP-STA-CONNECTED.*\)/\1/')"; said=1
  fi
  lease=$(dumpleases -f /tmp/udhcpd.leases 2>/dev/null | awk 'NR > 1 {print $2; exit}')
  if [ -n "$lease" ]; then
    echo "@@ ap lease $lease $(dumpleases -f /tmp/udhcpd.leases | awk 'NR > 1 {print $1, $3; exit}')"
    sleep 1
    echo "@@ ap ping $lease: $(ping -c 3 -W 2 "$lease" | grep 'packet loss')"
    exit 0
  fi
  usleep 200000; i=$((i + 1))
done
echo "@@ ap no lease in 180 s"
EOF
cat >"$ap/etc/udhcpd.conf" <<'EOF'
start 192.168.77.100
end 192.168.77.150
interface wlan1
lease_file /tmp/udhcpd.leases
auto_time 1
option subnet 255.255.255.0
option router 192.168.77.1
option lease 3600
EOF
chmod 755 "$t/ap-init"

ap_initrd() {  # ap_initrd SSID PASSPHRASE: the card's initrd.img + the access point's cpio
  printf 'interface=wlan1\ndriver=nl80211\nssid=%s\nhw_mode=g\nchannel=6\nwpa=2\nwpa_key_mgmt=WPA-PSK\nrsn_pairwise=CCMP\nwpa_passphrase=%s\n' \
    "$1" "$2" >"$ap/etc/hostapd.conf"
  mtype -i "$fat" ::initrd.img >/dev/null || fail "no initrd.img"
  [ -f "$work/initrd.orig" ] || mcopy -n -i "$fat" ::initrd.img "$work/initrd.orig"
  (cd "$work/t" && find . -mindepth 1 | sort | cpio -o -H newc -R 0:0 --quiet) | gzip -1 >"$work/ap.cpio.gz"
  cat "$work/initrd.orig" "$work/ap.cpio.gz" >"$work/initrd.img"
  mcopy -o -i "$fat" "$work/initrd.img" ::initrd.img
}

# The card: a copy; the test's rdinit on its command line.
card=$work/card.img
cp --sparse=always "$img" "$card"
fat="$card@@$((8192 * 512))"
mtype -i "$fat" ::cmdline.txt | tr -d '\r' | sed 's/$/ rdinit=\/wisp-test\/ap-init/' >"$work/cmdline.txt"
mcopy -o -i "$fat" "$work/cmdline.txt" ::cmdline.txt

n=0
boot() {
  n=$((n + 1)); log=$work/boot-$n.log; : >"$log"
  WISP_BOOT_DIR=$work/bootfiles WISP_SERIAL=file:$log Toolchain/image/qemu-boot.sh "$card" 2>"$work/boot-$n.err" &
  qpid=$!; bstart=$SECONDS
}
stop() { kill -9 "$qpid" 2>/dev/null || true; wait "$qpid" 2>/dev/null || true; qpid=; }
clog() { tr -d '\r\0' <"$log" | grep -a '^@@ ' || true; }
wait_line() {  # wait_line REGEX SECONDS
  local end=$((SECONDS + $2))
  until clog | grep -qE "$1"; do
    [ $SECONDS -lt $end ] && kill -0 "$qpid" 2>/dev/null ||
      fail "boot $n: no '$1' after $((SECONDS - bstart)) s; console: $(tr -d '\r' <"$log" | grep -av 'gpio' | tail -25)"
    sleep 0.5
  done
}

# 3. Boot 1: Raspberry Pi Imager's network-config and user-data.
ssid1='wisp "lab" 1' pass1='imager-passphrase-1'
psk1=$(python3 -c 'import hashlib,sys; print(hashlib.pbkdf2_hmac("sha1", sys.argv[2].encode(), sys.argv[1].encode(), 4096, 32).hex())' "$ssid1" "$pass1")
cat >"$work/network-config" <<EOF
network:
  version: 2
  wifis:
    wlan0:
      dhcp4: true
      regulatory-domain: "GB"
      access-points:
        "wisp \"lab\" 1":
          password: "$psk1"
      optional: true
EOF
cat >"$work/user-data" <<'EOF'
#cloud-config
hostname: wisp-lab-node
manage_etc_hosts: true
packages:
- avahi-daemon

apt:
  conf: |
    Acquire {
      Check-Date "false";
    };

timezone: Europe/London
enable_ssh: true
users:
- name: pi
  groups: users,adm,dialout
  shell: /bin/bash
  lock_passwd: true
  ssh_authorized_keys:
    - ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA test
  sudo: ALL=(ALL) NOPASSWD:ALL
EOF
mcopy -o -i "$fat" "$work/network-config" ::network-config
mcopy -o -i "$fat" "$work/user-data" ::user-data
ap_initrd "$ssid1" "$pass1"
boot
wait_line '^@@ ap up ' 60
wait_line '^@@ ap ping ' 150
wait_line '^@@ dhcp wlan0 bound ' 20
stop
clog | grep -E '^@@ (wifi|dhcp|ap|hostname)' | sed 's/^/  /'
clog | grep -qF "@@ wifi config from network-config ssid=$ssid1 country=GB hidden=false" || fail "network-config not applied: $(clog | grep wifi)"
clog | grep -q '^@@ hostname from user-data wisp-lab-node' || fail "host name not taken from user-data"
grep -aq 'user-data: SSH settings and users ignored' "$log" || fail "no log line for the ignored SSH settings"
grep -aq 'user-data: ignored (not used by this image): packages, apt, timezone' "$log" || fail "no log line for the ignored user-data keys: $(grep -a user-data "$log")"
a=$(clog | grep '^@@ wifi wlan0 associated' | head -1)
for f in wpa_state=COMPLETED key_mgmt=WPA2-PSK pairwise_cipher=CCMP; do
  grep -q " $f" <<<"$a" || fail "not associated ($f): $(clog | grep wifi)"
done
lease=$(clog | sed -n 's/^@@ dhcp wlan0 bound \(192\.168\.77\.[0-9]*\)\/.*/\1/p' | head -1)
[ -n "$lease" ] || fail "no lease in the 192.168.77.0/24 pool"
clog | grep -q "^@@ ap lease $lease " || fail "the access point did not lease $lease"
clog | grep -q "^@@ ap ping $lease: 3 packets transmitted, 3 packets received, 0% packet loss" || fail "ping from the access point: $(clog | grep 'ap ping')"
mdir -b -i "$fat" :: | grep -qiE '/(network-config|user-data)$' && fail "network-config/user-data left on the boot partition"
check "boot 1 (Imager's network-config + user-data): $(clog | grep -m1 '^@@ wifi wlan0 associated' | cut -c4-)"
check "boot 1: DHCP lease $lease from the access point in its own namespace, 3/3 pings back; host name wisp-lab-node; SSH keys and other keys ignored with log lines ($((SECONDS - bstart)) s)"

# 4. Boot 2: wisp.conf's wifi_ keys (another access point); a bad network-config is rejected.
ssid2='wisp-lab-2' pass2='correct horse 2'
printf 'name = wifi-test\nlisten = 0.0.0.0:7400\nboard = rpi3b\nwifi_country = de\nwifi_ssid = %s\nwifi_passphrase = %s\n' "$ssid2" "$pass2" >"$work/wisp.conf"
printf 'network:\n  version: 2\n  wifis:\n    wlan0:\n      access-points:\n        "x":\n          password: "short-7"\n' >"$work/network-config"
mcopy -o -i "$fat" "$work/wisp.conf" ::wisp.conf
mcopy -o -i "$fat" "$work/network-config" ::network-config
ap_initrd "$ssid2" "$pass2"
boot
wait_line '^@@ ap ping ' 150
wait_line '^@@ dhcp wlan0 bound ' 20
stop
clog | grep -E '^@@ (wifi|dhcp|ap|config)' | sed 's/^/  /'
clog | grep -qF '@@ wifi rejected network-config: passphrase of 7 characters (8 to 63, or a 64-hex-digit key)' || fail "the bad network-config was not rejected: $(clog | grep wifi)"
clog | grep -qF "@@ wifi config from wisp.conf ssid=$ssid2 country=DE" || fail "wisp.conf's Wi-Fi keys not applied"
clog | grep -q '^@@ config installed' || fail "wisp.conf (without its wifi_ lines) was not installed"
clog | grep -qE '^@@ wifi wlan0 associated .*wpa_state=COMPLETED' || fail "boot 2: not associated"
clog | grep -q '^@@ ap ping .* 0% packet loss' || fail "boot 2: ping"
mdir -b -i "$fat" :: | grep -qi '/network-config.rejected$' || fail "no network-config.rejected"
mtype -i "$fat" ::wifi.error.txt | grep -q 'passphrase of 7 characters' || fail "no wifi.error.txt"
check "boot 2 (wisp.conf wifi_ keys): $(clog | grep -m1 '^@@ wifi wlan0 associated' | cut -c4-); $(clog | grep -m1 '^@@ dhcp wlan0' | cut -c4-)"
check "boot 2: a network-config with a 7-character passphrase renamed network-config.rejected, reason in wifi.error.txt"

# 5. The data partition, on the host.
dd if="$card" of="$work/p4" bs=1M skip=224 count=288 conv=sparse status=none
e2fsck -fy "$work/p4" >/dev/null 2>&1 || [ $? -le 1 ] || fail "data partition does not check"
debugfs -R "cat /etc/wisp.conf" "$work/p4" 2>/dev/null >"$work/wisp.conf.data"
grep -q '^name = wifi-test' "$work/wisp.conf.data" || fail "wrong wisp.conf on the data partition"
grep -q 'wifi_' "$work/wisp.conf.data" && fail "wifi_ lines reached the node's wisp.conf"
debugfs -R "cat /etc/wifi.conf" "$work/p4" 2>/dev/null >"$work/wifi.conf.data"
psk2=$(python3 -c 'import hashlib,sys; print(hashlib.pbkdf2_hmac("sha1", sys.argv[2].encode(), sys.argv[1].encode(), 4096, 32).hex())' "$ssid2" "$pass2")
grep -qx "psk=$psk2" "$work/wifi.conf.data" || fail "wifi.conf holds no (or a wrong) PSK: $(cat "$work/wifi.conf.data")"
grep -qx "ssid=$(printf %s "$ssid2" | od -An -v -tx1 | tr -d ' \n')" "$work/wifi.conf.data" || fail "wifi.conf SSID"
grep -q "$pass2" "$work/wifi.conf.data" && fail "the passphrase itself was kept"
mode=$(debugfs -R "stat /etc/wifi.conf" "$work/p4" 2>/dev/null | sed -n 's/.*Mode: *\([0-7]*\).*/\1/p')
[ "$mode" = 0600 ] || fail "wifi.conf mode $mode"
[ "$(debugfs -R "cat /etc/hostname" "$work/p4" 2>/dev/null)" = wisp-lab-node ] || fail "host name on the data partition"
check "data partition: wifi.conf 0600 (country DE, SSID as hex, PSK derived; the passphrase not kept), wisp.conf without wifi_ lines, hostname wisp-lab-node"
check "image Wi-Fi test: $n boots, $((SECONDS - t0)) s"
