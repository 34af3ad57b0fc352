# lib_models.sh - the seed example's setup for the models' integration
# tests (sourced after lib.sh; not a test itself).
#
#   models_setup OUTPUTS_YAML   config in $MD: pipeline telemetry (the
#                               example's schema), dimension sensors, model
#                               hourly_temperature (outputs given, indented
#                               list items) and daily_temperature (day grain,
#                               reads hourly_temperature, lake only)
#   at T CMD...                 run CMD with WEIR_FAKE_NOW=T in $MD
#   ingest FILE T               serve at time T, send FILE, stop
#   mq SQL                      weir query --format csv, no header

MD=$TMP/models
MCFG=$MD/weir.yaml

models_setup() {
    mkdir -p "$MD/models"
    cp "$WEIR_ROOT/examples/telemetry.schema.json" "$WEIR_ROOT/examples/sensors.csv" "$MD/"
    cp "$WEIR_ROOT/examples/models/hourly_temperature.sql" "$MD/models/"
    cat >"$MD/models/daily_temperature.sql" <<'EOF'
SELECT $start::TIMESTAMPTZ AS day, sensor_id, sum(readings)::BIGINT AS readings
FROM hourly_temperature GROUP BY sensor_id
EOF
    MPORT=$(free_port)
    cat >"$MCFG" <<EOF
data_dir: ./data
metrics: off
pipelines:
  - name: telemetry
    source: {tcp: 127.0.0.1:$MPORT}
    schema: telemetry.schema.json
    time_field: timestamp
    time_unit: s
dimensions:
  sensors: sensors.csv
models:
  - name: daily_temperature
    sql: models/daily_temperature.sql
    inputs: [hourly_temperature]
    grain: day
    outputs: [lake]
  - name: hourly_temperature
    sql: models/hourly_temperature.sql
    inputs: [telemetry]
    grain: hour
    outputs:
$1
EOF
}

at() {
    local t=$1; shift
    (cd "$MD" && WEIR_FAKE_NOW=$t "$@")
}

ingest() {
    (cd "$MD" && WEIR_FAKE_NOW=$2 exec "$WEIR" serve -c "$MCFG" 2>>"$MD/serve.log") &
    local pid=$!
    cleanup_pid "$pid"
    wait_port "$MPORT" 20
    "$WEIR" send "127.0.0.1:$MPORT" "$1"
    kill -TERM "$pid"; wait "$pid" 2>/dev/null
}

mq() {
    (cd "$MD" && "$WEIR" query -c "$MCFG" --format csv "$1") | tail -n +2
}

# The model's SQL over all of telemetry, by hour, straight from weir query:
# what every output must hold.
DIRECT="SELECT date_trunc('hour', to_timestamp(t.timestamp)) AS start_time, s.id, s.name,
  avg(TRY_CAST(t.measurement.value AS DOUBLE)) AS avg_temp, count(*) AS readings
FROM telemetry t JOIN read_csv('sensors.csv', header = true) s ON t.sensor_id = s.id
WHERE t.measurement.kind = 'Temperature' GROUP BY ALL ORDER BY ALL"
