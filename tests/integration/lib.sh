# lib.sh - helpers for integration tests (sourced, not run).
#
#   ok "what" COMMAND...        passes when COMMAND exits 0
#   eq "what" EXPECTED ACTUAL   passes when the strings are equal
#   finish                      prints "N passed, N failed", exits 1 on failure
#
# $WEIR is the weir binary under test; $TMP a private temp dir removed at exit.
# Scripts that start servers register their pids with `cleanup_pid PID` so
# they are killed at exit whatever happens.
set -u
: "${WEIR:?WEIR must point at the weir binary}"
WEIR_ROOT=${WEIR_ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
TMP=$(mktemp -d /tmp/weir-it.XXXXXX)
_pass=0 _fail=0 _pids=()
_cleanup() {
    for p in "${_pids[@]}"; do kill -9 "$p" 2>/dev/null; done
    rm -rf "$TMP"
}
trap _cleanup EXIT
cleanup_pid() { _pids+=("$1"); }

ok() {
    local what=$1; shift
    if "$@" >/dev/null 2>&1; then
        _pass=$((_pass + 1)); echo "ok   $what"
    else
        _fail=$((_fail + 1)); echo "FAIL $what  (command: $*)"
    fi
}

eq() {
    if [ "$2" = "$3" ]; then
        _pass=$((_pass + 1)); echo "ok   $1"
    else
        _fail=$((_fail + 1)); echo "FAIL $1"
        echo "     expected: $(printf '%s' "$2" | head -c 2000)"
        echo "     actual:   $(printf '%s' "$3" | head -c 2000)"
    fi
}

# free_port: a TCP port on 127.0.0.1 that nothing listens on right now.
free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

# wait_port PORT [SECONDS]: wait until something listens on 127.0.0.1:PORT.
wait_port() {
    local i
    for i in $(seq 1 $((${2:-10} * 20))); do
        (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
        sleep 0.05
    done
    return 1
}

finish() {
    echo "$_pass passed, $_fail failed"
    [ "$_fail" = 0 ]
}
