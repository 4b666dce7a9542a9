#!/usr/bin/env bash
# Toolchain/image.sh BOARD — a flashable SD-card image for a Raspberry Pi board:
#   .build-image/wisp-VERSION-BOARD.img.xz  (and the raw, sparse .img next to it)
#
# Built on x86_64 from Debian bookworm arm64 packages and the Embedded aarch64 wisp,
# without running ARM code and without mounting anything (mkfs.vfat + mcopy,
# mkfs.ext4 -d, sfdisk, dd conv=notrunc). Layout, boot flow and A/B updates:
# Toolchain/image/README.md. Reproducible: the same inputs (packages in
# .build-image/debs, wisp binary, this tree, SOURCE_DATE_EPOCH) give the same bytes.
#
# Environment: SOURCE_DATE_EPOCH (default: the last commit's time),
#              WISP_IMAGE_NO_XZ=1 (skip the .xz, for tests),
#              WISP_IMAGE_OUT=DIR (output folder; default .build-image).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
board=${1:-}
boards="rpi3b rpi3bplus rpi4b rpizero2w rpi5"
case " $boards " in *" $board "*) ;; *) echo "image.sh: unknown board '$board' (images: $boards)" >&2; exit 2 ;; esac
declare -A dtb=([rpi3b]=bcm2837-rpi-3-b.dtb [rpi3bplus]=bcm2837-rpi-3-b-plus.dtb
  [rpi4b]=bcm2711-rpi-4-b.dtb [rpizero2w]=bcm2837-rpi-zero-2-w.dtb [rpi5]=bcm2712-rpi-5-b.dtb)
version=$(sed -n 's/.*static let version = "\(.*\)".*/\1/p' Sources/WispCore/Version.swift)
[ -n "$version" ] || { echo "image.sh: no version in Sources/WispCore/Version.swift" >&2; exit 1; }
export SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || echo 1700000000)}
export E2FSPROGS_FAKE_TIME=$SOURCE_DATE_EPOCH TZ=UTC LC_ALL=C
umask 022
t_start=$SECONDS
out=${WISP_IMAGE_OUT:-$root/.build-image}
cache=$root/.build-image/debs  # shared with WISP_IMAGE_OUT builds
work=$out/work-$board
img=$out/wisp-$version-$board.img
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
[ -x .build-firmware/aarch64/wisp ] || Toolchain/build.sh aarch64 >/dev/null

