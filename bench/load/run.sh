#!/usr/bin/env bash
# bench/load/run.sh - warehouse loads: weir's sinks (src/sinks/, through
# tests/tools/sinkload) against each server's own bulk loader, on the same
# rows, on private servers started by tests/integration/lib_pg.sh and
# lib_mariadb.sh (installed when missing).
#
#   bench/load/run.sh [--rows N] [--reps R] [--no-results]
#
# Rows: N (1,000,000) rows of the hourly_temperature shape (start_time,
# end_time timestamptz, sensor_id bigint, sensor_name varchar, avg_temp
# double, readings bigint), about 100 bytes a row of weir CSV, one hour.
#
# Peers, each into a table of the same columns plus weir_partition (with a
# default, for the peers) and its index:
#   PostgreSQL  psql -c "\copy t (...) FROM file CSV"      (the same file)
#   MariaDB     mariadb --local-infile=1 -e "LOAD DATA LOCAL INFILE ..."
#               (the same rows, timestamps written as MariaDB reads them)
# weir loads into an empty partition (as the peers do) and, separately,
# replaces a full one (DELETE of N rows + load, the re-run case). Every run
# is checked afterwards (row count and sums of sensor_id and readings); a
# wrong result is a FAIL row. Median of R (5) runs by wall time, the cases of a server run in
# rounds; servers
# with their default durability (fsync on). Prints the table and, unless
# --no-results, replaces the "## load" section of bench/RESULTS.md. Never
# fails a build: exits 0 whatever happened.
set -uo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
rows=1000000 reps=5 write=1
while [ $# -gt 0 ]; do
    case "$1" in
    --rows) rows=$2; shift 2 ;;
    --reps) reps=$2; shift 2 ;;
    --no-results) write=0; shift ;;
    *) echo "usage: bench/load/run.sh [--rows N] [--reps R] [--no-results]" >&2; exit 2 ;;
    esac
done

out=bench/out/load
mkdir -p "$out"
echo "load: building sinkload (release)"
make --no-print-directory MODE=release -j2 build/release/tools/sinkload >/dev/null || {
    echo "load: build failed" >&2; exit 0; }
SINKLOAD=$ROOT/build/release/tools/sinkload

csv=$out/hourly-$rows.csv
if [ ! -s "$csv" ]; then
    echo "load: generating $rows rows"
    python3 tests/integration/sinks_data.py hourly "$rows" 1 >"$csv.tmp" && mv "$csv.tmp" "$csv"
fi
# MariaDB's LOAD DATA reads DATETIME without the zone suffix.
mycsv=$out/hourly-$rows.mysql.csv
[ -s "$mycsv" ] || sed 's/+00,/,/g' "$csv" >"$mycsv"
mb=$(awk -v b="$(stat -c %s "$csv")" 'BEGIN{printf "%.1f", b/1e6}')

WEIR_ROOT=$ROOT
. tests/integration/lib_pg.sh
. tests/integration/lib_mariadb.sh

COLS="start_time:timestamptz,end_time:timestamptz,sensor_id:bigint,sensor_name:varchar,avg_temp:double,readings:bigint"
COLNAMES="start_time, end_time, sensor_id, sensor_name, avg_temp, readings"
PART=2025-09-02T10:00:00Z
want="$rows:$(awk -F, '{s+=$3; r+=$NF} END {printf "%d:%d", s, r}' "$csv")"

now() { echo "${EPOCHREALTIME/,/.}"; }
# CPU seconds (user + sys) used so far by the children this shell waited
# for, into $cpu_now. `times` must run in this shell (not in a $(...)
# subshell, which has children of its own), hence the file.
child_cpu() {
    times >"$out/times"
    cpu_now=$(sed -n 2p "$out/times" | awk '{ t = 0; for (i = 1; i <= 2; i++) { split($i, a, /[ms]/); t += a[1] * 60 + a[2] } printf "%.3f", t }')
}
commas() { echo "$1" | sed -E ':a; s/([0-9])([0-9]{3})($|,)/\1,\2\3/; ta'; }
results=()   # "target|client|seconds...|verdict"

