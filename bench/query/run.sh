#!/usr/bin/env bash
# bench/query/run.sh - `weir query` against plain DuckDB over the same
# Parquet files: what weir's views cost on top of DuckDB.
#
#   bench/query/run.sh [--hours H] [--per-hour N] [--segments S] [--reps R]
#                      [--threads T] [--no-results]
#
# The lake: the workload of bench/compact (workload.sh; same defaults: 8
# hours of 1,040,000 telemetry records), compacted once by `weir compact`
# into bench/out/query/lake (not timed). Then each query runs R times
# (default 9: they are short), the peers interleaved, T DuckDB threads
# each (default: the number of cores):
#
#   weir     weir query -c CFG --format csv --threads T SQL: the pipeline's
#            view (the live files of the table log's latest version, plus
#            raw segments not compacted: none here), built per run
#   duckdb   bench/out/duckrun -t T -s "CREATE VIEW telemetry AS SELECT *
#            FROM read_parquet('<lake>/parquet/*/*/*.parquet',
#            hive_partitioning = true, hive_types = {...},
#            union_by_name = true)" SQL: DuckDB alone, as docs/query.md
#            says to read the files without weir
#
# Both are whole processes timed by bench/tools/timed.py (a person waits for
# the process either way): weir's figure includes loading the config,
# compiling the schema, reading the table log and pinning the view. Both
# must print the same answer (numbers compared to 9 significant digits), or
# the row says FAIL. "overhead" is weir's median wall time over DuckDB's,
# minus 1 (target: at most 10 %). The table goes to stdout and, unless
# --no-results, into bench/RESULTS.md under "## query". Exits 0 whatever the
# rows say, 2 on a usage error.
set -uo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"

cmdline="bench/query/run.sh${*:+ $*}"
hours=8 per_hour=1040000 segs=4 reps=9 threads=$(nproc) write=1
while [ $# -gt 0 ]; do
    case "$1" in
    --hours) hours=$2; shift 2 ;;
    --per-hour) per_hour=$2; shift 2 ;;
    --segments) segs=$2; shift 2 ;;
    --reps) reps=$2; shift 2 ;;
    --threads) threads=$2; shift 2 ;;
    --no-results) write=0; shift ;;
    -h|--help) sed -n '2,/^set /p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "query/run.sh: unknown option $1" >&2; exit 2 ;;
    esac
done
for v in "$hours" "$per_hour" "$segs" "$reps" "$threads"; do
    [[ "$v" =~ ^[1-9][0-9]*$ ]] || { echo "query/run.sh: bad number '$v'" >&2; exit 2; }
done
[ "$hours" -le 24 ] || { echo "query/run.sh: at most 24 hours" >&2; exit 2; }

out=$root/bench/out/query
mkdir -p "$out"
log() { echo "query: $*" >&2; }
timer=$root/bench/tools/timed.py   # wall, CPU, peak RSS of one process

# --- build, workload, lake ------------------------------------------------------
make -s -C bench tools >/dev/null || { log "bench tools do not build"; exit 0; }
weir_bin=${WEIR_BIN:-build/release/weir}
if [ -z "${WEIR_BIN:-}" ]; then
    make -s -j2 MODE=release all >"$out/weir-build.log" 2>&1 ||
        { log "weir does not build (see $out/weir-build.log)"; exit 0; }
fi
weir_bin=$(cd "$(dirname "$weir_bin")" && pwd)/$(basename "$weir_bin")
duckrun=$root/bench/out/duckrun

. bench/compact/workload.sh
lake_workload "$hours" "$per_hour" "$segs" || { log "workload failed"; exit 0; }
schema=$root/bench/validate/telemetry.schema.json
[ -f examples/telemetry.schema.json ] && schema=$root/examples/telemetry.schema.json
cfg=$out/weir.yaml
cat >"$cfg" <<EOF
data_dir: $out/lake
pipelines:
  - name: telemetry
    source:
      tcp: 127.0.0.1:7601
    schema: $schema
    time_field: timestamp
    time_unit: s
EOF
log "compacting the workload into $out/lake"
rm -rf "$out/lake"
mkdir -p "$out/lake/telemetry"
cp -al "$root/$WL_RAW" "$out/lake/telemetry/raw"
rm -f "$out/lake/telemetry/raw/.done"
"$weir_bin" compact -q --all -c "$cfg" || { log "weir compact failed"; exit 0; }
files=$(find "$out/lake/telemetry/parquet" -name '*.parquet' | wc -l)
pbytes=$(find "$out/lake/telemetry/parquet" -name '*.parquet' -printf '%s\n' | awk '{s += $1} END {print s}')
view="CREATE VIEW telemetry AS SELECT * FROM read_parquet('$out/lake/telemetry/parquet/*/*/*.parquet', hive_partitioning = true, hive_types = {'date': 'DATE', 'hour': 'INTEGER'}, union_by_name = true)"

