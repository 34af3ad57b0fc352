# lib_mariadb.sh - a private MariaDB server for one test or benchmark
# (sourced, not run; tests/run.sh skips files named lib*).
#
#   my_start        install the Debian packages if missing, mariadb-install-db
#                   in a temp folder, start mariadbd on 127.0.0.1:$MY_PORT (a
#                   free port), create the database wh and the user weir
#                   (with a password). Returns 1 with a message when it cannot.
#   my_sql SQL      run SQL in wh as root over the server's socket; prints
#                   rows tab-separated, no header, NULL as NULL.
#   my_kill         kill -9 the server
#   my_restart      start it again after my_kill (InnoDB crash recovery)
#   my_stop         stop it (also done at exit) and remove the folder
#
# After my_start: MY_DSN (key=value as src/sinks/ reads it, password
# included), MY_PORT, MY_DIR, MY_SOCK, MY_PASSWORD. Extra server options:
# MY_OPTS before my_start. Everything binds 127.0.0.1 and every wait is
# bounded. --no-defaults: nothing from /etc/mysql is read, so a machine's
# own configuration cannot change what is tested.

: "${WEIR_ROOT:=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}"

. "$WEIR_ROOT/tests/integration/lib_wh.sh"

MY_PASSWORD=${MY_PASSWORD:-weir-my-$RANDOM$RANDOM}
MY_OPTS=${MY_OPTS:-}
MY_DIR=
MY_PORT=
MY_SOCK=
MY_DSN=
_my_pid=

_my_find() {
    command -v mariadbd >/dev/null || [ -x /usr/sbin/mariadbd ] || return 1
    command -v mariadb-install-db >/dev/null && command -v mariadb >/dev/null &&
        command -v mariadb-admin >/dev/null
}

_my_bin() { command -v mariadbd || echo /usr/sbin/mariadbd; }

_my_ping() { mariadb-admin --no-defaults --socket="$MY_SOCK" -uroot --connect-timeout=2 ping; }

_my_server_start() {
    local user=()
    [ "$(id -u)" = 0 ] && user=(--user=root)
    # shellcheck disable=SC2086
    "$(_my_bin)" --no-defaults --datadir="$MY_DIR/data" --socket="$MY_SOCK" \
        --port="$MY_PORT" --bind-address=127.0.0.1 --pid-file="$MY_DIR/mariadbd.pid" \
        --log-error="$MY_DIR/error.log" --tmpdir="$MY_DIR" "${user[@]}" \
        --skip-name-resolve --skip-log-bin --local-infile=1 \
        --innodb-buffer-pool-size=128M --max-allowed-packet=64M $MY_OPTS \
        </dev/null >/dev/null 2>&1 &
    _my_pid=$!
    disown "$_my_pid" # no "Killed" notice from bash when a test kills it
    local i
    for i in $(seq 1 600); do
        _my_ping >/dev/null 2>&1 && return 0
        _my_gone "$_my_pid" && break    # it gave up (a taken port?)
        sleep 0.1
    done
    [ "${1:-}" = quiet ] || { echo "lib_mariadb: the server did not start:" >&2; tail -n 20 "$MY_DIR/error.log" >&2; }
    kill -9 "$_my_pid" 2>/dev/null
    _my_pid=
    return 1
}

my_sql() {
    mariadb --no-defaults --default-character-set=utf8mb4 --socket="$MY_SOCK" -uroot \
        --connect-timeout=10 -N -B wh -e "$1"
}

my_start() {
    if ! _my_find; then
        wh_install || true
        _my_find || { echo "lib_mariadb: MariaDB is not installed and could not be" >&2; return 1; }
    fi
    MY_DIR=$(mktemp -d /tmp/weir-my.XXXXXX)
    MY_SOCK=$MY_DIR/sock
    wh_at_exit my_stop
    local user=()
    [ "$(id -u)" = 0 ] && user=(--user=root)
    if ! mariadb-install-db --no-defaults --datadir="$MY_DIR/data" "${user[@]}" \
        --auth-root-authentication-method=normal --skip-test-db >"$MY_DIR/install.log" 2>&1; then
        echo "lib_mariadb: mariadb-install-db failed:" >&2; tail -n 20 "$MY_DIR/install.log" >&2
        return 1
    fi
    local try
    for try in 1 2 3; do
        MY_PORT=$(wh_free_port) || { echo "lib_mariadb: no free port" >&2; return 1; }
        _my_server_start quiet && break
        # Another process took the port between the check and the bind?
        if [ "$try" = 3 ] || ! grep -q "Address already in use" "$MY_DIR/error.log"; then
            echo "lib_mariadb: the server did not start:" >&2; tail -n 20 "$MY_DIR/error.log" >&2
            return 1
        fi
        : >"$MY_DIR/error.log"
    done
    mariadb --no-defaults --socket="$MY_SOCK" -uroot -e "
        CREATE DATABASE wh CHARACTER SET utf8mb4;
        CREATE USER 'weir'@'127.0.0.1' IDENTIFIED BY '$MY_PASSWORD';
        GRANT ALL ON wh.* TO 'weir'@'127.0.0.1';" ||
        { echo "lib_mariadb: cannot create the database or the user" >&2; return 1; }
    MY_DSN="host=127.0.0.1 port=$MY_PORT db=wh user=weir password=$MY_PASSWORD"
    return 0
}

_my_gone() { ! kill -0 "$1" 2>/dev/null; }

my_kill() {
    [ -n "$_my_pid" ] || return 0
    kill -9 "$_my_pid" 2>/dev/null
    wh_wait 20 _my_gone "$_my_pid"
    _my_pid=
    return 0
}

my_restart() { _my_server_start; }

my_stop() {
    [ -n "$MY_DIR" ] || return 0
    if [ -n "$_my_pid" ]; then
        kill -TERM "$_my_pid" 2>/dev/null
        wh_wait 30 _my_gone "$_my_pid" || my_kill
        _my_pid=
    fi
    rm -rf "$MY_DIR"
    MY_DIR=
}
