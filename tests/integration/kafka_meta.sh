#!/usr/bin/env bash
# tests/integration/kafka_meta.sh - the Kafka metadata columns
# (_kafka_topic, _kafka_partition, _kafka_offset, _kafka_key,
# _kafka_key_b64, _kafka_timestamp; docs/kafka.md) end to end:
#
#   - records produced with keys to known partitions are read back by
#     `weir query` with the topic, partition, offset (every offset exactly
#     once), key (base64 when not UTF-8) and timestamp they had in Kafka,
#     before and after `weir compact`;
#   - a schema with additionalProperties: false still accepts them, and its
#     table has no _extra; a schema-less pipeline has them typed, never in
#     _extra; a record that carries one of the names itself is quarantined;
#   - a schema that declares one of the names is refused by `weir check`
#     and `weir serve`;
#   - /metrics, /status, the status page and `weir status` show the
#     consumer's counters equal to what was produced, and a lag of 0 on
#     every partition once it has caught up.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib_kafka.sh"

D=$TMP/data
MPORT=$(free_port)
start_mock m:3
ok "mock cluster up ($BOOT)" test -n "$BOOT"

cat >"$TMP/closed.json" <<'EOF'
{"type": "object", "required": ["id", "ts"], "additionalProperties": false,
 "properties": {"id": {"type": "integer"}, "ts": {"type": "integer"}}}
EOF
cat >"$TMP/w.yaml" <<EOF
data_dir: $D
workers: 2
metrics: 127.0.0.1:$MPORT
pipelines:
  - name: closed
    source:
      kafka: {brokers: "$BOOT", topic: m, group: gc, batch: {max_wait: 100ms}, $KOPTS}
    schema: $TMP/closed.json
    time_field: ts
  - name: open
    source:
      kafka: {brokers: "$BOOT", topic: m, group: go, batch: {max_wait: 100ms}, $KOPTS}
    time_field: ts
EOF

# Two hours ago: the partition is closed, so `weir compact` takes it.
TS=$((NOW - 7200))
recs() { # FIRST COUNT
    awk -v a="$1" -v n="$2" -v ts="$TS" 'BEGIN {
        for (i = a; i < a + n; i++) printf "{\"id\":%d,\"ts\":%d}\n", i, ts }'
}
recs 0 100 >"$TMP/p0.ndjson"
recs 100 50 >"$TMP/p1.ndjson"
recs 150 50 >"$TMP/p2.ndjson"
echo "{\"id\":999,\"ts\":$TS,\"_kafka_offset\":5}" >>"$TMP/p2.ndjson"
t0=$(($(date +%s) * 1000))
produce m --partition 0 --key alpha "$TMP/p0.ndjson" 2>"$TMP/produce.log"
produce m --partition 1 --key "$(printf 'k\377\376')" "$TMP/p1.ndjson" 2>>"$TMP/produce.log"
produce m --partition 2 "$TMP/p2.ndjson" 2>>"$TMP/produce.log"
t1=$(($(date +%s) * 1000 + 1000))
eq "produced 100 + 50 + 51" "100 50 51" "$(grep -o '^[0-9]* produced' "$TMP/produce.log" | cut -d' ' -f1 | tr '\n' ' ' | sed 's/ $//')"

"$WEIR" serve -c "$TMP/w.yaml" 2>"$TMP/serve.log" &
srv=$!
cleanup_pid "$srv"
ok "closed: the group commits every offset" caught_up m gc 90
ok "open: the group commits every offset" caught_up m go 90

# The consumer's counters: 201 messages (200 valid, 1 quarantined).
metrics() { curl -s --max-time 5 "http://127.0.0.1:$MPORT/metrics"; }
lag_zero() {
    local i m
    for i in $(seq 1 50); do
        m=$(metrics)
        [ "$(grep -c '^weir_kafka_consumer_lag{pipeline="closed",topic="m",partition="[0-2]"} 0$' <<<"$m")" = 3 ] &&
            [ "$(grep -c '^weir_kafka_consumer_lag{pipeline="open",topic="m",partition="[0-2]"} 0$' <<<"$m")" = 3 ] &&
            return 0
        sleep 0.2
    done
    grep kafka_consumer_lag <<<"$m"
    return 1
}
ok "metrics: the lag of every partition reaches 0" lag_zero
M=$(metrics)
pbytes=$(cat "$TMP"/p[012].ndjson | awk '{s += length($0)} END {print s}')
mval() { awk -v k="$1{pipeline=\"$2\"}" '$1 == k {print $2}' <<<"$M"; }
for t in closed open; do
    eq "metrics: $t: messages, bytes, duplicates, commit errors, partitions" \
        "201 $pbytes 0 0 3" "$(mval weir_kafka_messages_total $t) $(mval weir_kafka_bytes_total $t) $(mval weir_kafka_duplicates_skipped_total $t) $(mval weir_kafka_commit_errors_total $t) $(mval weir_kafka_partitions_assigned $t)"
    ok "metrics: $t: batches and commits counted" \
        test "$(mval weir_kafka_batches_total $t)" -ge 1 -a "$(mval weir_kafka_commits_total $t)" -ge 1
done
ok "metrics: HELP and TYPE lines" grep -q '^# TYPE weir_kafka_consumer_lag gauge$' <<<"$M"
S=$(curl -s --max-time 5 "http://127.0.0.1:$MPORT/status")
ok "/status: kafka counters and lag per partition" grep -qE \
    '"name":"closed".*"kafka":\{"messages_total":201,.*"partitions_assigned":3,"lag_total":0,"lag":\[\{"topic":"m","partition":[0-2],"next_offset":[0-9]+,"high_watermark":[0-9]+,"lag":0\}' <<<"$S"
