# Toolchain/package/release-apt.bash — a private apt state per Debian release (sourced by
# Toolchain/package.sh and Tests/e2e/package.sh, not run).
#
# Each release's package lists live under $root/.build-packages/apt/RELEASE (main suite,
# arm64 + armhf + amd64), apart from the host's own apt: the Depends of a package for a
# release are read from that release's library packages, never from the build machine's
# /var/lib/dpkg, and the test resolves them against that release's lists. The mirror is the
# one the host's own apt sources use (no host name is written into the project).
#
#   release_apt RELEASE                 sets RELEASE_APT (apt-get options), updates the lists
#                                       when there are none yet
#   release_fetch RELEASE ARCH PKG...   downloads PKG:ARCH (cached) and prints each .deb's path
#   release_apt_update RELEASE          refreshes the lists (release_fetch does it once when a
#                                       download fails, e.g. after a point release)
# Needs $root (the checkout).

release_apt_dir() { echo "$root/.build-packages/apt/$1"; }

# The first URI of a Debian source in the host's apt configuration (deb822 or one-line),
# skipping security mirrors: they serve only RELEASE-security.
release_apt_mirror() {
  local f uri=
  for f in /etc/apt/sources.list.d/*.sources; do
    [ -f "$f" ] && [ -z "$uri" ] || continue
    uri=$(awk 'BEGIN { RS = ""; FS = "\n" }
      { u = ""; deb = 0; sec = 0
        for (i = 1; i <= NF; i++) {
          if ($i ~ /^Types:/ && $i ~ /[ \t]deb([ \t]|$)/) deb = 1
          if ($i ~ /^URIs:/) { sub(/^URIs:[ \t]*/, "", $i); split($i, w, " "); u = w[1] }
          if ($i ~ /^Suites:/ && $i ~ /security/) sec = 1
        }
        if (deb && !sec && u != "") { print u; exit } }' "$f")
  done
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
    [ -f "$f" ] && [ -z "$uri" ] || continue
    uri=$(awk '$1 == "deb" { i = 2; if ($2 ~ /^\[/) { while ($i !~ /\]$/) i++; i++ }
                             if ($(i + 1) !~ /security/) { print $i; exit } }' "$f")
  done
  echo "$uri"
}

release_apt() {
  local rel=$1 d mirror
  d=$(release_apt_dir "$rel")
  RELEASE_APT=(-o "Dir::State=$d/state" -o "Dir::Cache=$d/cache" -o "Dir::Etc::SourceList=$d/sources.list"
    -o Dir::Etc::SourceParts=/dev/null -o "Dir::State::status=$d/state/status"
    -o APT::Architectures::=amd64 -o APT::Architectures::=arm64 -o APT::Architectures::=armhf
    -o Debug::NoLocking=1 -o APT::Sandbox::User=root -o Acquire::Retries=3 -q)
  if [ ! -f "$d/sources.list" ]; then
    mirror=$(release_apt_mirror)
    [ -n "$mirror" ] || { echo "release-apt: no Debian mirror in the host's apt sources" >&2; return 1; }
    mkdir -p "$d/state/lists/partial" "$d/cache/archives/partial" "$d/debs"
    touch "$d/state/status"
    echo "deb [arch=arm64,armhf,amd64 signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $mirror $rel main" >"$d/sources.list"
  fi
  ls "$d"/state/lists/*_Packages* >/dev/null 2>&1 || release_apt_update "$rel"
}

release_apt_update() {
  local rel=$1 i
  for i in 1 2 3; do
    apt-get "${RELEASE_APT[@]}" update >/dev/null && return 0
    echo "release-apt: apt-get update for $rel failed (try $i)" >&2; sleep $((i * 5))
  done
  echo "release-apt: cannot read $rel's package lists" >&2; return 1
}

release_fetch() {
  local rel=$1 arch=$2 p deb list=() dir
  shift 2
  release_apt "$rel"
  dir=$(release_apt_dir "$rel")/debs/$arch
  mkdir -p "$dir"
  for p in "$@"; do ls "$dir/${p}_"*.deb >/dev/null 2>&1 || list+=("$p:$arch"); done
  if [ ${#list[@]} -gt 0 ]; then
    if ! (cd "$dir" && apt-get "${RELEASE_APT[@]}" download "${list[@]}" >/dev/null 2>&1); then
      release_apt_update "$rel"
      (cd "$dir" && apt-get "${RELEASE_APT[@]}" download "${list[@]}" >/dev/null) ||
        { echo "release-apt: cannot download ${list[*]} from $rel" >&2; return 1; }
    fi
  fi
  for p in "$@"; do
    deb=$(ls "$dir/${p}_"*.deb | sort -V | tail -1)
    echo "$deb"
  done
}
