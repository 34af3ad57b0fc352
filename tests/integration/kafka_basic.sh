#!/usr/bin/env bash
# tests/integration/kafka_basic.sh - `weir serve` reading a topic of
# librdkafka's mock cluster (tests/tools/kafka_mock) over real sockets.
#
#   - every valid record lands exactly once, over 4 partitions;
#   - invalid payloads go to quarantine with the right reason (schema,
#     not JSON, time missing, time unparsable, too large), their peer
#     "topic/partition@offset ts=.. key=..";
#   - a pretty-printed payload (newlines between tokens) lands as one line;
#     one that is not JSON is quarantined with its exact bytes;
#   - the group's committed offsets and the checkpoint reach the end of the
#     topic; a restart reads nothing twice and goes on with new records;
#   - a new consumer group (no committed offsets) reads nothing twice
#     either: the checkpoint beside the lake says what it holds.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib_kafka.sh"

D=$TMP/data
N=20000
start_mock t:4
ok "mock cluster up ($BOOT)" test -n "$BOOT"

cat >"$TMP/schema.json" <<'EOF'
{"type": "object", "required": ["id"],
 "properties": {"id": {"type": "integer", "minimum": 0}, "v": {"type": "number"}}}
EOF
config() { # GROUP
    cat >"$TMP/w.yaml" <<EOF
data_dir: $D
workers: 2
metrics: 127.0.0.1:0
pipelines:
  - name: k
    source:
      kafka: {brokers: "$BOOT", topic: t, group: $1, batch: {max_records: 3000, max_wait: 100ms}, $KOPTS}
    schema: $TMP/schema.json
    time_field: ts
    compaction: manual
    max_record: 4KB
EOF
}

gen_records 0 "$N" >"$TMP/valid.ndjson"
produce t --spread 4 "$TMP/valid.ndjson" 2>"$TMP/produce.log"
ok "produced $N valid records" grep -q "^$N produced" "$TMP/produce.log"
{
    echo "{\"id\":\"x\",\"ts\":$NOW,\"v\":1}"
    echo '{"id":'
    echo "{\"id\":900001,\"v\":1}"
    echo "{\"id\":900002,\"ts\":\"soon\",\"v\":1}"
    printf '{"id":900003,"ts":%d,"pad":"%s"}\n' "$NOW" "$(head -c 5000 /dev/zero | tr '\0' a)"
} >"$TMP/bad.ndjson"
produce t --partition 2 --key sensor-7 "$TMP/bad.ndjson" 2>>"$TMP/produce.log"
echo '{"id":"binary key"}' >"$TMP/bkey.ndjson"
produce t --partition 3 --key "$(printf 'k\001y')" "$TMP/bkey.ndjson" 2>>"$TMP/produce.log"
printf '{\n  "id": 777777,\r\n  "ts": %d,\n  "v": 1\n}\0{\n "id": 1\0' "$NOW" >"$TMP/nl.bin"
produce t --partition 1 --nul "$TMP/nl.bin" 2>>"$TMP/produce.log"

config g1
"$WEIR" serve -c "$TMP/w.yaml" 2>"$TMP/serve.log" &
srv=$!
cleanup_pid "$srv"
ok "the group commits every offset of the topic" caught_up t g1 90
kill -TERM "$srv"
wait "$srv"
eq "SIGTERM: exit 0" 0 $?

ids=$(lake_ids "$D")
eq "raw: $N + 1 records" $((N + 1)) "$(grep -c . <<<"$ids")"
eq "raw: no record twice" "" "$(uniq -d <<<"$ids")"
eq "raw: ids 0..$((N - 1)) and 777777" "$( (seq 0 $((N - 1)); echo 777777) | sort -n | md5sum)" "$(md5sum <<<"$ids")"
ok "raw: the pretty-printed record is one line, spaces for its newlines" \
    grep -rqE '^\{   "id": 777777,    "ts": [0-9]*,   "v": 1 ,"_kafka_topic":"t","_kafka_partition":1,"_kafka_offset":[0-9]+,"_kafka_timestamp":[0-9]+\}$' "$D/k/raw"

Q=$(find "$D/k/quarantine" -name '*.ndjson' -exec cat {} +)
reasons=$(grep -o '"reason":"[a-z_]*"' <<<"$Q" | cut -d'"' -f4 | sort | uniq -c | awk '{print $2 "=" $1}' | tr '\n' ' ')
eq "quarantine: reasons" "invalid=4 time_missing=1 time_out_of_range=0 time_unparsable=1 too_large=1 " \
    "$(sed 's/time_missing=1 /time_missing=1 time_out_of_range=0 /' <<<"$reasons")"
