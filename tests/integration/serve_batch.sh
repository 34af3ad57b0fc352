#!/usr/bin/env bash
# serve_batch.sh - `weir serve` runs the batch side by itself: hours that
# close are compacted to Parquet, and a model whose inputs are complete runs
# and lands its lake output, with no `weir compact` or `weir run`.
. "$(dirname "$0")/lib.sh"
port=$(free_port) mport=$(free_port)
cp "$WEIR_ROOT/examples/telemetry.schema.json" "$WEIR_ROOT/examples/sensors.csv" "$TMP/"
mkdir -p "$TMP/models"
printf '%s\n' 'SELECT $start::TIMESTAMPTZ AS start_time, sensor_id, count(*) AS readings' \
    'FROM telemetry GROUP BY sensor_id' >"$TMP/models/per_hour.sql"
printf '%s\n' "data_dir: ./data" "metrics: 127.0.0.1:$mport" "grace: 1m" \
    "pipelines:" "  - name: telemetry" "    source: {tcp: 127.0.0.1:$port}" \
    "    schema: telemetry.schema.json" "    time_max_age: off" \
    "models:" "  - name: per_hour" "    sql: models/per_hour.sql" \
    "    inputs: [telemetry]" "    outputs: [lake]" \
    "dimensions:" "  sensors: sensors.csv" >"$TMP/w.yaml"
cd "$TMP" || exit 1
WEIR_FAKE_NOW=2025-09-02T12:30:00Z "$WEIR" serve -c w.yaml >serve.log 2>&1 &
pid=$!
cleanup_pid $pid
ok "serve listens" wait_port "$port" 20
ok "send the example records" "$WEIR" send "127.0.0.1:$port" "$WEIR_ROOT/examples/telemetry.ndjson"

wait_for() { # seconds command...
    local n=$(( $1 * 4 )); shift
    for _ in $(seq "$n"); do "$@" >/dev/null 2>&1 && return 0; sleep 0.25; done
    return 1
}
parquet_hours() { [ "$(find data/telemetry/parquet -name '*.parquet' | wc -l)" = 3 ]; }
ok "the three closed hours are compacted by serve itself" wait_for 60 parquet_hours
eq "no raw segment left once compacted" 0 \
    "$(find data/telemetry/raw -name '*.ndjson*' 2>/dev/null | wc -l)"
eq "the lake holds every valid record" "7" \
    "$("$WEIR" query -c w.yaml --format csv 'SELECT count(*) AS n FROM telemetry' | tail -n 1)"
eq "dimensions are views in weir query" "freezer-1,2" \
    "$("$WEIR" query -c w.yaml --format csv "SELECT s.name, count(*) FROM telemetry t JOIN sensors s ON s.id = t.sensor_id WHERE s.site = 'hamburg' GROUP BY s.name" | tail -n 1)"
model_rows() { [ "$("$WEIR" query -c w.yaml --format csv 'SELECT sum(readings) FROM per_hour' | tail -n 1)" = 7 ]; }
ok "the model ran on its own for every closed hour" wait_for 120 model_rows
eq "the model's hours" "3" \
    "$("$WEIR" query -c w.yaml --format csv 'SELECT count(DISTINCT start_time) FROM per_hour' | tail -n 1)"
status_runs() { "$WEIR" status -c w.yaml 2>&1 | grep -q "3 partitions run, 3 ok, 0 failing"; }
ok "weir status shows the model's runs" wait_for 30 status_runs
kill -TERM $pid
wait $pid
eq "serve stops cleanly" 0 $?
[ "$_fail" = 0 ] || tail -n 30 serve.log
finish
