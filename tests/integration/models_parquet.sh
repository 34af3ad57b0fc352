#!/usr/bin/env bash
# tests/integration/models_parquet.sh - a model's `parquet: {path}` output
# (sinks/parquet_out.h, docs/models.md) with the seed example and a fake
# clock.
#
# Checks: one file per partition run in the Hive layout
# <path>/date=.../hour=.../<model>.parquet (no hour level for a day
# model); read back with read_parquet it equals the model's lake output;
# a re-run and two backfills replace the file (a new inode), never
# duplicate, and leave no temporary file; a folder that cannot take the
# file fails the partition run with the path in the error, which is
# retried after the backoff and then succeeds.
set -u
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib_models.sh"

models_setup "      - lake
      - parquet: {path: out}"
sed -i 's|    outputs: \[lake\]|    outputs: [lake, {parquet: {path: out}}]|' "$MCFG"
ok "config: check passes" "$WEIR" check -q -c "$MCFG"
ingest "$WEIR_ROOT/examples/telemetry.ndjson" 2025-09-02T09:30:00Z
at 2025-09-03T01:00:00Z "$WEIR" compact -q -c "$MCFG"
runs() { at "$1" "$WEIR" run -c "$MCFG" "${@:2}" 2>&1 | tail -n 1; }
eq "hours 9, 10, 11 and the day run" "weir run: 4 partitions run, 0 failed" \
    "$(runs 2025-09-03T01:00:00Z --all)"

files() { (cd "$MD" && find out -type f | sort); }
eq "one file per partition, Hive layout" "out/date=2025-09-02/daily_temperature.parquet
out/date=2025-09-02/hour=09/hourly_temperature.parquet
out/date=2025-09-02/hour=10/hourly_temperature.parquet
out/date=2025-09-02/hour=11/hourly_temperature.parquet" "$(files)"

COLS="start_time, end_time, sensor_id, sensor_name, avg_temp, readings"
PQ="SELECT $COLS, date, hour FROM read_parquet('out/*/*/hourly_temperature.parquet', hive_partitioning = true, hive_types = {'date': 'DATE', 'hour': 'INTEGER'}) ORDER BY ALL"
LAKE="SELECT $COLS, date, hour FROM hourly_temperature ORDER BY ALL"
lake=$(mq "$LAKE")
ok "the lake output has rows" test "$(grep -c . <<<"$lake")" -ge 3
eq "hourly: the Parquet files equal the lake output" "$lake" "$(mq "$PQ")"
eq "daily: equal to the lake output" \
    "$(mq "SELECT day, sensor_id, readings, date FROM daily_temperature ORDER BY ALL")" \
    "$(mq "SELECT day, sensor_id, readings, date FROM read_parquet('out/*/daily_temperature.parquet', hive_partitioning = true) ORDER BY ALL")"

# Re-runs replace the file: a new inode, the same rows, no duplicate.
ino() { stat -c %i "$MD/out/date=2025-09-02/hour=10/hourly_temperature.parquet"; }
i1=$(ino)
ok "backfill three hours" at 2025-09-03T03:00:00Z "$WEIR" run -q -c "$MCFG" hourly_temperature \
    --from 2025-09-02T09 --to 2025-09-02T12
ok "and again" at 2025-09-03T03:00:00Z "$WEIR" run -q -c "$MCFG" hourly_temperature \
    --from 2025-09-02T09 --to 2025-09-02T12
ok "the file was replaced (new inode)" test "$(ino)" != "$i1"
eq "still one file per partition, no temporary file" "4" "$(files | grep -c .)"
eq "no duplicates after re-runs" "$lake" "$(mq "$PQ")"

# A folder that cannot take the file: the partition run fails, is
# recorded with the path, and is retried after the backoff.
F="$MD/out/date=2025-09-02/hour=09/hourly_temperature.parquet"
rm "$F"
mkdir -p "$F/blocker"
out=$(at 2025-09-03T04:00:00Z "$WEIR" run -c "$MCFG" hourly_temperature \
    --from 2025-09-02T09 --to 2025-09-02T10 2>&1)
eq "a failing parquet output fails the run (exit 1)" "1" "$?"
ok "the error names the parquet output and the file" \
    grep -q "parquet output: .*hour=09/hourly_temperature.parquet" <<<"$out"
st=$(at 2025-09-03T04:00:00Z "$WEIR" models -c "$MCFG" | grep 'hour=09')
ok "weir models shows it failed" grep -q "failed" <<<"$st"
eq "no temporary file left" "" "$(find "$MD/out" -name '*.tmp.*')"
rm -rf "$F"
# Hour 9 and the day, which reads hour 9's lake output (committed by the
# failed run too, so its digest changed).
eq "retried after the backoff" "weir run: 2 partitions run, 0 failed" \
    "$(runs 2025-09-03T04:01:30Z --all)"
eq "and the file is back, equal to the lake" "$lake" "$(mq "$PQ")"
finish
