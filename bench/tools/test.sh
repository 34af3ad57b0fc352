#!/usr/bin/env bash
# bench/tools/test.sh - self-test of the benchmark tools (a few seconds).
#
# Builds bench/out/{gen,loadgen,sink,duckrun} and checks: gen is deterministic and
# the seed matters; every verdict gen claims agrees with an independent
# oracle (check_gen.py, stdlib Python) on a mixed file, an all-invalid file
# (each of the 15 kinds) and an all-valid file with string values; loadgen
# delivers exactly gen's records (count, bytes, FNV-1a sum) over several
# connections, paced and unpaced; loadgen refuses non-loopback hosts;
# linesum sums like the manifest; verify.py passes exact hourly output
# (also re-serialised, by value) and names lost, moved, duplicated, leaked
# and unsealed records.
# duckrun prints rows and times, timed.py reports and passes the status.
# The ajv peer is checked too when bench/node_modules is installed.
# Prints "N passed, N failed" last; exit 1 when something failed.
set -u
cd "$(dirname "$0")/.."
pass=0 fail=0
ok() { pass=$((pass + 1)); echo "ok   $1"; }
no() { fail=$((fail + 1)); echo "FAIL $1"; }
check() { # name command...
    local name=$1; shift
    if "$@" >/dev/null 2>&1; then ok "$name"; else no "$name"; fi
}

if ! make -s tools >/dev/null; then
    echo "bench tools do not build"
    echo "0 passed, 1 failed"
    exit 1
fi
tmp=$(mktemp -d /tmp/weir-bench-test.XXXXXX)
sink_pid=
trap '[ -n "$sink_pid" ] && kill "$sink_pid" 2>/dev/null; rm -rf "$tmp"' EXIT
gen=out/gen loadgen=out/loadgen sink=out/sink
py=$(command -v python3 || true)

$gen --records 30000 --str-values 0.05 --manifest "$tmp/a.json" >"$tmp/a.ndjson" 2>/dev/null
$gen --records 30000 --str-values 0.05 >"$tmp/b.ndjson" 2>/dev/null
$gen --records 30000 --str-values 0.05 --seed 2 >"$tmp/c.ndjson" 2>/dev/null
check "gen is deterministic" cmp -s "$tmp/a.ndjson" "$tmp/b.ndjson"
check "the seed changes the records" bash -c "! cmp -s '$tmp/a.ndjson' '$tmp/c.ndjson'"
check "gen rejects a bad option value" bash -c "! $gen --invalid-frac 2 >/dev/null 2>&1"
check "manifest lists valid + 15 kinds" test "$(grep -o '"by_kind": {[^}]*}' "$tmp/a.json" | grep -o ': [0-9][0-9]*' | wc -l)" = 16
# Every invalid kind shows up in a 5 % file of 30,000 records (~100 each).
check "every kind occurs" bash -c "! grep -o '\"by_kind\": {[^}]*}' '$tmp/a.json' | grep -q ': 0[,}]'"
lines=$(wc -l <"$tmp/a.ndjson")
bytes=$(wc -c <"$tmp/a.ndjson")
check "line count matches" test "$lines" = 30000
avg=$((bytes / lines))
check "about 121 bytes a line ($avg)" test "$avg" -ge 115 -a "$avg" -le 126

if [ -n "$py" ]; then
    check "oracle agrees (mixed, string values)" "$py" tools/check_gen.py "$tmp/a.ndjson" "$tmp/a.json"
    $gen --records 3000 --invalid-frac 1 --manifest "$tmp/i.json" >"$tmp/i.ndjson" 2>/dev/null
    check "oracle agrees (all invalid)" "$py" tools/check_gen.py "$tmp/i.ndjson" "$tmp/i.json"
    check "all-invalid file has no valid record" grep -q '"valid": 0,' "$tmp/i.json"
    $gen --records 3000 --invalid-frac 0 --str-values 0.5 --manifest "$tmp/v.json" >"$tmp/v.ndjson" 2>/dev/null
    check "oracle agrees (all valid)" "$py" tools/check_gen.py "$tmp/v.ndjson" "$tmp/v.json"
else
    echo "skipped: oracle checks (python3 not found)"
fi