ok "quarantine: schema verdict names /id" grep -q '"reason":"invalid","path":"/id"' <<<"$Q"
ok "quarantine: peer is topic/partition@offset ts=.. key=.." \
    grep -qE '"peer":"t/2@[0-9]+ ts=[0-9]+ key=sensor-7"' <<<"$Q"
ok "quarantine: a key that is not printable is shown in base64" \
    grep -qE '"peer":"t/3@[0-9]+ ts=[0-9]+ key_b64=awF5"' <<<"$Q"
ok "quarantine: a non-JSON payload keeps its newline" grep -qF '"raw":"{\n \"id\": 1"' <<<"$Q"
ok "quarantine: too large is cut and flagged" grep -q '"reason":"too_large".*"truncated":true' <<<"$Q"

total=$((N + 8))
pos=$(awk '$1 == "pos" {s += $4} END {print s + 0}' "$D"/k/_offsets/*)
eq "checkpoint: positions sum to the topic's $total messages" "$total" "$pos"
ok "log: the source's summary" grep -q "k: kafka: $total records" "$TMP/serve.log"
ok "no sanitizer report" bash -c "! grep -q Sanitizer '$TMP/serve.log'"

# A restart reads nothing twice and goes on.
gen_records "$N" 1000 >"$TMP/more.ndjson"
"$WEIR" serve -c "$TMP/w.yaml" 2>"$TMP/serve2.log" &
srv=$!
cleanup_pid "$srv"
sleep 1
produce t --spread 4 "$TMP/more.ndjson" 2>/dev/null
ok "restart: the group catches up with 1000 new records" caught_up t g1 60
kill -TERM "$srv"
wait "$srv"
eq "restart: exit 0" 0 $?
ids=$(lake_ids "$D")
eq "restart: $((N + 1001)) records, none twice" "$((N + 1001)) " \
    "$(grep -c . <<<"$ids") $(uniq -d <<<"$ids" | tr '\n' ' ')"

# A new group has no committed offsets: the checkpoint keeps the lake whole.
config g-new
"$WEIR" serve -c "$TMP/w.yaml" 2>"$TMP/serve3.log" &
srv=$!
cleanup_pid "$srv"
ok "new group: assigned and starting from the checkpoint" bash -c \
    "for i in \$(seq 1 150); do [ \$(grep -c 'from the checkpoint' '$TMP/serve3.log') = 4 ] && exit 0; sleep 0.2; done; exit 1"
sleep 1
kill -TERM "$srv"
wait "$srv"
eq "new group: exit 0" 0 $?
ids=$(lake_ids "$D")
eq "new group: still $((N + 1001)) records, none twice" "$((N + 1001)) " \
    "$(grep -c . <<<"$ids") $(uniq -d <<<"$ids" | tr '\n' ' ')"
ok "new group: the $((total + 1000)) records already in the lake were skipped" \
    grep -q "$((total + 1000)) duplicates skipped" "$TMP/serve3.log"
# The pipeline reads TCP for a while, then Kafka again: the old checkpoint
# keeps its positions but must never cut what TCP landed meanwhile.
port=$(free_port)
sed -e "s|kafka: {.*}|tcp: 127.0.0.1:$port|" "$TMP/w.yaml" >"$TMP/tcp.yaml"
"$WEIR" serve -c "$TMP/tcp.yaml" 2>"$TMP/serve4.log" &
srv=$!
cleanup_pid "$srv"
wait_port "$port" 30
gen_records 500000 100 | "$WEIR" send "127.0.0.1:$port"
kill -TERM "$srv"
wait "$srv"
eq "tcp: exit 0" 0 $?
ok "tcp: the Kafka checkpoint retired" grep -q "not a Kafka pipeline any more" "$TMP/serve4.log"
config g1
"$WEIR" serve -c "$TMP/w.yaml" 2>"$TMP/serve5.log" &
srv=$!
cleanup_pid "$srv"
ok "kafka again: assigned" assigned_after "$TMP/serve5.log" 0 4 60
kill -TERM "$srv"
wait "$srv"
ids=$(lake_ids "$D")
eq "kafka again: the TCP records are still there, nothing twice" "$((N + 1101)) " \
    "$(grep -c . <<<"$ids") $(uniq -d <<<"$ids" | tr '\n' ' ')"
ok "no sanitizer report" bash -c "! grep -q Sanitizer '$TMP'/serve*.log"
stop_mock
finish
