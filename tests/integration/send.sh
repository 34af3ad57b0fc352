#!/usr/bin/env bash
# tests/integration/send.sh - `weir send` against a test listener
# (tests/tools/sink.c, built on src/net/) over real sockets on 127.0.0.1.
#
# Checks that what arrives is exactly what was sent: one connection with
# sendfile, pipes, several files with and without a final newline, lines
# dealt over many connections in order, the rate limit, over-long
# records, and the exit codes for refused connections, servers that never
# close, and usage errors.
set -u
: "${WEIR:?set WEIR to the weir binary}" "${WEIR_BUILD:?set WEIR_BUILD}"
SINK="$WEIR_BUILD/tools/sink"
tmp=$(mktemp -d /tmp/weir-send.XXXXXX)
sink_pid=
cleanup() {
    [ -n "$sink_pid" ] && kill "$sink_pid" 2>/dev/null
    rm -rf "$tmp"
}
trap cleanup EXIT
pass=0 fail=0
ok() { pass=$((pass + 1)); echo "ok   $1"; }
bad() { fail=$((fail + 1)); echo "FAIL $1"; }
check() { # name command...
    local name=$1; shift
    if "$@"; then ok "$name"; else bad "$name"; fi
}

# start_sink [sink options]: a sink on a free port; sets $port.
start_sink() {
    rm -f "$tmp/port" "$tmp/summary"
    "$SINK" --port-file "$tmp/port" "$@" 127.0.0.1:0 >"$tmp/summary" 2>"$tmp/sink.err" &
    sink_pid=$!
    for _ in $(seq 1 500); do
        [ -s "$tmp/port" ] && break
        sleep 0.01
    done
    port=$(cat "$tmp/port")
}

# stop_sink: SIGTERM (drain, close), wait; the summary is in $summary.
stop_sink() {
    kill -TERM "$sink_pid"
    wait "$sink_pid"
    local rc=$?
    sink_pid=
    summary=$(cat "$tmp/summary")
    [ "$rc" = 0 ] || echo "sink exit $rc: $(cat "$tmp/sink.err")"
}

field() { sed -E "s/.*\\b$1=([0-9]+).*/\\1/" <<<"$summary"; }

# Test data: numbered JSON lines, one of them long.
for i in $(seq 1 20000); do
    printf '{"seq":%d,"sensor":"s-%d","value":%d.5}\n' "$i" $((i % 17)) "$i"
done >"$tmp/a.ndjson"
printf '{"x":1}\n{"x":2}\n{"x":3}' >"$tmp/nonl.ndjson"   # no final newline
: >"$tmp/empty.ndjson"
head -c 3000000 /dev/zero | tr '\0' 'z' >"$tmp/long.txt"
printf '\n{"after":"long"}\n' >>"$tmp/long.txt"

# 1. One file, one connection (sendfile): exact bytes, exit 0.
start_sink --out "$tmp/got"
"$WEIR" send -v "127.0.0.1:$port" "$tmp/a.ndjson" 2>"$tmp/send.err"
rc=$?
stop_sink
check "sendfile: exit 0" test "$rc" = 0
check "sendfile: content identical" cmp -s "$tmp/a.ndjson" "$tmp/got"
check "sendfile: records counted" test "$(field records)" = 20000
check "sendfile: -v summary" grep -q "20000 lines" "$tmp/send.err"

# 2. stdin from a pipe, and '-'.
start_sink --out "$tmp/got"
cat "$tmp/a.ndjson" | "$WEIR" send "127.0.0.1:$port"
rc=$?
stop_sink
check "pipe: exit 0" test "$rc" = 0
check "pipe: content identical" cmp -s "$tmp/a.ndjson" "$tmp/got"

# 3. Several files: a missing final newline is added between files.
start_sink --out "$tmp/got"
cat "$tmp/nonl.ndjson" | "$WEIR" send "127.0.0.1:$port" "$tmp/nonl.ndjson" "$tmp/empty.ndjson" - "$tmp/nonl.ndjson"
rc=$?
stop_sink
printf '{"x":1}\n{"x":2}\n{"x":3}\n%.0s' 1 2 3 >"$tmp/want"
check "files: exit 0" test "$rc" = 0
check "files: newline added between files" cmp -s "$tmp/want" "$tmp/got"
check "files: no record cut at EOF" test "$(field at_eof)" = 0

