#!/usr/bin/env bash
# lake_basic.sh - the lake end to end with the real binary: records sent to
# `weir serve` are counted, summed and told apart by `weir query` exactly as
# sent, before compaction (raw, sealed and being written), after it, after
# late data and a second compaction, after optimize; --as-of; the Parquet
# files read by DuckDB alone; the schema-less pipeline; schema evolution
# (an added field, a refused type change).
set -u
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib_lake.sh"

# 2025-09-02 09:00Z and the hours after; the clock says 11:30, so 09 and 10
# are closed (grace 5 min) and 11 is still being written.
H9=1756803600
export WEIR_FAKE_NOW=2025-09-02T11:30:00Z

lake_setup
gen 1200 $H9 3 1 >"$TMP/a.ndjson"            # 09:00 .. 09:59:57
gen 900 $((H9 + 3600)) 4 2 >"$TMP/b.ndjson"  # 10:00 .. 10:59:56
gen 300 $((H9 + 7200)) 5 3 >"$TMP/c.ndjson"  # 11:00 .. 11:24:55
cat "$TMP/a.ndjson" "$TMP/b.ndjson" "$TMP/c.ndjson" >"$TMP/all.ndjson"
want=$(expect "$TMP/all.ndjson")

serve_start
ok "sent" send "$TMP/all.ndjson"

eq "before compaction: count, sums, distinct, extras" "$want" "$(wait_q "$want" "$TOTALS")"
ok "hour 11 is still being written" compgen -G "$DATA/tel/raw/date=2025-09-02/hour=11/*.open"
eq "per hour" "09,1200
10,900
11,300" "$(q "SELECT lpad(hour::VARCHAR, 2, '0'), count(*) FROM tel GROUP BY hour ORDER BY hour")"
eq "types from the schema" "ts,BIGINT
sensor,BIGINT
v,DOUBLE
site,VARCHAR
m,\"STRUCT(a BIGINT, b VARCHAR)\"
tags,VARCHAR[]
raw,JSON
_extra,JSON
date,DATE
hour,INTEGER" "$(q "SELECT column_name, column_type FROM (DESCRIBE tel)")"
eq "nested and JSON values" '0,b0,2,"""n/a""","{""note"":""extra 0""}"' \
    "$(q "SELECT m.a, m.b, len(tags), raw, _extra FROM tel WHERE ts = $H9")"

ok "closed hours sealed" wait_sealed "$DATA/tel/raw/date=2025-09-02/hour=09" "$DATA/tel/raw/date=2025-09-02/hour=10"
(cd "$LAKE" && "$WEIR" compact -c "$CFG" 2>"$TMP/compact.err")
eq "compact: exit 0" 0 $?
ok "compact: summary" grep -q "compact tel: 2 partitions" "$TMP/compact.err"
ok "compact: no progress line when piped" bash -c "! grep -q $'\r' '$TMP/compact.err'"
eq "after compaction: the same answers" "$want" "$(q "$TOTALS")"
eq "Parquet of 09 and 10 only" "parquet/date=2025-09-02/hour=09/part-00000000000000000001-0.parquet
parquet/date=2025-09-02/hour=10/part-00000000000000000002-0.parquet" "$(disk_files tel)"
eq "the log agrees with the disk" "$(disk_files tel)" "$(live_files tel)"
eq "absorbed segments deleted" "" "$(find "$DATA/tel/raw/date=2025-09-02/hour=09" "$DATA/tel/raw/date=2025-09-02/hour=10" -name '*.ndjson*')"
ok "hour 11 still raw" compgen -G "$DATA/tel/raw/date=2025-09-02/hour=11/*.open"

# The Parquet files alone, read by DuckDB without weir's views.
P="read_parquet('$DATA/tel/parquet/*/*/*.parquet', hive_partitioning = true)"
eq "DuckDB alone reads the same rows" \
    "$(q "SELECT count(*), sum(sensor), round(sum(v), 1), count(DISTINCT site), count(_extra) FROM tel WHERE hour < 11")" \
    "$(q "SELECT count(*), sum(sensor), round(sum(v), 1), count(DISTINCT site), count(_extra) FROM $P")"
eq "DuckDB alone: hive columns" "2" "$(q "SELECT count(DISTINCT hour) FROM $P")"

# Late data for 09: a new segment, a second file at the next compaction.
gen 100 $((H9 + 1)) 30 4 >"$TMP/late.ndjson"
ok "late records sent" send "$TMP/late.ndjson"
want2=$(expect "$TMP/all.ndjson" "$TMP/late.ndjson")
eq "late data counted before compaction" "$want2" "$(wait_q "$want2" "$TOTALS")"
ok "late segment sealed" wait_sealed "$DATA/tel/raw/date=2025-09-02/hour=09"
(cd "$LAKE" && "$WEIR" compact -q -c "$CFG")
eq "late data: a second file in 09" "2" "$(disk_files tel | grep -c hour=09)"
eq "late data counted after compaction" "$want2" "$(q "$TOTALS")"
v_before_opt=$("$WEIR_BUILD/tools/lake_files" "$DATA/tel" version)

