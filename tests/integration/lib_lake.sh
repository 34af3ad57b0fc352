# lib_lake.sh - helpers for the lake's integration tests (sourced after
# lib.sh; not a test itself).
#
#   lake_setup            config + schema in $TMP/lake (pipelines tel, any)
#   gen N T0 STEP SEED    N telemetry records from second T0, STEP s apart
#   expect FILE...        "count,sum_sensor,sum_v,sites,extras" of records
#   q SQL                 weir query --format csv, without the header row
#   serve_start / serve_stop   weir serve on the config (WEIR_FAKE_NOW kept)
#   live_files DATASET    the live Parquet files per the table log (sorted)
#   disk_files DATASET    the Parquet files on disk (sorted)

LAKE=$TMP/lake
DATA=$LAKE/data
CFG=$LAKE/weir.yaml
serve_pid=

lake_setup() {
    mkdir -p "$LAKE"
    PORT=$(free_port)
    MPORT=$(free_port)
    PORT2=$(free_port)
    cat >"$LAKE/tel.schema.json" <<'EOF'
{
  "type": "object",
  "properties": {
    "ts": {"type": "integer"},
    "sensor": {"type": "integer"},
    "v": {"type": "number"},
    "site": {"type": "string"},
    "m": {"type": "object", "properties": {"a": {"type": "integer"}, "b": {"type": "string"}}},
    "tags": {"type": "array", "items": {"type": "string"}},
    "raw": {"anyOf": [{"type": "number"}, {"type": "string"}]}
  },
  "required": ["ts", "sensor", "v"]
}
EOF
    cat >"$CFG" <<EOF
data_dir: ./data
metrics: 127.0.0.1:$MPORT
pipelines:
  - name: tel
    source:
      tcp: 127.0.0.1:$PORT
    schema: tel.schema.json
    time_field: ts
    time_unit: s
  - name: any
    source:
      tcp: 127.0.0.1:$PORT2
    time_field: ts
    time_unit: s
EOF
}

gen() {
    python3 - "$@" <<'EOF'
import json, random, sys
n, t0, step, seed = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4])
r = random.Random(seed)
for i in range(n):
    rec = {"ts": t0 + int(i * step), "sensor": r.randint(1, 500),
           "v": r.randint(-5000, 5000) / 10, "site": "site-%d" % r.randint(1, 40)}
    if i % 3 == 0:
        rec["m"] = {"a": i, "b": "b%d" % (i % 7)}
    if i % 5 == 0:
        rec["tags"] = ["t%d" % (i % 4), "x"]
    if i % 4 == 0:
        rec["raw"] = "n/a" if i % 8 == 0 else r.randint(0, 99) / 4
    if i % 10 == 0:
        rec["note"] = "extra %d" % i
    print(json.dumps(rec, separators=(",", ":")))
EOF
}

expect() {
    python3 - "$@" <<'EOF'
import json, sys
from decimal import Decimal
c = ss = ex = 0
sv = Decimal(0)
sites = set()
for f in sys.argv[1:]:
    for line in open(f):
        line = line.strip()
        if not line:
            continue
        r = json.loads(line, parse_float=Decimal)
        c += 1; ss += r["sensor"]; sv += Decimal(r["v"]); sites.add(r["site"])
        ex += "note" in r
print("%d,%d,%s,%d,%d" % (c, ss, format(sv.quantize(Decimal("0.1")), "f"), len(sites), ex))
EOF
}

# The answer weir query gives for the same figures.
TOTALS="SELECT count(*), coalesce(sum(sensor), 0), coalesce(round(sum(v), 1), 0.0)::DECIMAL(18,1), count(DISTINCT site), count(_extra) FROM tel"

q() {
    (cd "$LAKE" && "$WEIR" query -c "$CFG" --format csv "$@") | tail -n +2
}

serve_start() {
    (cd "$LAKE" && exec "$WEIR" serve -c "$CFG" 2>>"$LAKE/serve.log") &
    serve_pid=$!
    cleanup_pid "$serve_pid"
    wait_port "$PORT" 20
}

serve_stop() {
    [ -n "$serve_pid" ] || return 0
    kill -TERM "$serve_pid" 2>/dev/null
    wait "$serve_pid" 2>/dev/null
    serve_pid=
}

# send FILE: to the tel pipeline; waits until the server closed (all read).
send() {
    "$WEIR" send "127.0.0.1:${2:-$PORT}" "$1"
}

live_files() {
    "$WEIR_BUILD/tools/lake_files" "$DATA/$1" live | sort
}

disk_files() {
    (cd "$DATA/$1" 2>/dev/null && find parquet -type f 2>/dev/null | sort)
}

# put_segment DATASET FILE SEQ: file FILE (records of one hour) as the
# sealed raw segment <node n1, thread 0, SEQ> of the hour of its first
# record, as serve would have; prints nothing.
put_segment() {
    local ts key dir
    ts=$(head -c 200 "$2" | sed -E 's/.*"ts":([0-9]+).*/\1/;q')
    key=$(date -u -d "@$ts" +date=%Y-%m-%d/hour=%H)
    dir="$DATA/$1/raw/$key"
    mkdir -p "$dir"
    cp "$2" "$dir/n1-0-$(printf %010d "$3").ndjson"
}

# make_raw DATASET HOURS PER_SEGMENT: HOURS hours from $H0, two segments
# each, PER_SEGMENT records per segment; all records also in $TMP/raw_all.
make_raw() {
    local h seq=1
    : >"$TMP/raw_all.ndjson"
    for h in $(seq 0 $(($2 - 1))); do
        gen "$3" $((H0 + h * 3600)) 1 $((h * 2)) >"$TMP/s.ndjson"
        put_segment "$1" "$TMP/s.ndjson" $seq; seq=$((seq + 1))
        cat "$TMP/s.ndjson" >>"$TMP/raw_all.ndjson"
        gen "$3" $((H0 + h * 3600 + 1800)) 1 $((h * 2 + 1)) >"$TMP/s.ndjson"
        put_segment "$1" "$TMP/s.ndjson" $seq; seq=$((seq + 1))
        cat "$TMP/s.ndjson" >>"$TMP/raw_all.ndjson"
    done
}

# wait_q EXPECTED SQL: poll the query until it answers EXPECTED (10 s at
# most: serve writes within 100 ms, but a loaded machine may lag); prints
# the last answer.
wait_q() {
    local want=$1 got i
    shift
    for i in $(seq 1 50); do
        got=$(q "$@")
        [ "$got" = "$want" ] && break
        sleep 0.2
    done
    printf '%s' "$got"
}

# wait_sealed DIR...: until no segment under DIR is still being written.
wait_sealed() {
    local i
    for i in $(seq 1 50); do
        [ -z "$(find "$@" -name '*.open' 2>/dev/null)" ] && return 0
        sleep 0.2
    done
    return 1
}
