#!/usr/bin/env bash
# The .deb packages (Toolchain/package.sh), as root:
#  - all six build (bookworm and trixie, each for amd64, arm64, armhf), with versions that
#    name the release and sort bookworm < trixie; lintian reports no errors; each release's
#    Depends (printed) name that release's libraries, and each binary needs that release's
#    sonames (readelf -d);
#  - every package's Depends resolve against its release's package lists (apt-get -s install
#    with the private apt state of Toolchain/package/release-apt.bash, empty dpkg status);
#  - the trixie arm64 package unpacked into the trixie arm64 sysroot (Toolchain/setup.sh):
#    `wisp --version`, `wisp config check` and `wisp boards` run from it under qemu-user with
#    -L SYSROOT, with trixie's libmbedtls.so.21 and libgpiod.so.3 (the host has neither, so
#    qemu cannot fall back to a host library);
#  - the armhf preinst refuses an ARMv6 board (fake `uname` first in PATH, fake /proc/cpuinfo
#    bind-mounted in a private mount namespace): the script alone for Pi Zero W, Pi 1, Pi 3
#    (32-bit and 64-bit kernel) cpuinfo, and dpkg --unpack into a scratch root (refused on
#    ARMv6 with nothing unpacked, unpacked on ARMv7);
#  - the bookworm amd64 one installs with dpkg -i on this machine without a running systemd
#    (postinst copes), creates the `wisp` user, enables the unit, and the installed binary,
#    default config and board files work;
#  - `wisp config import-boot --from X --to Y`: a valid file is imported with a backup,
#    an invalid one refused with file:line and the old config kept, no file is a no-op;
#  - `systemd-analyze verify` passes on the installed units (wisp-forward@ through an instance);
#  - dpkg -r removes the files but keeps the conffile; dpkg -P leaves nothing.
# The machine is left clean even on failure (trap).
source "$(dirname "$0")/lib.bash"
[ "$(id -u)" -eq 0 ] || fail "must run as root (dpkg -i)"
if dpkg-query -W -f='${Status}' wisp 2>/dev/null | grep -q 'installed\|config-files'; then
  fail "a wisp package is already on this machine: not touching it"
fi
user_existed=no
getent passwd wisp >/dev/null && user_existed=yes
dir=$(mktemp -d /tmp/wisp-package-test.XXXXXX)

# dpkg takes a lock: retry while another process holds it.
dpkg_retry() {
  local i
  for i in 1 2 3 4 5 6 7 8 9 10; do
    if timeout 120 dpkg "$@" >"$dir/dpkg.out" 2>&1; then cat "$dir/dpkg.out"; return 0; fi
    grep -q 'lock' "$dir/dpkg.out" || { cat "$dir/dpkg.out" >&2; return 1; }
    sleep 3
  done
  cat "$dir/dpkg.out" >&2; return 1
}
package_cleanup() {
  if dpkg-query -W -f='${Status}' wisp 2>/dev/null | grep -q 'installed\|config-files'; then
    dpkg_retry -P wisp >/dev/null 2>&1 || true
  fi
  if [ "$user_existed" = no ] && getent passwd wisp >/dev/null; then
    userdel wisp 2>/dev/null || true
    getent group wisp >/dev/null && groupdel wisp 2>/dev/null || true
  fi
  rm -rf "$dir"
  cleanup
}
trap package_cleanup EXIT

# 1. Build all six packages; lintian must report no errors.
Toolchain/package.sh >"$dir/build.log" 2>&1 || { cat "$dir/build.log" >&2; fail "Toolchain/package.sh failed"; }
grep -v '^  ' "$dir/build.log"
upstream=$(sed -n 's/.*static let version = "\(.*\)".*/\1/p' Sources/WispCore/Version.swift)
v12=$upstream-1~deb12u1 v13=$upstream-1~deb13u1
dpkg --compare-versions "$v12" lt "$v13" && dpkg --compare-versions "$v13" lt "$upstream-1" ||
  fail "versions do not sort: $v12 < $v13 < $upstream-1"
