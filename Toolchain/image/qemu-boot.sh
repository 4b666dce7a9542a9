#!/usr/bin/env bash
# Toolchain/image/qemu-boot.sh IMAGE [QEMU-OPTION...] — boots a wisp SD-card image in
# QEMU's raspi3b machine, playing the part of the Pi's GPU firmware (which QEMU cannot
# run): it reads config.txt from the FAT partition with mtools, follows [all]/[pi3]
# sections, os_prefix, kernel, initramfs, device_tree and cmdline, copies those files out
# and starts QEMU with the image as the SD card. It execs QEMU (its pid is QEMU's).
#
# Environment: WISP_BOOT_DIR (where the boot files go; default a new temp folder),
#              WISP_SERIAL (QEMU -serial for the mini UART/console; default stdio).
set -euo pipefail
img=${1:?usage: qemu-boot.sh IMAGE [QEMU-OPTION...]}
shift
command -v qemu-system-aarch64 >/dev/null || { echo "qemu-boot: no qemu-system-aarch64 (apt-get install qemu-system-arm)" >&2; exit 127; }
size=$(stat -c %s "$img")
[ $((size & (size - 1))) -eq 0 ] || { echo "qemu-boot: $img: QEMU's SD card needs a power-of-two size ($size)" >&2; exit 1; }
start=$(sfdisk -d "$img" | sed -n 's/.*[^0-9]1 : start= *\([0-9]*\),.*/\1/p' | head -1)
[ -n "$start" ] || { echo "qemu-boot: $img: no partition 1" >&2; exit 1; }
fat="$img@@$((start * 512))"
dir=${WISP_BOOT_DIR:-$(mktemp -d /tmp/wisp-qemu-boot.XXXXXX)}
mkdir -p "$dir"
mtype -i "$fat" ::config.txt | tr -d '\r' >"$dir/config.txt"

# config.txt as the firmware reads it on a Pi 3 Model B (64-bit).
kernel=kernel8.img initramfs= dtb=bcm2710-rpi-3-b.dtb prefix= cmdline=cmdline.txt section=all
while IFS= read -r line; do
  line=${line%%#*}; line=${line%"${line##*[![:space:]]}"}
  case $line in
    '') continue ;;
    \[*\]) section=${line#[}; section=${section%]}; continue ;;
  esac
  case $section in all|pi3|pi3b) ;; *) continue ;; esac
  case $line in
    kernel=*) kernel=${line#*=} ;;
    os_prefix=*) prefix=${line#*=} ;;
    device_tree=*) dtb=${line#*=} ;;
    cmdline=*) cmdline=${line#*=} ;;
    initramfs\ *) initramfs=${line#initramfs }; initramfs=${initramfs%% *} ;;
    arm_64bit=0) echo "qemu-boot: config.txt asks for a 32-bit kernel" >&2; exit 1 ;;
  esac
done <"$dir/config.txt"
get() { mcopy -n -o -i "$fat" "::$1" "$dir/$2" || { echo "qemu-boot: no $1 on the boot partition" >&2; exit 1; }; }
get "$prefix$kernel" kernel
get "$prefix$dtb" dtb
[ -n "$initramfs" ] && get "$prefix$initramfs" initrd
get "$prefix$cmdline" cmdline.txt
append=$(tr -d '\r' <"$dir/cmdline.txt" | head -1)
echo "qemu-boot: kernel=$prefix$kernel dtb=$prefix$dtb initramfs=${initramfs:-none} cmdline: $append" >&2
exec qemu-system-aarch64 -M raspi3b -accel tcg,thread=single -m 1G -display none -no-reboot \
  -serial null -serial "${WISP_SERIAL:-stdio}" -monitor none \
  -dtb "$dir/dtb" -kernel "$dir/kernel" ${initramfs:+-initrd "$dir/initrd"} -append "$append" \
  -drive "file=$img,if=sd,format=raw" "$@"
