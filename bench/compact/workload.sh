# bench/compact/workload.sh - the raw segments bench/compact and
# bench/query work on (sourced, not run).
#
#   lake_workload HOURS PER_HOUR SEGMENTS   -> sets WL_RAW, WL_RECORDS, WL_BYTES
#
# Writes, once per set of options, HOURS hours of telemetry (bench/out/gen,
# all valid, seed = hour index + 1) from 2025-09-02 09:00 UTC as the raw
# segments of one pipeline, in the layout `weir serve` writes
# (docs/storage.md): raw/date=YYYY-MM-DD/hour=HH/<node>-<thread>-<seq>.ndjson,
# SEGMENTS sealed segments per hour (as SEGMENTS writer threads would),
# PER_HOUR records each hour (gen's manifests beside it, in
# $WL_RAW.manifests/). The tree is kept under bench/out/ and only
# hard-linked into each run's data directory, since compaction deletes the
# segments it absorbs. Needs bench/out/gen (make -C bench tools).

lake_workload() {
    local hours=$1 per_hour=$2 segs=$3 h t0 key dir i
    WL_RAW=bench/out/lake-raw/h$hours-n$per_hour-s$segs
    if [ ! -f "$WL_RAW/.done" ] || [ bench/out/gen -nt "$WL_RAW/.done" ]; then
        echo "workload: $hours hours x $per_hour records in $segs segments each into $WL_RAW" >&2
        rm -rf "$WL_RAW" "$WL_RAW.manifests"
        mkdir -p "$WL_RAW" "$WL_RAW.manifests"
        for h in $(seq 0 $((hours - 1))); do
            t0=$((1756803600 + h * 3600))
            key=$(date -u -d "@$t0" +date=%Y-%m-%d/hour=%H)
            dir=$WL_RAW/$key
            mkdir -p "$dir"
            bench/out/gen --records "$per_hour" --invalid-frac 0 --hours 1 --seed $((h + 1)) \
                --t0 "$t0" --manifest "$WL_RAW.manifests/$h.json" >"$dir/all" 2>/dev/null || return 1
            (cd "$dir" && split -n l/"$segs" -d -a 3 all part && rm all) || return 1
            i=0
            for f in "$dir"/part*; do
                mv "$f" "$dir/bench-$i-$(printf %010d $((h * segs + i + 1))).ndjson"
                i=$((i + 1))
            done
        done
        touch "$WL_RAW/.done"
    fi
    WL_RECORDS=$((hours * per_hour))
    WL_BYTES=$(find "$WL_RAW" -name '*.ndjson' -printf '%s\n' | awk '{s += $1} END {print s}')
}