if [ -d node_modules/ajv ] && command -v node >/dev/null; then
    want=$(sed -n 's/^  "invalid": \([0-9]*\),/\1/p' "$tmp/a.json")
    got=$(node validate/ajv.js validate/telemetry.schema.json "$tmp/a.ndjson" 2>&1 >/dev/null |
          sed -n 's/^[0-9]* valid, \([0-9]*\) invalid$/\1/p')
    check "ajv peer counts $want invalid" test "$got" = "$want"
else
    echo "skipped: ajv peer check (bench/node_modules not installed: npm ci --prefix bench)"
fi

# loadgen -> sink, unpaced over 7 connections, then paced over 2.
run_pair() { # name conns loadgen-args...
    local name=$1 conns=$2; shift 2
    rm -f "$tmp/port"
    $sink --hash --conns "$conns" --timeout 20 --port-file "$tmp/port" >"$tmp/sink.json" &
    sink_pid=$!
    for _ in $(seq 50); do [ -s "$tmp/port" ] && break; sleep 0.1; done
    if ! $loadgen --port "$(cat "$tmp/port" 2>/dev/null || echo 1)" --conns "$conns" \
            --timeout 20 --manifest "$tmp/lm.json" "$@" >"$tmp/lg.json"; then
        no "$name: loadgen failed"
        kill "$sink_pid" 2>/dev/null; wait "$sink_pid" 2>/dev/null; sink_pid=
        return
    fi
    wait "$sink_pid"; sink_pid=
    local sum bytes
    sum=$(sed -n 's/^  "checksum_all": "\([0-9a-f]*\)",/\1/p' "$tmp/lm.json")
    bytes=$(sed -n 's/^  "bytes": \([0-9]*\),/\1/p' "$tmp/lm.json")
    check "$name: every byte arrives" grep -q "\"bytes\": $bytes," "$tmp/sink.json"
    check "$name: same records (FNV-1a sum)" grep -q "\"checksum_all\": \"$sum\"" "$tmp/sink.json"
    check "$name: drained" grep -q "\"drained\": $conns, \"errors\": 0" "$tmp/lg.json"
}
run_pair "loadgen 7 conns" 7 --records 100000 --str-values 0.05
cmp_manifest() { cmp -s <(grep -v '"config"' "$tmp/lm.json") <(grep -v '"config"' "$tmp/a.json"); }
run_pair "loadgen same stream as gen" 3 --records 30000 --str-values 0.05
check "loadgen manifest equals gen's" cmp_manifest
start=$(date +%s%N)
run_pair "loadgen paced" 2 --records 20000 --rate 50000
ms=$((($(date +%s%N) - start) / 1000000))
check "pacing holds 20000 records at 50000/s to >= 0.35 s ($ms ms)" test "$ms" -ge 350
check "loadgen refuses a non-loopback host" bash -c "$loadgen --host 192.0.2.1 --port 9 2>/dev/null; test \$? = 2"
check "loadgen reports a refused connection" bash -c "! $loadgen --port 1 --records 10 >/dev/null 2>&1"

# linesum sums as the manifest does; verify.py checks hourly output.
read -r n b c _ < <(out/linesum "$tmp/a.ndjson")
check "linesum: lines, bytes, checksum as the manifest" test \
    "$n $b \"$c\"" = "30000 $bytes $(sed -n 's/^  "checksum_all": \("[0-9a-f]*"\),/\1/p' "$tmp/a.json")"
check "linesum: a last line without newline counts" test "$(printf 'abc' | out/linesum | cut -d' ' -f1-3)" = "1 3 e71fa2190541574b"
if [ -n "$py" ]; then
    # The valid records of a.ndjson, filed by hour as a peer would.
    "$py" - "$tmp/a.ndjson" "$tmp/out" "$tmp/a.json" <<'EOF'
import json, os, sys
sys.path.insert(0, "tools")
from check_gen import verdict
src, top, man = sys.argv[1:4]
t0 = json.load(open(man))["config"]["t0"]
files = {}
for raw in open(src, "rb"):
    obj = verdict(raw.rstrip(b"\n"))
    if obj is None:
        continue
    h = (obj["timestamp"] - t0) // 3600
    d = os.path.join(top, "date=2025-09-02", "hour=%02d" % (9 + h))
    os.makedirs(d, exist_ok=True)
    if d not in files:
        files[d] = open(os.path.join(d, "x.ndjson"), "wb")
    files[d].write(raw)
for f in files.values():
    f.close()
