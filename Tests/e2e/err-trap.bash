# Sourced by lib.bash (and by test scripts that do not use it): under `set -e`, a command
# that fails where nobody expected it says what it was and where before the script exits:
#
#   FAILED: line 54 of Tests/e2e/image.sh: kill -9 "$qpid" 2> /dev/null exited with status 1
#     in cut_power, called from line 82 of Tests/e2e/image.sh
#
# `set -E` makes the ERR trap fire inside functions too. Commands whose failure is
# expected (an if/while/until condition, the left of && or ||, after !) trigger neither
# set -e nor the trap. fail() exits on purpose (`exit` does not trigger ERR). Where -e is
# off (a `set +e` stretch, a command substitution) a failure does not end the script and
# nothing is printed; a failed command substitution is reported by the assignment that
# used it. A failure inside a ( subshell ) is reported there and once more by the
# subshell's line. The EXIT trap (cleanup) is untouched and runs after the report.
# One report per shell: inside an EXIT trap bash (5.2) still names the command that ran
# when the trap began (BASH_COMMAND) and counts lines from the trap's text, so a failure in
# the cleanup after a report (or after fail(), which sets err_trap_done) is not reported
# again; keep EXIT traps free of failing commands (`|| true`).
set -E
err_trap_report() {  # err_trap_report STATUS COMMAND PIPESTATUS...
  local status=$1 cmd=$2 i src line where=
  shift 2
  [[ $- == *e* ]] || return 0  # errexit off here: the script goes on
  [ -z "${err_trap_done:-}" ] || return 0
  err_trap_done=1
  src=${BASH_SOURCE[1]:-?} line=${BASH_LINENO[0]}
  [ "${BASH_SUBSHELL:-0}" -gt 0 ] && where=" (in a subshell)"
  if [ $# -gt 1 ]; then  # a pipeline: BASH_COMMAND is only its last command
    echo "FAILED: line $line of $src: a pipeline ending in \`$cmd\` exited with status $status$where (statuses of its commands: $*)" >&2
    [ -r "$src" ] && echo "  line $line: $(sed -n "${line}{s/^[[:space:]]*//;p}" "$src")" >&2
  else
    echo "FAILED: line $line of $src: $cmd exited with status $status$where" >&2
  fi
  for ((i = 1; i < ${#FUNCNAME[@]} - 1; i++)); do
    echo "  in ${FUNCNAME[i]}, called from line ${BASH_LINENO[i]} of ${BASH_SOURCE[i + 1]}" >&2
  done
  return 0
}
trap 'err_trap_report $? "$BASH_COMMAND" "${PIPESTATUS[@]}"' ERR
