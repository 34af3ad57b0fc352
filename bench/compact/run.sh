#!/usr/bin/env bash
# bench/compact/run.sh - `weir compact` against DuckDB's own COPY on the same
# raw segments.
#
#   bench/compact/run.sh [--hours H] [--per-hour N] [--segments S] [--reps R]
#                        [--threads T] [--peers LIST] [--no-results]
#
# The workload (bench/compact/workload.sh): H hours (default 8) of telemetry,
# N records an hour (default 1,040,000: about 1 GB in all), S segments an
# hour (default 4), written once in weir's raw layout under bench/out/.
# Every peer converts all of it to zstd Parquet with T DuckDB threads
# (default: the number of cores), R times (default 3, interleaved); the data
# directory is rebuilt from hard links before each run. Measured with
# bench/tools/timed.py (wait4): wall, CPU (user + sys), peak RSS; then the Parquet bytes.
#
# Peers:
#   weir              weir compact --all -q --threads T, the pipeline's schema
#                     the pydantic export of the seed model (its root allows
#                     undeclared properties: the _extra column exists)
#   weir-closed       the same schema with "additionalProperties": false at
#                     the root (no _extra column)
#   duckdb            bench/out/duckrun -t T "COPY (SELECT * FROM
#                     read_json('RAW/*/*/*.ndjson')) TO 'F' (FORMAT parquet,
#                     COMPRESSION zstd)": DuckDB's own auto-detecting reader
#                     and defaults, as the seed design runs it
#   duckdb-unordered  the same after SET preserve_insertion_order = false,
#                     which weir sets too (row order means nothing here)
#
# Checks: every result, read back, must hold exactly the records generated
# (count) with the same sums of timestamp, sensor_id and value as DuckDB's
# own result, or the row says FAIL. Then one query on each result, with
# plain DuckDB (duckrun) so only the files differ: the average value per
# sensor per hour (1,000 sensors x H hours), R times.
#
# The table goes to stdout and, unless --no-results, into bench/RESULTS.md
# under "## compact" (that section only). Exits 0 whatever the rows say, 2
# on a usage error.
set -uo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"

cmdline="bench/compact/run.sh${*:+ $*}"
hours=8 per_hour=1040000 segs=4 reps=3 threads=$(nproc) write=1
peers=weir,weir-closed,duckdb,duckdb-unordered
while [ $# -gt 0 ]; do
    case "$1" in
    --hours) hours=$2; shift 2 ;;
    --per-hour) per_hour=$2; shift 2 ;;
    --segments) segs=$2; shift 2 ;;
    --reps) reps=$2; shift 2 ;;
    --threads) threads=$2; shift 2 ;;
    --peers) peers=$2; shift 2 ;;
    --no-results) write=0; shift ;;
    -h|--help) sed -n '2,/^set /p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "compact/run.sh: unknown option $1" >&2; exit 2 ;;
    esac
done
for v in "$hours" "$per_hour" "$segs" "$reps" "$threads"; do
    [[ "$v" =~ ^[1-9][0-9]*$ ]] || { echo "compact/run.sh: bad number '$v'" >&2; exit 2; }
done
[ "$hours" -le 24 ] || { echo "compact/run.sh: at most 24 hours" >&2; exit 2; }

out=$root/bench/out/compact
mkdir -p "$out"
log() { echo "compact: $*" >&2; }
timer=$root/bench/tools/timed.py   # wall, CPU, peak RSS of one process

# --- build ------------------------------------------------------------------
make -s -C bench tools >/dev/null || { log "bench tools do not build"; exit 0; }
weir_bin=${WEIR_BIN:-build/release/weir}
if [ -z "${WEIR_BIN:-}" ]; then
    make -s -j2 MODE=release all >"$out/weir-build.log" 2>&1 ||
        { log "weir does not build (see $out/weir-build.log)"; exit 0; }
fi
weir_bin=$(cd "$(dirname "$weir_bin")" && pwd)/$(basename "$weir_bin")
duckrun=$root/bench/out/duckrun

# --- workload, schemas, configs -----------------------------------------------
. bench/compact/workload.sh
lake_workload "$hours" "$per_hour" "$segs" || { log "workload failed"; exit 0; }
raw=$root/$WL_RAW
schema=$root/bench/validate/telemetry.schema.json
[ -f examples/telemetry.schema.json ] && schema=$root/examples/telemetry.schema.json
python3 - "$schema" "$out/telemetry-closed.schema.json" <<'EOF'
import json, sys
s = json.load(open(sys.argv[1]))
s["additionalProperties"] = False
json.dump(s, open(sys.argv[2], "w"), indent=1)
EOF
for kind in open closed; do
    sch=$schema
    [ $kind = closed ] && sch=$out/telemetry-closed.schema.json
    cat >"$out/weir-$kind.yaml" <<EOF
data_dir: $out/lake-$kind
pipelines:
  - name: telemetry
    source:
      tcp: 127.0.0.1:7601
    schema: $sch
    time_field: timestamp
    time_unit: s
EOF
done

fresh_lake() { # kind: a data dir holding the raw segments and nothing else
    rm -rf "$out/lake-$1"
    mkdir -p "$out/lake-$1/telemetry"
    cp -al "$raw" "$out/lake-$1/telemetry/raw"
    rm -f "$out/lake-$1/telemetry/raw/.done"
}