# Cases of one server, run in rounds (case 1, 2, 3, then again) so a
# machine whose load drifts bends every client alike.
cases=()
add_case() { cases+=("$1|$2|$3|$4|$5"); } # TARGET CLIENT PREPARE RUN CHECK
run_cases() {
    local n=${#cases[@]} i k t0 t1 got target client prepare run check
    local -a times cpus verdict
    local c0
    for ((k = 0; k < n; k++)); do times[k]=""; cpus[k]=""; verdict[k]=OK; done
    for i in $(seq 1 "$reps"); do
        for ((k = 0; k < n; k++)); do
            IFS='|' read -r target client prepare run check <<<"${cases[k]}"
            eval "$prepare" >/dev/null 2>&1
            child_cpu
            c0=$cpu_now
            t0=$(now)
            if ! eval "$run" >"$out/last.out" 2>"$out/last.err"; then
                verdict[k]=FAIL
                echo "load: $target / $client failed: $(head -c 300 "$out/last.err")" >&2
            fi
            t1=$(now)
            times[k]="${times[k]} $(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.3f", b-a}')"
            child_cpu
            cpus[k]="${cpus[k]} $(awk -v a="$c0" -v b="$cpu_now" 'BEGIN{printf "%.3f", b-a}')"
            got=$(eval "$check" 2>/dev/null)
            if [ "$got" != "$want" ]; then
                verdict[k]=FAIL
                echo "load: $target / $client: got $got, want $want" >&2
            fi
        done
    done
    for ((k = 0; k < n; k++)); do
        IFS='|' read -r target client _ <<<"${cases[k]}"
        results+=("$target|$client|${times[k]# }|${verdict[k]}|${cpus[k]# }")
        echo "  $target / $client:${times[k]} s (${verdict[k]})"
    done
    cases=()
}

# --- PostgreSQL ---------------------------------------------------------------
pg_ok=0
if pg_start; then
    pg_ok=1
    echo "load: PostgreSQL on 127.0.0.1:$PG_PORT"
    wload_pg() {
        "$SINKLOAD" --kind postgres --dsn "$PG_DSN" --table hourly --columns "$COLS" --start $PART "$csv"
    }
    wload_pg >/dev/null   # creates the table
    pg_sql "CREATE TABLE hourly_peer (LIKE hourly INCLUDING INDEXES);
            ALTER TABLE hourly_peer ALTER weir_partition SET DEFAULT '2025-09-02 10:00:00+00';
            ALTER TABLE hourly_peer OWNER TO weir" >/dev/null
    check_pg() { pg_sql "SELECT count(*) || ':' || sum(sensor_id) || ':' || sum(readings) FROM $1 WHERE weir_partition = '2025-09-02 10:00:00+00'"; }
    # The same rows with weir_partition in every line, as weir sends them.
    pcsv=$out/hourly-$rows.partition.csv
    [ -s "$pcsv" ] || sed 's/$/,2025-09-02 10:00:00+00/' "$csv" >"$pcsv"
    peer_pg() { # FILE [weir_partition]
        PGPASSWORD=$PG_PASSWORD psql -X -q -h 127.0.0.1 -p "$PG_PORT" -U weir -d wh \
            -c "\\copy hourly_peer ($COLNAMES${2:+, $2}) FROM '$ROOT/$1' CSV"
    }
    add_case PostgreSQL "weir, into an empty partition (COPY)" "pg_sql 'TRUNCATE hourly'" wload_pg "check_pg hourly"
    add_case PostgreSQL 'psql \copy' "pg_sql 'TRUNCATE hourly_peer'" "peer_pg $csv" "check_pg hourly_peer"
    add_case PostgreSQL 'psql \copy, weir_partition in each row' "pg_sql 'TRUNCATE hourly_peer'" \
        "peer_pg $pcsv weir_partition" "check_pg hourly_peer"
    add_case PostgreSQL "weir, replacing a full partition" "" wload_pg "check_pg hourly"
    run_cases
    pg_version=$(pg_sql "SHOW server_version")
    pg_stop
else
    echo "load: PostgreSQL could not be started; skipped" >&2
fi

# --- MariaDB ------------------------------------------------------------------
my_ok=0
if my_start; then
    my_ok=1
    echo "load: MariaDB on 127.0.0.1:$MY_PORT"
    wload_my() {
        "$SINKLOAD" --kind mysql --dsn "$MY_DSN" --table hourly --columns "$COLS" --start $PART "$@" "$csv"
    }
    wload_my >/dev/null
    my_sql "CREATE TABLE hourly_peer LIKE hourly;
            ALTER TABLE hourly_peer ALTER weir_partition SET DEFAULT '2025-09-02 10:00:00'"
    check_my() { my_sql "SELECT CONCAT(count(*), ':', sum(sensor_id), ':', sum(readings)) FROM $1 WHERE weir_partition = '2025-09-02 10:00:00'"; }
    peer_my() {
        mariadb --no-defaults --local-infile=1 -h 127.0.0.1 -P "$MY_PORT" -u weir \
            -p"$MY_PASSWORD" wh -e "LOAD DATA LOCAL INFILE '$ROOT/$mycsv' INTO TABLE hourly_peer
                CHARACTER SET utf8mb4 FIELDS TERMINATED BY ',' OPTIONALLY ENCLOSED BY '\"'
                ESCAPED BY '' LINES TERMINATED BY '\\n' ($COLNAMES)"
    }
    add_case MariaDB "weir, into an empty partition (LOAD DATA LOCAL)" "my_sql 'TRUNCATE hourly'" wload_my "check_my hourly"
    add_case MariaDB "mariadb LOAD DATA LOCAL INFILE" "my_sql 'TRUNCATE hourly_peer'" peer_my "check_my hourly_peer"
    add_case MariaDB "weir, into an empty partition (prepared INSERT, 1000 rows)" "my_sql 'TRUNCATE hourly'" \
        "wload_my --method insert" "check_my hourly"
    add_case MariaDB "weir, replacing a full partition (LOAD DATA LOCAL)" "" wload_my "check_my hourly"
    run_cases
    my_version=$(my_sql "SELECT VERSION()")
    my_stop
