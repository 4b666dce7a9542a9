# Shared helpers for the end-to-end scripts (sourced, not run).
set -euo pipefail
# An unexpected failure names its command, file and line (FAILED: line N of …).
source "$(dirname "${BASH_SOURCE[0]}")/err-trap.bash"
cd "${WISP_ROOT:-$(dirname "${BASH_SOURCE[0]}")/../..}"
fail() { echo "FAILED: $*" >&2; exit 1; }
check() { echo "check $*"; }
pids=()
# Every node a test starts keeps its key and journal under here (never /var/lib/wisp).
state=$(mktemp -d /tmp/wisp-state.XXXXXX)
cleanup() {
  for p in "${pids[@]:-}"; do [ -n "$p" ] && kill -9 "$p" 2>/dev/null || true; done
  rm -rf "$state"
}
trap cleanup EXIT