ok "status page: the Kafka table" bash -c "curl -s --max-time 5 http://127.0.0.1:$MPORT/ | grep -q '<h2>Kafka</h2>.*<td>closed<td>201<td>$pbytes<td>'"
WS=$("$WEIR" status -c "$TMP/w.yaml" 2>&1)
ok "weir status: kafka line" grep -qE '^  kafka +201 messages in [0-9]+ batches, 0 duplicates skipped' <<<"$WS"
ok "weir status: lag line" grep -qE '^  lag +3 partitions assigned, 0 messages behind: m/[0-2] 0 m/[0-2] 0 m/[0-2] 0$' <<<"$WS"
kill -TERM "$srv"
wait "$srv"
eq "SIGTERM: exit 0" 0 $?

q() { "$WEIR" query -c "$TMP/w.yaml" --format csv "$1" 2>&1 | tail -n +2; }
PER="SELECT _kafka_topic, _kafka_partition, count(*), count(DISTINCT _kafka_offset),
       min(_kafka_offset), max(_kafka_offset), min(_kafka_key), min(_kafka_key_b64)
     FROM %s GROUP BY ALL ORDER BY 2"
want_per="m,0,100,100,0,99,alpha,
m,1,50,50,0,49,,a//+
m,2,50,50,0,49,,"
# Offsets are produced in id order per partition: id - first id = offset
# (open: id is in _extra).
OFF="SELECT count(*) FROM %s WHERE _kafka_offset <> %s - CASE _kafka_partition
       WHEN 0 THEN 0 WHEN 1 THEN 100 ELSE 150 END
       OR _kafka_timestamp NOT BETWEEN $t0 AND $t1"
check_all() { # WHEN
    local t id
    for t in closed open; do
        id=id
        [ "$t" = open ] && id="CAST(_extra->>'id' AS BIGINT)"
        # shellcheck disable=SC2059
        eq "$1: $t: topic, partition, offsets once each, keys" "$want_per" "$(q "$(printf "$PER" "$t")")"
        # shellcheck disable=SC2059
        eq "$1: $t: each record's offset and timestamp" "0" "$(q "$(printf "$OFF" "$t" "$id")")"
    done
    eq "$1: open: nothing of Kafka in _extra" "200,0" \
        "$(q "SELECT count(_extra), count(*) FILTER (WHERE CAST(_extra AS VARCHAR) LIKE '%kafka%') FROM open")"
}
check_all "raw"
eq "closed: typed columns, no _extra" "id,BIGINT
ts,BIGINT
_kafka_topic,VARCHAR
_kafka_partition,BIGINT
_kafka_offset,BIGINT
_kafka_key,VARCHAR
_kafka_key_b64,VARCHAR
_kafka_timestamp,BIGINT
date,DATE
hour,INTEGER" "$(q "SELECT column_name, column_type FROM (DESCRIBE closed)")"
eq "open: typed columns and _extra" "_kafka_topic,VARCHAR
_kafka_partition,BIGINT
_kafka_offset,BIGINT
_kafka_key,VARCHAR
_kafka_key_b64,VARCHAR
_kafka_timestamp,BIGINT
_extra,JSON
date,DATE
hour,INTEGER" "$(q "SELECT column_name, column_type FROM (DESCRIBE open)")"

Q=$(find "$D/closed/quarantine" -name '*.ndjson' -exec cat {} +)
ok "closed: the record with _kafka_offset fails the schema (additional property)" \
    grep -q '"reason":"invalid".*"raw":"{\\"id\\":999' <<<"$Q"
Q=$(find "$D/open/quarantine" -name '*.ndjson' -exec cat {} +)
ok "open: the record with _kafka_offset is quarantined, path /_kafka_offset" \
    grep -q '"reason":"invalid","path":"/_kafka_offset"' <<<"$Q"
eq "open: one record quarantined" 1 "$(grep -c . <<<"$Q")"

"$WEIR" compact -c "$TMP/w.yaml" 2>"$TMP/compact.err"
eq "compact: exit 0" 0 $?
eq "compact: no raw segment left" "" "$(find "$D" -path '*/raw/*' -name '*.ndjson*')"
ok "compact: Parquet files" compgen -G "$D/closed/parquet/*/*/*.parquet"
check_all "parquet"

# A schema that declares one of the names is refused at start.
sed 's/"ts": {"type": "integer"}}/"ts": {"type": "integer"}, "_Kafka_Key": {"type": "string"}}/' \
    "$TMP/closed.json" >"$TMP/clash.json"
sed -e "s|$TMP/closed.json|$TMP/clash.json|" -e "s|$D|$TMP/d2|" "$TMP/w.yaml" >"$TMP/clash.yaml"
out=$("$WEIR" check -q -c "$TMP/clash.yaml" 2>&1)
eq "check: exit 2" 2 $?
ok "check: names the pipeline and the member" grep -q 'pipeline closed: the schema declares "_kafka_key"' <<<"$out"
out=$(timeout 30 "$WEIR" serve -c "$TMP/clash.yaml" 2>&1)
rc=$?
ok "serve: refuses to start (exit $rc)" test "$rc" != 0 -a "$rc" != 124
ok "serve: names the member" grep -q '"_kafka_key", a member weir adds' <<<"$out"
ok "check: the closed schema is fine" "$WEIR" check -q -c "$TMP/w.yaml"
ok "no sanitizer report" bash -c "! grep -q Sanitizer '$TMP/serve.log'"
stop_mock
finish
