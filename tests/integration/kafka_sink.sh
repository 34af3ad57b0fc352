#!/usr/bin/env bash
# tests/integration/kafka_sink.sh - a TCP pipeline with a Kafka sink
# (src/sinks/kafka_out.c) against librdkafka's mock cluster.
#
#   - what weir landed is in the topic: the same records, once each, keyed
#     by the configured field, with the weir_record header, within about a
#     second of landing;
#   - brokers down (kafka_mock SIGUSR1): ingest goes on, nothing is
#     delivered, failed and retried count up, the lag shows the backlog;
#     compaction absorbs delivered segments only (queries still see all);
#     brokers up: everything is delivered, once;
#   - a clean restart resumes from the cursor without duplicates; after a
#     kill -9 nothing is lost and the only duplicates are records of the
#     last round (same weir_record identity), at most the window the cursor
#     had not saved.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib_kafka.sh"

D=$TMP/data
start_mock out:4
ok "mock cluster up ($BOOT)" test -n "$BOOT"
PORT=$(free_port)
MPORT=$(free_port)
cat >"$TMP/w.yaml" <<EOF
data_dir: $D
workers: 2
metrics: 127.0.0.1:$MPORT
pipelines:
  - name: t
    source: {tcp: 127.0.0.1:$PORT}
    time_field: ts
    compaction: manual
    segment_bytes: 64KiB
    sink: {kafka: {brokers: "$BOOT", topic: out, key: sensor}}
EOF

serve() {
    "$WEIR" serve -c "$TMP/w.yaml" 2>>"$TMP/serve.log" &
    srv=$!
    cleanup_pid "$srv"
    wait_port "$PORT" 20
}
metric() { # NAME -> value for pipeline t
    curl -s --max-time 5 "http://127.0.0.1:$MPORT/metrics" |
        awk -v m="$1{pipeline=\"t\"}" '$1 == m {print $2}'
}
# topic [COUNT]: every message from the beginning as KEY TAB VALUE TAB
# weir_record, into $TMP/topic; with COUNT, return as soon as it has them.
topic() {
    "$MOCK" consume "$BOOT" out --from-beginning --header weir_record \
        ${1:+--count "$1"} --timeout "${2:-3}" >"$TMP/topic" 2>/dev/null
    grep -c . "$TMP/topic"
}
# wait_metric NAME OP VALUE [S]: until the metric compares true.
wait_metric() {
    local i v
    for i in $(seq 1 $((${4:-30} * 5))); do
        v=$(metric "$1")
        [ -n "$v" ] && [ "$v" "$2" "$3" ] && return 0
        sleep 0.2
    done
    echo "     $1 = $v"
    return 1
}
ids_in_topic() { cut -f2 "$TMP/topic" | grep -oE '"id":[0-9]+' | cut -d: -f2 | sort -n; }

# --- delivery -------------------------------------------------------------
serve
gen_records 0 5000 >"$TMP/a.ndjson"
"$WEIR" send "127.0.0.1:$PORT" "$TMP/a.ndjson"
ok "5000 records delivered" wait_metric weir_sink_delivered_total -ge 5000
eq "the topic holds 5000 messages" 5000 "$(topic 5000)"
eq "the same records, once each" "$(sort "$TMP/a.ndjson" | md5sum)" \
    "$(cut -f2 "$TMP/topic" | sort | md5sum)"
eq "every key is the record's sensor" "" \
    "$(awk -F'\t' '{ if (index($2, "\"sensor\":\"" $1 "\"") == 0) print }' "$TMP/topic" | head -3)"
