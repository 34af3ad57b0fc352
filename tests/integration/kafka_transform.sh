#!/usr/bin/env bash
# tests/integration/kafka_transform.sh - a Kafka pipeline with a SQL
# transform (filter + derive) into a derived dataset, and `weir replay`.
#
#   1. records flow: `weir query` on the derived dataset kd gives exactly
#      the rows the same SQL gives over the pipeline k (the _kafka_*
#      metadata columns and _extra included);
#   2. kill -9 while records flow, several times, then a clean catch-up:
#      kd has every row exactly once (and still equals the SQL over k);
#   3. weir compact, then weir replay k over the hours: the same kd, twice
#      in a row (idempotent; the second beside a running serve), no raw
#      segment of kd left;
#   4. a new SQL, replayed over one hour: that hour follows the new SQL,
#      the others the old one;
#   5. refusals: a transform with a SQL error or without the time field
#      stops serve at start (exit 2); a transform on a TCP pipeline is a
#      config error; replay of a pipeline without transform is a usage error;
#   6. a batch the SQL fails on at run time: logged, counted, the pipeline
#      has every record and the transform goes on with the next batches.
# Records are two days old (three hours of them), so their hours are
# closed and compaction and replay take them at once.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib_kafka.sh"

D=$TMP/data
MPORT=$(free_port)
N=${WEIR_KAFKA_TRANSFORM_RECORDS:-12000}
start_mock t:4
H0=$(( (NOW / 3600 - 48) * 3600 ))
DAY=$(date -u -d "@$H0" +%Y-%m-%d)

awk -v a=0 -v n="$N" -v h="$H0" 'BEGIN {
    for (i = a; i < a + n; i++)
        printf "{\"id\":%d,\"ts\":%d,\"sensor\":\"s-%d\",\"v\":%d.25,\"m\":{\"a\":%d,\"b\":[\"x\",\"y%d\"]},\"note\":\"n%d\"}\n",
            i, h + (i % 3) * 3600 + (i % 3000), i % 13, i % 1000, i % 7, i % 5, i
}' >"$TMP/all.ndjson"

cat >"$TMP/s.json" <<'EOF'
{"type": "object", "properties": {
  "id": {"type": "integer"}, "ts": {"type": "integer"}, "sensor": {"type": "string"},
  "v": {"type": "number"},
  "m": {"type": "object", "properties": {"a": {"type": "integer"}, "b": {"type": "array", "items": {"type": "string"}}}}},
 "required": ["id", "ts"]}
