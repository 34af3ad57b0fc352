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
#     every partition once it has caught up;
#   - records the schema refused, with keys on known partitions, taken
#     back by `weir requeue` after a schema fix carry the _kafka_* columns
#     they had in Kafka, each offset once: from quarantine's "kafka" field
#     exactly (a key longer than the peer shows included), and from the
#     peer for lines without it (a cut key is NULL, never a wrong one).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib_kafka.sh"

D=$TMP/data
MPORT=$(free_port)
start_mock m:3 r:3
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

# requeue judges a record carrying one of the names as serve did: it stays.
before=$(find "$D/open/quarantine" -name '*.ndjson' -exec cat {} +)
"$WEIR" requeue -c "$TMP/w.yaml" open >"$TMP/rq_open.out" 2>&1
eq "requeue open: the record with _kafka_offset stays (exit 1)" 1 $?
eq "requeue open: its line unchanged" "$before" "$(find "$D/open/quarantine" -name '*.ndjson' -exec cat {} +)"

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

# ---- requeue: the members rebuilt from quarantine ----
# v must be a string: every record is refused until the schema is fixed.
cat >"$TMP/strict.json" <<'EOF2'
{"type": "object", "required": ["id", "ts", "v"], "additionalProperties": false,
 "properties": {"id": {"type": "integer"}, "ts": {"type": "integer"},
                "v": {"type": "string"}}}
EOF2
sed 's/"v": {"type": "string"}/"v": {"type": "number"}/' "$TMP/strict.json" >"$TMP/fixed.json"
cp "$TMP/strict.json" "$TMP/rq.json"
D3=$TMP/d3
cat >"$TMP/rq.yaml" <<EOF2
data_dir: $D3
pipelines:
  - name: rqnew
    source:
      kafka: {brokers: "$BOOT", topic: r, group: rn, batch: {max_wait: 100ms}, $KOPTS}
    schema: $TMP/rq.json
    time_field: ts
  - name: rqold
    source:
      kafka: {brokers: "$BOOT", topic: r, group: ro, batch: {max_wait: 100ms}, $KOPTS}
    schema: $TMP/rq.json
    time_field: ts
EOF2
vrecs() { # FIRST COUNT
    awk -v a="$1" -v n="$2" -v ts="$TS" 'BEGIN {
        for (i = a; i < a + n; i++) printf "{\"id\":%d,\"ts\":%d,\"v\":%d}\n", i, ts, i }'
}
LONGKEY=$(printf 'L%.0s' $(seq 1 299))x # 300 bytes: the peer shows 256 of them
vrecs 0 5 >"$TMP/r0.ndjson"
vrecs 100 4 >"$TMP/r1.ndjson"
vrecs 200 3 >"$TMP/r2.ndjson"
vrecs 300 2 >"$TMP/r2b.ndjson"
vrecs 400 1 >"$TMP/r2c.ndjson"
t0=$(($(date +%s) * 1000))
produce r --partition 0 --key "zone é 7" "$TMP/r0.ndjson" 2>"$TMP/rprod.log"
produce r --partition 1 --key "$(printf 'k\377\376')" "$TMP/r1.ndjson" 2>>"$TMP/rprod.log"
produce r --partition 2 --key "$LONGKEY" "$TMP/r2.ndjson" 2>>"$TMP/rprod.log"
produce r --partition 2 --key "short..." "$TMP/r2b.ndjson" 2>>"$TMP/rprod.log"
produce r --partition 2 "$TMP/r2c.ndjson" 2>>"$TMP/rprod.log"
t1=$(($(date +%s) * 1000 + 1000))
eq "requeue: produced 5 + 4 + 3 + 2 + 1" "5 4 3 2 1" "$(grep -o '^[0-9]* produced' "$TMP/rprod.log" | cut -d' ' -f1 | tr '\n' ' ' | sed 's/ $//')"
"$WEIR" serve -c "$TMP/rq.yaml" 2>"$TMP/rserve.log" &
srv=$!
cleanup_pid "$srv"
ok "requeue: rqnew's group commits every offset" caught_up r rn 90
ok "requeue: rqold's group commits every offset" caught_up r ro 90
kill -TERM "$srv"
wait "$srv"
eq "requeue: serve exits 0" 0 $?
Q=$(find "$D3/rqnew/quarantine" -name '*.ndjson' -exec cat {} +)
eq "requeue: all 15 records quarantined" 15 "$(grep -c '"reason":"invalid"' <<<"$Q")"
ok "quarantine: the long key, whole, in \"kafka\"" \
    grep -q "\"kafka\":{\"topic\":\"r\",\"partition\":2,\"offset\":0,\"key\":\"$LONGKEY\",\"timestamp\":[0-9]*}" <<<"$Q"
