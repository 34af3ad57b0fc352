#!/usr/bin/env bash
# tests/integration/serve_basic.sh - `weir serve` end to end: the real
# binary, real sockets on 127.0.0.1, free ports, a private data_dir.
#
# What lands must equal what was sent: per hour, the multiset of raw lines
# is the multiset of valid records sent; every invalid record is in
# quarantine with its reason and JSON pointer (tests/tools/ingest.py check).
# Sent whole, in random chunks, byte by byte, and with every line cut at
# every position; CRLF and empty lines; 30 hours; 1,000 connections open
# at once; a last line without newline; a sender gone mid-record; records
# over max_record followed by normal ones; 50 MB without a newline while
# the server's VmRSS stays bounded. Then /metrics, /health, `weir status`,
# SIGTERM with senders still sending (all they sent lands, exit 0, every
# segment sealed), and a restart that neither loses nor duplicates.
#
# The event times are in September 2025 and WEIR_FAKE_NOW puts the
# server's clock just after them (src/core/wtime.h).
. "$(dirname "$0")/lib.sh"

TOOL=(python3 "$WEIR_ROOT/tests/tools/ingest.py")
ulimit -n 8192 2>/dev/null || ulimit -n "$(ulimit -Hn)"
START=1756684800                       # 2025-09-01T00:00:00Z
HOURS=30
NOW=$((START + HOURS * 3600 + 1800))   # half an hour after the last hour
export WEIR_FAKE_NOW=$NOW
MAXREC=4096
"${TOOL[@]}" schema >"$TMP/schema.json"

# config NAME DATA_DIR [LIMITS [PIPELINE_KEYS]]: a config file
# $TMP/NAME.yaml on fresh ports; sets $port and $mport.
config() {
    port=$(free_port) mport=$(free_port)
    while [ "$mport" = "$port" ]; do mport=$(free_port); done
    cat >"$TMP/$1.yaml" <<EOF
data_dir: $2
workers: 2
grace: 2d
drain_timeout: 5s
metrics: 127.0.0.1:$mport
limits: {${3:-}}
pipelines:
  - name: t
    source: {tcp: 127.0.0.1:$port}
    schema: $TMP/schema.json
    compaction: manual            # these tests look at raw segments
    time_field: ts
    time_unit: s
    time_max_age: off
    time_max_ahead: 1d
    max_record: $MAXREC
    ${4:-}
EOF
}

# serve NAME: start the server of $TMP/NAME.yaml; sets $srv.
serve() {
    "$WEIR" serve -c "$TMP/$1.yaml" 2>>"$TMP/$1.log" &
    srv=$!
    cleanup_pid "$srv"
    wait_port "$port" 30 && wait_port "$mport" 5
}

# stop: SIGTERM, wait; sets $rc.
stop() {
    kill -TERM "$srv"
    wait "$srv"
    rc=$?
}

metrics() { curl -s --max-time 5 "http://127.0.0.1:$mport/metrics"; }
metric() { metrics | "${TOOL[@]}" metric "$@"; }

D=$TMP/data
config a "$D"
ok "serve starts" serve a

# --- /health and /metrics --------------------------------------------------
eq "/health says ok" "ok" "$(curl -s --max-time 5 "http://127.0.0.1:$mport/health")"
eq "/health is 200" "200" "$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 "http://127.0.0.1:$mport/health")"
ok "/metrics has the counters" bash -c "curl -s --max-time 5 http://127.0.0.1:$mport/metrics | grep -q '^weir_records_total{pipeline=\"t\"} 0$'"
eq "unknown path is 404" "404" "$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 "http://127.0.0.1:$mport/nope")"

