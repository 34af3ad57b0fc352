#!/usr/bin/env bash
# lake_concurrent.sh - queries while the table changes under them return the
# old or the new version, never a mix: every query during a compaction and
# an optimize gives exactly the totals (the data does not change, only where
# it lives); and with `weir serve` taking late records that compactions keep
# absorbing, the count a query sees never goes down and never passes what
# was sent.
set -u
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib_lake.sh"

H0=1756771200    # 2025-09-02T00:00:00Z
export WEIR_FAKE_NOW=2025-09-03T12:00:00Z

lake_setup
make_raw tel 24 600
want=$(expect "$TMP/raw_all.ndjson")
eq "raw only" "$want" "$(q "$TOTALS")"

# Queries in a loop while a compaction of 24 partitions runs.
queries_during() { # PID: run the totals query until PID ends; print results
    local pid=$1
    while kill -0 "$pid" 2>/dev/null; do
        q "$TOTALS"
    done
}
(cd "$LAKE" && exec "$WEIR" compact -q --threads 1 -c "$CFG") &
cpid=$!
queries_during $cpid >"$TMP/during.txt"
wait $cpid
eq "compaction: exit 0" 0 $?
n=$(wc -l <"$TMP/during.txt")
echo "     ($n queries ran during the compaction)"
ok "queries ran during the compaction" test "$n" -ge 1
eq "every query during compaction saw the totals" "$want" "$(sort -u "$TMP/during.txt")"
eq "after compaction" "$want" "$(q "$TOTALS")"

# Late data into every hour, compacted, then optimize under queries.
: >"$TMP/late_all.ndjson"
for h in $(seq 0 23); do
    gen 50 $((H0 + h * 3600 + 600)) 1 $((100 + h)) >"$TMP/s.ndjson"
    put_segment tel "$TMP/s.ndjson" $((1000 + h))
    cat "$TMP/s.ndjson" >>"$TMP/late_all.ndjson"
done
want=$(expect "$TMP/raw_all.ndjson" "$TMP/late_all.ndjson")
(cd "$LAKE" && "$WEIR" compact -q -c "$CFG")
eq "late files: two per partition" "48" "$(live_files tel | wc -l)"
(cd "$LAKE" && exec "$WEIR" optimize -q --threads 1 -c "$CFG") &
cpid=$!
queries_during $cpid >"$TMP/during.txt"
wait $cpid
eq "optimize: exit 0" 0 $?
echo "     ($(wc -l <"$TMP/during.txt") queries ran during optimize)"
eq "every query during optimize saw the totals" "$want" "$(sort -u "$TMP/during.txt")"
eq "after optimize: one file per partition" "24" "$(live_files tel | wc -l)"

# Serve takes late records for closed hours (sealed at once), compactions
# absorb them in a loop, queries watch the count.
serve_start
base=$(q "SELECT count(*) FROM tel")
sent=0
: >"$TMP/seen.txt"
(
    for k in $(seq 1 12); do
        gen 200 $((H0 + (k % 24) * 3600 + 2000)) 0.1 $((500 + k)) >"$TMP/serve_$k.ndjson"
        "$WEIR" send "127.0.0.1:$PORT" "$TMP/serve_$k.ndjson" || exit 1
        echo "$k" >>"$TMP/sent.txt"
        sleep 0.2
    done
) &
spid=$!
(
    while kill -0 $spid 2>/dev/null; do
        (cd "$LAKE" && "$WEIR" compact -q --threads 1 -c "$CFG") || echo "compact failed" >>"$TMP/compact_fail.txt"
    done
) &
kpid=$!
while kill -0 $spid 2>/dev/null; do
    q "SELECT count(*) FROM tel" >>"$TMP/seen.txt"
done
wait $spid
eq "sender: exit 0" 0 $?
wait $kpid
ok "no compaction failed" test ! -e "$TMP/compact_fail.txt"
final=$(wait_q $((base + 12 * 200)) "SELECT count(*) FROM tel")
eq "all sent records counted once" $((base + 12 * 200)) "$final"
ok "the count never went down, never passed the total" python3 - "$TMP/seen.txt" "$base" "$final" <<'EOF'
import sys
seen = [int(x) for x in open(sys.argv[1]) if x.strip()]
lo, hi = int(sys.argv[2]), int(sys.argv[3])
prev = lo
for s in seen:
    assert lo <= s <= hi and s >= prev, (prev, s, lo, hi)
    prev = s
print(len(seen), "queries")
EOF
echo "     ($(wc -l <"$TMP/seen.txt") queries ran while serving and compacting)"
serve_stop
(cd "$LAKE" && "$WEIR" compact -q -c "$CFG")
eq "after a final compaction" "$final" "$(q "SELECT count(*) FROM tel")"
eq "no segment left in closed hours" "" "$(find "$DATA/tel/raw" -name '*.ndjson')"
eq "no private query directory left" "" "$(ls "$DATA/tel/_query" 2>/dev/null)"

finish