check "versions: $v12 (bookworm) < $v13 (trixie) < $upstream-1"
for rel in bookworm trixie; do
  if [ $rel = bookworm ]; then version=$v12 libs="libmbedtls14 libmbedx509-1 libmbedcrypto7 libgpiod2" sonames="libmbedtls.so.14 libgpiod.so.2"
  else version=$v13 libs="libmbedtls21 libmbedx509-7 libmbedcrypto16 libgpiod3" sonames="libmbedtls.so.21 libgpiod.so.3"; fi
  for a in amd64 arm64 armhf; do
    deb=.build-packages/wisp_${version}_$a.deb
    [ -f "$deb" ] || fail "no $deb"
    [ "$(dpkg-deb -f "$deb" Architecture)" = "$a" ] || fail "$deb: wrong Architecture"
    [ "$(dpkg-deb -f "$deb" Version)" = "$version" ] || fail "$deb: wrong Version"
    dpkg-deb -c "$deb" >"$dir/contents"
    grep -q ' ./usr/bin/wisp$' "$dir/contents" || fail "$deb: no /usr/bin/wisp"
    unit=$([ $rel = bookworm ] && echo ./lib/systemd/system || echo ./usr/lib/systemd/system)/wisp.service
    grep -q " $unit\$" "$dir/contents" || fail "$deb: no $unit"
    grep -q " ${unit%/*}/wisp-forward@.service\$" "$dir/contents" || fail "$deb: no wisp-forward@.service"
    [ $rel = bookworm ] || ! grep -q ' \./lib/' "$dir/contents" || fail "$deb: files under the aliased /lib"
    [ "$(dpkg-deb --ctrl-tarfile "$deb" | tar -xO ./conffiles)" = /etc/wisp/wisp.conf ] || fail "$deb: conffiles"
    control=$(dpkg-deb --ctrl-tarfile "$deb" | tar -t)
    if [ $a = armhf ]; then
      grep -qx './preinst' <<<"$control" || fail "$deb: no preinst"
    else
      ! grep -qx './preinst' <<<"$control" || fail "$deb: a preinst outside armhf"
    fi
    depends=$(dpkg-deb -f "$deb" Depends)
    for l in $libs libc6 adduser; do
      grep -Eq "(^|, )$l( |,|$)" <<<"$depends" || fail "$deb: Depends lacks $l: $depends"
    done
    dpkg-deb --fsys-tarfile "$deb" | tar -xO ./usr/bin/wisp >"$dir/wisp.bin"
    needs=" $(readelf -d "$dir/wisp.bin" | sed -n 's/.*Shared library: \[\(.*\)\]/\1/p' | tr '\n' ' ')"
    for so in $sonames; do case $needs in *" $so "*) ;; *) fail "$deb: binary does not need $so (needs$needs)" ;; esac; done
    grep -q "^lintian $(basename "$deb"): 0 errors" "$dir/build.log" || fail "lintian reports errors for $deb"
    check "package $rel $a: $(basename "$deb") $(stat -c %s "$deb") bytes, lintian $(sed -n "s/^lintian $(basename "$deb"): //p" "$dir/build.log"); needs $sonames"
    check "depends $rel $a: $depends"
  done
done

# 2. Depends resolve against each release's package lists (the private apt state, an empty
#    dpkg status: a fresh system of that architecture).
root=$PWD
source Toolchain/package/release-apt.bash
for rel in bookworm trixie; do
  release_apt $rel
  version=$([ $rel = bookworm ] && echo "$v12" || echo "$v13")
  for a in amd64 arm64 armhf; do
    deb=$PWD/.build-packages/wisp_${version}_$a.deb
    apt-get "${RELEASE_APT[@]}" -o APT::Architecture=$a --no-install-recommends -s install "$deb" >"$dir/apt.out" 2>&1 ||
      { cat "$dir/apt.out" >&2; fail "$rel $a: Depends do not resolve (apt-get -s install)"; }
    grep -q "^Inst wisp ($version " "$dir/apt.out" || { cat "$dir/apt.out" >&2; fail "$rel $a: apt would not install wisp"; }
    got=""
    for l in $(dpkg-deb -f "$deb" Depends | sed 's/([^)]*)//g; s/,/ /g'); do
      line=$(grep -m1 "^Inst $l " "$dir/apt.out") || fail "$rel $a: apt does not install $l"
      got="$got $l $(sed 's/^Inst [^ ]* (\([^ ]*\) .*/\1/' <<<"$line"),"
    done
    check "apt-get -s install ($rel lists, $a): $(grep -c '^Inst ' "$dir/apt.out") packages;${got%,}"
  done
