#!/usr/bin/env bash
# The .deb packages (Toolchain/package.sh) on this machine, as root:
#  - all three build and lintian reports no errors;
#  - the amd64 one installs with dpkg -i without a running systemd (postinst copes),
#    creates the `wisp` user, enables the unit, and the installed binary, default
#    config and board files work;
#  - `wisp config import-boot --from X --to Y`: a valid file is imported with a backup,
#    an invalid one refused with file:line and the old config kept, no file is a no-op;
#  - `systemd-analyze verify` passes on the installed unit;
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

# 1. Build all three packages; lintian must report no errors.
Toolchain/package.sh >"$dir/build.log" 2>&1 || { cat "$dir/build.log" >&2; fail "Toolchain/package.sh failed"; }
cat "$dir/build.log"
version=$(sed -n 's/.*static let version = "\(.*\)".*/\1/p' Sources/WispCore/Version.swift)-1
for a in amd64 arm64 armhf; do
  deb=.build-packages/wisp_${version}_$a.deb
  [ -f "$deb" ] || fail "no $deb"
  [ "$(dpkg-deb -f "$deb" Architecture)" = "$a" ] || fail "$deb: wrong Architecture"
  dpkg-deb -c "$deb" >"$dir/contents"
  grep -q ' ./usr/bin/wisp$' "$dir/contents" || fail "$deb: no /usr/bin/wisp"
  [ "$(dpkg-deb --ctrl-tarfile "$deb" | tar -xO ./conffiles)" = /etc/wisp/wisp.conf ] || fail "$deb: conffiles"
  grep -q "^lintian $a: 0 errors" "$dir/build.log" || fail "lintian reports errors for $deb"
  check "package $a: $(stat -c %s "$deb") bytes, lintian $(sed -n "s/^lintian $a: //p" "$dir/build.log")"
done
deb=.build-packages/wisp_${version}_amd64.deb

# 2. Install without a running systemd.
[ -d /run/systemd/system ] && echo "note: systemd is running here; postinst will start the service"
dpkg_retry -i "$deb" || fail "dpkg -i failed"
[ "$(dpkg-query -W -f='${Status}' wisp)" = "install ok installed" ] || fail "wisp not installed"
getent passwd wisp >/dev/null || fail "postinst did not create the wisp user"
[ "$(getent passwd wisp | cut -d: -f6)" = /var/lib/wisp ] || fail "wisp user has the wrong home"
[ -L /etc/systemd/system/multi-user.target.wants/wisp.service ] || fail "wisp.service not enabled"
check "dpkg -i: installed, user wisp (uid $(id -u wisp)), wisp.service enabled for multi-user.target"
(cd / && /usr/bin/wisp --version) | grep "^wisp ${version%-1} x86_64-linux-gnu embedded" >/dev/null || fail "wisp --version"
(cd / && /usr/bin/wisp config check /etc/wisp/wisp.conf) >"$dir/check.out" || fail "default wisp.conf rejected"
grep -q 'listen=0.0.0.0:7400' "$dir/check.out" || fail "default wisp.conf does not listen on 0.0.0.0:7400"
(cd / && /usr/bin/wisp boards) | grep '^rpi4b ' >/dev/null || fail "installed board files not found"
man -w wisp | grep '/usr/share/man/man1/wisp.1.gz' >/dev/null || fail "man page not found"
check "installed: $(cd / && /usr/bin/wisp --version | head -1); default config ok ($(sed -n 's/^  //p' "$dir/check.out" | cut -d' ' -f1-2)); boards from /usr/share/wisp/boards"

# 3. import-boot.
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

# 4. systemd-analyze verify on the installed unit (needs /usr/bin/wisp and the man page).
if ! command -v systemd-analyze >/dev/null; then
  echo "note: installing systemd for systemd-analyze"
  DEBIAN_FRONTEND=noninteractive timeout 300 apt-get install -y -qq --no-install-recommends systemd >/dev/null || fail "cannot install systemd"
fi
timeout 60 systemd-analyze verify /lib/systemd/system/wisp.service >"$dir/verify" 2>&1 || { cat "$dir/verify" >&2; fail "systemd-analyze verify failed"; }
[ ! -s "$dir/verify" ] || { cat "$dir/verify" >&2; fail "systemd-analyze verify printed warnings"; }
check "systemd-analyze verify /lib/systemd/system/wisp.service: clean ($(systemd-analyze --version | head -1))"

# 5. Remove, then purge.
dpkg_retry -r wisp || fail "dpkg -r failed"
for f in /usr/bin/wisp /lib/systemd/system/wisp.service /usr/share/wisp /usr/share/doc/wisp /usr/share/man/man1/wisp.1.gz; do
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
