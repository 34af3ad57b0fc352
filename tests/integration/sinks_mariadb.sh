#!/usr/bin/env bash
# tests/integration/sinks_mariadb.sh - the MySQL sink (src/sinks/mysql.c)
# against a real MariaDB server started for the test (lib_mariadb.sh),
# driven through tests/tools/sinkload.
#
# Checks, for LOAD DATA LOCAL INFILE and for the prepared INSERT path:
# rows in the warehouse equal the input value for value (NULL vs empty
# string vs the string "NULL", quotes, commas, CR/LF, backslashes,
# unicode, 64-bit extremes, doubles to the bit, timestamps converted to
# UTC, decimals, JSON); a re-load replaces and other partitions stay;
# refusals (bad data, NaN, a mismatched table, a MyISAM table) change
# nothing; a server with local_infile off is served by INSERT; quoted
# identifiers; the password never printed; the connection killed
# (KILL) and the server killed (-9) in the middle of a large LOAD DATA
# leave the earlier rows intact, and the retry through the same sink
# succeeds once the server is back.
set -u
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib_mariadb.sh"
SINKLOAD="$WEIR_BUILD/tools/sinkload"
DATA="python3 $WEIR_ROOT/tests/integration/sinks_data.py"

if [ "${WEIR_SKIP_WAREHOUSE:-0}" = 1 ]; then
    echo "skipped: WEIR_SKIP_WAREHOUSE=1"
    finish; exit
fi
MY_OPTS="--innodb-flush-log-at-trx-commit=2"
if ! my_start; then
    eq "MariaDB server started" "started" "failed"
    finish; exit
fi
ok "MariaDB server started on 127.0.0.1:$MY_PORT" true

COLS=$($DATA columns)
load() { # PARTITION FILE [sinkload options...]
    local part=$1 file=$2; shift 2
    "$SINKLOAD" --kind mysql --dsn "$MY_DSN" --table "${TABLE:-t}" --columns "${LCOLS:-$COLS}" \
        --start "$part" "$@" "$file" >"$TMP/out" 2>"$TMP/err"
}
sqlts() { local t=${1/T/ }; echo "${t%Z}"; } # 2025-09-02T10:00:00Z -> 2025-09-02 10:00:00
count() { my_sql "SELECT count(*) FROM ${TABLE:-t} WHERE weir_partition = '$(sqlts "$1")'"; }
export_rows() { # PARTITION [TABLE]
    mariadb --no-defaults --default-character-set=utf8mb4 --socket="$MY_SOCK" -uroot -N -B -r wh -e \
        "SELECT JSON_ARRAY(id, at, name, v, n, ok, day, doc, amount, \`local\`)
         FROM ${2:-t} WHERE weir_partition = '$(sqlts "$1")' ORDER BY id"
}
pw_leaks=0
check_no_password() { grep -qF "$MY_PASSWORD" "$TMP/out" "$TMP/err" && pw_leaks=$((pw_leaks + 1)); }
stats() { sed -E 's/.*(rows=[0-9]+) (deleted=[0-9]+) bytes=[0-9]+ (created=[0-9]) method=([a-z ]+) .*/\1 \2 \3 \4/' "$TMP/out"; }

P10=2025-09-02T10:00:00Z P11=2025-09-02T11:00:00Z P12=2025-09-02T12:00:00Z

# --- special values round-trip, both ways in -------------------------------------
$DATA special "$TMP/special.csv" "$TMP/special.exp"
nspecial=$(wc -l <"$TMP/special.exp")
ok "load the special values (LOAD DATA) into a new table" load "$P10" "$TMP/special.csv"
eq "the load reports its rows, the new table and the method" \
    "rows=$nspecial deleted=0 created=1 load data" "$(stats)"
export_rows "$P10" >"$TMP/special.got"
ok "every value equals the input (doubles to the bit, NULL vs '' vs 'NULL')" \
    $DATA compare mysql "$TMP/special.exp" "$TMP/special.got"
$DATA compare mysql "$TMP/special.exp" "$TMP/special.got" | head -n 20
eq "NULL, '' and 'NULL' stay apart" "1	1	1" \
    "$(my_sql "SELECT sum(name IS NULL), sum(name = ''), sum(name = 'NULL') FROM t")"