eq "every message has a distinct weir_record" 5000 "$(cut -f3 "$TMP/topic" | sort -u | grep -c ':')"
ok "the cursor file exists" bash -c "ls '$D/t/_sink/'*.cursor"
t0=$(date +%s.%N)
gen_records 5000 1 | "$WEIR" send "127.0.0.1:$PORT"
n=$(topic 5001 10)
t1=$(date +%s.%N)
eq "one more record reaches the topic" 5001 "$n"
lat=$(awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.2f", b - a}')
echo "     latency landing -> topic (with the consumer's start): ${lat}s"
ok "within 4 s (about 0.6 s unloaded)" awk -v l="$lat" 'BEGIN {exit !(l < 4)}'
eq "lag 0" 0 "$(metric weir_sink_lag_records)"

# --- outage ---------------------------------------------------------------
kill -USR1 "$MOCK_PID"
sleep 0.5
gen_records 10000 3000 >"$TMP/b.ndjson"
"$WEIR" send "127.0.0.1:$PORT" "$TMP/b.ndjson"
ok "weir keeps ingesting: 8001 valid" wait_metric weir_valid_records_total -ge 8001 10
ok "failed reports are counted" wait_metric weir_sink_failed_total -gt 0 40
ok "and produced again" wait_metric weir_sink_retried_total -gt 0 20
eq "delivered is still 5001" 5001 "$(metric weir_sink_delivered_total)"
ok "the lag shows the 3000 waiting" wait_metric weir_sink_lag_records -eq 3000 10
status=$("$WEIR" status -c "$TMP/w.yaml" 2>&1)
ok "weir status shows the sink" grep -q "kafka sink .* 5001 delivered, 3000 not yet" <<<"$status"
ok "/status has the sink object" bash -c "curl -s http://127.0.0.1:$MPORT/status | grep -q '\"sink\":{\"produced_total\"'"

# Compaction takes the delivered segments only; queries still see all.
raw_before=$(find "$D/t/raw" -name '*.ndjson' | wc -l)
"$WEIR" compact -q --all -c "$TMP/w.yaml" 2>>"$TMP/compact.log"
raw_after=$(find "$D/t/raw" -name '*.ndjson' | wc -l)
ok "compaction absorbed delivered segments ($raw_before -> $raw_after sealed)" test "$raw_after" -lt "$raw_before"
ok "undelivered sealed segments are kept" test "$raw_after" -gt 0
kept=$(find "$D/t/raw" -name '*.ndjson*' -exec cat {} + | grep -oE '"id":[0-9]+' | cut -d: -f2 | sort -n)
eq "every record not delivered is still raw" 3000 "$(awk '$1 >= 10000' <<<"$kept" | grep -c .)"
eq "queries see all 8001" 8001 "$("$WEIR" query -c "$TMP/w.yaml" --format csv 'SELECT count(*) FROM t' | tail -1)"

kill -USR2 "$MOCK_PID"
ok "brokers up: everything delivered" wait_metric weir_sink_delivered_total -ge 8001 60
ok "lag back to 0" wait_metric weir_sink_lag_records -eq 0 10
eq "the topic holds 8001 messages" 8001 "$(topic 8001 10)"
eq "no duplicates after the outage" "" "$(ids_in_topic | uniq -d | head -3)"
eq "exactly the landed ids" \
    "$( (cat "$TMP/a.ndjson" "$TMP/b.ndjson" | grep -oE '"id":[0-9]+' | cut -d: -f2; echo 5000) | sort -n | md5sum)" \
    "$(ids_in_topic | md5sum)"
"$WEIR" compact -q --all -c "$TMP/w.yaml" 2>>"$TMP/compact.log"
eq "once delivered, the rest is compacted" 0 "$(find "$D/t/raw" -name '*.ndjson' | wc -l)"

# --- restarts -------------------------------------------------------------
gen_records 20000 1000 >"$TMP/c.ndjson"
"$WEIR" send "127.0.0.1:$PORT" "$TMP/c.ndjson"
kill -TERM "$srv"
wait "$srv"
eq "SIGTERM: exit 0" 0 $?
serve
eq "the topic holds 9001" 9001 "$(topic 9001 15)"
eq "no duplicates across a clean restart" "" "$(ids_in_topic | uniq -d | head -3)"

gen_records 30000 20000 >"$TMP/d.ndjson"
"$WEIR" send --rate 20000 "127.0.0.1:$PORT" "$TMP/d.ndjson" &
sender=$!
sleep 0.6
kill -9 "$srv"
wait "$srv" 2>/dev/null
wait "$sender" 2>/dev/null
serve
raw_ids() { find "$D/t" -path '*/raw/*' -name '*.ndjson*' -exec cat {} + | grep -oE '"id":[0-9]+' | cut -d: -f2; }
landed=$(raw_ids | awk '$1 >= 30000' | grep -c .)
echo "     kill -9 after $landed records of the last round landed"
want=$((9001 + landed))
ok "after kill -9, every landed record is delivered" wait_metric weir_sink_lag_records -eq 0 30
n=$(topic "" 4)
ids_in_topic >"$TMP/ids"
eq "no landed record missing" "" "$(comm -23 <(raw_ids | sort -u) <(sort -u "$TMP/ids") | head -3)"
dups=$(uniq -d "$TMP/ids")
ndup=$(grep -c . <<<"$dups")
echo "     $n messages, $ndup duplicated records (the unconfirmed tail at kill -9)"
eq "distinct records = landed" "$want" "$(uniq "$TMP/ids" | grep -c .)"
eq "duplicates only from the killed round" "" "$(awk '$1 < 30000' <<<"$dups" | head -3)"
ok "duplicates at most the window ($ndup <= 20000)" test "$ndup" -le 20000
eq "a duplicate has the same weir_record both times" "" \
    "$(cut -f2,3 "$TMP/topic" | sort -u | cut -f1 | sort | uniq -d | head -3)"
kill -TERM "$srv"
wait "$srv"
eq "SIGTERM: exit 0" 0 $?

# --- sink options reach librdkafka ----------------------------------------
# A property librdkafka does not know stops serve at start, naming it (and
# never printing the value, which may be a password).
sed "s|topic: out, key: sensor}|topic: out, key: sensor, options: {no.such.property: hush}}|" \
    "$TMP/w.yaml" >"$TMP/bad.yaml"
"$WEIR" serve -c "$TMP/bad.yaml" >/dev/null 2>"$TMP/bad.log"
rc=$?
ok "an unknown sink option: serve refuses to start (exit $rc)" test "$rc" -ne 0
ok "the message names the property" grep -q "no.such.property" "$TMP/bad.log"
ok "the value is not printed" bash -c "! grep -q hush '$TMP/bad.log'"
stop_mock
finish
