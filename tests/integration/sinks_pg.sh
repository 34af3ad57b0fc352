#!/usr/bin/env bash
# tests/integration/sinks_pg.sh - the PostgreSQL sink (src/sinks/postgres.c)
# against a real server started for the test (lib_pg.sh), driven through
# tests/tools/sinkload.
#
# Checks: rows in the warehouse equal the input, value for value (NULL vs
# empty string, quotes, commas, newlines, unicode, 64-bit extremes,
# doubles to the bit, NaN and infinities, timestamps with offsets,
# decimals, JSON); a re-load replaces (no duplicates) and leaves other
# partitions alone; bad data, a mismatched table and a missing table are
# refused with the row/column named and nothing changed; quoted
# identifiers; the DSN's password never printed; a backend killed with -9
# and the whole server killed with -9 in the middle of a large COPY leave
# the partition's earlier rows intact, and the retry through the same
# sink succeeds once the server is back.
set -u
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib_pg.sh"
SINKLOAD="$WEIR_BUILD/tools/sinkload"
DATA="python3 $WEIR_ROOT/tests/integration/sinks_data.py"

if [ "${WEIR_SKIP_WAREHOUSE:-0}" = 1 ]; then
    echo "skipped: WEIR_SKIP_WAREHOUSE=1"
    finish; exit
fi
PG_OPTS="-c fsync=off -c full_page_writes=off"
if ! pg_start; then
    eq "PostgreSQL server started" "started" "failed"
    finish; exit
fi
ok "PostgreSQL server started on 127.0.0.1:$PG_PORT" true

COLS=$($DATA columns)
# load PARTITION FILE [sinkload options...]: stdout in $TMP/out, stderr in $TMP/err.
load() {
    local part=$1 file=$2; shift 2
    "$SINKLOAD" --kind postgres --dsn "$PG_DSN" --table "${TABLE:-t}" --columns "${LCOLS:-$COLS}" \
        --start "$part" "$@" "$file" >"$TMP/out" 2>"$TMP/err"
}
count() { pg_sql "SELECT count(*) FROM ${TABLE:-t} WHERE weir_partition = '$1'"; }
export_rows() { # PARTITION: one JSON array per row, in id order
    pg_sql "SELECT json_build_array(id, at, name, v, n, ok, day, doc, amount, local)
            FROM t WHERE weir_partition = '$1' ORDER BY id"
}
pw_leaks=0
check_no_password() { grep -qF "$PG_PASSWORD" "$TMP/out" "$TMP/err" && pw_leaks=$((pw_leaks + 1)); }

P10=2025-09-02T10:00:00Z P11=2025-09-02T11:00:00Z P12=2025-09-02T12:00:00Z

# --- special values round-trip ------------------------------------------------
$DATA special "$TMP/special.csv" "$TMP/special.exp" --pg
nspecial=$(wc -l <"$TMP/special.exp")
ok "load the special values into a new table" load $P10 "$TMP/special.csv"
eq "the load reports the rows and the new table" "rows=$nspecial deleted=0 created=1" \
    "$(sed -E 's/.*(rows=[0-9]+) (deleted=[0-9]+) bytes=[0-9]+ (created=[0-9]).*/\1 \2 \3/' "$TMP/out")"
export_rows "$P10" >"$TMP/special.got"
ok "every value equals the input (doubles to the bit, NULL vs '')" \
    $DATA compare pg "$TMP/special.exp" "$TMP/special.got"
$DATA compare pg "$TMP/special.exp" "$TMP/special.got" | head -n 20
eq "NULL and the empty string stay apart" "1|1|1" \
    "$(pg_sql "SELECT count(*) FILTER (WHERE name IS NULL), count(*) FILTER (WHERE name = ''),
               count(*) FILTER (WHERE name = 'NULL') FROM t")"
eq "column types as documented" \
    "id:int8 at:timestamptz name:text v:float8 n:int8 ok:bool day:date doc:jsonb amount:numeric local:timestamp weir_partition:timestamptz" \
    "$(pg_sql "SELECT string_agg(a.attname || ':' || t.typname, ' ' ORDER BY a.attnum)
               FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid
               WHERE a.attrelid = 't'::regclass AND a.attnum > 0 AND NOT a.attisdropped")"
eq "an index on weir_partition" "1" \
    "$(pg_sql "SELECT count(*) FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid
               AND a.attnum = i.indkey[0] WHERE i.indrelid = 't'::regclass AND a.attname = 'weir_partition'")"

# --- idempotency --------------------------------------------------------------
ok "re-load the same partition" load $P10 "$TMP/special.csv"
eq "the re-load replaced the old rows" "rows=$nspecial deleted=$nspecial created=0" \
    "$(sed -E 's/.*(rows=[0-9]+) (deleted=[0-9]+) bytes=[0-9]+ (created=[0-9]).*/\1 \2 \3/' "$TMP/out")"
