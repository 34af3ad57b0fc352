#!/usr/bin/env bash
# tests/integration/models_warehouse.sh - the seed example end to end into
# real PostgreSQL and MariaDB servers (lib_pg.sh, lib_mariadb.sh): telemetry
# in, the hourly average temperature per sensor joined with sensors.csv,
# loaded into the lake and both warehouses by the model scheduler.
#
# Checks: each warehouse holds exactly the rows of the same SQL run by
# weir query; a re-run and a backfill leave no duplicates; late data
# replaces its hour's rows; a warehouse that is down fails the run (the
# other outputs still load, the failure is recorded), and the retry after
# the backoff succeeds once it is back.
set -u
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib_pg.sh"
. "$(dirname "$0")/lib_mariadb.sh"
. "$(dirname "$0")/lib_models.sh"

if [ "${WEIR_SKIP_WAREHOUSE:-0}" = 1 ]; then
    echo "skipped: WEIR_SKIP_WAREHOUSE=1"
    finish; exit
fi
PG_OPTS="-c fsync=off -c full_page_writes=off"
pg_start || { eq "PostgreSQL server started" started failed; finish; exit; }
my_start || { eq "MariaDB server started" started failed; finish; exit; }

models_setup "      - lake
      - postgres: {dsn: \"$PG_DSN\", table: hourly_temperature}
      - mysql: {dsn: \"$MY_DSN\", table: hourly_temperature}"

# The same figures from each place: hour (epoch s), sensor, name,
# avg * 1000 rounded (-1 for NULL), readings.
WQ="SELECT epoch(start_time)::BIGINT, sensor_id, sensor_name,
  coalesce(round(avg_temp * 1000)::BIGINT, -1), readings FROM (SELECT start_time,
  id AS sensor_id, name AS sensor_name, avg_temp, readings FROM ($DIRECT)) ORDER BY ALL"
PQ="SELECT extract(epoch FROM start_time)::bigint, sensor_id, sensor_name,
  coalesce(round(avg_temp * 1000)::bigint, -1), readings FROM hourly_temperature ORDER BY 1, 2, 3, 4, 5"
MQ="SELECT TIMESTAMPDIFF(SECOND, '1970-01-01', start_time), sensor_id, sensor_name,
  coalesce(CAST(round(avg_temp * 1000) AS SIGNED), -1), readings FROM hourly_temperature ORDER BY 1, 2, 3, 4, 5"
wh_eq() { # what
    local want
    want=$(mq "$WQ")
    eq "$1: PostgreSQL = weir query" "$want" "$(pg_sql "$PQ" | tr '|' ',')"
    eq "$1: MariaDB = weir query" "$want" "$(my_sql "$MQ" | tr '\t' ',')"
}
runs() { at "$1" "$WEIR" run -c "$MCFG" --all 2>&1 | tail -n 1; }

ingest "$WEIR_ROOT/examples/telemetry.ndjson" 2025-09-02T09:30:00Z
at 2025-09-03T01:00:00Z "$WEIR" compact -q -c "$MCFG"
eq "one round: three hours and the day" "weir run: 4 partitions run, 0 failed" \
   "$(runs 2025-09-03T01:00:00Z)"
wh_eq "after the first round"
eq "7 rows in PostgreSQL" "7" "$(pg_sql "SELECT count(*) FROM hourly_temperature")"

ok "a re-run of hour 10" at 2025-09-03T01:10:00Z "$WEIR" run -q -c "$MCFG" \
   hourly_temperature --from 2025-09-02T10 --to 2025-09-02T11
ok "a backfill of the day" at 2025-09-03T01:10:00Z "$WEIR" run -q -c "$MCFG" \
   hourly_temperature --from 2025-09-02
wh_eq "after a re-run and a backfill"
eq "PostgreSQL: no duplicates" "7,3" \
   "$(pg_sql "SELECT count(*), count(DISTINCT weir_partition) FROM hourly_temperature" | tr '|' ',')"
eq "MariaDB: no duplicates" "7,3" \
   "$(my_sql "SELECT count(*), count(DISTINCT weir_partition) FROM hourly_temperature" | tr '\t' ',')"

# Late data for hour 10 while PostgreSQL is down.
printf '%s\n' '{"timestamp":1756807300,"sensor_id":10003,"measurement":{"kind":"Temperature","value":-4.5,"unit":"Celcius"}}' >"$TMP/late.ndjson"
ingest "$TMP/late.ndjson" 2025-09-03T02:00:00Z
at 2025-09-03T02:00:00Z "$WEIR" compact -q -c "$MCFG"
pg_kill
eq "PostgreSQL down: the hour fails, the day waits" "weir run: 0 partitions run, 1 failed" \
   "$(runs 2025-09-03T02:00:00Z)"
st=$(at 2025-09-03T02:00:00Z "$WEIR" models -c "$MCFG" | grep 'hour=10')
case $st in *failed*postgres*) r=yes ;; *) r=$st ;; esac
eq "weir models shows the failure" "yes" "$r"
eq "MariaDB got the late row anyway" "1" \
   "$(my_sql "SELECT readings FROM hourly_temperature WHERE sensor_id = 10003 AND HOUR(start_time) = 10")"
pg_restart
eq "before the backoff: no retry" "weir run: 0 partitions run, 0 failed" \
   "$(runs 2025-09-03T02:00:30Z)"
eq "after it: the hour, then the day" "weir run: 2 partitions run, 0 failed" \
   "$(runs 2025-09-03T02:01:30Z)"
wh_eq "after late data and a retry"
eq "PostgreSQL: 8 rows" "8" "$(pg_sql "SELECT count(*) FROM hourly_temperature")"
finish