eq "column types as documented" \
    "id:bigint at:datetime(6) name:longtext v:double n:bigint ok:tinyint(1) day:date doc:longtext amount:decimal(18,3) local:datetime(6) weir_partition:datetime(6)" \
    "$(my_sql "SELECT GROUP_CONCAT(CONCAT(COLUMN_NAME, ':', COLUMN_TYPE) ORDER BY ORDINAL_POSITION SEPARATOR ' ')
               FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = 'wh' AND TABLE_NAME = 't'" |
       sed -E 's/bigint\([0-9]+\)/bigint/g')"
eq "InnoDB, with an index on weir_partition" "InnoDB 1" \
    "$(my_sql "SELECT ENGINE FROM information_schema.TABLES WHERE TABLE_SCHEMA='wh' AND TABLE_NAME='t'") $(my_sql "SELECT count(*) FROM information_schema.STATISTICS WHERE TABLE_SCHEMA='wh' AND TABLE_NAME='t' AND COLUMN_NAME='weir_partition'")"
ok "re-load through prepared INSERTs (batches of 4)" load "$P10" "$TMP/special.csv" --method insert --batch 4
eq "  ... replacing the rows" "rows=$nspecial deleted=$nspecial created=0 insert" "$(stats)"
export_rows "$P10" >"$TMP/special.got-insert"
ok "  ... to the same values" $DATA compare mysql "$TMP/special.exp" "$TMP/special.got-insert"
$DATA compare mysql "$TMP/special.exp" "$TMP/special.got-insert" | head -n 20

# --- idempotency ---------------------------------------------------------------
ok "re-load the same partition" load "$P10" "$TMP/special.csv"
eq "no duplicates after the re-load" "$nspecial" "$(count "$P10")"
$DATA hourly 1000 7 "2025-09-02 11:00:00" | awk -F, 'BEGIN{OFS=","} {print NR, $1, "\"r" NR "\"", $5, NR, "true", "2025-09-02", "\"{}\"", "1", "2025-09-02 11:00:00"}' >"$TMP/p11.csv"
ok "load another partition" load "$P11" "$TMP/p11.csv"
eq "that partition has its rows" "1000" "$(count "$P11")"
export_rows "$P10" >"$TMP/special.got2"
ok "the first partition is untouched" cmp -s "$TMP/special.got" "$TMP/special.got2"
head -n 3 "$TMP/p11.csv" >"$TMP/p11-small.csv"
ok "re-load the second partition with fewer rows" load "$P11" "$TMP/p11-small.csv"
eq "it now has exactly those rows" "3" "$(count "$P11")"
eq "the first is still untouched" "$nspecial" "$(count "$P10")"
ok "an empty load" load 2025-09-02T13:00:00Z /dev/null
eq "  ... of an empty partition" "0" "$(count 2025-09-02T13:00:00Z)"

