#!/usr/bin/env bash
# tests/integration/requeue.sh - `weir requeue` with the real binary.
#
# weir serve with a strict schema takes valid and invalid records over TCP;
# the config then goes lax; requeue must file every record that is now
# valid in raw exactly once, leave the rest in quarantine, and change
# nothing when run again. Then: kill -9 at each step of the protocol
# (WEIR_REQUEUE_CRASH_AT, testing builds) and at random instants on a
# larger quarantine, and a rerun (or serve's start-up) must give exactly
# the same result; requeue beside a running server; usage errors.
set -u
. "$(dirname "$0")/lib.sh"

python3 - >/dev/null 2>&1 </dev/null || { echo "skipped: python3 not found"; echo "0 passed, 0 failed"; exit 0; }

D=$TMP/data
port=$(free_port)
cat >"$TMP/s.json" <<'EOF'
{"type":"object","required":["ts","v","id"],
 "properties":{"ts":{"type":"integer"},"v":{"type":"number"},"id":{"type":"integer"}}}
EOF
# conf LAX FILE: write a config (serve runs strict, requeue lax, mostly)
conf() {
    cat >"$2" <<EOF
data_dir: $D
node: it
workers: 2
metrics: off
pipelines:
  - name: t
    source: {tcp: 127.0.0.1:$port}
    schema: s.json
    time_field: ts
    max_record: 1KiB
    lax: $1
EOF
}

serve_pid=
S=$TMP/strict.yaml L=$TMP/lax.yaml
conf false "$S"
conf true "$L"
start_serve() {
    "$WEIR" serve -c "${1:-$S}" 2>>"$TMP/serve.log" &
    serve_pid=$!
    cleanup_pid "$serve_pid"
    wait_port "$port" 20
}
stop_serve() {
    kill -TERM "$serve_pid"
    wait "$serve_pid"
    local rc=$?
    serve_pid=
    return $rc
}

now=$(date +%s)
# gen FIRST N: N records with ids FIRST.. of five kinds by id % 5:
#   0 valid, 1 "v" as a string (valid once lax), 2 no "v" (never valid),
#   3 not JSON, 4 valid as a string too, in another hour (an hour ago)
gen() {
    python3 - "$1" "$2" "$now" <<'EOF'
import sys
first, n, now = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
out = []
for i in range(first, first + n):
    k = i % 5
    if k == 0: out.append('{"ts":%d,"v":%d.5,"id":%d}' % (now, i, i))
    elif k == 1: out.append('{"ts":%d,"v":"%d.25","id":%d}' % (now, i, i))
    elif k == 2: out.append('{"ts":%d,"id":%d}' % (now, i))
    elif k == 3: out.append('{"ts":%d,"id":%d,' % (now, i))
    else: out.append('{"ts":%d,"v":"%d","id":%d}' % (now - 3600, i, i))
sys.stdout.write("\n".join(out) + "\n")
EOF
}

# ids_raw: the ids in sealed raw segments, one per line, sorted
ids_raw() {
    find "$D/t/raw" -name '*.ndjson' -type f -print0 | xargs -0 -r cat |
        sed -E 's/.*"id":([0-9]+).*/\1/' | sort -n
}
# ids_quar: the ids of the records in quarantine (sealed or not), sorted;
# too_large ones show as "big"
ids_quar() {
    find "$D/t/quarantine" \( -name '*.ndjson' -o -name '*.ndjson.open' \) -type f -print0 |
        xargs -0 -r cat | python3 -c '
import sys, json
for line in sys.stdin:
    r = json.loads(line)
    if r.get("truncated"): print("big"); continue
    raw = r["raw"]
    print(raw.split("\"id\":")[1].rstrip("},").split(",")[0])' | sort -n
}
# snapshot: every file (not the lock files) with its checksum
snapshot() {
    (cd "$D" && find . -type f ! -name '*.lock' -print0 | sort -z | xargs -0 -r md5sum)
}
# check_exact WHAT: raw holds each valid-when-lax id once, quarantine the rest
check_exact() {
    eq "$1: raw holds each requeuable record once" "$(cat "$TMP/want_raw")" "$(ids_raw)"
    eq "$1: quarantine holds the rest" "$(cat "$TMP/want_quar")" "$(ids_quar)"
    eq "$1: no staging file or journal left" "" "$(ls -A "$D/t/_requeue" 2>/dev/null)"
}