# --- a second server where one runs: exit 2, saying why -------------------
timeout 20 "$WEIR" serve -c "$TMP/a.yaml" 2>"$TMP/second.err"
eq "same data_dir and node: exit 2" 2 $?
ok "same data_dir and node: says another weir runs as this node" grep -q "another weir process runs as node" "$TMP/second.err"
other=$(free_port)
sed -e "s#^data_dir: .*#data_dir: $TMP/other#" -e "s#^metrics: .*#metrics: 127.0.0.1:$other#" "$TMP/a.yaml" >"$TMP/tcpbusy.yaml"
timeout 20 "$WEIR" serve -c "$TMP/tcpbusy.yaml" 2>"$TMP/second.err"
eq "TCP address in use: exit 2" 2 $?
ok "TCP address in use: named" grep -q "pipeline t: 127.0.0.1:$port: address already in use" "$TMP/second.err"
sed -e "s#^data_dir: .*#data_dir: $TMP/other#" -e "s#tcp: 127.0.0.1:$port#tcp: 127.0.0.1:$other#" "$TMP/a.yaml" >"$TMP/mbusy.yaml"
timeout 20 "$WEIR" serve -c "$TMP/mbusy.yaml" 2>"$TMP/second.err"
eq "metrics address in use: exit 2 (not shared)" 2 $?
ok "metrics address in use: named" grep -q "metrics: 127.0.0.1:$mport: address already in use" "$TMP/second.err"

# --- the main mix: 30 hours, invalid records of every kind, CRLF, empty lines
G=$TMP/mix
"${TOOL[@]}" gen --out "$G" --conns 4 --records 600 --start $START --hours $HOURS \
    --now $NOW --invalid 0.06 --crlf 0.2 --empty 0.05 --pad 40 --max-record $MAXREC \
    --seed 7 >/dev/null
ok "mix: sent whole" "${TOOL[@]}" send "$port" "$G/c000000.ndjson" --mode whole
ok "mix: sent in random chunks" "${TOOL[@]}" send "$port" "$G/c000001.ndjson" --mode random --chunk 97
ok "mix: sent in random small chunks" "${TOOL[@]}" send "$port" "$G/c000002.ndjson" --mode random --chunk 7 --seed 3
ok "mix: sent with weir send" "$WEIR" send "127.0.0.1:$port" "$G/c000003.ndjson"

# Every line cut at every position (lines of 20 to 90 bytes, 300 of them).
S=$TMP/split
"${TOOL[@]}" gen --out "$S" --conns 1 --cid-base 10 --records 300 --start $START \
    --hours $HOURS --now $NOW --crlf 0.3 --pad 40 --invalid 0.05 --seed 8 >/dev/null
ok "split at every byte position" "${TOOL[@]}" send "$port" "$S/c000010.ndjson" --mode split --gap 1

# One byte per write.
B=$TMP/bytes
"${TOOL[@]}" gen --out "$B" --conns 1 --cid-base 20 --records 15 --start $START \
    --hours $HOURS --now $NOW --crlf 0.5 --empty 0.2 --seed 9 >/dev/null
ok "byte by byte" "${TOOL[@]}" send "$port" "$B/c000020.ndjson" --mode bytes --gap 0.3

# A last line without newline is a record.
N=$TMP/nonl
"${TOOL[@]}" gen --out "$N" --conns 1 --cid-base 30 --records 5 --start $START \
    --hours $HOURS --now $NOW --no-final-newline --seed 10 >/dev/null
ok "last line without newline" "${TOOL[@]}" send "$port" "$N/c000030.ndjson"

# A sender that goes away mid-record: the fragment is quarantined, truncated.
M=$TMP/mid
"${TOOL[@]}" gen --out "$M" --conns 1 --cid-base 40 --records 5 --start $START \
    --hours $HOURS --now $NOW --seed 11 >/dev/null
frag="{\"ts\":$START,\"c\":40,\"s\":"
printf '%s' "$frag" >>"$M/c000040.ndjson"
"${TOOL[@]}" expect "$M/expect" "$frag" --reason truncated --path ""
ok "disconnect mid-record" "${TOOL[@]}" send "$port" "$M/c000040.ndjson" --abort