EOF
    v() { "$py" tools/verify.py --linesum out/linesum "$@"; }
    check "verify: exact output passes" v "$tmp/a.json" "$tmp/out"
    mkdir -p "$tmp/out/_seq" && echo junk >"$tmp/out/_seq/x"
    check "verify: bookkeeping folders are skipped" v "$tmp/a.json" "$tmp/out"
    cp -r "$tmp/out" "$tmp/leak"
    grep -h '"unit": "Kelvin"' "$tmp/a.ndjson" | head -n 2 >>"$tmp/leak/date=2025-09-02/hour=10/x.ndjson"
    check "verify: leaked records are named, valid ones still exact" bash -c \
        "'$py' tools/verify.py --linesum out/linesum '$tmp/a.json' '$tmp/leak' | grep -q '2 invalid records leaked (unit_kelvin 2); the valid records are exact'"
    cp -r "$tmp/out" "$tmp/lost"
    sed -i '5d' "$tmp/lost/date=2025-09-02/hour=09/x.ndjson"
    check "verify: a lost record fails" bash -c "! '$py' tools/verify.py --linesum out/linesum '$tmp/a.json' '$tmp/lost' >/dev/null"
    cp -r "$tmp/out" "$tmp/moved"
    head -n 1 "$tmp/moved/date=2025-09-02/hour=09/x.ndjson" >>"$tmp/moved/date=2025-09-02/hour=10/x.ndjson"
    sed -i '1d' "$tmp/moved/date=2025-09-02/hour=09/x.ndjson"
    check "verify: a record in the wrong hour fails" bash -c "! '$py' tools/verify.py --linesum out/linesum '$tmp/a.json' '$tmp/moved' >/dev/null"
    mv "$tmp/out/date=2025-09-02/hour=11/x.ndjson" "$tmp/out/date=2025-09-02/hour=11/x.ndjson.open"
    check "verify: an unsealed segment fails" bash -c "! '$py' tools/verify.py --linesum out/linesum '$tmp/a.json' '$tmp/out' >/dev/null"
    # By value: re-serialised records (as the Python seed writes them).
    mkdir -p "$tmp/canon/date=2025-09-02/hour=09"
    "$py" - "$tmp/out" "$tmp/canon/date=2025-09-02" <<'EOF'
import json, os, sys
src, dst = sys.argv[1:3]
for h in ("hour=09", "hour=10", "hour=11"):
    d = os.path.join(src, "date=2025-09-02", h)
    os.makedirs(os.path.join(dst, h), exist_ok=True)
    with open(os.path.join(dst, h, "p.ndjson"), "w") as out:
        for name in os.listdir(d):
            for line in open(os.path.join(d, name), "rb"):
                obj = json.loads(line)
                if type(obj["measurement"]["value"]) is int:
                    obj["measurement"]["value"] = float(obj["measurement"]["value"])
                out.write(json.dumps(obj) + "\n")
EOF
    check "verify --canonical: re-serialised output passes" v "$tmp/a.json" "$tmp/canon" --canonical "$tmp/a.ndjson"
    sed -i '1p' "$tmp/canon/date=2025-09-02/hour=09/p.ndjson"
    check "verify --canonical: a duplicate is counted" bash -c \
        "'$py' tools/verify.py --linesum out/linesum --json '$tmp/a.json' '$tmp/canon' --canonical '$tmp/a.ndjson' | grep -q '\"dup\": 1,'"
else
    echo "skipped: verify.py checks (python3 not found)"
fi
# duckrun (plain DuckDB) and timed.py (the benchmarks' clock).
check "duckrun prints the rows" bash -c "test \"\$(out/duckrun -t 1 \"SELECT 41 + 1, 'x' UNION ALL SELECT NULL, 'y'\" 2>/dev/null)\" = \"\$(printf '42\\tx\\n\\ty')\""
check "duckrun times on stderr" bash -c "out/duckrun -s 'CREATE TABLE t AS SELECT 1' 'SELECT * FROM t' 2>&1 >/dev/null | grep -q '\"wall_s\": .*\"rows\": 1'"
check "duckrun: bad SQL exits 1" bash -c "out/duckrun 'SELEC 1' >/dev/null 2>&1; test \$? = 1"
check "timed.py: five figures and the exit status" bash -c "tools/timed.py $tmp/t sh -c 'exit 3'; test \$? = 3 && grep -Eq '^[0-9.]+ [0-9.]+ [0-9.]+ [0-9]+ 3\$' $tmp/t"

echo "$pass passed, $fail failed"
[ "$fail" = 0 ]