# --- refusals leave everything as it was ------------------------------------------
{ head -n 2 "$TMP/p11.csv"; echo '3,2025-09-02 11:00:00+00,"x",1.5,12x,true,2025-09-02,"{}",1,2025-09-02 11:00:00'; } >"$TMP/bad.csv"
load "$P11" "$TMP/bad.csv"; rc=$?; check_no_password
eq "a bad bigint is refused (exit 1)" "1" "$rc"
ok "  ... naming row 3, column n" grep -q "row 3, column 5 (n bigint): '12x'" "$TMP/err"
eq "  ... and the partition keeps its rows" "3" "$(count "$P11")"
load "$P11" "$TMP/bad.csv" --method insert; rc=$?; check_no_password
eq "  ... also on the INSERT path" "1 3" "$rc $(count "$P11")"
{ head -n 2 "$TMP/p11.csv"; echo '3,2025-09-02 11:00:00+00,"x",nan,3,true,2025-09-02,"{}",1,2025-09-02 11:00:00'; } >"$TMP/nan.csv"
load "$P11" "$TMP/nan.csv"; rc=$?
eq "NaN is refused: MySQL's DOUBLE cannot hold it" "1" "$rc"
ok "  ... saying so" grep -q "holds no NaN or infinity" "$TMP/err"
eq "  ... and the partition keeps its rows" "3" "$(count "$P11")"
{ head -n 2 "$TMP/p11.csv"; echo '3,2025-09-02 11:00:00+00,"x",1,3,true,2025-09-02,"{}",12345678901234567,2025-09-02 11:00:00'; } >"$TMP/dec.csv"
load "$P11" "$TMP/dec.csv"; rc=$?
eq "a decimal too wide for decimal(18,3) is refused, not rounded" "1" "$rc"
LCOLS="id:bigint,at:timestamptz,name:bigint" load "$P11" "$TMP/p11.csv"; rc=$?; check_no_password
eq "a table with other columns is refused (exit 1)" "1" "$rc"
ok "  ... naming the differences" grep -q "column name is longtext, want bigint.*column v is not in the model's output" "$TMP/err"
my_sql "CREATE TABLE myi (id BIGINT, weir_partition DATETIME(6) NOT NULL) ENGINE=MyISAM"
TABLE=myi LCOLS=id:bigint load "$P11" "$TMP/p11-small.csv"; rc=$?
eq "a MyISAM table is refused (no transactions)" "1" "$rc"
ok "  ... saying why" grep -q "needs InnoDB" "$TMP/err"
TABLE=missing load "$P11" "$TMP/p11.csv" --no-create; rc=$?
ok "a missing table with --no-create is refused" grep -q "does not exist" "$TMP/err"
"$SINKLOAD" --kind mysql --dsn "${MY_DSN/password=/password=wrong}" --table t --columns "$COLS" \
    --start "$P11" "$TMP/p11.csv" >"$TMP/out" 2>"$TMP/err"; rc=$?
eq "a wrong password fails to connect (exit 3)" "3" "$rc"
ok "  ... with the server's reason" grep -q "Access denied" "$TMP/err"
ok "  ... and the password masked" grep -q "password=\*\*\*\*" "$TMP/err"
check_no_password
"$SINKLOAD" --kind mysql --dsn "host=127.0.0.1 port=$MY_PORT db=wh user=weir password=$MY_PASSWORD bogus=1" \
    --table t --columns "$COLS" --start "$P11" "$TMP/p11.csv" >"$TMP/out" 2>"$TMP/err"; rc=$?
ok "an unknown DSN key is refused by name" grep -q "unknown key 'bogus'" "$TMP/err"
check_no_password
"$SINKLOAD" --kind mysql --dsn "mysql://weir:$MY_PASSWORD@127.0.0.1:$MY_PORT/wh" --table t \
    --columns "$COLS" --start "$P11" "$TMP/p11-small.csv" >"$TMP/out" 2>"$TMP/err"
ok "a URI DSN works" grep -q "rows=3" "$TMP/out"
eq "no message ever showed the password" "0" "$pw_leaks"

# --- a server without local_infile --------------------------------------------------
my_sql "SET GLOBAL local_infile = 0"
ok "with local_infile off, the default method still loads" load "$P11" "$TMP/p11-small.csv"
eq "  ... by INSERT" "rows=3 deleted=3 created=0 insert" "$(stats)"
load "$P11" "$TMP/p11-small.csv" --method load; rc=$?
eq "  ... and --method load fails" "3" "$rc"
eq "  ... leaving the rows" "3" "$(count "$P11")"
my_sql "SET GLOBAL local_infile = 1"

# --- identifiers are quoted, never pasted ----------------------------------------------
my_sql 'CREATE DATABASE `odd db`; GRANT ALL ON `odd db`.* TO '"'weir'@'127.0.0.1'"
printf '1,"a"\n2,\n' >"$TMP/odd.csv"
TABLE='`odd db`.`we.ird ``t``'"'"'`' LCOLS='Sensor `Id`;DROP:bigint,sensor name:varchar' \
    load "$P10" "$TMP/odd.csv"