done

# 3. The trixie arm64 package unpacked into (a copy of) the trixie arm64 sysroot, run
#    under qemu-user from there.
Toolchain/setup.sh --sysroots-only >/dev/null || fail "Toolchain/setup.sh --sysroots-only failed"
need_tools qemu-aarch64-static:qemu-user-static
sr=$dir/sysroot-arm64
cp -al .build-trixie/sysroot-arm64 "$sr" 2>/dev/null || { rm -rf "$sr"; cp -a .build-trixie/sysroot-arm64 "$sr"; }
# As dpkg does on a merged-/usr system: the sysroot's /lib symlink stays a symlink.
dpkg-deb --fsys-tarfile .build-packages/wisp_${v13}_arm64.deb | tar -x --keep-directory-symlink -C "$sr"
[ -L "$sr/lib" ] || fail "unpacking replaced the sysroot's /lib symlink"
lib=$sr/usr/lib/aarch64-linux-gnu
for so in libmbedtls.so.21 libgpiod.so.3; do
  readelf -d "$sr/usr/bin/wisp" | grep -q "Shared library: \[$so\]" || fail "trixie arm64 wisp does not need $so"
  [ -e "$lib/$so" ] || fail "the trixie sysroot has no $so"
  [ -z "$(ls /usr/lib/aarch64-linux-gnu/$so /lib/aarch64-linux-gnu/$so 2>/dev/null)" ] ||
    fail "the host has $so for arm64: a run could not tell the sysroot's from it"
done
qwisp() { qemu-aarch64-static -L "$sr" "$sr/usr/bin/wisp" "$@"; }
qwisp --version >"$dir/version" 2>&1 || { cat "$dir/version" >&2; fail "trixie arm64 wisp --version under qemu"; }
grep -q "^wisp $upstream aarch64-linux-gnu embedded" "$dir/version" || fail "wisp --version: $(cat "$dir/version")"
qwisp config check "$sr/etc/wisp/wisp.conf" >"$dir/qcheck" 2>&1 || { cat "$dir/qcheck" >&2; fail "trixie arm64 wisp config check"; }
grep -q 'listen=0.0.0.0:7400' "$dir/qcheck" || fail "wisp config check: $(cat "$dir/qcheck")"
# /usr/share/wisp/boards is looked up under -L first: the boards come from the package.
qwisp boards >"$dir/qboards" 2>&1 && grep -q '^rpi4b ' "$dir/qboards" || fail "wisp boards under qemu: $(cat "$dir/qboards")"
check "trixie arm64 package in the trixie sysroot under qemu-aarch64-static -L: $(head -1 "$dir/version"); config check ok ($(sed -n 's/^  //p' "$dir/qcheck" | cut -d' ' -f1-2)); $(wc -l <"$dir/qboards") boards; needs $(readelf -d "$sr/usr/bin/wisp" | grep -o 'libmbedtls.so.[0-9]*\|libgpiod.so.[0-9]*' | tr '\n' ' ')(sysroot: $(readlink "$lib/libmbedtls.so.21"), $(readlink "$lib/libgpiod.so.3"); the host has neither)"
rm -rf "$sr"

# 4. The armhf preinst refuses ARMv6. Fake `uname` first in PATH, fake /proc/cpuinfo
#    bind-mounted in a private mount namespace (the real script, unchanged).
pi=$dir/preinst
mkdir -p "$pi/bin" "$pi/root/var/lib/dpkg/info" "$pi/root/var/lib/dpkg/updates"
dpkg-deb --ctrl-tarfile .build-packages/wisp_${v13}_armhf.deb | tar -xO ./preinst >"$pi/preinst"
chmod 755 "$pi/preinst"
cat >"$pi/zero-w" <<'CPU'
processor	: 0
model name	: ARMv6-compatible processor rev 7 (v6l)
BogoMIPS	: 997.08
Features	: half thumb fastmult vfp edsp java tls
CPU implementer	: 0x41
CPU architecture: 7
CPU variant	: 0x0
CPU part	: 0xb76
CPU revision	: 7

