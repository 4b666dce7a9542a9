# Shared helpers for the end-to-end scripts (sourced, not run).
set -euo pipefail
# An unexpected failure names its command, file and line (FAILED: line N of …).
source "$(dirname "${BASH_SOURCE[0]}")/err-trap.bash"
cd "${WISP_ROOT:-$(dirname "${BASH_SOURCE[0]}")/../..}"
fail() { echo "FAILED: $*" >&2; err_trap_done=1; exit 1; }
check() { echo "check $*"; }
# wait_udp PORT [NETNS]: returns once a socket of this network namespace (or of NETNS) is
# bound to UDP PORT (at most 5 s). A service started in the background (Python takes
# 0.1-0.5 s to start) must listen before traffic goes to it: datagrams to a closed port
# come back as ICMP port-unreachable, and the sender's next send fails (ECONNREFUSED).
wait_udp() {
  local hex in=(); hex=$(printf ':%04X ' "$1")
  [ -z "${2:-}" ] || in=(ip netns exec "$2")
  for _ in $(seq 100); do "${in[@]}" grep -q "$hex" /proc/net/udp && return 0; sleep 0.05; done
  fail "nothing listens on UDP port $1${2:+ in $2} after 5 s"
}
# need_tools COMMAND:PACKAGE...: installs the packages of the missing commands (apt-get,
# retried: mirrors may be mid-sync; without recommends, which can pull in a kernel; dpkg
# without fsync, several times faster); fails naming what is still missing.
need_tools() {
  local t try pkgs=()
  for t in "$@"; do command -v "${t%%:*}" >/dev/null || pkgs+=("${t#*:}"); done
  [ ${#pkgs[@]} -eq 0 ] && return 0
  for try in 1 2 3; do
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends -o DPkg::Lock::Timeout=120 -o Dpkg::Options::=--force-unsafe-io "${pkgs[@]}" >/dev/null && break
    apt-get update -o Acquire::Retries=3 >/dev/null || true
    sleep $((try * 5))
  done
  for t in "$@"; do command -v "${t%%:*}" >/dev/null || fail "cannot install ${t#*:} (for ${t%%:*})"; done
}
pids=()
# Every node a test starts keeps its key and journal under here (never /var/lib/wisp).
state=$(mktemp -d /tmp/wisp-state.XXXXXX)
cleanup() {
  for p in "${pids[@]:-}"; do [ -n "$p" ] && kill -9 "$p" 2>/dev/null || true; done
  rm -rf "$state"
}
trap cleanup EXIT
