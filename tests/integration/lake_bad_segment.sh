#!/usr/bin/env bash
# lake_bad_segment.sh - one raw segment DuckDB cannot convert (an integer
# outside BIGINT, written by hand: serve quarantines such records) does not
# hold up the table: compaction fails that partition loudly, naming the
# segment and the line, in its messages and in `weir status`, compacts the
# other partitions, and finishes the partition once the segment is dealt
# with.
set -u
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib_lake.sh"

H9=1756803600
H0=$H9
export WEIR_FAKE_NOW=2025-09-02T13:30:00Z

lake_setup
make_raw tel 3 200                                  # hours 09, 10, 11
bad="$DATA/tel/raw/date=2025-09-02/hour=10/n1-0-0000000099.ndjson"
printf '{"ts":%d,"sensor":1,"v":1.5,"site":"x"}\n{"ts":%d,"sensor":12345678901234567890,"v":1,"site":"x"}\n' \
    $((H9 + 3700)) $((H9 + 3701)) >"$bad"
want=$(expect "$TMP/raw_all.ndjson")

(cd "$LAKE" && "$WEIR" compact -c "$CFG" tel 2>"$TMP/compact.err")
eq "compact: exit 3 (a partition failed)" 3 $?
ok "compact: names the segment" grep -q "n1-0-0000000099.ndjson" "$TMP/compact.err"
ok "compact: names the line and the field" \
    grep -q 'line 2: field "sensor": 12345678901234567890 is not a 64-bit integer' "$TMP/compact.err"
ok "compact: names the partition" grep -q "partition date=2025-09-02/hour=10" "$TMP/compact.err"
ok "compact: the summary of what was done" grep -q "compact tel: 2 partitions" "$TMP/compact.err"
eq "the other partitions compacted" "parquet/date=2025-09-02/hour=09/part-00000000000000000001-0.parquet
parquet/date=2025-09-02/hour=11/part-00000000000000000002-0.parquet" "$(live_files tel)"
eq "no file left behind for the failed one" "$(live_files tel)" "$(disk_files tel)"
eq "its segments stay raw" 3 "$(find "$DATA/tel/raw/date=2025-09-02/hour=10" -name '*.ndjson' | wc -l)"

status=$(cd "$LAKE" && "$WEIR" status -c "$CFG" 2>&1)
ok "status: the failing partition" grep -q "compaction   1 partition failing" <<<"$status"
ok "status: the segment and the reason" \
    grep -q "date=2025-09-02/hour=10 since .*n1-0-0000000099.ndjson\", line 2: field \"sensor\"" <<<"$status"

eq "queries still count everything" "$(($(wc -l <"$TMP/raw_all.ndjson") + 2))" "$(q "SELECT count(*) FROM tel")"
out=$(cd "$LAKE" && "$WEIR" query -c "$CFG" "SELECT sum(sensor) FROM tel" 2>&1)
eq "a query reading the bad value fails" 1 $?
ok "... naming the segment" grep -q "n1-0-0000000099.ndjson\", line 2" <<<"$out"
eq "other columns read fine" "$(($(wc -l <"$TMP/raw_all.ndjson") + 2)),$(expect "$TMP/raw_all.ndjson" | cut -d, -f4)" \
    "$(q "SELECT count(site), count(DISTINCT site) - 1 FROM tel")"

# Again (as serve's compactor would every minute): still failing, same
# record, nothing else redone.
(cd "$LAKE" && "$WEIR" compact -c "$CFG" tel 2>"$TMP/compact2.err")
eq "again: exit 3" 3 $?
eq "again: nothing else to do" "$(live_files tel)" "$(disk_files tel)"
ok "again: still on record" grep -q "hour=10" "$DATA/tel/_compact.failed"

# Dealt with (moved away): the partition compacts, the record is cleared.
mv "$bad" "$TMP/"
(cd "$LAKE" && "$WEIR" compact -q -c "$CFG" tel)
eq "fixed: exit 0" 0 $?
eq "fixed: hour 10 compacted" 1 "$(live_files tel | grep -c hour=10)"
ok "fixed: no record left" test ! -e "$DATA/tel/_compact.failed"
ok "fixed: status says nothing" bash -c "! (cd '$LAKE' && '$WEIR' status -c '$CFG' 2>&1 | grep -q compaction)"
eq "fixed: the same answers" "$want" "$(q "$TOTALS")"

finish