eq "no duplicates after the re-load" "$nspecial" "$(count $P10)"
$DATA hourly 1000 7 "2025-09-02 11:00:00" | awk -F, 'BEGIN{OFS=","} {print NR, $1, "\"r" NR "\"", $5, NR, "true", "2025-09-02", "\"{}\"", "1", "2025-09-02 11:00:00"}' >"$TMP/p11.csv"
ok "load another partition" load $P11 "$TMP/p11.csv"
eq "that partition has its rows" "1000" "$(count $P11)"
export_rows "$P10" >"$TMP/special.got2"
ok "the first partition is untouched" cmp -s "$TMP/special.got" "$TMP/special.got2"
head -n 3 "$TMP/p11.csv" >"$TMP/p11-small.csv"
ok "re-load the second partition with fewer rows" load $P11 "$TMP/p11-small.csv"
eq "it now has exactly those rows" "3" "$(count $P11)"
eq "the first is still untouched" "$nspecial" "$(count $P10)"
ok "a day-wide load replaces every hour inside it" \
    load 2025-09-02 "$TMP/p11-small.csv" --end 2025-09-03
eq "  ... so only its own rows remain that day" "3|0|0" \
    "$(pg_sql "SELECT count(*) FILTER (WHERE weir_partition = '2025-09-02 00:00:00+00'),
               count(*) FILTER (WHERE weir_partition = '$P10'), count(*) FILTER (WHERE weir_partition = '$P11') FROM t")"
ok "restore the hours" load $P10 "$TMP/special.csv"
load 2025-09-02 /dev/null --end 2025-09-02T01:00:00Z
ok "an empty load empties its partition" test "$(count 2025-09-02T00:00:00Z)" = 0
ok "restore the second hour" load $P11 "$TMP/p11-small.csv"

# --- refusals leave everything as it was ---------------------------------------
{ head -n 2 "$TMP/p11.csv"; echo '3,2025-09-02 11:00:00+00,"x",1.5,12x,true,2025-09-02,"{}",1,2025-09-02 11:00:00'; } >"$TMP/bad.csv"
load $P11 "$TMP/bad.csv"; rc=$?; check_no_password
eq "a bad bigint is refused (exit 1)" "1" "$rc"
ok "  ... naming row 3, column n" grep -q "row 3, column 5 (n bigint): '12x'" "$TMP/err"
eq "  ... and the partition keeps its rows" "3" "$(count $P11)"
printf '1,2025-09-02 11:00:00+00,"x",1.5,1,true,2025-09-02,"{}",1\n' >"$TMP/short.csv"
load $P11 "$TMP/short.csv"; rc=$?; check_no_password
eq "a row with a missing field is refused" "1" "$rc"
ok "  ... saying so" grep -q "row 1: 9 fields, want 10" "$TMP/err"
printf '1,2025-09-02 11:00:00+00,"unterminated\n' >"$TMP/open.csv"
load $P11 "$TMP/open.csv"; rc=$?
ok "an unterminated quoted field is refused" grep -q "ends inside a quoted field" "$TMP/err"
eq "  ... and the partition keeps its rows" "3" "$(count $P11)"
LCOLS="id:bigint,at:timestamptz,name:bigint" load $P11 "$TMP/p11.csv"; rc=$?; check_no_password
eq "a table with other columns is refused (exit 1)" "1" "$rc"
ok "  ... naming the differences" grep -q "column name is text, want bigint.*column v is not in the model's output" "$TMP/err"
TABLE=missing load $P11 "$TMP/p11.csv" --no-create; rc=$?
ok "a missing table with --no-create is refused" grep -q "does not exist" "$TMP/err"
eq "  ... and not created" '\N' "$(pg_sql "SELECT to_regclass('missing')")"
"$SINKLOAD" --kind postgres --dsn "${PG_DSN/password=/password=wrong}" --table t --columns "$COLS" \
    --start $P11 "$TMP/p11.csv" >"$TMP/out" 2>"$TMP/err"; rc=$?
eq "a wrong password fails to connect (exit 3)" "3" "$rc"
ok "  ... with the server's reason" grep -q "password authentication failed" "$TMP/err"
ok "  ... and the password masked" grep -q "password=\*\*\*\*" "$TMP/err"
check_no_password
"$SINKLOAD" --kind postgres --dsn "postgresql://weir:$PG_PASSWORD@127.0.0.1:$PG_PORT/wh" --table t \
    --columns "$COLS" --start $P11 "$TMP/p11-small.csv" >"$TMP/out" 2>"$TMP/err"
ok "a URI DSN works" grep -q "rows=3" "$TMP/out"
"$SINKLOAD" --kind postgres --dsn "host=127.0.0.1 port=$PG_PORT password=x$PG_PASSWORD $PG_PASSWORD" \
    --table t --columns "$COLS" --start $P11 "$TMP/p11.csv" >"$TMP/out" 2>"$TMP/err"; rc=$?
ok "a malformed DSN is refused in weir's words, without the DSN" grep -q "the DSN is not a libpq connection string" "$TMP/err"
check_no_password
eq "no message ever showed the password" "0" "$pw_leaks"