# 4. --conns 8: whole lines, each connection's lines in file order.
start_sink --threads 2 --out "$tmp/got" --tag
"$WEIR" send --conns 8 "127.0.0.1:$port" "$tmp/a.ndjson" "$tmp/nonl.ndjson"
rc=$?
stop_sink
check "conns: exit 0" test "$rc" = 0
check "conns: 8 connections" test "$(field conns)" = 8
cut -d' ' -f3- "$tmp/got" | sort >"$tmp/got.sorted"
cat "$tmp/a.ndjson" "$tmp/nonl.ndjson" | sed -e '$a\' | sort >"$tmp/want.sorted"
check "conns: same lines" cmp -s "$tmp/want.sorted" "$tmp/got.sorted"
# Per connection, the seq numbers rise (round robin: by 8).
check "conns: file order per connection" awk '
    $3 ~ /"seq"/ { match($3, /"seq":[0-9]+/); s = substr($3, RSTART + 6, RLENGTH - 6) + 0
                   if (($1 in last) && s != last[$1] + 8) bad = 1; last[$1] = s }
    END { exit bad }' "$tmp/got"

# 5. --rate: 300 lines at 1000/s take about 0.3 s.
head -n 300 "$tmp/a.ndjson" >"$tmp/300.ndjson"
start_sink
t0=$(date +%s%N)
"$WEIR" send --rate 1000 "127.0.0.1:$port" "$tmp/300.ndjson"
rc=$?
ms=$((($(date +%s%N) - t0) / 1000000))
stop_sink
check "rate: exit 0" test "$rc" = 0
check "rate: 300 records" test "$(field records)" = 300
check "rate: about 0.3 s (took ${ms} ms)" test "$ms" -ge 250 -a "$ms" -lt 3000

# 6. A 3 MB line through a 1 MiB limit: one truncated record, then the next.
start_sink --max-record 1048576
"$WEIR" send --conns 2 "127.0.0.1:$port" "$tmp/long.txt"
rc=$?
stop_sink
check "long: exit 0" test "$rc" = 0
check "long: truncated once" test "$(field truncated)" = 1
check "long: record after it" test "$(field records)" = 2

# 7. A slow server: the sender waits (backpressure), nothing is lost.
start_sink --delay-us 20 --out "$tmp/got"
"$WEIR" send "127.0.0.1:$port" "$tmp/a.ndjson"
rc=$?
stop_sink
check "slow server: exit 0" test "$rc" = 0
check "slow server: content identical" cmp -s "$tmp/a.ndjson" "$tmp/got"

# 8. Errors: refused (3, names the address), never closed (3), usage (2).
start_sink
dead=$port
stop_sink
"$WEIR" send "127.0.0.1:$dead" "$tmp/300.ndjson" 2>"$tmp/err"
rc=$?
check "refused: exit 3" test "$rc" = 3
check "refused: message names the address" grep -q "127.0.0.1:$dead: connecting: connection refused" "$tmp/err"
start_sink --no-accept
t0=$(date +%s%N)
"$WEIR" send --timeout 1 "127.0.0.1:$port" "$tmp/300.ndjson" 2>"$tmp/err"
rc=$?
ms=$((($(date +%s%N) - t0) / 1000000))
stop_sink
check "no close: exit 3" test "$rc" = 3
check "no close: says so" grep -q "did not close" "$tmp/err"
check "no close: within the timeout (${ms} ms)" test "$ms" -lt 5000
"$WEIR" send 2>/dev/null; rc=$?
check "usage: no address, exit 2" test "$rc" = 2
"$WEIR" send --conns 0 127.0.0.1:1 2>/dev/null; rc=$?
check "usage: --conns 0, exit 2" test "$rc" = 2
"$WEIR" send 127.0.0.1:1 "$tmp/missing" 2>"$tmp/err"; rc=$?
check "missing file: exit 3, named" test "$rc" = 3 -a -n "$(grep missing "$tmp/err")"

# 9. Empty input: nothing sent, clean exit.
start_sink
"$WEIR" send "127.0.0.1:$port" </dev/null
rc=$?
stop_sink
check "empty: exit 0" test "$rc" = 0
check "empty: 0 records" test "$(field records)" = 0

echo "$pass passed, $fail failed"
[ "$fail" = 0 ]