copy_sql() { # unordered -> the peer's statement
    local pre=""
    [ "$1" = 1 ] && pre="SET preserve_insertion_order = false; "
    echo "${pre}COPY (SELECT * FROM read_json('$raw/*/*/*.ndjson')) TO '$out/duckdb.parquet' (FORMAT parquet, COMPRESSION zstd)"
}

peer_cmd() { # peer -> cmd=() and prepares the run
    case "$1" in
    weir) fresh_lake open
        cmd=("$weir_bin" compact -q --all --threads "$threads" -c "$out/weir-open.yaml") ;;
    weir-closed) fresh_lake closed
        cmd=("$weir_bin" compact -q --all --threads "$threads" -c "$out/weir-closed.yaml") ;;
    duckdb) rm -f "$out/duckdb.parquet"
        cmd=("$duckrun" -t "$threads" "$(copy_sql 0)") ;;
    duckdb-unordered) rm -f "$out/duckdb.parquet"
        cmd=("$duckrun" -t "$threads" "$(copy_sql 1)") ;;
    *) return 1 ;;
    esac
}

parquet_of() { # peer -> a read_parquet() of its result
    case "$1" in
    weir) echo "read_parquet('$out/lake-open/telemetry/parquet/*/*/*.parquet')" ;;
    weir-closed) echo "read_parquet('$out/lake-closed/telemetry/parquet/*/*/*.parquet')" ;;
    *) echo "read_parquet('$out/duckdb.parquet')" ;;
    esac
}

bytes_of() { # peer -> Parquet bytes written
    case "$1" in
    weir) find "$out/lake-open/telemetry/parquet" -name '*.parquet' -printf '%s\n' ;;
    weir-closed) find "$out/lake-closed/telemetry/parquet" -name '*.parquet' -printf '%s\n' ;;
    *) stat -c %s "$out/duckdb.parquet" ;;
    esac 2>/dev/null | awk '{s += $1} END {print s + 0}'
}

# The figures every result must agree on; value is JSON in weir's files
# (the schema says float | str) and DOUBLE in DuckDB's.
check_sql() {
    echo "SELECT count(*), sum(timestamp), sum(sensor_id), round(sum(measurement.value::DOUBLE), 2) FROM $(parquet_of "$1")"
}
query_sql() {
    echo "SELECT count(*), round(sum(a), 3) FROM (SELECT sensor_id, timestamp // 3600 AS h, avg(measurement.value::DOUBLE) AS a FROM $(parquet_of "$1") GROUP BY ALL)"
}

# --- runs -------------------------------------------------------------------
# runs.tsv: kind peer rep wall user sys maxrss_kb exit bytes answer
runs=$out/runs.tsv
: >"$runs"
IFS=, read -r -a peer_list <<<"$peers"
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
for rep in $(seq "$reps"); do
    for peer in "${peer_list[@]}"; do
        peer_cmd "$peer" || { log "unknown peer $peer"; exit 2; }
        sync
        "$timer" "$out/time.txt" "${cmd[@]}" \
            >"$out/$peer.stdout" 2>"$out/$peer.stderr" </dev/null
        rc=$?
        wall=0 user=0 sys=0 rss=0
        [ -s "$out/time.txt" ] && read -r wall user sys rss _ <"$out/time.txt"
        b=$(bytes_of "$peer")
        answer=$("$duckrun" -t "$threads" "$(check_sql "$peer")" 2>/dev/null | tr '\t' ',')
        printf 'compact\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$peer" "$rep" "$wall" "$user" \
            "$sys" "$rss" "$rc" "$b" "$answer" >>"$runs"
        log "$peer rep $rep: ${wall}s wall, $(awk "BEGIN {print $user + $sys}") CPU s, exit $rc, $b bytes, read back: $answer"
        # The query on this result, while it is on disk (R runs each).
        if [ "$rep" = "$reps" ]; then
            for q in $(seq "$reps"); do
                "$timer" "$out/time.txt" "$duckrun" -t "$threads" \
                    "$(query_sql "$peer")" >"$out/q.stdout" 2>/dev/null </dev/null
                qrc=$?
                read -r wall user sys rss _ <"$out/time.txt"
                printf 'query\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t0\t%s\n' "$peer" "$q" "$wall" "$user" \
                    "$sys" "$rss" "$qrc" "$(tr '\t' ',' <"$out/q.stdout")" >>"$runs"
            done
        fi
    done
done
load_after=$(cut -d' ' -f1-3 /proc/loadavg)

# --- report -----------------------------------------------------------------
versions=$(
    echo "machine: $(nproc) cores, $(uname -sr), $(sed -n 's/^PRETTY_NAME="\(.*\)"/\1/p' /etc/os-release 2>/dev/null)"
    echo "load average before the runs: $load_before, after: $load_after"
    echo "weir: $("$weir_bin" version 2>/dev/null | head -n 1 || echo '?') ($(git rev-parse --short HEAD 2>/dev/null), $(cc --version | head -n 1))"
    echo "duckdb: $("$duckrun" "SELECT version()" 2>/dev/null) (the library weir links, through bench/out/duckrun)"
    echo "schema: ${schema#$root/}; workload: $WL_RAW ($hours hours x $per_hour records, $segs segments an hour)"
)
args=(--runs "$runs" --command "$cmdline" --versions "$versions" --records "$WL_RECORDS"
      --bytes "$WL_BYTES" --threads "$threads" --hours "$hours")
[ "$write" = 1 ] && args+=(--results bench/RESULTS.md)
python3 bench/compact/report.py "${args[@]}" || log "report failed"
exit 0