# 2. Debian bookworm arm64 packages, through a private apt configuration (main +
#    non-free-firmware for raspi-firmware) that leaves the system's sources alone.
apt_dir=$root/.build-image/apt
mkdir -p "$cache" "$apt_dir"/{lists/partial,cache/archives/partial,preferences.d}
# The mirrors are this machine's own: the URI its apt sources give for each suite (no host
# name is written into the project).
mirror_for() {  # SUITE: the first URI of this machine's apt sources that serves SUITE
  python3 - "$1" <<'PY'
import glob, sys
suite = sys.argv[1]
for f in sorted(glob.glob('/etc/apt/sources.list.d/*.sources')):        # deb822
    for block in open(f).read().split('\n\n'):
        fields = {}
        for line in block.splitlines():
            if ':' in line and not line.lstrip().startswith('#'):
                k, v = line.split(':', 1)
                fields[k.strip()] = v.split()
        if suite in fields.get('Suites', []) and fields.get('URIs'):
            print(fields['URIs'][0]); sys.exit(0)
for f in ['/etc/apt/sources.list'] + sorted(glob.glob('/etc/apt/sources.list.d/*.list')):  # one-line
    try:
        lines = open(f).read().splitlines()
    except OSError:
        continue
    for line in lines:
        w = line.split('#')[0].split()
        if len(w) < 3 or w[0] != 'deb':
            continue
        i = 1
        if w[1].startswith('['):
            while i < len(w) and not w[i].endswith(']'):
                i += 1
            i += 1
        if i + 1 < len(w) and w[i + 1] == suite:
            print(w[i]); sys.exit(0)
sys.exit(1)
PY
}
main_uri=$(mirror_for bookworm) || { echo "image: this machine's apt sources have no bookworm suite" >&2; exit 1; }
security_uri=$(mirror_for bookworm-security) || { echo "image: this machine's apt sources have no bookworm-security suite" >&2; exit 1; }
cat >"$apt_dir/sources.list" <<EOF
deb [arch=arm64 signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $main_uri bookworm main non-free-firmware
deb [arch=arm64 signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $security_uri bookworm-security main
EOF
cat >"$apt_dir/apt.conf" <<EOF
Dir::Etc::SourceList "$apt_dir/sources.list";
Dir::Etc::SourceParts "/nonexistent";
Dir::Etc::PreferencesParts "$apt_dir/preferences.d";
Dir::State "$apt_dir";
Dir::State::Lists "$apt_dir/lists";
Dir::State::status "$apt_dir/status";
Dir::Cache "$apt_dir/cache";
APT::Architecture "arm64";
APT::Architectures { "arm64"; };
EOF
touch "$apt_dir/status"
export APT_CONFIG=$apt_dir/apt.conf
pkgs="busybox-static libc6 libgpiod2 libmbedtls14 libmbedx509-1 libmbedcrypto7 e2fsprogs libext2fs2 libcom-err2 libblkid1 libuuid1 libss2"
have() { ls "$cache/${1}_"*.deb >/dev/null 2>&1; }
missing=()
for p in $pkgs raspi-firmware; do have "$p" || missing+=("$p"); done
ls "$cache"/linux-image-*-arm64_*.deb >/dev/null 2>&1 || missing+=(KERNEL)
if [ ${#missing[@]} -gt 0 ]; then
  for try in 1 2 3; do
    apt-get update -o Acquire::Retries=3 >/dev/null 2>&1 || { sleep $((try * 5)); continue; }
    list=("${missing[@]}")
    if [[ " ${list[*]} " == *" KERNEL "* ]]; then
      abi=$(apt-cache depends linux-image-arm64 | sed -n 's/.*Depends: \(linux-image-[0-9].*-arm64\).*/\1/p' | head -1)
      list=("${list[@]/KERNEL/$abi}")
    fi
    (cd "$cache" && apt-get download -o Acquire::Retries=3 "${list[@]}" >/dev/null 2>&1) && break
    # raspi-firmware is optional (QEMU does not need it): retry without it at the end.
    [ $try = 3 ] && (cd "$cache" && apt-get download -o Acquire::Retries=3 "${list[@]/raspi-firmware/}" >/dev/null 2>&1) || true
    sleep $((try * 5))
  done
fi
for p in $pkgs; do have "$p" || { echo "image.sh: cannot download $p" >&2; exit 1; }; done
kernel_deb=$(ls "$cache"/linux-image-*-arm64_*.deb | sort -V | tail -1)
[ -n "$kernel_deb" ] || { echo "image.sh: no arm64 kernel package" >&2; exit 1; }
kver=$(basename "$kernel_deb" | sed 's/^linux-image-\(.*-arm64\)_.*/\1/')
have raspi-firmware || say "WARNING: no raspi-firmware package: the image boots in QEMU but not on a Pi"

# 3. Unpack.
rm -rf "$work" && mkdir -p "$work"/{pkg,root,initrd,boot}
for p in $pkgs; do dpkg-deb -x "$(ls "$cache/${p}_"*.deb | head -1)" "$work/pkg"; done
have raspi-firmware && dpkg-deb -x "$(ls "$cache"/raspi-firmware_*.deb | head -1)" "$work/pkg"
kdir=$root/.build-image/kernel-$kver  # unpacked once (the modules are 300 MB)
if [ ! -f "$kdir/.done" ]; then
  rm -rf "$kdir" && mkdir -p "$kdir"
  dpkg-deb --fsys-tarfile "$kernel_deb" | tar -x -C "$kdir" --wildcards './boot/vmlinuz-*' \
    './usr/lib/linux-image-*/broadcom/*.dtb' './lib/modules/*'
  depmod -b "$kdir" "$kver"
  touch "$kdir/.done"
fi
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
applets=$(python3 - "$work/pkg/bin/busybox" <<'PY'
import sys
d = open(sys.argv[1], 'rb').read()
i = d.find(b'\0[\0[[\0')
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
cp "$work/pkg/bin/busybox" "$r/bin/busybox"
for a in $applets; do ln -s busybox "$r/bin/$a"; done
install_elf "$r" .build-firmware/aarch64/wisp bin/wisp
for t in e2fsck mke2fs tune2fs dumpe2fs resize2fs debugfs; do install_elf "$r" "$work/pkg/sbin/$t" "bin/$t"; done
ln -s e2fsck "$r/bin/fsck.ext4"; ln -s mke2fs "$r/bin/mkfs.ext4"
for b in Board/*/board.conf; do n=${b#Board/}; cp "$b" "$r/usr/share/wisp/boards/${n%/board.conf}.conf"; done
cp Toolchain/image/wisp-init "$r/bin/wisp-init"
cp Toolchain/image/ab.sh "$r/lib/wisp/ab.sh"
cp Toolchain/image/e2fsck.conf "$r/etc/e2fsck.conf"
cp Toolchain/image/udhcpc.script "$r/etc/udhcpc/default.script"
chmod 755 "$r/bin/wisp-init" "$r/etc/udhcpc/default.script"
printf 'listen = 0.0.0.0:7400\n' >"$r/usr/share/wisp/wisp.conf.default"
echo wisp >"$r/etc/hostname"
printf 'root:x:0:0:root:/data:/bin/sh\n' >"$r/etc/passwd"; printf 'root:x:0:\n' >"$r/etc/group"
ln -s /run/resolv.conf "$r/etc/resolv.conf"
ln -s /data/etc "$r/etc/wisp"          # /etc/wisp/wisp.conf is on the data partition
ln -s /data/wisp "$r/var/lib/wisp"     # the default state_dir
ln -s /run "$r/var/run"; ln -s /run/log "$r/var/log"
printf 'WISP_VERSION=%s\nKERNEL=%s\nSOURCE_DATE_EPOCH=%s\n' "$version" "$kver" "$SOURCE_DATE_EPOCH" >"$r/etc/wisp-release"

# 5. The initramfs: busybox, e2fsck, the kernel modules it loads; gzip'd newc cpio.
i=$work/initrd
mkdir -p "$i"/{bin,dev,proc,sys,etc,lib/wisp,lib/modules/$kver,newroot,data}
ln -s bin "$i/sbin"
ln -s aarch64-linux-gnu/ld-linux-aarch64.so.1 "$i/lib/ld-linux-aarch64.so.1"
cp "$work/pkg/bin/busybox" "$i/bin/busybox"
install_elf "$i" "$work/pkg/sbin/e2fsck" bin/e2fsck
cp Toolchain/image/init "$i/init"; chmod 755 "$i/init"
cp Toolchain/image/ab.sh "$i/lib/wisp/ab.sh"
cp Toolchain/image/e2fsck.conf "$i/etc/e2fsck.conf"
grep -v '^#' Toolchain/image/modules.list >"$i/etc/modules.list"
kmods=$kdir/lib/modules/$kver
for m in $(cat "$i/etc/modules.list"); do
  modprobe -d "$kdir" -S "$kver" --show-depends "$m" 2>/dev/null | awk '$1 == "insmod" {print $2}'
done | sort -u | while read -r ko; do
  rel=${ko#"$kdir/lib/modules/$kver/"}
  mkdir -p "$i/lib/modules/$kver/$(dirname "$rel")"
  case $ko in *.xz) xz -dc "$ko" >"$i/lib/modules/$kver/${rel%.xz}" ;; *) cp "$ko" "$i/lib/modules/$kver/$rel" ;; esac
done
cp "$kmods"/modules.{order,builtin,builtin.modinfo} "$i/lib/modules/$kver/"
depmod -b "$i" "$kver"
rm -f "$i/lib/modules/$kver"/modules.*.bin  # busybox modprobe reads the text modules.dep

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
say "board $board, kernel $kver, wisp $version, SOURCE_DATE_EPOCH $SOURCE_DATE_EPOCH, $((SECONDS - t_start)) s"
