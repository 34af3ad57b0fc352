#!/usr/bin/env bash
# tests/integration/kafka_sink_model.sh - a model with a Kafka output
# (sched/models.c -> sinks/kafka_out.c), fake clock as in models_lake.sh.
#
#   - a partition's rows are produced, one JSON message per row, keyed by
#     the configured field, with weir_model and weir_partition headers;
#   - with the brokers down the run fails (it waits for the reports) and
#     is recorded as failed; after the backoff, with the brokers up, the
#     retry produces the partition: at least once per partition.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib_kafka.sh"
. "$(dirname "$0")/lib_models.sh"

start_mock agg:2
ok "mock cluster up ($BOOT)" test -n "$BOOT"
models_setup "      - lake
      - kafka: {brokers: \"$BOOT\", topic: agg, key: sensor_id}"
ingest "$WEIR_ROOT/examples/telemetry.ndjson" 2025-09-02T09:30:00Z
at 2025-09-02T10:30:00Z "$WEIR" compact -q -c "$MCFG"

topic() { # [HEADER]
    "$MOCK" consume "$BOOT" agg --from-beginning --timeout 3 ${1:+--header "$1"} 2>/dev/null
}
runs() { at "$1" "$WEIR" run -c "$MCFG" --all 2>&1 | tail -n 1; }

eq "hour 9 runs" "weir run: 1 partitions run, 0 failed" "$(runs 2025-09-02T10:30:00Z)"
rows=$(mq "SELECT count(*) FROM hourly_temperature")
msgs=$(topic weir_partition)
eq "one message per row ($rows)" "$rows" "$(grep -c . <<<"$msgs")"
eq "keyed by sensor_id" "" "$(awk -F'\t' '{ if (index($2, "\"sensor_id\":" $1 ",") == 0) print }' <<<"$msgs" | head -3)"
eq "weir_partition header" "date=2025-09-02/hour=09" "$(cut -f3 <<<"$msgs" | sort -u)"
eq "weir_model header" "hourly_temperature" "$(topic weir_model | cut -f3 | sort -u)"
eq "rows as JSON objects with the model's columns" "$rows" \
    "$(grep -c '"sensor_name":.*"avg_temp":.*"readings":' <<<"$msgs")"

# Brokers down: the run of hours 10-11 fails, recorded; nothing produced.
kill -USR1 "$MOCK_PID"
at 2025-09-03T01:00:00Z "$WEIR" compact -q -c "$MCFG"
eq "brokers down: both hours fail" "weir run: 0 partitions run, 2 failed" \
    "$(runs 2025-09-03T01:00:00Z)"
state=$(at 2025-09-03T01:00:00Z "$WEIR" models -c "$MCFG" | grep 'hour=10')
case $state in *failed*kafka*) r=yes ;; *) r="$state" ;; esac
eq "weir models shows the Kafka failure" "yes" "$r"
kill -USR2 "$MOCK_PID"
sleep 1
eq "no retry before the backoff" "weir run: 0 partitions run, 0 failed" "$(runs 2025-09-03T01:00:30Z)"
out=$(runs 2025-09-03T01:02:30Z)
case $out in *", 0 failed") r=ok ;; *) r="$out" ;; esac
eq "retried after it, brokers up: ok" ok "$r"
all=$(mq "SELECT count(*) FROM hourly_temperature")
eq "every partition's rows in the topic, once each" "$all" "$(topic | sort -u | grep -c .)"
stop_mock
finish
