# lib_wh.sh - what the warehouse server libraries share (sourced by
# lib_pg.sh and lib_mariadb.sh, not run; tests/run.sh skips files named lib*).
#
#   wh_at_exit FUNCTION  run FUNCTION at exit, before the EXIT trap found
#   wh_free_port         a free TCP port on 127.0.0.1
#   wh_wait S CMD...     retry CMD every 0.1 s for at most S seconds
#   wh_install           install the warehouse packages
#
# Sourcing it twice is harmless: the second time does nothing.

: "${WEIR_ROOT:=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}"

if ! declare -F wh_at_exit >/dev/null; then
    _wh_hooks=()
    _wh_prev_trap=$(trap -p EXIT | sed -E "s/^trap -- '(.*)' EXIT$/\\1/")
    _wh_on_exit() {
        local h
        for h in "${_wh_hooks[@]}"; do "$h" >/dev/null 2>&1; done
        [ -n "$_wh_prev_trap" ] && eval "$_wh_prev_trap"
    }
    trap _wh_on_exit EXIT
    # wh_at_exit FUNCTION: run FUNCTION at exit (before the previous trap).
    wh_at_exit() { _wh_hooks+=("$1"); }

    # wh_free_port: a TCP port on 127.0.0.1 that nothing listens on now,
    # below the kernel's ephemeral range (a port some connection uses as
    # its local end cannot be bound either). A race with another process
    # is still possible: the start functions retry with another port.
    wh_free_port() {
        local p i lo
        lo=$(awk '{print $1}' /proc/sys/net/ipv4/ip_local_port_range 2>/dev/null)
        [ "${lo:-0}" -gt 12000 ] 2>/dev/null || lo=32768
        for i in $(seq 1 200); do
            p=$((10000 + RANDOM % (lo - 10000)))
            (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null || { echo "$p"; return 0; }
        done
        return 1
    }

    # wh_wait SECONDS COMMAND...: retry COMMAND every 0.1 s until it succeeds.
    wh_wait() {
        local secs=$1 i; shift
        for i in $(seq 1 $((secs * 10))); do
            "$@" >/dev/null 2>&1 && return 0
            sleep 0.1
        done
        return 1
    }

    # wh_install: the warehouse packages, when a command is missing.
    wh_install() {
        echo "installing the warehouse packages (scripts/install-deps.sh warehouse)" >&2
        "$WEIR_ROOT/scripts/install-deps.sh" warehouse >&2
    }
fi