Hardware	: BCM2835
Revision	: 9000c1
Model		: Raspberry Pi Zero W Rev 1.1
CPU
sed 's/Zero W Rev 1.1/Model B Plus Rev 1.2/; s/9000c1/0010/' "$pi/zero-w" >"$pi/pi1"
cat >"$pi/pi3-32" <<'CPU'
processor	: 0
model name	: ARMv7 Processor rev 4 (v7l)
BogoMIPS	: 38.40
Features	: half thumb fastmult vfp edsp neon vfpv3 tls vfpv4 idiva idivt vfpd32 lpae evtstrm crc32
CPU implementer	: 0x41
CPU architecture: 7
CPU part	: 0xd03

Hardware	: BCM2835
Model		: Raspberry Pi 3 Model B Rev 1.2
CPU
cat >"$pi/pi4-64" <<'CPU'
processor	: 0
BogoMIPS	: 108.00
Features	: fp asimd evtstrm crc32 cpuid
CPU implementer	: 0x41
CPU architecture: 8
CPU part	: 0xd08

Model		: Raspberry Pi 4 Model B Rev 1.4
CPU
# with_cpu CPUINFO MACHINE COMMAND...: COMMAND with that /proc/cpuinfo and `uname -m`.
with_cpu() {
  local cpu=$1 machine=$2; shift 2
  printf '#!/bin/sh\n[ "$1" = -m ] && echo %s && exit 0\nexec /bin/uname "$@"\n' "$machine" >"$pi/bin/uname"
  chmod 755 "$pi/bin/uname"
  unshare -m sh -c 'mount --bind "$0" /proc/cpuinfo && PATH="$1:$PATH" && shift && exec "$@"' "$cpu" "$pi/bin" "$@"
}
expect_preinst() {  # expect_preinst CPUINFO MACHINE rc
  local rc=0
  with_cpu "$pi/$1" "$2" "$pi/preinst" install >"$pi/out" 2>&1 || rc=$?
  [ "$rc" = "$3" ] || fail "preinst on $1 ($2): exit $rc, expected $3: $(cat "$pi/out")"
  if [ "$3" = 1 ]; then grep -q 'needs ARMv7' "$pi/out" || fail "preinst on $1: no clear message: $(cat "$pi/out")"
  else [ ! -s "$pi/out" ] || fail "preinst on $1 printed: $(cat "$pi/out")"; fi
}
expect_preinst zero-w armv6l 1
expect_preinst pi1 armv6l 1
expect_preinst zero-w armv7l 1   # cpuinfo alone says v6l
expect_preinst pi3-32 armv7l 0
expect_preinst pi4-64 aarch64 0
expect_preinst pi3-32 armv6l 1   # uname alone says armv6l
with_cpu "$pi/zero-w" armv6l "$pi/preinst" install 2>"$pi/msg" || true
# The whole dpkg path: --unpack (preinst, then files) into a scratch root; scripts run
# without chroot so that the fake uname and cpuinfo apply. No postinst runs.
touch "$pi/root/var/lib/dpkg/status"
dpkg --root="$pi/root" --add-architecture armhf
rc=0
with_cpu "$pi/zero-w" armv6l dpkg --root="$pi/root" --force-script-chrootless --unpack \
  .build-packages/wisp_${v13}_armhf.deb >"$pi/dpkg.out" 2>&1 || rc=$?
[ "$rc" != 0 ] || fail "dpkg --unpack of the armhf package went through on ARMv6"
grep -q 'needs ARMv7' "$pi/dpkg.out" || fail "dpkg on ARMv6: no clear message: $(cat "$pi/dpkg.out")"
[ ! -e "$pi/root/usr/bin/wisp" ] || fail "dpkg on ARMv6 unpacked files"
with_cpu "$pi/pi3-32" armv7l dpkg --root="$pi/root" --force-script-chrootless --unpack \
  .build-packages/wisp_${v13}_armhf.deb >"$pi/dpkg.out" 2>&1 || { cat "$pi/dpkg.out" >&2; fail "dpkg --unpack on ARMv7 refused"; }