# name<TAB>SQL
queries=$(cat <<'EOF'
count	SELECT count(*) FROM telemetry
hourly	SELECT hour, count(*), round(avg(measurement.value::DOUBLE), 4) FROM telemetry GROUP BY hour ORDER BY hour
per_sensor_hour	SELECT count(*), round(sum(a), 3) FROM (SELECT sensor_id, hour, avg(measurement.value::DOUBLE) AS a FROM telemetry GROUP BY ALL)
one_hour_top5	SELECT sensor_id, max(measurement.value::DOUBLE) AS m FROM telemetry WHERE hour = 12 GROUP BY sensor_id ORDER BY m DESC, sensor_id LIMIT 5
rows_by_sensor	SELECT timestamp, measurement.unit, measurement.value FROM telemetry WHERE sensor_id = 10042 ORDER BY timestamp LIMIT 20
EOF
)

# The same answer whatever the separator and the float rendering.
norm() {
    python3 -c '
import re, sys
out = []
for line in sys.stdin.read().splitlines():
    cells = re.split(r"[,\t]", line)
    def n(c):
        c = c.strip().strip("\"")
        if re.fullmatch(r"-?[0-9]+", c):
            return c
        try:
            return "%.9g" % float(c)
        except ValueError:
            return c
    out.append("|".join(n(c) for c in cells))
print("\n".join(out))'
}

# --- runs -------------------------------------------------------------------
# runs.tsv: query peer rep wall user sys maxrss_kb exit same
runs=$out/runs.tsv
: >"$runs"
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
while IFS=$'\t' read -r name sql; do
    for rep in $(seq "$reps"); do
        for peer in weir duckdb; do
            if [ $peer = weir ]; then
                cmd=("$weir_bin" query -c "$cfg" --format csv --threads "$threads" "$sql")
            else
                cmd=("$duckrun" -t "$threads" -s "$view" "$sql")
            fi
            "$timer" "$out/time.txt" "${cmd[@]}" \
                >"$out/$peer.stdout" 2>"$out/$peer.stderr" </dev/null
            rc=$?
            wall=0 user=0 sys=0 rss=0
            [ -s "$out/time.txt" ] && read -r wall user sys rss _ <"$out/time.txt"
            if [ $peer = weir ]; then
                tail -n +2 "$out/weir.stdout" | norm >"$out/weir.answer"
            else
                norm <"$out/duckdb.stdout" >"$out/duckdb.answer"
                same=1
                cmp -s "$out/weir.answer" "$out/duckdb.answer" || same=0
                [ -s "$out/duckdb.answer" ] || same=0
            fi
            printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$name" "$peer" "$rep" "$wall" "$user" \
                "$sys" "$rss" "$rc" "${same:-1}" >>"$runs"
            unset same
        done
        log "$name rep $rep: weir $(tail -n 2 "$runs" | head -n 1 | cut -f4)s, duckdb $(tail -n 1 "$runs" | cut -f4)s, same answer: $(tail -n 1 "$runs" | cut -f9)"
    done
done <<<"$queries"
load_after=$(cut -d' ' -f1-3 /proc/loadavg)

# --- report -----------------------------------------------------------------
versions=$(
    echo "machine: $(nproc) cores, $(uname -sr), $(sed -n 's/^PRETTY_NAME="\(.*\)"/\1/p' /etc/os-release 2>/dev/null)"
    echo "load average before the runs: $load_before, after: $load_after"
    echo "weir: $("$weir_bin" version 2>/dev/null | head -n 1 || echo '?') ($(git rev-parse --short HEAD 2>/dev/null), $(cc --version | head -n 1))"
    echo "duckdb: $("$duckrun" "SELECT version()" 2>/dev/null) (the library weir links, through bench/out/duckrun)"
    echo "lake: $files Parquet files, $pbytes bytes, $WL_RECORDS records ($WL_RAW compacted by weir compact)"
)
args=(--runs "$runs" --command "$cmdline" --versions "$versions" --queries "$queries"
      --threads "$threads")
[ "$write" = 1 ] && args+=(--results bench/RESULTS.md)
python3 bench/query/report.py "${args[@]}" || log "report failed"
exit 0
