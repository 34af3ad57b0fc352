#!/usr/bin/env bash
# lake_crash.sh - compaction, optimize and gc stopped at each named step
# (WEIR_CRASH_AT, test builds) and killed at random instants; a file size
# limit making DuckDB's own Parquet writes fail. After each: queries give
# the exact totals even before recovery; the next run recovers and gives
# them again, with no orphan file, no absorbed segment and no temporary
# file left.
set -u
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib_lake.sh"

H0=1756771200    # 2025-09-02T00:00:00Z
# No fake clock: all of 2025 is closed, and recovery compares file ages
# with the clock.

lake_setup
make_raw tel 6 300
want=$(expect "$TMP/raw_all.ndjson")
cp -a "$DATA" "$TMP/template"

restore() {
    rm -rf "$DATA"
    cp -a "$TMP/template" "$DATA"
}

# check WHAT: the invariants after a successful run.
check_clean() {
    eq "$1: totals" "$want" "$(q "$TOTALS")"
    eq "$1: no orphan Parquet file" "$(live_files tel)" "$(disk_files tel)"
    local absorbed left=""
    for absorbed in $("$WEIR_BUILD/tools/lake_files" "$DATA/tel" absorbed); do
        [ -e "$DATA/tel/$absorbed" ] && left="$left $absorbed"
    done
    eq "$1: no absorbed segment on disk" "" "$left"
    eq "$1: no temporary file" "" "$(find "$DATA/tel" -name '*.tmp.*')"
}

compact() {
    (cd "$LAKE" && "$WEIR" compact -q -c "$CFG" "$@")
}

for step in after_parquet after_place after_commit mid_delete; do
    restore
    (cd "$LAKE" && WEIR_CRASH_AT=$step "$WEIR" compact -q -c "$CFG" 2>/dev/null)
    eq "$step: the process stopped there" 99 $?
    eq "$step: totals before recovery" "$want" "$(q "$TOTALS")"
    compact --orphan-grace 0
    eq "$step: the next compaction succeeds" 0 $?
    check_clean "$step"
done

# Optimize stopped after its commit, then run again.
restore
compact
gen 40 $((H0 + 900)) 1 77 >"$TMP/late.ndjson"
put_segment tel "$TMP/late.ndjson" 2000
compact
want=$(expect "$TMP/raw_all.ndjson" "$TMP/late.ndjson")
(cd "$LAKE" && WEIR_CRASH_AT=optimize_after_commit "$WEIR" optimize -q -c "$CFG" 2>/dev/null)
eq "optimize_after_commit: stopped there" 99 $?
eq "optimize_after_commit: totals" "$want" "$(q "$TOTALS")"
(cd "$LAKE" && "$WEIR" optimize -q -c "$CFG" --orphan-grace 0)
eq "optimize after the crash: exit 0" 0 $?
eq "optimize: one file in hour 00" "1" "$(live_files tel | grep -c hour=00)"
eq "optimize: totals" "$want" "$(q "$TOTALS")"
want=$(expect "$TMP/raw_all.ndjson")

# Killed at random instants (kill -9) during compaction.
for round in 1 2 3 4 5 6; do
    restore
    (cd "$LAKE" && exec "$WEIR" compact -q --threads 1 -c "$CFG") &
    pid=$!
    sleep "0.$((RANDOM % 9))$((RANDOM % 10))"
    kill -9 $pid 2>/dev/null
    wait $pid 2>/dev/null
    eq "kill -9 round $round: totals before recovery" "$want" "$(q "$TOTALS")"
    compact --orphan-grace 0
    check_clean "kill -9 round $round"
done

# DuckDB's own writes failing (a file size limit, SIGXFSZ ignored: the
# write returns EFBIG): the table stays at its version, raw intact.
restore
(cd "$LAKE" && trap '' XFSZ && ulimit -f 2 && exec "$WEIR" compact -q -c "$CFG" 2>"$TMP/efbig.err")
eq "write failure: exit 3" 3 $?
ok "write failure: said so" grep -qi "file too large\|error" "$TMP/efbig.err"
eq "write failure: no version" "0" "$("$WEIR_BUILD/tools/lake_files" "$DATA/tel" version)"
eq "write failure: raw segments intact" "12" "$(find "$DATA/tel/raw" -name '*.ndjson' | wc -l)"
eq "write failure: totals" "$want" "$(q "$TOTALS")"
compact --orphan-grace 0
check_clean "after the write failure"

# gc stopped after its commit (retention.parquet 1d: every hour of
# 2025-09-02 has expired).
restore
compact
sed -i '/name: tel/a\    retention: {parquet: 1d, raw: 1d, quarantine: 1d}' "$CFG"
(cd "$LAKE" && WEIR_CRASH_AT=gc_after_commit "$WEIR" gc -q -c "$CFG" 2>/dev/null)
eq "gc_after_commit: stopped there" 99 $?
eq "gc: expired partitions left the table" "0" "$(q "SELECT count(*) FROM tel")"
(cd "$LAKE" && "$WEIR" gc -c "$CFG" 2>"$TMP/gc.err")
eq "gc after the crash: exit 0" 0 $?
ok "gc: summary" grep -q "gc tel:" "$TMP/gc.err"
eq "gc: expired files still on disk until the vacuum retention" "6" "$(disk_files tel | wc -l)"

finish
