#!/usr/bin/env bash
# Install what a fresh Debian 12 machine lacks to build and test weir.
#
#   scripts/install-deps.sh            build + test packages, DuckDB
#   scripts/install-deps.sh bench      also the peers the benchmarks compare against
#   scripts/install-deps.sh warehouse  also PostgreSQL and MariaDB servers (integration tests)
#
# Debian packages come from apt; DuckDB comes from the npm registry, pinned by
# deps/duckdb.lock (package, version, sha512 integrity) and unpacked into
# .deps/duckdb (ignored by git). Every step is skipped when already done, so
# running it again is cheap.
set -euo pipefail
cd "$(dirname "$0")/.."

SUDO=""
[ "$(id -u)" = 0 ] || SUDO="sudo"

BUILD_PKGS="build-essential pkg-config clang libclang-rt-14-dev libyaml-dev libpcre2-dev \
libcmocka-dev libzstd-dev libssl-dev librdkafka-dev libpq-dev libmariadb-dev \
protobuf-compiler python3"
# The machine image ships Node.js and npm (used only to fetch DuckDB); Debian's
# are the fallback.
command -v npm >/dev/null 2>&1 || BUILD_PKGS="$BUILD_PKGS nodejs npm"
BENCH_PKGS="syslog-ng-core python3-pydantic python3-uvloop kcat hyperfine time stunnel4"
WAREHOUSE_PKGS="postgresql mariadb-server mariadb-client postgresql-client"

want="$BUILD_PKGS"
for extra in "$@"; do
    case "$extra" in
    bench) want="$want $BENCH_PKGS" ;;
    warehouse) want="$want $WAREHOUSE_PKGS" ;;
    *) echo "install-deps: unknown set '$extra' (bench, warehouse)" >&2; exit 2 ;;
    esac
done

missing=""
for p in $want; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
        missing="$missing $p"
done
if [ -n "$missing" ]; then
    echo "install-deps: apt-get install$missing"
    export DEBIAN_FRONTEND=noninteractive
    $SUDO apt-get update -qq
    # policy-rc.d keeps Debian from starting the servers system-wide: tests
    # start their own instances on loopback.
    if ! [ -e /usr/sbin/policy-rc.d ]; then
        printf '#!/bin/sh\nexit 101\n' | $SUDO tee /usr/sbin/policy-rc.d >/dev/null
        $SUDO chmod +x /usr/sbin/policy-rc.d
        trap '$SUDO rm -f /usr/sbin/policy-rc.d' EXIT
    fi
    $SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi

# DuckDB from the npm registry, verified against the lock file.
dest=.deps/duckdb
if [ -f "$dest/.stamp" ] && cmp -s "$dest/.stamp" deps/duckdb.lock; then
    exit 0
fi
rm -rf "$dest" && mkdir -p "$dest/lib" "$dest/include"
tmp=$(mktemp -d)
while read -r name version integrity; do
    case "$name" in ''|'#'*) continue ;; esac
    file=$(cd "$tmp" && npm pack --silent "$name@$version" 2>/dev/null | tail -n 1)
    got="sha512-$(openssl dgst -sha512 -binary "$tmp/$file" | base64 -w0)"
    if [ "$got" != "$integrity" ]; then
        echo "install-deps: $name@$version: integrity mismatch" >&2
        echo "  want $integrity" >&2
        echo "  got  $got" >&2
        exit 3
    fi
    case "$name" in
    @duckdb/node-bindings-linux-x64)
        tar -xzf "$tmp/$file" -C "$tmp" package/libduckdb.so
        mv "$tmp/package/libduckdb.so" "$dest/lib/" ;;
    duckdb)
        tar -xzf "$tmp/$file" -C "$tmp" package/src/duckdb/src/include/duckdb.h
        mv "$tmp/package/src/duckdb/src/include/duckdb.h" "$dest/include/" ;;
    esac
    rm -rf "$tmp/package"
done < deps/duckdb.lock
rm -rf "$tmp"
cp deps/duckdb.lock "$dest/.stamp"
echo "install-deps: DuckDB installed in $dest"
