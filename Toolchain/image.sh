#!/usr/bin/env bash
# Toolchain/image.sh BOARD — a flashable SD-card image for a Raspberry Pi board:
#   .build-image/wisp-VERSION-BOARD-RELEASE.img.xz  (and the raw, sparse .img next to it)
#   .build-image/wisp-VERSION-BOARD-RELEASE.imager.json  (a Raspberry Pi Imager repository)
#
# Built on x86_64 from Debian arm64 packages of RELEASE (trixie by default, as Raspberry
# Pi OS today; RELEASE=bookworm for the previous one) and that release's Embedded aarch64
# wisp, without running ARM code and without mounting anything (mkfs.vfat + mcopy,
# mkfs.ext4 -d, sfdisk, dd conv=notrunc). Layout, boot flow, Wi-Fi and A/B updates:
# Toolchain/image/README.md. Reproducible: the same inputs (packages in
# .build-image/debs-RELEASE, wisp binary, this tree, SOURCE_DATE_EPOCH) give the same bytes.
#
# Environment: RELEASE (trixie or bookworm; default trixie),
#              SOURCE_DATE_EPOCH (default: the last commit's time),
#              WISP_IMAGE_NO_XZ=1 (skip the .xz and the Imager entry, for tests),
#              WISP_IMAGE_OUT=DIR (output folder; default .build-image),
#              WISP_IMAGE_URL=URL (the Imager entry's url; default file:// of the .img.xz).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
board=${1:-}
boards="rpi3b rpi3bplus rpi4b rpizero2w rpi5"
case " $boards " in *" $board "*) ;; *) echo "image.sh: unknown board '$board' (images: $boards)" >&2; exit 2 ;; esac
release=${RELEASE:-trixie}
case $release in bookworm|trixie) ;; *) echo "image.sh: unknown RELEASE '$release' (trixie, bookworm)" >&2; exit 2 ;; esac
declare -A dtb=([rpi3b]=bcm2837-rpi-3-b.dtb [rpi3bplus]=bcm2837-rpi-3-b-plus.dtb
  [rpi4b]=bcm2711-rpi-4-b.dtb [rpizero2w]=bcm2837-rpi-zero-2-w.dtb [rpi5]=bcm2712-rpi-5-b.dtb)
version=$(sed -n 's/.*static let version = "\(.*\)".*/\1/p' Sources/WispCore/Version.swift)
[ -n "$version" ] || { echo "image.sh: no version in Sources/WispCore/Version.swift" >&2; exit 1; }
export SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || echo 1700000000)}
export E2FSPROGS_FAKE_TIME=$SOURCE_DATE_EPOCH TZ=UTC LC_ALL=C
umask 022
t_start=$SECONDS
out=${WISP_IMAGE_OUT:-$root/.build-image}
cache=$root/.build-image/debs-$release  # shared with WISP_IMAGE_OUT builds
work=$out/work-$board-$release
img=$out/wisp-$version-$board-$release.img
say() { echo "image: ${*//$root\//}"; }

# 1. Host tools (apt-get, retried: mirrors may be mid-sync).
need=()
for t in mkfs.vfat:dosfstools mcopy:mtools mkfs.ext4:e2fsprogs debugfs:e2fsprogs sfdisk:fdisk xz:xz-utils \
         cpio:cpio depmod:kmod aarch64-linux-gnu-readelf:binutils-aarch64-linux-gnu python3:python3; do
  command -v "${t%%:*}" >/dev/null || need+=("${t#*:}")
done
if [ ${#need[@]} -gt 0 ]; then
  for try in 1 2 3; do
    apt-get install -y --no-install-recommends -o DPkg::Lock::Timeout=120 "${need[@]}" >/dev/null && break
    apt-get update -o Acquire::Retries=3 >/dev/null || true; sleep $((try * 5))
  done
fi
# wisp for this release (Toolchain/build.sh: bookworm .build-firmware/aarch64, trixie
# .build-firmware/aarch64-trixie).
case $release in trixie) wisp_bin=.build-firmware/aarch64-trixie/wisp ;; *) wisp_bin=.build-firmware/aarch64/wisp ;; esac
[ -x "$wisp_bin" ] || Toolchain/build.sh "aarch64-$release" >/dev/null
[ -x "$wisp_bin" ] || { echo "image.sh: no $wisp_bin (Toolchain/build.sh aarch64-$release)" >&2; exit 1; }

