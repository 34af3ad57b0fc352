# lib_kafka.sh - helpers for the Kafka integration tests (sourced after
# lib.sh, not run).
#
#   start_mock TOPIC:PARTS...   a mock cluster (tests/tools/kafka_mock) on
#                               127.0.0.1; sets $BOOT (bootstrap list)
#   produce TOPIC ARGS...       kafka_mock produce to $BOOT
#   caught_up TOPIC GROUP [S]   wait until GROUP has committed every offset
#                               of TOPIC (at most S seconds, default 60)
#   lake_ids DIR                the "id" of every raw record under DIR, one
#                               a line, sorted (duplicates kept)
#   gen_records FIRST COUNT     NDJSON records {"id":N,"ts":NOW,"v":...}
#   assigned_after LOG B N [S]  wait for N partitions assigned in LOG since
#                               it had B "starts at" lines
#   stop_mock                   SIGTERM the cluster, wait for it
#
# $KOPTS goes into each test's kafka source: short sessions, so that the
# group notices a killed weir in about 3 s instead of librdkafka's 45 s.
MOCK="$WEIR_BUILD/tools/kafka_mock"
KOPTS="options: {session.timeout.ms: 3000, heartbeat.interval.ms: 300}"
NOW=$(date +%s)

start_mock() {
    local args=() t
    for t in "$@"; do args+=(--topic "$t"); done
    rm -f "$TMP/mock.boot"
    "$MOCK" "${args[@]}" --time-limit 900 --port-file "$TMP/mock.boot" \
        >/dev/null 2>"$TMP/mock.err" &
    cleanup_pid $!
    MOCK_PID=$!
    for _ in $(seq 1 200); do
        [ -s "$TMP/mock.boot" ] && break
        sleep 0.05
    done
    BOOT=$(cat "$TMP/mock.boot")
}

produce() {
    local topic=$1; shift
    "$MOCK" produce "$BOOT" "$topic" "$@"
}

# committed_total TOPIC GROUP -> "committed high" summed over partitions
committed_total() {
    "$MOCK" offsets "$BOOT" "$1" --group "$2" 2>/dev/null |
        awk '{c += ($4 < 0 ? 0 : $4); h += $3} END {print c + 0, h + 0}'
}

caught_up() {
    local topic=$1 group=$2 secs=${3:-60} i ch=
    for i in $(seq 1 $((secs * 5))); do
        ch=$(committed_total "$topic" "$group")
        [ "${ch% *}" = "${ch#* }" ] && [ "${ch#* }" != 0 ] && return 0
        sleep 0.2
    done
    echo "     not caught up: committed/high = $ch"
    return 1
}

lake_ids() {
    find "$1" -path '*/raw/*' -name '*.ndjson*' -exec cat {} + 2>/dev/null |
        grep -oE '"id": *[0-9]+' | sed 's/.*[: ]//' | sort -n
}

gen_records() {
    awk -v a="$1" -v n="$2" -v ts="$NOW" 'BEGIN {
        for (i = a; i < a + n; i++)
            printf "{\"id\":%d,\"ts\":%d,\"sensor\":\"s-%d\",\"v\":%d.25}\n", i, ts, i % 13, i % 1000
    }'
}

# assigned_after LOG BEFORE N [S]: wait until LOG has N more "starts at"
# lines (one per partition assigned) than BEFORE.
assigned_after() {
    local i
    for i in $(seq 1 $((${4:-60} * 10))); do
        [ "$(grep -c " starts at " "$1" 2>/dev/null)" -ge $(($2 + $3)) ] && return 0
        sleep 0.1
    done
    return 1
}

# stop_mock: SIGTERM the cluster and wait (quiet, unlike the kill -9 at exit).
stop_mock() {
    [ -n "${MOCK_PID:-}" ] || return 0
    kill -TERM "$MOCK_PID" 2>/dev/null
    wait "$MOCK_PID" 2>/dev/null
    MOCK_PID=
}