# An over-long record, then normal records on the same connection.
L=$TMP/long
mkdir -p "$L"
long="{\"ts\":$START,\"c\":50,\"s\":0,\"p\":\"$(head -c 10000 /dev/zero | tr '\0' 'q')\"}"
{
    printf '%s\n' "$long"
    for s in 1 2 3; do printf '{"ts":%d,"c":50,"s":%d}\r\n' $((START + s * 3600)) "$s"; done
} >"$L/c000050.ndjson"
"${TOOL[@]}" expect "$L/expect" "${long:0:$MAXREC}" --reason too_large --path ""
for s in 1 2 3; do "${TOOL[@]}" expect "$L/expect" "{\"ts\":$((START + s * 3600)),\"c\":50,\"s\":$s}"; done
ok "over-long record, then the next ones" "${TOOL[@]}" send "$port" "$L/c000050.ndjson" --mode random --chunk 3000

# --- 50 MB without a newline: too_large once, memory bounded ---------------
X=$TMP/x
mkdir -p "$X"
"${TOOL[@]}" expect "$X/expect" "$(head -c $MAXREC /dev/zero | tr '\0' 'x')" --reason too_large --path ""
"${TOOL[@]}" expect "$X/expect" "{\"ts\":$START,\"c\":60,\"s\":0}"
"${TOOL[@]}" expect "$X/expect" "{\"ts\":$START,\"c\":60,\"s\":1}"
"${TOOL[@]}" nonl "$port" --bytes 50000000 --ts $START --cid 60 --watch-pid "$srv" >"$TMP/nonl.out" 2>&1
rc=$?
eq "50 MB without newline: sent, server closed" 0 "$rc"
read -r rss0 rss1 < <(sed -E 's/.*rss_start_kb=([0-9]+) rss_max_kb=([0-9]+).*/\1 \2/' "$TMP/nonl.out")
echo "     VmRSS ${rss0} kB before, at most ${rss1} kB while 50 MB arrived"
ok "50 MB without newline: VmRSS grew < 16 MB (${rss0} -> ${rss1} kB)" test $((rss1 - rss0)) -lt 16384

# --- 1,000 connections at once ------------------------------------------
K=$TMP/k
"${TOOL[@]}" gen --out "$K" --conns 1000 --cid-base 1000 --records 6 --start $START \
    --hours $HOURS --now $NOW --invalid 0.03 --crlf 0.2 --seed 12 >/dev/null
"${TOOL[@]}" conns "$port" "$K" --chunk 40 --go-file "$TMP/go" >"$TMP/conns.out" 2>&1 &
cpid=$!
open=0
for _ in $(seq 1 600); do
    open=$(metric weir_connections --pipeline t)
    [ "$open" = 1000 ] && break
    sleep 0.1
done
eq "1000 connections open at once" 1000 "$open"
touch "$TMP/go"
wait "$cpid"
eq "1000 connections: all sent, all closed by the server" 0 $?

# --- counters while running ----------------------------------------------
EXP=("$G/expect" "$S/expect" "$B/expect" "$N/expect" "$M/expect" "$L/expect" "$X/expect" "$K/expect")
nrec=$(cat "${EXP[@]}" | wc -l)
nraw=$(cat "${EXP[@]}" | grep -c '"k": "raw"')
nq=$((nrec - nraw))
for _ in $(seq 1 50); do
    [ "$(metric weir_records_total --pipeline t)" = "$nrec" ] && break
    sleep 0.1
done
eq "weir_records_total" "$nrec" "$(metric weir_records_total --pipeline t)"
eq "weir_valid_records_total" "$nraw" "$(metric weir_valid_records_total --pipeline t)"
eq "weir_quarantined_records_total" "$nq" "$(metric weir_quarantined_records_total --pipeline t)"
ntrunc=$(cat "${EXP[@]}" | grep -c '"reason": "truncated"')
eq "quarantined as truncated" "$ntrunc" \
    "$(metrics | grep 'weir_quarantined_by_reason_total{pipeline="t",reason="truncated"}' | awk '{print $2}')"