# 2. Debian arm64 packages of the release, through a private apt state (main +
#    non-free-firmware for raspi-firmware and the Wi-Fi firmware) that leaves the
#    system's sources alone (Toolchain/image/debian.bash).
source Toolchain/image/debian.bash
debian_apt "$release" "$root/.build-image/apt-$release"
# Per release: libraries with their sonames (bookworm: mbedTLS 2.28, libgpiod 1.6;
# trixie: mbedTLS 3.6, libgpiod 2.2 and the 64-bit time_t library names).
case $release in
  bookworm) rel_pkgs="libgpiod2 libmbedtls14 libmbedx509-1 libmbedcrypto7 libext2fs2 libssl3 libreadline8 libgcrypt20 libgpg-error0 liblz4-1 liblzma5" ;;
  trixie) rel_pkgs="libgpiod3 libmbedtls21 libmbedx509-7 libmbedcrypto16 libext2fs2t64 libssl3t64 libreadline8t64" ;;
esac
# Wi-Fi: wpa_supplicant (+ wpa_cli, wpa_passphrase), iw, their libraries, the regulatory
# database and the Broadcom SDIO firmware of the Pi 3/3B+/4/Zero 2 W radios.
wifi_pkgs="wpasupplicant iw libnl-3-200 libnl-genl-3-200 libnl-route-3-200 libdbus-1-3 libpcsclite1 libtinfo6 libsystemd0 libcap2 zlib1g libzstd1
           wireless-regdb firmware-brcm80211"
# Time: chrony (no RTC on the boards; Toolchain/image/README.md "Time") and what chronyd
# links: GnuTLS (for NTS) and its libraries, libseccomp, libcap (in wifi_pkgs).
case $release in
  bookworm) time_pkgs="chrony libgnutls30 libnettle8 libhogweed6 libunistring2" ;;
  trixie) time_pkgs="chrony libgnutls30t64 libnettle8t64 libhogweed6t64 libunistring5" ;;
esac
time_pkgs="$time_pkgs libp11-kit0 libtasn1-6 libidn2-0 libgmp10 libffi8 libseccomp2"
pkgs="busybox-static libc6 e2fsprogs libcom-err2 libblkid1 libuuid1 libss2 $rel_pkgs $wifi_pkgs $time_pkgs"
debian_fetch "$cache" $pkgs KERNEL 'raspi-firmware?'
have() { [ -n "$(debian_deb "$cache" "$1")" ]; }
kernel_deb=$(ls "$cache"/linux-image-*-arm64_*.deb | sort -V | tail -1)
[ -n "$kernel_deb" ] || { echo "image.sh: no arm64 kernel package" >&2; exit 1; }
kver=$(basename "$kernel_deb" | sed 's/^linux-image-\(.*-arm64\)_.*/\1/')
have raspi-firmware || say "WARNING: no raspi-firmware package: the image boots in QEMU but not on a Pi"

# 3. Unpack.
rm -rf "$work" && mkdir -p "$work"/{pkg,root,initrd,boot}
for p in $pkgs; do dpkg-deb -x "$(debian_deb "$cache" "$p")" "$work/pkg"; done
have raspi-firmware && dpkg-deb -x "$(debian_deb "$cache" raspi-firmware)" "$work/pkg"
kdir=$root/.build-image/kernel-$kver  # unpacked once (the modules are 300 MB)
if [ ! -f "$kdir/.done" ]; then
  rm -rf "$kdir" && mkdir -p "$kdir"
  # bookworm has the modules under /lib/modules, trixie (merged /usr) under /usr/lib/modules.
  dpkg-deb --fsys-tarfile "$kernel_deb" | tar -x -C "$kdir" --wildcards './boot/vmlinuz-*' \
    './usr/lib/linux-image-*/broadcom/*.dtb' '*lib/modules/*'
  if [ -d "$kdir/usr/lib/modules" ]; then mkdir -p "$kdir/lib" && mv "$kdir/usr/lib/modules" "$kdir/lib/"; fi
  depmod -b "$kdir" "$kver"  # trixie ships no modules.dep
  touch "$kdir/.done"