ok "odd table and column names load" grep -q "rows=2" "$TMP/out"
eq "  ... into the table so named" "1 a 2 NULL" \
    "$(my_sql 'SELECT `Sensor ``Id``;DROP`, `sensor name` FROM `odd db`.`we.ird ``t``'"'"'` ORDER BY 1' | tr '\t\n' '  ' | sed 's/ $//')"

# --- a load killed half-way -------------------------------------------------------
$DATA hourly 300000 3 "2025-09-02 12:00:00" >"$TMP/big.csv"
BCOLS="start_time:timestamptz,end_time:timestamptz,sensor_id:bigint,sensor_name:varchar,avg_temp:double,readings:bigint"
printf '2025-09-02 12:00:00+00,2025-09-02 13:00:00+00,1,"old",1.5,1\n2025-09-02 12:00:00+00,2025-09-02 13:00:00+00,2,"old",2.5,2\n' >"$TMP/old.csv"
TABLE=hourly LCOLS=$BCOLS load "$P12" "$TMP/old.csv"
eq "the partition holds its earlier rows" "2" "$(TABLE=hourly count "$P12")"

kill_mid_load() { # HOW EXPECTED
    local how=$1 pid id
    rm -f "$TMP/stall" "$TMP/retry"
    "$SINKLOAD" --kind mysql --dsn "$MY_DSN" --table hourly --columns "$BCOLS" --start "$P12" \
        --stall-after 8000000 --stall-file "$TMP/stall" --retry-file "$TMP/retry" \
        "$TMP/big.csv" >"$TMP/kill.out" 2>"$TMP/kill.err" &
    pid=$!
    cleanup_pid $pid
    wh_wait 60 test -e "$TMP/stall" || { echo "the load never stalled"; cat "$TMP/kill.err"; }
    id=$(my_sql "SELECT ID FROM information_schema.PROCESSLIST WHERE INFO LIKE 'LOAD DATA%'")
    ok "$how: the LOAD DATA is in progress at the server" test -n "$id"
    if [ "$how" = connection ]; then
        my_sql "KILL $id"
        rm -f "$TMP/stall"
        # A KILL that lands while the server is between two reads of the
        # stalled client can go unnoticed until the next packet: repeat it
        # for any LOAD DATA still listed until the client sees the failure.
        for _ in $(seq 60); do
            grep -q "failed=" "$TMP/kill.out" && break
            for id in $(my_sql "SELECT ID FROM information_schema.PROCESSLIST WHERE INFO LIKE 'LOAD DATA%'"); do
                my_sql "KILL $id" 2>/dev/null
            done
            sleep 1
        done
    else
        my_kill
        rm -f "$TMP/stall"
    fi
    wh_wait 60 grep -q "failed=" "$TMP/kill.out"
    ok "$how killed: the load fails" grep -q "failed=E" "$TMP/kill.out"
    [ "$how" = server ] && { ok "the server restarts (InnoDB recovery)" my_restart; }
    eq "$how killed: the partition still holds exactly its earlier rows" "$2" \
        "$(my_sql "SELECT CONCAT(count(*), ':', coalesce(sum(sensor_id), 0)) FROM hourly WHERE weir_partition = '$(sqlts $P12)'")"
    touch "$TMP/retry"
    wait $pid; local rc=$?
    eq "$how killed: the retry through the same sink succeeds" "0" "$rc"
    ok "  ... having reconnected" grep -q "rows=300000" "$TMP/kill.out"
    eq "  ... and the partition holds the new rows, once" "300000" "$(TABLE=hourly count "$P12")"
}
kill_mid_load connection "2:3"
TABLE=hourly LCOLS=$BCOLS load "$P12" "$TMP/old.csv"
kill_mid_load server "2:3"
eq "the other partitions survived it all" "$nspecial 3" "$(count "$P10") $(count "$P11")"
export_rows "$P10" >"$TMP/special.got3"
ok "  ... value for value" $DATA compare mysql "$TMP/special.exp" "$TMP/special.got3"

# --- a server restarted between two loads -------------------------------------
rm -f "$TMP/reload"
"$SINKLOAD" --kind mysql --dsn "$MY_DSN" --table t --columns "$COLS" --start $P11 \
    --reload-file "$TMP/reload" "$TMP/p11-small.csv" >"$TMP/re.out" 2>"$TMP/re.err" &
pid=$!
cleanup_pid $pid
wh_wait 60 grep -q "^rows=3" "$TMP/re.out"
my_kill
my_restart >/dev/null 2>&1
wh_wait 60 my_sql "SELECT 1"
touch "$TMP/reload"
wait $pid; rc=$?
eq "a server restarted between two loads costs a reconnect, not a failure" "0 2" \
    "$rc $(grep -c '^rows=3 ' "$TMP/re.out")"

finish