# --- identifiers are quoted, never pasted ----------------------------------------
pg_sql 'CREATE SCHEMA "odd schema" AUTHORIZATION weir' >/dev/null
printf '1,"a"\n2,\n' >"$TMP/odd.csv"
TABLE='"odd schema"."we.ird ""t"""' LCOLS='Sensor "Id";DROP:bigint,sensor name:varchar' \
    load $P10 "$TMP/odd.csv"
ok "odd table and column names load" grep -q "rows=2" "$TMP/out"
eq "  ... into the table so named" "1|a 2|\\N" \
    "$(pg_sql 'SELECT "Sensor ""Id"";DROP", "sensor name" FROM "odd schema"."we.ird ""t""" ORDER BY 1' | tr '\n' ' ' | sed 's/ $//')"

# --- a load killed half-way ----------------------------------------------------
$DATA hourly 300000 3 "2025-09-02 12:00:00" >"$TMP/big.csv"
BCOLS="start_time:timestamptz,end_time:timestamptz,sensor_id:bigint,sensor_name:varchar,avg_temp:double,readings:bigint"
printf '2025-09-02 12:00:00+00,2025-09-02 13:00:00+00,1,"old",1.5,1\n2025-09-02 12:00:00+00,2025-09-02 13:00:00+00,2,"old",2.5,2\n' >"$TMP/old.csv"
TABLE=hourly LCOLS=$BCOLS load $P12 "$TMP/old.csv"
eq "the partition holds its earlier rows" "2" "$(TABLE=hourly count $P12)"

# kill_mid_load HOW: start a large load that stalls after 8 MB (the COPY is
# under way: 8 MB are at the server), kill (HOW), check, let it go on.
kill_mid_load() {
    local how=$1 pid i
    rm -f "$TMP/stall" "$TMP/retry"
    "$SINKLOAD" --kind postgres --dsn "$PG_DSN application_name=weir-kill-test" --table hourly \
        --columns "$BCOLS" --start $P12 --stall-after 8000000 --stall-file "$TMP/stall" \
        --retry-file "$TMP/retry" "$TMP/big.csv" >"$TMP/kill.out" 2>"$TMP/kill.err" &
    pid=$!
    cleanup_pid $pid
    wh_wait 60 test -e "$TMP/stall" || { echo "the load never stalled"; cat "$TMP/kill.err"; }
    eq "$how: the COPY is in progress at the server" "1" \
        "$(pg_sql "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'weir-kill-test' AND query LIKE 'COPY%'")"
    if [ "$how" = backend ]; then
        kill -9 "$(pg_sql "SELECT pid FROM pg_stat_activity WHERE application_name = 'weir-kill-test'")"
    else
        pg_kill
    fi
    rm -f "$TMP/stall"
    wh_wait 60 grep -q "failed=" "$TMP/kill.out"
    ok "$how killed: the load fails" grep -q "failed=ECLOSED" "$TMP/kill.out"
    [ "$how" = server ] && { ok "the server restarts (crash recovery)" pg_restart; }
    wh_wait 60 pg_sql "SELECT 1"
    eq "$how killed: the partition still holds exactly its earlier rows" "$2" \
        "$(pg_sql "SELECT count(*) || ':' || coalesce(sum(sensor_id), 0) FROM hourly WHERE weir_partition = '$P12'")"
    touch "$TMP/retry"
    wait $pid; local rc=$?
    eq "$how killed: the retry through the same sink succeeds" "0" "$rc"
    ok "  ... having reconnected" grep -q "rows=300000" "$TMP/kill.out"
    eq "  ... and the partition holds the new rows, once" "300000" "$(TABLE=hourly count $P12)"
}
kill_mid_load backend "2:3"
TABLE=hourly LCOLS=$BCOLS load $P12 "$TMP/old.csv"
kill_mid_load server "2:3"
eq "the other partitions survived it all" "$nspecial 3" "$(count $P10) $(count $P11)"
export_rows "$P10" >"$TMP/special.got3"
ok "  ... value for value" $DATA compare pg "$TMP/special.exp" "$TMP/special.got3"

# --- a server restarted between two loads -------------------------------------
rm -f "$TMP/reload"
"$SINKLOAD" --kind postgres --dsn "$PG_DSN" --table t --columns "$COLS" --start $P11 \
    --reload-file "$TMP/reload" "$TMP/p11-small.csv" >"$TMP/re.out" 2>"$TMP/re.err" &
pid=$!
cleanup_pid $pid
wh_wait 60 grep -q "^rows=3" "$TMP/re.out"
pg_kill
pg_restart >/dev/null 2>&1
wh_wait 60 pg_sql "SELECT 1"
touch "$TMP/reload"
wait $pid; rc=$?
eq "a server restarted between two loads costs a reconnect, not a failure" "0 2" \
    "$rc $(grep -c '^rows=3 ' "$TMP/re.out")"

finish
