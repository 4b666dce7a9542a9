# Toolchain/image/debian.bash — sourced by Toolchain/image.sh and Tests/e2e/pi3-leds.sh:
# Debian arm64 packages of one release (bookworm or trixie) through a private apt state.
# The mirrors are this machine's own (the URIs its apt sources give for bookworm and
# bookworm-security, asked for the wanted release's suites); no host name is written into
# the project, and the system's apt sources, lists and state are not touched.
#
#   debian_apt RELEASE DIR       private apt state for RELEASE in DIR; exports APT_CONFIG
#   debian_fetch CACHE PKG...    apt-get download into CACHE what is not there yet;
#                                KERNEL stands for the current linux-image-<abi>-arm64,
#                                a name ending in "?" is optional (no error if absent)
#   debian_deb CACHE PKG         the newest cached .deb of PKG (empty if none)

debian_mirror_for() {  # SUITE: the first URI of this machine's apt sources that serves SUITE
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

debian_apt() {  # debian_apt RELEASE DIR
  local rel=$1 dir=$2 main_uri security_uri
  case $rel in bookworm|trixie) ;; *) echo "debian.bash: unknown release '$rel' (bookworm, trixie)" >&2; return 2 ;; esac
  main_uri=$(debian_mirror_for bookworm) || { echo "debian.bash: this machine's apt sources have no bookworm suite" >&2; return 1; }
  security_uri=$(debian_mirror_for bookworm-security) || { echo "debian.bash: this machine's apt sources have no bookworm-security suite" >&2; return 1; }
  mkdir -p "$dir"/{lists/partial,cache/archives/partial,preferences.d}
  local kr=/usr/share/keyrings/debian-archive-keyring.gpg
  cat >"$dir/sources.list" <<EOF
deb [arch=arm64 signed-by=$kr] $main_uri $rel main non-free-firmware
deb [arch=arm64 signed-by=$kr] $security_uri $rel-security main non-free-firmware
EOF
  cat >"$dir/apt.conf" <<EOF
Dir::Etc::SourceList "$dir/sources.list";
Dir::Etc::SourceParts "/nonexistent";
Dir::Etc::PreferencesParts "$dir/preferences.d";
Dir::State "$dir";
Dir::State::Lists "$dir/lists";
Dir::State::status "$dir/status";
Dir::Cache "$dir/cache";
APT::Architecture "arm64";
APT::Architectures { "arm64"; };
Debug::NoLocking "1";
EOF
  touch "$dir/status"
  export APT_CONFIG=$dir/apt.conf
  debian_updated=
}

debian_deb() {  # debian_deb CACHE PKG
  ls "$1/${2}_"*.deb 2>/dev/null | sort -V | tail -1
}

debian_fetch() {  # debian_fetch CACHE PKG...
  local cache=$1; shift
  local missing=() optional=() p try abi list
  mkdir -p "$cache"
  for p in "$@"; do
    case $p in
      KERNEL) ls "$cache"/linux-image-*-arm64_*.deb >/dev/null 2>&1 || missing+=(KERNEL) ;;
      *\?) [ -n "$(debian_deb "$cache" "${p%\?}")" ] || optional+=("${p%\?}") ;;
      *) [ -n "$(debian_deb "$cache" "$p")" ] || missing+=("$p") ;;
    esac
  done
  [ ${#missing[@]} -gt 0 ] || [ ${#optional[@]} -gt 0 ] || return 0
  for try in 1 2 3; do
    if [ -z "${debian_updated:-}" ]; then
      apt-get update -o Acquire::Retries=3 >/dev/null 2>&1 || { sleep $((try * 5)); continue; }
      debian_updated=1
    fi
    list=("${missing[@]}")
    if [[ " ${list[*]} " == *" KERNEL "* ]]; then
      abi=$(apt-cache depends linux-image-arm64 2>/dev/null | sed -n 's/.*Depends: \(linux-image-[0-9].*-arm64\).*/\1/p' | head -1)
      [ -n "$abi" ] || { sleep $((try * 5)); continue; }
      list=("${list[@]/KERNEL/$abi}")
    fi
    if [ ${#list[@]} -eq 0 ] || (cd "$cache" && apt-get download -o Acquire::Retries=3 "${list[@]}" >/dev/null 2>&1); then
      missing=()
      break
    fi
    debian_updated=  # lists may be stale (a package moved on): update again
    sleep $((try * 5))
  done
  for p in "${optional[@]}"; do (cd "$cache" && apt-get download -o Acquire::Retries=3 "$p" >/dev/null 2>&1) || true; done
  [ ${#missing[@]} -eq 0 ] || { echo "debian.bash: cannot download ${missing[*]}" >&2; return 1; }
}