fi
pkgbin() {  # pkgbin NAME: the unpacked packages' program NAME (bookworm /bin, /sbin; trixie /usr/...)
  local d
  for d in bin sbin usr/bin usr/sbin; do [ -f "$work/pkg/$d/$1" ] && { echo "$work/pkg/$d/$1"; return; }; done
  echo "image.sh: no $1 in the packages" >&2; exit 1
}
lib=$work/pkg/lib/aarch64-linux-gnu ulib=$work/pkg/usr/lib/aarch64-linux-gnu
find_lib() { local f; for d in "$lib" "$ulib"; do f=$d/$1; [ -e "$f" ] && { echo "$f"; return; }; done; }

# install_elf TREE FILE DEST: copy FILE (and, recursively, every library it needs) into TREE.
install_elf() {
  local tree=$1 src=$2 dst=$3 l f
  mkdir -p "$tree/$(dirname "$dst")"
  rm -f "$tree/$dst"  # may be a busybox applet link: replace it, not busybox
  cp -L "$src" "$tree/$dst"
  for l in $(aarch64-linux-gnu-readelf -d "$src" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p'); do
    [ -e "$tree/lib/aarch64-linux-gnu/$l" ] && continue
    f=$(find_lib "$l")
    [ -n "$f" ] || { echo "image.sh: $src needs $l, which no package provides" >&2; exit 1; }
    install_elf "$tree" "$f" "lib/aarch64-linux-gnu/$l"
  done
}
# The applet names of Debian's busybox, read from the arm64 binary's name table (not run).
applets=$(python3 - "$(pkgbin busybox)" <<'PY'
import sys
d = open(sys.argv[1], 'rb').read()
i = d.find(b'[\0[[\0') - 1  # the table starts with "[", "[[" (after a NUL or not)
names = []
for s in d[i + 1:i + 16000].split(b'\0'):
    if not s: break
    names.append(s.decode())
print(' '.join(n for n in names if n not in ('[', '[[', 'busybox', 'init', 'linuxrc')))
PY
)
[ "$(wc -w <<<"$applets")" -gt 100 ] || { echo "image.sh: cannot read busybox's applet list" >&2; exit 1; }

# 4. The root slot: busybox, libc, mbedTLS, libgpiod, e2fsprogs, wisp; read-only.
r=$work/root
mkdir -p "$r"/{bin,lib/aarch64-linux-gnu,lib/wisp,etc/udhcpc,dev,proc,sys,run,tmp,data,boot,var/lib,usr/share/wisp/boards}
ln -s bin "$r/sbin"; ln -s ../bin "$r/usr/bin"; ln -s ../bin "$r/usr/sbin"
ln -s aarch64-linux-gnu/ld-linux-aarch64.so.1 "$r/lib/ld-linux-aarch64.so.1"
cp "$(pkgbin busybox)" "$r/bin/busybox"
for a in $applets; do ln -s busybox "$r/bin/$a"; done
install_elf "$r" "$wisp_bin" bin/wisp
for t in e2fsck mke2fs tune2fs dumpe2fs resize2fs debugfs; do install_elf "$r" "$(pkgbin $t)" "bin/$t"; done
ln -s e2fsck "$r/bin/fsck.ext4"; ln -s mke2fs "$r/bin/mkfs.ext4"
for b in Board/*/board.conf; do n=${b#Board/}; cp "$b" "$r/usr/share/wisp/boards/${n%/board.conf}.conf"; done
# Wi-Fi: wpa_supplicant, wpa_cli, wpa_passphrase, iw; the regulatory database; the
# Broadcom firmware of the Pi radios (43430: Pi 3B, Zero 2 W; 43455: Pi 3B+, 4B).
for t in wpa_supplicant wpa_cli wpa_passphrase iw; do install_elf "$r" "$(pkgbin $t)" "bin/$t"; done
fwsrc=$work/pkg/lib/firmware; [ -d "$fwsrc" ] || fwsrc=$work/pkg/usr/lib/firmware
mkdir -p "$r/lib/firmware/brcm" "$r/lib/firmware/cypress"
cp "$fwsrc/regulatory.db-debian" "$r/lib/firmware/regulatory.db"
cp "$fwsrc/regulatory.db.p7s-debian" "$r/lib/firmware/regulatory.db.p7s"
(cd "$fwsrc" && cp -P brcm/brcmfmac434[35][05]*-sdio.* "$r/lib/firmware/brcm/" 2>/dev/null || true
 cp -P cypress/cyfmac434[35][05]-sdio.* "$r/lib/firmware/cypress/" 2>/dev/null || true)
rm -f "$r"/lib/firmware/brcm/*-sdio.[A-Z]* "$r"/lib/firmware/brcm/*-sdio.[a-qs-z]*,*  # other vendors' boards
ls "$r"/lib/firmware/brcm/brcmfmac43430-sdio.bin >/dev/null || { echo "image.sh: no brcmfmac43430 firmware" >&2; exit 1; }
# Time: chronyd (started by wisp-init as user _chrony; no chronyc), its configuration.
install_elf "$r" "$(pkgbin chronyd)" bin/chronyd
mkdir -p "$r/etc/chrony"
cp Toolchain/image/chrony.conf "$r/etc/chrony/chrony.conf"
cp Toolchain/image/wisp-init "$r/bin/wisp-init"
cp Toolchain/image/ab.sh Toolchain/image/wifi.sh Toolchain/image/cloud-init.awk "$r/lib/wisp/"
cp Toolchain/image/e2fsck.conf "$r/etc/e2fsck.conf"
cp Toolchain/image/udhcpc.script "$r/etc/udhcpc/default.script"
chmod 755 "$r/bin/wisp-init" "$r/etc/udhcpc/default.script"
printf 'listen = 0.0.0.0:7400\n' >"$r/usr/share/wisp/wisp.conf.default"
echo wisp >"$r/etc/hostname"
printf 'root:x:0:0:root:/data:/bin/sh\n_chrony:x:100:100:chrony:/data/chrony:/bin/false\n' >"$r/etc/passwd"
printf 'root:x:0:\n_chrony:x:100:\n' >"$r/etc/group"
ln -s /run/resolv.conf "$r/etc/resolv.conf"
ln -s /data/etc "$r/etc/wisp"          # /etc/wisp/wisp.conf is on the data partition
ln -s /data/wisp "$r/var/lib/wisp"     # the default state_dir
ln -s /run "$r/var/run"; ln -s /run/log "$r/var/log"
printf 'WISP_VERSION=%s\nDEBIAN_RELEASE=%s\nKERNEL=%s\nSOURCE_DATE_EPOCH=%s\n' "$version" "$release" "$kver" "$SOURCE_DATE_EPOCH" >"$r/etc/wisp-release"

# 5. The initramfs: busybox, e2fsck, the kernel modules it loads; gzip'd newc cpio.
i=$work/initrd
mkdir -p "$i"/{bin,dev,proc,sys,etc,lib/wisp,lib/modules/$kver,newroot,data}
ln -s bin "$i/sbin"
ln -s aarch64-linux-gnu/ld-linux-aarch64.so.1 "$i/lib/ld-linux-aarch64.so.1"
cp "$(pkgbin busybox)" "$i/bin/busybox"
install_elf "$i" "$(pkgbin e2fsck)" bin/e2fsck
cp Toolchain/image/init "$i/init"; chmod 755 "$i/init"
cp Toolchain/image/ab.sh "$i/lib/wisp/ab.sh"
cp Toolchain/image/e2fsck.conf "$i/etc/e2fsck.conf"
grep -v '^#' Toolchain/image/modules.list >"$i/etc/modules.list"
kmods=$kdir/lib/modules/$kver
for m in $(cat "$i/etc/modules.list"); do
  { modprobe -d "$kdir" -S "$kver" --show-depends "$m" 2>/dev/null || true; } | awk '$1 == "insmod" {print $2}'  # absent in this kernel: skipped
done | sort -u | while read -r ko; do
  rel=${ko#"$kdir/lib/modules/$kver/"}
  mkdir -p "$i/lib/modules/$kver/$(dirname "$rel")"
  case $ko in *.xz) xz -dc "$ko" >"$i/lib/modules/$kver/${rel%.xz}" ;; *) cp "$ko" "$i/lib/modules/$kver/$rel" ;; esac
done
cp "$kmods"/modules.{order,builtin,builtin.modinfo} "$i/lib/modules/$kver/"
depmod -b "$i" "$kver"
rm -f "$i/lib/modules/$kver"/modules.*.bin  # busybox modprobe reads the text modules.dep

# Root slot modules (Wi-Fi): loaded after switch_root, next to their firmware.
kmods=$kdir/lib/modules/$kver
for m in $(grep -v '^#' Toolchain/image/modules-root.list); do
  { modprobe -d "$kdir" -S "$kver" --show-depends "$m" 2>/dev/null || true; } | awk '$1 == "insmod" {print $2}'  # absent in this kernel: skipped
done | sort -u | while read -r ko; do
  rel=${ko#"$kdir/lib/modules/$kver/"}
  mkdir -p "$r/lib/modules/$kver/$(dirname "$rel")"
  case $ko in *.xz) xz -dc "$ko" >"$r/lib/modules/$kver/${rel%.xz}" ;; *) cp "$ko" "$r/lib/modules/$kver/$rel" ;; esac
done
[ -n "$(find "$r/lib/modules/$kver" -name 'brcmfmac.ko')" ] || { echo "image.sh: no brcmfmac module in $kver" >&2; exit 1; }
cp "$kmods"/modules.{order,builtin,builtin.modinfo} "$r/lib/modules/$kver/"
depmod -b "$r" "$kver"
rm -f "$r/lib/modules/$kver"/modules.*.bin

# 6. The boot partition: firmware, config.txt, cmdline.txt, kernel, device tree, initramfs.
b=$work/boot
cp "$kdir"/boot/vmlinuz-* "$b/vmlinuz"
dtbdir=$(echo "$kdir"/usr/lib/linux-image-*/broadcom)
if [ -f "$dtbdir/${dtb[$board]}" ]; then
  cp "$dtbdir/${dtb[$board]}" "$b/"