# (+1: wait_port's probe when the server started)
nconn=$((4 + 1 + 1 + 1 + 1 + 1 + 1 + 1000 + 1))
eq "weir_connections_accepted_total" "$nconn" "$(metric weir_connections_accepted_total --pipeline t)"
"$WEIR" status -c "$TMP/a.yaml" >"$TMP/status.out" 2>&1
eq "weir status: exit 0" 0 $?
ok "weir status: server running" grep -q "^server: running on node" "$TMP/status.out"
ok "weir status: records counted" grep -Eq "^  records +$nrec " "$TMP/status.out"
ok "weir status: verdicts" grep -Eq "^  verdicts +$nraw valid, $nq quarantined" "$TMP/status.out"
ok "weir status: connections" grep -Eq "^  connections +0 open, $nconn accepted" "$TMP/status.out"
ok "weir status: raw partitions on disk" grep -Eq "^  raw +$HOURS partitions" "$TMP/status.out"
ok "weir status --json" bash -c "'$WEIR' status --json -c '$TMP/a.yaml' | python3 -c 'import json,sys; d=json.load(sys.stdin); assert d[\"pipelines\"][0][\"records_total\"] == $nrec'"

# --- stop: exit 0, everything landed, every segment sealed -----------------
stop
eq "SIGTERM: exit 0" 0 "$rc"
ok "logs the counters at shutdown" grep -q "t: $nrec records" "$TMP/a.log"
"${TOOL[@]}" check "$D" t --sealed --hours $HOURS "${EXP[@]/#/--expect=}" >"$TMP/check1.out" 2>&1
rc=$?
cat "$TMP/check1.out" | sed 's/^/     /'
eq "what landed is what was sent (30 hours, sealed)" 0 "$rc"

# --- restart: serve again, send more, stop: totals exact --------------------
ok "serve again" serve a
eq "a clean stop needs no recovery" "" "$(grep -i recovered "$TMP/a.log")"
R=$TMP/again
"${TOOL[@]}" gen --out "$R" --conns 3 --cid-base 5000 --records 400 --start $START \
    --hours $HOURS --now $NOW --invalid 0.05 --crlf 0.1 --seed 13 >/dev/null
ok "restart: send more" "$WEIR" send --conns 3 "127.0.0.1:$port" "$R/c005000.ndjson" "$R/c005001.ndjson" "$R/c005002.ndjson"
stop
eq "restart: SIGTERM, exit 0" 0 "$rc"
"${TOOL[@]}" check "$D" t --sealed --hours $HOURS "${EXP[@]/#/--expect=}" --expect "$R/expect" >"$TMP/check2.out" 2>&1
rc=$?
cat "$TMP/check2.out" | sed 's/^/     /'
eq "restart: nothing lost, nothing duplicated" 0 "$rc"

# --- SIGTERM while senders are still sending --------------------------------
D2=$TMP/data2
config b "$D2"
ok "drain: serve" serve b
"${TOOL[@]}" flood "$port" --conns 3 --cid-base 0 --start $START --hours 3 --pad 30 \
    --duration 2.5 --pause 2 --sent-log "$TMP/drain.sent" >"$TMP/flood.out" 2>&1 &
fpid=$!
sleep 0.5
kill -HUP "$srv"
sleep 0.5
kill -TERM "$srv"
sleep 0.1
kill -INT "$srv"
sleep 0.2
eq "drain: /health says draining (503)" "503" \
    "$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 "http://127.0.0.1:$mport/health")"
ok "drain: no new connections" bash -c "! (exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null"
wait "$fpid"
eq "drain: the sender finished and was closed cleanly" 0 $?
wait "$srv"
rc=$?
eq "drain: exit 0" 0 "$rc"
ok "drain: SIGHUP was logged and ignored" grep -q "SIGHUP ignored" "$TMP/b.log"
ok "drain: a second signal changes nothing" grep -q "shutdown already in progress" "$TMP/b.log"
grep -q "3 closed cleanly" "$TMP/flood.out"
eq "drain: all 3 connections closed by the server after their last byte" 0 $?
"${TOOL[@]}" prefix "$D2" t --sent "$TMP/drain.sent" --exact --sealed --allow none >"$TMP/drain.out" 2>&1
rc=$?
sed 's/^/     /' "$TMP/drain.out"
eq "drain: everything sent before closing landed, sealed" 0 "$rc"