ok "quarantine: a key that is not UTF-8 as key_b64" \
    grep -q '"kafka":{"topic":"r","partition":1,"offset":3,"key_b64":"a//+","timestamp":[0-9]*}' <<<"$Q"
ok "quarantine: no key, no key member" \
    grep -q '"kafka":{"topic":"r","partition":2,"offset":5,"timestamp":[0-9]*}' <<<"$Q"
# rqold: lines as weir wrote them before "kafka" existed.
for f in $(find "$D3/rqold/quarantine" -name '*.ndjson'); do
    sed -i 's/,"kafka":{[^}]*}//' "$f"
done
eq "requeue: rqold's lines have no \"kafka\"" 0 \
    "$(find "$D3/rqold/quarantine" -name '*.ndjson' -exec cat {} + | grep -c '"kafka"')"

# A schema still wrong, differently: every line gets a new verdict.
sed 's/"v": {"type": "string"}/"v": {"type": "boolean"}/' "$TMP/strict.json" >"$TMP/rq.json"
"$WEIR" requeue -c "$TMP/rq.yaml" rqnew >"$TMP/rq1.out" 2>&1
eq "requeue: still invalid: exit 1" 1 $?
Q2=$(find "$D3/rqnew/quarantine" -name '*.ndjson' -exec cat {} +)
ok "requeue: the lines were rewritten" test "$Q" != "$Q2"
eq "requeue: the rewritten lines keep \"kafka\"" 15 "$(grep -c '"kafka":{"topic":"r"' <<<"$Q2")"
ok "requeue: ... the long key whole" grep -q "\"kafka\":{\"topic\":\"r\",\"partition\":2,\"offset\":0,\"key\":\"$LONGKEY\"" <<<"$Q2"
cp "$TMP/fixed.json" "$TMP/rq.json"
for t in rqnew rqold; do
    out=$("$WEIR" requeue -c "$TMP/rq.yaml" $t 2>&1)
    eq "requeue $t: exit 0" 0 $?
    eq "requeue $t: quarantine empty" "" "$(find "$D3/$t/quarantine" -name '*.ndjson' -exec cat {} +)"
done
rq() { "$WEIR" query -c "$TMP/rq.yaml" --format csv "$1" 2>&1 | tail -n +2; }
COLS="SELECT id, _kafka_topic, _kafka_partition, _kafka_offset, _kafka_key, _kafka_key_b64
      FROM %s ORDER BY id"
want_rows() { # KEY-OF-PARTITION-2-FIRST-3
    local i
    for i in 0 1 2 3 4; do echo "$i,r,0,$i,zone é 7,"; done
    for i in 0 1 2 3; do echo "$((100 + i)),r,1,$i,,a//+"; done
    for i in 0 1 2; do echo "$((200 + i)),r,2,$i,$1,"; done
    for i in 0 1; do echo "$((300 + i)),r,2,$((3 + i)),short...,"; done
    echo "400,r,2,5,,"
}
# shellcheck disable=SC2059
eq "requeue rqnew: every column as produced, the long key exact" "$(want_rows "$LONGKEY")" "$(rq "$(printf "$COLS" rqnew)")"
# shellcheck disable=SC2059
eq "requeue rqold: from the peer; the cut key NULL" "$(want_rows "")" "$(rq "$(printf "$COLS" rqold)")"
for t in rqnew rqold; do
    eq "requeue $t: 15 rows, each (partition, offset) once, timestamps of the produce" "15,15,0" \
        "$(rq "SELECT count(*), count(DISTINCT (_kafka_partition, _kafka_offset)),
                      count(*) FILTER (WHERE _kafka_timestamp NOT BETWEEN $t0 AND $t1) FROM $t")"
done
ok "requeue: no sanitizer report" bash -c "! grep -q Sanitizer '$TMP/rserve.log'"
stop_mock
finish