[ -x "$pi/root/usr/bin/wisp" ] || fail "dpkg on ARMv7 did not unpack /usr/bin/wisp"
check "armhf preinst: refused on Pi Zero W / Pi 1 cpuinfo or uname -m armv6l, accepted on Pi 3 (armv7l) and Pi 4 (aarch64); dpkg --unpack refused on ARMv6 (nothing unpacked), unpacked on ARMv7"
sed 's/^/  /' "$pi/msg"

# 5. Install the bookworm amd64 package on this (bookworm) machine.
version=$v12
deb=.build-packages/wisp_${version}_amd64.deb

# Install without a running systemd.
[ -d /run/systemd/system ] && echo "note: systemd is running here; postinst will start the service"
dpkg_retry -i "$deb" || fail "dpkg -i failed"
[ "$(dpkg-query -W -f='${Status}' wisp)" = "install ok installed" ] || fail "wisp not installed"
getent passwd wisp >/dev/null || fail "postinst did not create the wisp user"
[ "$(getent passwd wisp | cut -d: -f6)" = /var/lib/wisp ] || fail "wisp user has the wrong home"
[ -L /etc/systemd/system/multi-user.target.wants/wisp.service ] || fail "wisp.service not enabled"
check "dpkg -i: installed, user wisp (uid $(id -u wisp)), wisp.service enabled for multi-user.target"
(cd / && /usr/bin/wisp --version) | grep "^wisp $upstream x86_64-linux-gnu embedded" >/dev/null || fail "wisp --version"
(cd / && /usr/bin/wisp config check /etc/wisp/wisp.conf) >"$dir/check.out" || fail "default wisp.conf rejected"
grep -q 'listen=0.0.0.0:7400' "$dir/check.out" || fail "default wisp.conf does not listen on 0.0.0.0:7400"
(cd / && /usr/bin/wisp boards) | grep '^rpi4b ' >/dev/null || fail "installed board files not found"
man -w wisp | grep '/usr/share/man/man1/wisp.1.gz' >/dev/null || fail "man page not found"
check "installed: $(cd / && /usr/bin/wisp --version | head -1); default config ok ($(sed -n 's/^  //p' "$dir/check.out" | cut -d' ' -f1-2)); boards from /usr/share/wisp/boards"

