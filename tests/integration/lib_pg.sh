# lib_pg.sh - a private PostgreSQL server for one test or benchmark
# (sourced, not run; tests/run.sh skips files named lib*).
#
#   pg_start        install the Debian packages if missing, initdb in a temp
#                   folder, start on 127.0.0.1:$PG_PORT (a free port), create
#                   the user weir (with a password) and its database wh.
#                   Returns 1 with a message on stderr when it cannot.
#   pg_sql SQL      run SQL in wh as the superuser; prints rows unaligned,
#                   '|' between fields, no header; NULL prints as \N.
#   pg_kill         kill -9 the postmaster and every process it started
#   pg_restart      start it again after pg_kill (crash recovery runs)
#   pg_stop         stop it (also done at exit) and remove the folder
#
# After pg_start: PG_DSN (libpq key=value for user weir, password included),
# PG_PORT, PG_DIR, PG_PASSWORD, PG_BIN. Extra server settings: PG_OPTS
# (e.g. "-c fsync=off") before pg_start. Everything binds 127.0.0.1 and
# every wait is bounded. Source lib.sh (if wanted) before this file: this
# one chains the EXIT trap it finds.
#
# PostgreSQL refuses to run as root: as root, the server runs as the
# Debian package's user postgres (created when missing), which owns the
# temp folder.

: "${WEIR_ROOT:=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}"

. "$WEIR_ROOT/tests/integration/lib_wh.sh"

PG_PASSWORD=${PG_PASSWORD:-weir-pg-$RANDOM$RANDOM}
PG_OPTS=${PG_OPTS:-}
PG_DIR=
PG_PORT=
PG_DSN=
_pg_run=()

_pg_find_bin() {
    PG_BIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
    [ -n "$PG_BIN" ] && [ -x "$PG_BIN/initdb" ] && command -v psql >/dev/null
}

_pg_ctl_start() {
    "${_pg_run[@]}" "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -l "$PG_DIR/server.log" -w -t 60 \
        -o "-c listen_addresses=127.0.0.1 -p $PG_PORT -k $PG_DIR $PG_OPTS" start >/dev/null
}

_pg_psql() { # DB SQL
    PGCONNECT_TIMEOUT=10 psql -X -q -h "$PG_DIR" -p "$PG_PORT" -U postgres -d "$1" \
        -v ON_ERROR_STOP=1 -A -t -P null='\N' -c "$2"
}

pg_sql() { _pg_psql wh "$1"; }

pg_start() {
    if ! _pg_find_bin; then
        wh_install || true
        _pg_find_bin || { echo "lib_pg: PostgreSQL is not installed and could not be" >&2; return 1; }
    fi
    PG_DIR=$(mktemp -d /tmp/weir-pg.XXXXXX)
    wh_at_exit pg_stop
    if [ "$(id -u)" = 0 ]; then
        id -u postgres >/dev/null 2>&1 ||
            useradd --system --home-dir /var/lib/postgresql --shell /bin/false postgres ||
            { echo "lib_pg: cannot create the user postgres" >&2; return 1; }
        chown postgres: "$PG_DIR"
        _pg_run=(runuser -u postgres --)
    fi
    printf '%s\n' "$PG_PASSWORD" >"$PG_DIR/pw"
    chmod 600 "$PG_DIR/pw"
    [ "$(id -u)" = 0 ] && chown postgres: "$PG_DIR/pw"
    # Local (socket) connections trust, so pg_sql needs no password; TCP
    # asks for one, so the DSN's password is really used.
    if ! "${_pg_run[@]}" "$PG_BIN/initdb" -D "$PG_DIR/data" -U postgres --pwfile="$PG_DIR/pw" \
        --auth-local=trust --auth-host=scram-sha-256 -E UTF8 --locale=C --no-sync \
        >"$PG_DIR/initdb.log" 2>&1; then
        echo "lib_pg: initdb failed:" >&2; tail -n 20 "$PG_DIR/initdb.log" >&2; return 1
    fi
    local try
    for try in 1 2 3; do
        PG_PORT=$(wh_free_port) || { echo "lib_pg: no free port" >&2; return 1; }
        _pg_ctl_start && break
        # Another process took the port between the check and the bind?
        if [ "$try" = 3 ] || ! grep -q "could not bind\|Address already in use" "$PG_DIR/server.log"; then
            echo "lib_pg: the server did not start:" >&2; tail -n 20 "$PG_DIR/server.log" >&2; return 1
        fi
    done
    _pg_psql postgres "CREATE ROLE weir LOGIN PASSWORD '$PG_PASSWORD'" >/dev/null &&
        _pg_psql postgres "CREATE DATABASE wh OWNER weir" >/dev/null ||
        { echo "lib_pg: cannot create the user or the database" >&2; return 1; }
    PG_DSN="host=127.0.0.1 port=$PG_PORT dbname=wh user=weir password=$PG_PASSWORD"
    return 0
}

# The postmaster's pid, from its pid file.
_pg_pm() { head -n 1 "$PG_DIR/data/postmaster.pid" 2>/dev/null; }

_pg_gone() { ! kill -0 "$1" 2>/dev/null; }

pg_kill() {
    local pm kids p
    pm=$(_pg_pm)
    [ -n "$pm" ] || return 0
    kids=$(ps -o pid= --ppid "$pm" 2>/dev/null)
    kill -9 "$pm" $kids 2>/dev/null
    for p in $pm $kids; do wh_wait 20 _pg_gone "$p"; done
    return 0
}

pg_restart() {
    _pg_ctl_start || { tail -n 20 "$PG_DIR/server.log" >&2; return 1; }
}

pg_stop() {
    [ -n "$PG_DIR" ] || return 0
    if [ -n "$(_pg_pm)" ]; then
        "${_pg_run[@]}" "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -m immediate -w -t 20 stop \
            >/dev/null 2>&1 || pg_kill
    fi
    rm -rf "$PG_DIR"
    PG_DIR=
}
