#!/usr/bin/env bash
# tests/integration/models_lake.sh - SQL models into the lake, scheduled by
# data dependency (src/sched/), with a fake clock so hours close at once.
#
# Checks: nothing runs before an hour is closed and compacted; one round
# runs a model and then the model that reads it; a second round (a
# restart) repeats nothing; late data re-runs exactly the partitions it
# changes, downstream included, without duplicates; a backfill replaces;
# the model's rows equal the same SQL run by weir query; a failing model
# is recorded with its error and retried after the backoff.
set -u
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib_models.sh"

models_setup "      - lake"
ingest "$WEIR_ROOT/examples/telemetry.ndjson" 2025-09-02T09:30:00Z

runs() { at "$1" "$WEIR" run -c "$MCFG" --all 2>&1 | tail -n 1; }

eq "hour 9 not closed: nothing runs" "weir run: 0 partitions run, 0 failed" \
   "$(runs 2025-09-02T10:01:00Z)"
at 2025-09-02T10:30:00Z "$WEIR" compact -q -c "$MCFG"
eq "hour 9 closed and compacted: it runs, the day does not" \
   "weir run: 1 partitions run, 0 failed" "$(runs 2025-09-02T10:30:00Z)"
eq "hour 9's rows" "3" "$(mq "SELECT count(*) FROM hourly_temperature")"
eq "closed but not compacted: nothing runs" "weir run: 0 partitions run, 0 failed" \
   "$(runs 2025-09-03T01:00:00Z)"
at 2025-09-03T01:00:00Z "$WEIR" compact -q -c "$MCFG"
eq "hours 10, 11 then the day, in one round" "weir run: 3 partitions run, 0 failed" \
   "$(runs 2025-09-03T01:00:00Z)"
eq "the day sums the hours" "7" "$(mq "SELECT sum(readings)::BIGINT FROM daily_temperature")"
eq "a second round repeats nothing" "weir run: 0 partitions run, 0 failed" \
   "$(runs 2025-09-03T01:05:00Z)"
direct=$(mq "$DIRECT")
model=$(mq "SELECT start_time, sensor_id, sensor_name, avg_temp, readings FROM hourly_temperature ORDER BY ALL")
eq "the model's rows equal the SQL run by weir query" "$direct" "$model"

# Late data for hour 10.
printf '%s\n' '{"timestamp":1756807300,"sensor_id":10001,"measurement":{"kind":"Temperature","value":9.1,"unit":"Celcius"}}' >"$TMP/late.ndjson"
ingest "$TMP/late.ndjson" 2025-09-03T02:00:00Z
at 2025-09-03T02:00:00Z "$WEIR" compact -q -c "$MCFG"
before9=$(at 2025-09-03T02:00:00Z "$WEIR" models -c "$MCFG" | grep 'hour=09')
eq "late data re-runs hour 10 and the day only" "weir run: 2 partitions run, 0 failed" \
   "$(runs 2025-09-03T02:00:00Z)"
eq "hour 9's last run untouched" "$before9" \
   "$(at 2025-09-03T02:00:00Z "$WEIR" models -c "$MCFG" | grep 'hour=09')"
eq "hour 10 now counts the late record, once" "10001,2" \
   "$(mq "SELECT sensor_id, readings FROM hourly_temperature WHERE hour = 10 AND sensor_id = 10001")"
eq "the day follows" "8" "$(mq "SELECT sum(readings)::BIGINT FROM daily_temperature")"
eq "still equal to the direct SQL" "$(mq "$DIRECT")" \
   "$(mq "SELECT start_time, sensor_id, sensor_name, avg_temp, readings FROM hourly_temperature ORDER BY ALL")"

# Backfill: replaces, never duplicates.
ok "backfill three hours" at 2025-09-03T03:00:00Z "$WEIR" run -c "$MCFG" hourly_temperature \
   --from 2025-09-02T09 --to 2025-09-02T12
ok "and again" at 2025-09-03T03:00:00Z "$WEIR" run -c "$MCFG" hourly_temperature \
   --from 2025-09-02 --to 2025-09-02T12
eq "no duplicates after two backfills" "7,8" \
   "$(mq "SELECT count(*), sum(readings) FROM hourly_temperature")"
eq "three partitions, seven rows" "3,7" \
   "$(mq "SELECT count(DISTINCT hour), count(*) FROM hourly_temperature")"

# A failing model: recorded, retried after the backoff, not before.
cp "$MD/models/hourly_temperature.sql" "$TMP/good.sql"
echo "SELECT no_such_column FROM telemetry" >"$MD/models/hourly_temperature.sql"
at 2025-09-03T04:00:00Z "$WEIR" run -q -c "$MCFG" hourly_temperature --from 2025-09-02T09 --to 2025-09-02T10
eq "a failed run exits 1" "1" "$?"
out=$(at 2025-09-03T04:00:00Z "$WEIR" models -c "$MCFG" | grep 'hour=09')
case $out in *failed*no_such_column*) r=yes ;; *) r="$out" ;; esac
eq "weir models shows the failure and the error" "yes" "$r"
cp "$TMP/good.sql" "$MD/models/hourly_temperature.sql"
eq "no retry before the backoff" "weir run: 0 partitions run, 0 failed" \
   "$(runs 2025-09-03T04:00:30Z)"
eq "retried after it" "weir run: 2 partitions run, 0 failed" \
   "$(runs 2025-09-03T04:01:30Z)"
ok "weir models exits 0 when all is well" at 2025-09-03T04:02:00Z "$WEIR" models -c "$MCFG"
eq "weir run: unknown model is a usage error" "2" \
   "$(at 2025-09-03T04:00:00Z "$WEIR" run -c "$MCFG" nope 2>/dev/null; echo $?)"
finish