# 1. serve strict: 100 records (ids 0-99) and one too large.
start_serve
gen 0 100 >"$TMP/in.ndjson"
python3 -c 'print("{\"ts\":1,\"v\":1,\"id\":999,\"pad\":\"" + "x" * 2000 + "\"}")' >>"$TMP/in.ndjson"
"$WEIR" send "127.0.0.1:$port" "$TMP/in.ndjson"
ok "serve strict: stops cleanly" stop_serve
seq 0 5 99 | sort -n >"$TMP/want_strict"
eq "serve strict: raw holds the valid ones" "$(cat "$TMP/want_strict")" "$(ids_raw)"
eq "serve strict: 81 in quarantine" 81 "$(ids_quar | wc -l | tr -d ' ')"
ok "serve strict: the too large one is in quarantine, truncated" grep -rq '"reason":"too_large"' "$D/t/quarantine"

# 2. strict requeue: nothing to do, every record stays, exit 1.
out=$("$WEIR" requeue -c "$S" t 2>&1); rc=$?
eq "strict requeue: exit 1 (records stay invalid)" 1 "$rc"
ok "strict requeue: reports 0 requeued" grep -Eq '^total +0 +81$' <<<"$out"
ok "strict requeue: says too_large can never be valid" grep -q "too_large .*can never be valid" <<<"$out"

# 3. lax: the dry run tells, changes nothing.
{ seq 0 5 99; seq 1 5 99; seq 4 5 99; } | sort -n >"$TMP/want_raw"
{ seq 2 5 99; seq 3 5 99; echo big; } | sort -n >"$TMP/want_quar"
cp -a "$D" "$TMP/pristine"
before=$(snapshot)
out=$("$WEIR" requeue -c "$L" t --dry-run 2>&1); rc=$?
eq "dry run: exit 1 (some would stay)" 1 "$rc"
ok "dry run: counts" grep -Eq '^invalid +40 +40$' <<<"$out"
eq "dry run: nothing changed" "$before" "$(snapshot)"

# 4. lax requeue: exactly the now-valid records move, once.
out=$("$WEIR" requeue -c "$L" t 2>&1); rc=$?
echo "$out" | sed 's/^/    /'
eq "requeue: exit 1 (some stay invalid)" 1 "$rc"
ok "requeue: per reason, requeued and stay" grep -Eq '^invalid +40 +40' <<<"$out"
ok "requeue: too_large left" grep -Eq '^too_large +0 +1 ' <<<"$out"
check_exact "requeue"
ok "requeue: coerced values stored (lax)" grep -rq '"v":1.25,"id":1}' "$D/t/raw"
ok "requeue: segments of its own thread number" test -n "$(find "$D/t/raw" -name 'it-1000000-*.ndjson')"
ok "requeue: records of the earlier hour in their hour" \
    test "$(find "$D/t/raw" -name '*.ndjson' | sed 's|/[^/]*$||' | sort -u | wc -l)" -ge 2

# 5. again: nothing changes.
before=$(snapshot)
out=$("$WEIR" requeue -c "$L" t 2>&1); rc=$?
eq "again: exit 1" 1 "$rc"
ok "again: nothing requeued, nothing rewritten" grep -q "0 rewritten, 0 raw segments written" <<<"$out"
eq "again: no file changed" "$before" "$(snapshot)"

# 6. kill -9 at each step of the protocol, then a rerun finishes exactly.
if ! grep -qa WEIR_REQUEUE_CRASH_AT "$WEIR"; then
    echo "skipped: $WEIR is not a testing build (no WEIR_REQUEUE_CRASH_AT)"
else
    for step in staged journal renamed renamed:3 source; do
        rm -rf "$D" && cp -a "$TMP/pristine" "$D"
        { WEIR_REQUEUE_CRASH_AT=$step "$WEIR" requeue -c "$L" t >/dev/null 2>&1; rc=$?; } 2>/dev/null
        eq "kill at $step: killed (137)" 137 "$rc"
        out=$("$WEIR" requeue -c "$L" t 2>&1); rc=$?
        eq "kill at $step: rerun exit 1" 1 "$rc"
        case $step in
        staged) ok "kill at $step: leftovers removed" grep -q "removed .* staging file" <<<"$out" ;;
        *) ok "kill at $step: interrupted requeue finished" grep -q "finished 1 interrupted requeue" <<<"$out" ;;
        esac
        check_exact "kill at $step"
    done

    # serve's start-up finishes an interrupted requeue too.
    rm -rf "$D" && cp -a "$TMP/pristine" "$D"
    { WEIR_REQUEUE_CRASH_AT=journal "$WEIR" requeue -c "$L" t >/dev/null 2>&1; } 2>/dev/null
    start_serve "$L"
    ok "serve after a killed requeue: stops cleanly" stop_serve
    eq "serve after a killed requeue: journal finished" "" "$(ls -A "$D/t/_requeue")"
    # its one journal moved one segment; a requeue moves the others
    "$WEIR" requeue -c "$L" t >/dev/null 2>&1
    check_exact "serve's recovery then requeue"