# 6. import-boot.
wisp=/usr/bin/wisp
printf 'name = old\n' >"$dir/target.conf"
(cd / && $wisp config import-boot --from "$dir/none.conf" --to "$dir/target.conf") >"$dir/out" 2>&1 || fail "import-boot without a source failed"
[ ! -s "$dir/out" ] || fail "import-boot without a source printed: $(cat "$dir/out")"
[ "$(cat "$dir/target.conf")" = "name = old" ] || fail "import-boot without a source changed the target"
printf 'name = fresh\nlisten = 0.0.0.0:7400\nboard = rpi4b\n' >"$dir/boot.conf"
(cd / && $wisp config import-boot --from "$dir/boot.conf" --to "$dir/target.conf") || fail "valid import failed"
grep -q 'name = fresh' "$dir/target.conf" || fail "target not replaced"
bak=$(ls "$dir"/target.conf.bak-* 2>/dev/null)
[ "$(echo "$bak" | wc -w)" = 1 ] && [ "$(cat "$bak")" = "name = old" ] || fail "no backup with the old config"
[ ! -e "$dir/boot.conf" ] && [ -f "$dir/boot.conf.imported" ] || fail "source not retired as .imported"
! ls "$dir"/*.tmp-* >/dev/null 2>&1 || fail "temporary file left behind"
check "import-boot: valid file imported, old kept as $(basename "$bak"), source renamed to boot.conf.imported"
printf 'name = broken\nlisten = nowhere\n' >"$dir/boot.conf"
cp "$dir/target.conf" "$dir/before"
rc=0; (cd / && $wisp config import-boot --from "$dir/boot.conf" --to "$dir/target.conf") 2>"$dir/err" || rc=$?
[ "$rc" = 1 ] || fail "invalid import: exit $rc, expected 1"
grep -q "$dir/boot.conf:2: " "$dir/err" || fail "invalid import: no file:line in: $(cat "$dir/err")"
cmp -s "$dir/before" "$dir/target.conf" && [ -f "$dir/boot.conf" ] || fail "invalid import changed files"
[ "$(ls "$dir"/target.conf.bak-* | wc -l)" = 1 ] || fail "invalid import made a backup"
check "import-boot: invalid file refused ($(head -1 "$dir/err" | sed "s|$dir/||")), old config and source kept"
# Into the real conffile, so that purge has a modified conffile and a backup to remove.
printf 'name = imported\nlisten = 0.0.0.0:7400\n' >"$dir/boot.conf"
(cd / && $wisp config import-boot --from "$dir/boot.conf") >/dev/null || fail "import into /etc/wisp/wisp.conf failed"
ls /etc/wisp/wisp.conf.bak-* >/dev/null 2>&1 || fail "no backup in /etc/wisp"

# 7. systemd-analyze verify on the installed unit (needs /usr/bin/wisp and the man page).
if ! command -v systemd-analyze >/dev/null; then
  echo "note: installing systemd for systemd-analyze"
  DEBIAN_FRONTEND=noninteractive timeout 300 apt-get install -y -qq --no-install-recommends systemd >/dev/null || fail "cannot install systemd"
fi
timeout 60 systemd-analyze verify /lib/systemd/system/wisp.service >"$dir/verify" 2>&1 || { cat "$dir/verify" >&2; fail "systemd-analyze verify failed"; }
[ ! -s "$dir/verify" ] || { cat "$dir/verify" >&2; fail "systemd-analyze verify printed warnings"; }
# The forward template, through an instance of it.
timeout 60 systemd-analyze verify /lib/systemd/system/wisp-forward@check.service >"$dir/verify" 2>&1 || { cat "$dir/verify" >&2; fail "systemd-analyze verify wisp-forward@ failed"; }
[ ! -s "$dir/verify" ] || { cat "$dir/verify" >&2; fail "systemd-analyze verify wisp-forward@ printed warnings"; }
[ ! -e /etc/systemd/system/multi-user.target.wants/wisp-forward@.service ] || fail "the package enabled wisp-forward@"
check "systemd-analyze verify /lib/systemd/system/wisp.service and wisp-forward@check.service: clean ($(systemd-analyze --version | head -1))"

# 8. Remove, then purge.
dpkg_retry -r wisp || fail "dpkg -r failed"
for f in /usr/bin/wisp /lib/systemd/system/wisp.service /lib/systemd/system/wisp-forward@.service /usr/share/wisp /usr/share/doc/wisp /usr/share/man/man1/wisp.1.gz; do
  [ ! -e "$f" ] || fail "dpkg -r left $f"
done
[ -f /etc/wisp/wisp.conf ] || fail "dpkg -r removed the conffile"
[ ! -e /etc/systemd/system/multi-user.target.wants/wisp.service ] || fail "dpkg -r left the unit enabled"
check "dpkg -r: binary, unit, boards, docs gone; /etc/wisp/wisp.conf kept"
dpkg_retry -P wisp || fail "dpkg -P failed"
[ ! -e /etc/wisp ] || fail "dpkg -P left /etc/wisp: $(ls -A /etc/wisp)"
[ ! -e /var/lib/wisp ] || fail "dpkg -P left /var/lib/wisp"
left=$(find /etc/systemd /var/lib/systemd/deb-systemd-helper-enabled /var/lib/systemd/deb-systemd-helper-masked \
  -name '*wisp*' 2>/dev/null || true)
[ -z "$left" ] || fail "dpkg -P left: $left"
! dpkg-query -W -f='${Status}' wisp 2>/dev/null | grep -q 'installed\|config-files' || fail "wisp still known to dpkg"
check "dpkg -P: /etc/wisp, /var/lib/wisp and the unit's enablement gone"