(cd "$LAKE" && "$WEIR" optimize -c "$CFG" 2>"$TMP/opt.err")
eq "optimize: exit 0" 0 $?
ok "optimize: summary" grep -q "optimize tel: 1 partition, 2 files merged into 1" "$TMP/opt.err"
eq "after optimize: one live file in 09" "1" "$(live_files tel | grep -c hour=09)"
eq "after optimize: the same answers" "$want2" "$(q "$TOTALS")"

# --as-of: version 2 had hours 09 and 10, Parquet only.
eq "--as-of 2" "$(expect "$TMP/a.ndjson" "$TMP/b.ndjson")" \
    "$(q --as-of 2 "$TOTALS")"
eq "--as-of tel=$v_before_opt (before optimize)" \
    "$(expect "$TMP/a.ndjson" "$TMP/b.ndjson" "$TMP/late.ndjson")" \
    "$(q --as-of "tel=$v_before_opt" "$TOTALS")"
out=$(cd "$LAKE" && "$WEIR" query -c "$CFG" --as-of 999 "SELECT count(*) FROM tel" 2>&1)
eq "--as-of past the latest: exit 1" 1 $?
ok "--as-of past the latest: says so" grep -q "999" <<<"$out"

# Output formats.
eq "json lines" '{"hour":9,"n":1300}' "$(cd "$LAKE" && "$WEIR" query -c "$CFG" --format json "SELECT hour, count(*) AS n FROM tel WHERE hour = 9 GROUP BY hour")"
table=$(cd "$LAKE" && "$WEIR" query -c "$CFG" "SELECT hour, count(*) AS n FROM tel GROUP BY hour ORDER BY hour")
eq "table" " hour | n
------+------
    9 | 1300
   10 |  900
   11 |  300
(3 rows)" "$table"
out=$(cd "$LAKE" && "$WEIR" query -c "$CFG" "SELEC 1" 2>&1)
eq "bad SQL: exit 1" 1 $?
ok "bad SQL: DuckDB's message" grep -q "syntax error" <<<"$out"

# The schema-less pipeline: everything in _extra.
gen 50 $H9 10 5 >"$TMP/any.ndjson"
ok "schema-less records sent" send "$TMP/any.ndjson" "$PORT2"
want3="50,$(expect "$TMP/any.ndjson" | cut -d, -f2)"
eq "schema-less: the record in _extra" "$want3" \
    "$(wait_q "$want3" "SELECT count(*), sum((_extra->>'sensor')::BIGINT) FROM \"any\"")"
ok "schema-less: sealed" wait_sealed "$DATA/any/raw"
(cd "$LAKE" && "$WEIR" compact -q -c "$CFG" any)
eq "schema-less: after compaction" "50" "$(q "SELECT count(*) FROM \"any\" WHERE _extra->>'site' LIKE 'site-%'")"
serve_stop

# Shutdown sealed hour 11, which is still open by the clock: only --all
# compacts it.
(cd "$LAKE" && "$WEIR" compact -q -c "$CFG" tel)
eq "open hour not compacted without --all" "0" "$(disk_files tel | grep -c hour=11)"
(cd "$LAKE" && "$WEIR" compact -q --all -c "$CFG" tel)
eq "--all compacts it" "1" "$(disk_files tel | grep -c hour=11)"
eq "after --all: the same answers" "$want2" "$(q "$TOTALS")"

# Schema evolution: an added optional field keeps old files readable...
python3 - "$LAKE/tel.schema.json" <<'EOF'
import json, sys
s = json.load(open(sys.argv[1]))
s["properties"]["firmware"] = {"type": "string"}
s["properties"]["m"]["properties"]["c"] = {"type": "boolean"}
json.dump(s, open(sys.argv[1], "w"))
EOF
eq "added fields: old rows NULL, totals unchanged" "$want2,0,0" \
    "$(q "SELECT $(echo "$TOTALS" | sed 's/^SELECT //; s/ FROM tel$//'), count(firmware), count(m.c) FROM tel")"
serve_start
printf '{"ts":%d,"sensor":1,"v":1.5,"site":"new","firmware":"2.1","m":{"a":1,"b":"x","c":true}}\n' $((H9 + 60)) >"$TMP/new.ndjson"
ok "a record with the new fields" send "$TMP/new.ndjson"
serve_stop
(cd "$LAKE" && "$WEIR" compact -q -c "$CFG")
eq "compact with the new schema: exit 0" 0 $?
eq "new fields read back" "2.1,true,1" "$(q "SELECT firmware, m.c, count(*) OVER () FROM tel WHERE firmware IS NOT NULL")"
eq "old and new files together" "$((1300 + 900 + 300 + 1))" "$(q "SELECT count(*) FROM tel")"

# ... a changed type is refused, naming the column and both types.
sed -i 's/"sensor": {"type": "integer"}/"sensor": {"type": "string"}/' "$LAKE/tel.schema.json"
out=$(cd "$LAKE" && "$WEIR" compact -c "$CFG" 2>&1)
eq "type change: compact exits 2" 2 $?
ok "type change: names the column and both types" \
    grep -q 'column "sensor" from BIGINT to VARCHAR' <<<"$out"
out=$(cd "$LAKE" && "$WEIR" query -c "$CFG" "SELECT count(*) FROM tel" 2>&1)
eq "type change: query exits 2" 2 $?
ok "type change: query says why" grep -q 'column "sensor"' <<<"$out"

finish