fi

# 7. A larger quarantine (6 segments, 60,000 records) killed at random
# instants.
rm -rf "$D"
for round in 1 2 3; do
    start_serve
    gen $((round * 100000)) 20000 >"$TMP/big.ndjson"
    "$WEIR" send --conns 4 "127.0.0.1:$port" "$TMP/big.ndjson"
    ok "big: serve stops cleanly ($round)" stop_serve
done
{ for round in 1 2 3; do b=$((round * 100000)); e=$((b + 19999)); seq $b 5 $e; seq $((b + 1)) 5 $e; seq $((b + 4)) 5 $e; done; } | sort -n >"$TMP/want_raw"
{ for round in 1 2 3; do b=$((round * 100000)); e=$((b + 19999)); seq $((b + 2)) 5 $e; seq $((b + 3)) 5 $e; done; } | sort -n >"$TMP/want_quar"
eq "big: quarantine before" $((16000 * 3)) "$(ids_quar | wc -l | tr -d ' ')"
cp -a "$D" "$TMP/big_pristine"
t0=$(date +%s%N)
"$WEIR" requeue -c "$L" t >/dev/null 2>&1
ms=$((($(date +%s%N) - t0) / 1000000))
echo "    a whole requeue of $(wc -l <"$TMP/want_raw") records took ${ms} ms"
check_exact "big: uninterrupted"
midway=0
for round in 1 2 3 4 5 6; do
    rm -rf "$D" && cp -a "$TMP/big_pristine" "$D"
    "$WEIR" requeue -c "$L" t >/dev/null 2>&1 &
    pid=$!
    sleep "0.$(printf '%03d' $((RANDOM % (ms > 999 ? 999 : ms + 1))))"
    { kill -9 "$pid"; wait "$pid"; } 2>/dev/null
    [ -n "$(ls -A "$D/t/_requeue" 2>/dev/null)" ] && midway=$((midway + 1))
    "$WEIR" requeue -c "$L" t >/dev/null 2>&1
    check_exact "big: kill -9 at random, round $round"
done
echo "    $midway of 6 kills left a journal or staging files behind"

# 8. Beside a running (strict) server: its active quarantine segment is
# left alone, and requeued once the server sealed it.
start_serve
gen 900000 10 | "$WEIR" send "127.0.0.1:$port"
sleep 0.3
out=$("$WEIR" requeue -c "$L" t 2>&1); rc=$?
eq "beside serve: exit 1 (the sealed ones done, 24000 stay)" 1 "$rc"
ok "beside serve: nothing else to requeue" grep -Eq '^total +0 +24000$' <<<"$out"
ok "beside serve: active segment not read" grep -q "1 active quarantine segment not read" <<<"$out"
ok "beside serve: server still up" kill -0 "$serve_pid"
ok "beside serve: server stops cleanly" stop_serve
out=$("$WEIR" requeue -c "$L" t 2>&1)
ok "after serve: the newly sealed segment requeued" grep -Eq '^invalid +4 +24004$' <<<"$out"

# 9. Usage and configuration errors: exit 2.
"$WEIR" requeue -c "$L" >/dev/null 2>&1; eq "no pipeline: exit 2" 2 $?
"$WEIR" requeue -c "$L" nope 2>"$TMP/err" >/dev/null; eq "unknown pipeline: exit 2" 2 $?
ok "unknown pipeline: names the pipelines there" grep -q "it has: t" "$TMP/err"
"$WEIR" requeue -c "$L" t --reason bogus >/dev/null 2>&1; eq "bad reason: exit 2" 2 $?
"$WEIR" requeue -c "$L" t --from yesterday >/dev/null 2>&1; eq "bad --from: exit 2" 2 $?
"$WEIR" requeue -c "$L" t --from 2025-09-03 --to 2025-09-02 >/dev/null 2>&1; eq "--from after --to: exit 2" 2 $?
"$WEIR" requeue -c "$L" t --reason torn,truncated >/dev/null 2>&1; eq "nothing of those reasons: exit 0" 0 $?
ok "--help" "$WEIR" requeue --help

finish