else
    echo "load: MariaDB could not be started; skipped" >&2
fi

# --- report -----------------------------------------------------------------------
section=$(mktemp)
{
    echo "## load"
    echo
    echo "Loading one partition of $(commas "$rows") rows of the hourly_temperature shape ($mb MB of CSV: start_time, end_time, sensor_id, sensor_name, avg_temp, readings) into a private server on 127.0.0.1, by weir's sinks (\`tests/tools/sinkload\` over \`src/sinks/\`: one transaction, DELETE of the partition, then the rows) and by each server's own bulk loader on the same rows. Median of $reps runs by wall time, client and server on the same 2 cores, servers with default durability. Each run is checked afterwards (row count and sums); a wrong result is a FAIL row. \"vs peer\" compares rows/s with the server's own loader."
    echo
    echo "| server | client | rows | wall s | rows/s | MB/s | vs peer | client CPU s | verdict |"
    echo "|---|---|---:|---:|---:|---:|---:|---:|---|"
    for r in "${results[@]}"; do
        IFS='|' read -r target client times verdict cpus <<<"$r"
        med=$(tr ' ' '\n' <<<"$times" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')
        cpu=$(tr ' ' '\n' <<<"$cpus" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')
        peer=""
        for p in "${results[@]}"; do
            IFS='|' read -r pt pc ptimes _ <<<"$p"
            if [ "$pt" = "$target" ] && [[ "$pc" == 'psql \copy' || "$pc" == mariadb* ]]; then
                peer=$(tr ' ' '\n' <<<"$ptimes" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')
            fi
        done
        T=$target C=$client awk -v n="$rows" -v s="$med" -v p="$peer" -v mb="$mb" -v v="$verdict" -v cpu="$cpu" 'BEGIN {
            t = ENVIRON["T"]; c = ENVIRON["C"]
            rps = s > 0 ? n / s : 0
            ratio = (p != "" && s > 0) ? sprintf("%.2f×", p / s) : "-"
            printf "| %s | %s | %s | %.2f | %s | %.1f | %s | %.2f | %s |\n", t, c, commas(n), s, commas(int(rps + 0.5)), (s > 0 ? mb / s : 0), ratio, cpu, v
        }
        function commas(x,   s) { s = sprintf("%d", x); while (s ~ /[0-9][0-9][0-9][0-9]/) sub(/[0-9][0-9][0-9]($|,)/, ",&", s); return s }'
    done
    echo
    echo "weir sends weir_partition in every row (so one statement loads any table, whoever created it) and PostgreSQL parses that timestamptz on every row, while the peers' table takes it from a column default: the row \"psql \\copy, weir_partition in each row\" is the like-for-like peer. MariaDB's LOAD DATA gets the value once, from a SET clause. \"client CPU s\" is the loading client alone (user + sys): weir checks every value and re-encodes every row; the rest of the wall time is the server's. \"replacing a full partition\" adds the DELETE of the old rows in the same transaction."
    echo
    echo "Wall times of every run (s): $(for r in "${results[@]}"; do IFS='|' read -r t c times _ <<<"$r"; printf '%s / %s: %s; ' "$t" "$c" "$times"; done | sed 's/; $//')."
    echo
    echo "Run on $(date -u '+%Y-%m-%d %H:%M') UTC:"
    echo
    echo '```'
    echo "bench/load/run.sh --rows $rows --reps $reps"
    echo "machine: $(nproc) cores, $(uname -sr), $(. /etc/os-release && echo "$PRETTY_NAME")"
    [ "$pg_ok" = 1 ] && echo "PostgreSQL: ${pg_version:-?} (libpq $(pkg-config --modversion libpq 2>/dev/null))"
    [ "$my_ok" = 1 ] && echo "MariaDB: ${my_version:-?} (Connector/C $(pkg-config --modversion libmariadb 2>/dev/null))"
    echo "weir: $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null), cc -O2"
    echo '```'
} >"$section"
cat "$section"

if [ "$write" = 1 ]; then
    res=bench/RESULTS.md
    python3 bench/tools/results.py "$res" "## load" "$section"
    echo "load: section written to $res"
fi
rm -f "$section"
exit 0