# --- an hour closes while the server runs ---------------------------------
# The clock starts 2 s before 11:00 and grace is 1 s: hour 10 is sealed
# while serving; records for it after that are late and open a new
# segment, one for 3 s of late records (sealing those every second made a
# replay of old hours cut a segment per hour per second), sealed once they
# stop; nothing is lost or doubled.
D4=$TMP/data4
config d "$D4" "" ""
sed -i 's/^grace: 2d$/grace: 1s/' "$TMP/d.yaml"
H10=1756807200                          # 2025-09-02T10:00:00Z
WEIR_FAKE_NOW=$((H10 + 3598)) serve d
eq "hour close: serve" 0 $?
Z=$TMP/hour
mkdir -p "$Z"
for r in "{\"ts\":$H10,\"c\":1,\"s\":0}" "{\"ts\":$((H10 + 3599)),\"c\":1,\"s\":1}"; do
    echo "$r" >>"$Z/first"
    "${TOOL[@]}" expect "$Z/expect" "$r"
done
ok "hour close: send to hour 10" "$WEIR" send "127.0.0.1:$port" "$Z/first"
sealed=no
for _ in $(seq 1 60); do
    if [ -n "$(find "$D4/t/raw/date=2025-09-02/hour=10" -name '*.ndjson' 2>/dev/null)" ] &&
       [ -z "$(find "$D4/t/raw/date=2025-09-02/hour=10" -name '*.open' 2>/dev/null)" ]; then
        sealed=yes
        break
    fi
    sleep 0.1
done
eq "hour close: hour 10 sealed while serving" yes "$sealed"
for s in $(seq 2 31); do
    r="{\"ts\":$((H10 + 100 + s)),\"c\":1,\"s\":$s}"
    [ "$s" = 31 ] && r="{\"ts\":$((H10 + 3600)),\"c\":1,\"s\":$s}"
    echo "$r" >>"$Z/second"
    "${TOOL[@]}" expect "$Z/expect" "$r"
done
ok "hour close: 3 s of late records, then one for hour 11" \
    "$WEIR" send --rate 10 "127.0.0.1:$port" "$Z/second"
eq "hour close: the late records are counted" 29 "$(metric weir_late_records_total --pipeline t)"
sealed=no
for _ in $(seq 1 80); do
    [ -z "$(find "$D4/t/raw/date=2025-09-02/hour=10" -name '*.open')" ] && sealed=yes && break
    sleep 0.1
done
eq "hour close: the late segment sealed about 2 s after the late records stopped" yes "$sealed"
stop
eq "hour close: exit 0" 0 "$rc"
eq "hour close: hour 10 has two segments" 2 "$(find "$D4/t/raw/date=2025-09-02/hour=10" -name '*.ndjson' | wc -l)"
ok "hour close: what landed is what was sent" "${TOOL[@]}" check "$D4" t --sealed --expect "$Z/expect"

# --- backpressure on and off, many times over --------------------------
# A 64 KiB write queue and a 5 ms group commit: the source pauses every
# few dozen records and must be resumed each time (a pause taken by the
# source itself and cleared before the next tick once stalled it for good).
D3=$TMP/data3
config c "$D3" "max_pending: 64KiB, max_record: $MAXREC" "fsync_interval: 5ms"
ok "backpressure: serve with a 64 KiB queue" serve c
P=$TMP/bp
"${TOOL[@]}" gen --out "$P" --conns 1 --cid-base 0 --records 20000 --start $START \
    --hours 3 --now $NOW --invalid 0.02 --pad 100 --seed 14 >/dev/null
ok "backpressure: 2.5 MB through a 64 KiB queue, never stalled" \
    "${TOOL[@]}" send "$port" "$P/c000000.ndjson" --mode random --chunk 100000 --timeout 30
bp=$(metric weir_backpressure_seconds_total --pipeline t)
echo "     $bp s of backpressure"
ok "backpressure: counted" python3 -c "import sys; sys.exit(not $bp > 0)"
stop
eq "backpressure: exit 0" 0 "$rc"
"${TOOL[@]}" check "$D3" t --sealed --expect "$P/expect" >"$TMP/check3.out" 2>&1
rc=$?
sed 's/^/     /' "$TMP/check3.out"
eq "backpressure: what landed is what was sent" 0 "$rc"

finish