else
  say "WARNING: kernel $kver has no ${dtb[$board]} ($board is untested)"
fi
[ "$board" = rpi3b ] && cp "$dtbdir/bcm2837-rpi-3-b-plus.dtb" "$b/"  # for the emulator's GPIO29 ACT LED
if have raspi-firmware; then
  fw=$work/pkg/usr/lib/raspi-firmware
  case $board in
    rpi4b) cp "$fw"/{start4.elf,fixup4.dat} "$b/" ;;
    rpi5) ;;  # the Pi 5 boots from its EEPROM; no start*.elf (untested)
    *) cp "$fw"/{bootcode.bin,start.elf,fixup.dat} "$b/" ;;
  esac
  cp "$work/pkg/usr/share/doc/raspi-firmware/copyright" "$b/LICENCE.raspi-firmware"
fi
sed "s/@DTB@/${dtb[$board]}/" Toolchain/image/config.txt >"$b/config.txt"
sed "s/@BOARD@/$board/" Toolchain/image/cmdline.txt >"$b/cmdline.txt"
cp "$r/etc/wisp-release" "$b/wisp-release.txt"

# Reproducible trees: every timestamp is SOURCE_DATE_EPOCH.
find "$r" "$i" "$b" -exec touch -h -d "@$SOURCE_DATE_EPOCH" {} +
(cd "$i" && find . -mindepth 1 | sort | cpio --reproducible -o -H newc -R 0:0 --quiet) | gzip -n -9 >"$b/initrd.img"
touch -d "@$SOURCE_DATE_EPOCH" "$b/initrd.img"

