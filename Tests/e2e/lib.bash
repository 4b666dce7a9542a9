# Shared helpers for the end-to-end scripts (sourced, not run).
set -euo pipefail
cd "${WISP_ROOT:-$(dirname "${BASH_SOURCE[0]}")/../..}"
fail() { echo "FAILED: $*" >&2; exit 1; }
check() { echo "check $*"; }
pids=()
cleanup() { for p in "${pids[@]:-}"; do [ -n "$p" ] && kill -9 "$p" 2>/dev/null || true; done; }
trap cleanup EXIT