EOF
# filter + derive; _extra (note) and the Kafka metadata columns go along
XF1="SELECT id, ts, sensor, v * 2 AS v2, upper(sensor) AS s_up, m.b AS tags, _kafka_partition AS kpart, _kafka_offset AS koff, _extra FROM batch WHERE id % 4 <> 0"
XF2="SELECT id, ts, sensor, v * 3 AS v2, lower(sensor) AS s_up, m.b AS tags, _kafka_partition AS kpart, _kafka_offset AS koff, _extra FROM batch WHERE id % 5 <> 0"
over_k() { # the SQL of the transform, over k ($1: batch's SQL)
    local sql=${1//FROM batch/FROM k}
    echo "SELECT id, ts, sensor, v2, s_up, tags, kpart, koff, _extra FROM ($sql) ORDER BY id"
}
KD="SELECT id, ts, sensor, v2, s_up, tags, kpart, koff, _extra FROM kd ORDER BY id"
echo "$XF1;" >"$TMP/xf.sql"

config() { # FSYNC
    cat >"$TMP/w.yaml" <<EOF
data_dir: $D
workers: 2
metrics: 127.0.0.1:$MPORT
pipelines:
  - name: k
    source:
      kafka: {brokers: "$BOOT", topic: t, group: g, batch: {max_records: 1500, max_wait: 400ms}, $KOPTS}
    schema: s.json
    time_field: ts
    compaction: manual
    fsync: ${1:-group}
    transform: {sql: xf.sql, name: kd}
EOF
}
q() { "$WEIR" query -c "$TMP/w.yaml" --format csv "$1" 2>&1; }

# ---- 1. flow -------------------------------------------------------------------
config
head -n 3000 "$TMP/all.ndjson" >"$TMP/first.ndjson"
produce t --spread 4 "$TMP/first.ndjson" >/dev/null 2>&1
"$WEIR" serve -c "$TMP/w.yaml" 2>>"$TMP/serve.log" &
srv=$!
cleanup_pid "$srv"
ok "serve reads the first records" caught_up t g 60
M=$(curl -s --max-time 5 "http://127.0.0.1:$MPORT/metrics")
eq "metrics: the transform's records in, rows out, errors" "3000 2250 0" \
    "$(for c in records rows errors; do grep "^weir_transform_${c}_total{pipeline=\"k\"}" <<<"$M" | awk '{print $2}'; done | tr '\n' ' ' | sed 's/ $//')"
S=$(curl -s --max-time 5 "http://127.0.0.1:$MPORT/status")
ok "status: the transform's counters" grep -qE '"transform":\{"batches_total":[0-9]+,"records_total":3000,"rows_total":2250,"errors_total":0' <<<"$S"
kill -TERM "$srv"
wait "$srv"
eq "clean stop: exit 0" 0 $?
ok "kd's schema written from the SQL" test -s "$D/kd/_schema.json"
want=$(q "$(over_k "$XF1")")
got=$(q "$KD")
eq "kd rows: $(($(wc -l <<<"$want") - 1)) = the SQL over k" "$(md5sum <<<"$want")" "$(md5sum <<<"$got")"
ok "  ... and they are rows" test "$(wc -l <<<"$got")" -gt 1000
eq "kd's partitions are its rows' event hours" 0 \
    "$(q "SELECT count(*) FROM kd WHERE date <> CAST(to_timestamp(ts) AS DATE) OR hour <> hour(to_timestamp(ts))" | tail -1)"
eq "kd columns and types" "id:BIGINT ts:BIGINT sensor:VARCHAR v2:DOUBLE s_up:VARCHAR tags:VARCHAR[] kpart:BIGINT koff:BIGINT _extra:JSON date:DATE hour:INTEGER" \
    "$(q "DESCRIBE kd" | tail -n +2 | cut -d, -f1,2 | tr ',' ':' | tr '\n' ' ' | sed 's/ $//')"
eq "kd _extra keeps what k's _extra had" "{\"\"note\"\":\"\"n1\"\"}" \
    "$(q "SELECT _extra FROM kd WHERE id = 1" | tail -1 | sed 's/^"//; s/"$//')"
ok "the transform's counters are logged" grep -q "transform: .* rows out, 0 batches failed" "$TMP/serve.log"

# ---- 2. kill -9 while records flow ------------------------------------------------
tail -n +3001 "$TMP/all.ndjson" >"$TMP/rest.ndjson"
produce t --spread 4 --rate 600 "$TMP/rest.ndjson" >"$TMP/produce.log" 2>&1 &
prod=$!
cleanup_pid "$prod"
# The crash between D's checkpoint and P's: the batch is read again for
# k, and its records are not fed to the transform again.
config
WEIR_CRASH_AT=kafka_after_derived_checkpoint timeout 60 "$WEIR" serve -c "$TMP/w.yaml" \
    2>>"$TMP/serve.log"
eq "crash after kd's checkpoint, before k's: exit 99" 99 $?
POL=(group always never)
for r in 0 1 2; do
    config "${POL[$r]}"
    before=$(grep -c " starts at " "$TMP/serve.log" 2>/dev/null)
    "$WEIR" serve -c "$TMP/w.yaml" 2>>"$TMP/serve.log" &
    srv=$!
    cleanup_pid "$srv"
    assigned_after "$TMP/serve.log" "$before" 4 60 || echo "     round $r: not assigned"
    sleep "$(awk -v r="$r" 'BEGIN {srand(r + 3); printf "%.2f", 0.6 + rand() * 1.2}')"
    kill -9 "$srv"
    wait "$srv" 2>/dev/null
done
wait "$prod"
config
"$WEIR" serve -c "$TMP/w.yaml" 2>>"$TMP/serve.log" &
srv=$!
cleanup_pid "$srv"
ok "after the kills, serve catches up" caught_up t g 120
kill -TERM "$srv"
wait "$srv"
eq "clean stop: exit 0" 0 $?
eq "k: $N records, each once" "$N $N" "$(q "SELECT count(*), count(DISTINCT id) FROM k" | tail -1 | tr ',' ' ')"
nd=$(awk -v n="$N" 'BEGIN { c = 0; for (i = 0; i < n; i++) if (i % 4) c++; print c }')
eq "kd: $nd rows, each once" "$nd $nd" "$(q "SELECT count(*), count(DISTINCT id) FROM kd" | tail -1 | tr ',' ' ')"
want=$(q "$(over_k "$XF1")")
got=$(q "$KD")
eq "kd = the SQL over k after the kills" "$(md5sum <<<"$want")" "$(md5sum <<<"$got")"
echo "     rollbacks at restarts: k $(grep -c "k: kafka: rolled back" "$TMP/serve.log"), kd $(grep -c "kd: rolled back" "$TMP/serve.log")"
skipped=$(grep -oE '[0-9]+ records are landed again but not transformed' "$TMP/serve.log" | awk '{s += $1} END {print s + 0}')
ok "records landed again in k after that crash were not transformed again ($skipped)" test "$skipped" -gt 0
[ -n "${XF_DEBUG:-}" ] && grep -E "rolled|starts at|transform:" "$TMP/serve.log" | cut -c1-220

# ---- 3. compact, replay, replay again ------------------------------------------------
"$WEIR" compact -c "$TMP/w.yaml" -q
eq "compact: no raw segment left in k" 0 "$(find "$D/k/raw" -name '*.ndjson' | wc -l)"
"$WEIR" replay -c "$TMP/w.yaml" k --from "$DAY" --to "$(date -u -d "@$((H0 + 3 * 3600))" +%Y-%m-%dT%H:%M:%SZ)" 2>"$TMP/replay1.log"
eq "replay: exit 0" 0 $?
ok "replay: 3 partitions" grep -q "3 partitions replayed, 0 skipped, 0 failed; $N records in, $nd rows out" "$TMP/replay1.log"
got1=$(q "$KD")
eq "after replay: kd = the SQL over k" "$(md5sum <<<"$want")" "$(md5sum <<<"$got1")"
# again, with serve running (its lander of kd open, its consumer idle)
"$WEIR" serve -c "$TMP/w.yaml" 2>>"$TMP/serve.log" &
srv=$!
cleanup_pid "$srv"
sleep 1
"$WEIR" replay -c "$TMP/w.yaml" k --from "$DAY" -q
eq "replay again, beside serve: exit 0" 0 $?
kill -TERM "$srv"
wait "$srv"
eq "serve beside replay: clean stop" 0 $?
got2=$(q "$KD")
eq "replay again: the same kd" "$(md5sum <<<"$want")" "$(md5sum <<<"$got2")"
eq "kd: no raw segment left" 0 "$(find "$D/kd/raw" -name '*.ndjson' | wc -l)"
live=$(q "SELECT count(DISTINCT filename) FROM read_parquet('$D/kd/parquet/*/*/*.parquet', filename = true)" | tail -1)
echo "     kd: $live Parquet files on disk (old ones wait for the vacuum)"

# ---- 4. a new SQL, one hour replayed --------------------------------------------------
echo "$XF2" >"$TMP/xf.sql"
H1=$(date -u -d "@$((H0 + 3600))" +%Y-%m-%dT%H)
H2=$(date -u -d "@$((H0 + 7200))" +%Y-%m-%dT%H)
"$WEIR" replay -c "$TMP/w.yaml" k --from "$H1" --to "$H2" -q
eq "replay of one hour with the new SQL: exit 0" 0 $?
f1="ts >= $((H0 + 3600)) AND ts < $((H0 + 7200))"
want_new=$(q "SELECT * FROM ($(over_k "$XF2")) WHERE $f1 ORDER BY id")
got_new=$(q "SELECT * FROM ($KD) WHERE $f1 ORDER BY id")
eq "the replayed hour follows the new SQL" "$(md5sum <<<"$want_new")" "$(md5sum <<<"$got_new")"
want_old=$(q "SELECT * FROM ($(over_k "$XF1")) WHERE NOT ($f1) ORDER BY id")
got_old=$(q "SELECT * FROM ($KD) WHERE NOT ($f1) ORDER BY id")
eq "the other hours keep the old SQL's rows" "$(md5sum <<<"$want_old")" "$(md5sum <<<"$got_old")"
ok "the new SQL's rows differ from the old ones" test "$(md5sum <<<"$want_new")" != \
    "$(md5sum <<<"$(q "SELECT * FROM ($(over_k "$XF1")) WHERE $f1 ORDER BY id")")"

# ---- 5. refusals ------------------------------------------------------------------------
echo "SELEC id FROM batch" >"$TMP/xf.sql"
"$WEIR" serve -c "$TMP/w.yaml" 2>"$TMP/bad.log"
eq "a SQL error refuses to start: exit 2" 2 $?
ok "  ... and says which transform" grep -q "pipeline k: transform .*xf.sql" "$TMP/bad.log"
echo "SELECT id, v FROM batch" >"$TMP/xf.sql"
"$WEIR" serve -c "$TMP/w.yaml" 2>"$TMP/bad.log"
eq "no time field in the output: exit 2" 2 $?
ok "  ... and names it" grep -q 'no column "ts"' "$TMP/bad.log"
"$WEIR" replay -c "$TMP/w.yaml" k --from "$DAY" 2>"$TMP/bad.log"
eq "replay with a bad SQL: exit 2" 2 $?
cat >"$TMP/tcp.yaml" <<EOF
data_dir: $D
pipelines:
  - name: k
    transform: xf.sql
EOF
"$WEIR" check -c "$TMP/tcp.yaml" -q >/dev/null 2>"$TMP/bad.log"
eq "a transform on a TCP pipeline: weir check exit 2" 2 $?
ok "  ... says Kafka only" grep -q "reads TCP" "$TMP/bad.log"
"$WEIR" replay -c "$TMP/w.yaml" kd --from "$DAY" 2>"$TMP/bad.log"
eq "replay of a pipeline without transform: exit 2" 2 $?

# ---- 6. a batch the SQL fails on at run time ------------------------------------------
# The records stay in the pipeline, the failure is logged and counted, the
# batches after it go on.
echo "SELECT id, ts, CASE WHEN id = 100 THEN CAST(sensor AS INTEGER) ELSE id END AS n FROM batch" \
    >"$TMP/xf.sql"
sed -e "s|data_dir: .*|data_dir: $TMP/data2|" -e "s|group: g,|group: g2,|" "$TMP/w.yaml" >"$TMP/w2.yaml"
"$WEIR" serve -c "$TMP/w2.yaml" 2>"$TMP/serve2.log" &
srv=$!
cleanup_pid "$srv"
ok "a failing batch does not stop the pipeline" caught_up t g2 60
M=$(curl -s --max-time 5 "http://127.0.0.1:$MPORT/metrics")
eq "metrics: one batch failed" 1 "$(grep '^weir_transform_errors_total{pipeline="k"}' <<<"$M" | awk '{print $2}')"
kill -TERM "$srv"
wait "$srv"
eq "clean stop: exit 0" 0 $?
ok "the failure is logged with its hours and the way back" \
    grep -q "transform failed on a batch of .*weir replay k" "$TMP/serve2.log"
q2() { "$WEIR" query -c "$TMP/w2.yaml" --format csv "$1" 2>&1 | tail -1; }
eq "k: every record" "$N" "$(q2 "SELECT count(*) FROM k")"
nk=$(q2 "SELECT count(*) FROM kd")
ok "kd: all but the failed batch's rows ($nk of $N)" test "$nk" -lt "$N" -a "$nk" -gt 0
eq "kd: not the row that failed" 0 "$(q2 "SELECT count(*) FROM kd WHERE id = 100")"

ok "no error logged by serve" bash -c "! grep -E ' error ' '$TMP/serve.log'"
ok "no sanitizer report" bash -c "! grep -q Sanitizer '$TMP/serve.log' '$TMP/replay1.log'"
stop_mock
finish