# 7. File systems. Fixed UUIDs and hash seeds; mkfs.ext4 -d copies each file's ctime, so
#    debugfs sets them to SOURCE_DATE_EPOCH afterwards.
export MKE2FS_CONFIG=$root/Toolchain/image/mke2fs.conf  # not the host's /etc/mke2fs.conf
mkext4() {  # mkext4 OUT SIZE_MIB LABEL UUID TREE EXTRA-OPTS...
  local outf=$1 size=$2 label=$3 uuid=$4 tree=$5; shift 5
  rm -f "$outf"
  mkfs.ext4 -q -F -L "$label" -U "$uuid" -T default -I 256 -b 4096 -m 0 \
    -O ext_attr,dir_index,filetype,extent,flex_bg,sparse_super,large_file,huge_file,dir_nlink,extra_isize,metadata_csum,64bit \
    -E "hash_seed=$uuid,root_owner=0:0,nodiscard,lazy_itable_init=0" "$@" -d "$tree" "$outf" "${size}M" >/dev/null
  {
    echo "sif / ctime @$SOURCE_DATE_EPOCH"
    (cd "$tree" && find . -mindepth 1 | sort | sed "s|^\.\(.*\)|sif \"\1\" ctime @$SOURCE_DATE_EPOCH|")
  } >"$work/ctime.cmds"
  debugfs -w -f "$work/ctime.cmds" "$outf" >/dev/null 2>"$work/debugfs.err"
  grep -v '^debugfs ' "$work/debugfs.err" >&2 && { echo "image.sh: debugfs failed on $outf" >&2; exit 1; } || true
  e2fsck -fn "$outf" >/dev/null 2>&1 || { echo "image.sh: $outf does not check clean" >&2; exit 1; }
}
mkext4 "$work/root.ext4" 48 wisp-root 8a3a6b7e-77a1-4e5c-9f00-000000000a00 "$r" -O ^has_journal
mkdir -p "$work/data"/{etc,system}
find "$work/data" -exec touch -h -d "@$SOURCE_DATE_EPOCH" {} +
mkext4 "$work/data.ext4" 288 wisp-data 8a3a6b7e-77a1-4e5c-9f00-000000000d00 "$work/data" -O has_journal -J size=8

rm -f "$work/boot.vfat"
mkfs.vfat -F 32 -n BOOT -i 77697370 --invariant -C "$work/boot.vfat" $((124 * 1024)) >/dev/null
(cd "$b" && for f in $(find . -maxdepth 1 -type f | sort | sed 's|^\./||'); do mcopy -m -o -i "$work/boot.vfat" "$f" "::$f"; done)

# 8. The disk: MBR, then each partition at its offset (slot B stays empty until an update).
rm -f "$img.tmp"
truncate -s 512M "$img.tmp"
grep -v '^#' Toolchain/image/partitions.sfdisk | sfdisk -q --no-reread --no-tell-kernel "$img.tmp" >/dev/null
put() { dd if="$1" of="$img.tmp" bs=1M seek=$2 conv=notrunc,sparse status=none; }
put "$work/boot.vfat" 4
put "$work/root.ext4" 128
put "$work/data.ext4" 224
mv -f "$img.tmp" "$img"
if [ "${WISP_IMAGE_NO_XZ:-}" != 1 ]; then
  xz -T1 -6 --check=crc64 -c "$img" >"$img.xz.tmp" && mv -f "$img.xz.tmp" "$img.xz"
  say "$img.xz: $(stat -c %s "$img.xz") bytes compressed, $(stat -c %s "$img") bytes raw ($(du -k "$img" | cut -f1) KiB allocated)"
  say "sha256 $(sha256sum "$img.xz" | cut -d' ' -f1)  $(basename "$img.xz")"
fi
say "sha256 $(sha256sum "$img" | cut -d' ' -f1)  $(basename "$img")"

# 9. A Raspberry Pi Imager repository with this image (Imager: custom repository, or
#    `rpi-imager --repo FILE`), init_format "cloudinit" (Toolchain/image/imager-json.py).
if [ "${WISP_IMAGE_NO_XZ:-}" != 1 ]; then
  json=${img%.img}.imager.json
  Toolchain/image/imager-json.py "$img" "$img.xz" "$json" "${WISP_IMAGE_URL:-file://$img.xz}" \
    "$version" "$board" "$release" "$SOURCE_DATE_EPOCH" "$kver"
  say "Raspberry Pi Imager repository: $json"
fi
say "board $board, Debian $release, kernel $kver, wisp $version ($wisp_bin), SOURCE_DATE_EPOCH $SOURCE_DATE_EPOCH, $((SECONDS - t_start)) s"
