#!/usr/bin/env bash
# tests/integration/serve_crash.sh - kill -9 `weir serve` at random
# instants under load, restart, and check what a crash may and may not do.
#
# Each round starts the server (which recovers what the last crash left),
# floods it from 4 connections with numbered records spread over 3 hours
# (tests/tools/ingest.py flood: {"ts":..,"c":CONN,"s":SEQ}), and kills it
# with SIGKILL after a random 0.2 to 1.5 s; one round in six kills it
# while it starts (recovering), one in six just after a SIGTERM (while it
# drains and seals). The fsync policy turns through group, always and
# never. At the end one more start recovers the
# last crash and a SIGTERM stops it cleanly. Then (ingest.py prefix):
#   - every raw line is a whole, valid record in the partition of its time;
#     a torn tail was moved to quarantine with reason "torn", and it is the
#     record right after the ones of its connection that landed;
#   - no record landed twice;
#   - per connection, the records that landed are 0..k-1 with k at most
#     what it sent: a prefix, no hole;
#   - with fsync: always, every round landed at least the records the
#     server counted as durable (weir_durable_records_total) just before
#     the kill.
# WEIR_CRASH_ROUNDS sets the number of rounds (default 24).
. "$(dirname "$0")/lib.sh"

TOOL=(python3 "$WEIR_ROOT/tests/tools/ingest.py")
ROUNDS=${WEIR_CRASH_ROUNDS:-24}
START=1756684800                       # 2025-09-01T00:00:00Z
export WEIR_FAKE_NOW=$((START + 3 * 3600 + 600))
"${TOOL[@]}" schema >"$TMP/schema.json"
D=$TMP/data
POLICIES=(group always never)

# config POLICY: fresh ports (the killed server's may linger); sets $port, $mport.
config() {
    port=$(free_port) mport=$(free_port)
    while [ "$mport" = "$port" ]; do mport=$(free_port); done
    cat >"$TMP/w.yaml" <<EOF
data_dir: $D
workers: 2
grace: 2d
metrics: 127.0.0.1:$mport
pipelines:
  - name: t
    source: {tcp: 127.0.0.1:$port}
    schema: $TMP/schema.json
    compaction: manual            # these tests look at raw segments
    time_field: ts
    time_max_age: off
    fsync: $1
EOF
}

metric() {
    curl -s --max-time 5 "http://127.0.0.1:$mport/metrics" | "${TOOL[@]}" metric "$@"
}

rand() { # SEED LO HI: a reproducible random number of seconds
    python3 -c "import random; random.seed($1); print(round(random.uniform($2, $3), 3))"
}

started=0 killed=0 early=0 draining=0
: >"$TMP/durable"
t0=$(date +%s)
for r in $(seq 0 $((ROUNDS - 1))); do
    policy=${POLICIES[$((r % 3))]}
    config "$policy"
    "$WEIR" serve -c "$TMP/w.yaml" 2>>"$TMP/serve.log" &
    srv=$!
    cleanup_pid "$srv"
    if [ $((r % 6)) = 5 ]; then
        # Killed while it starts: in recovery, or before it listens.
        sleep "$(rand "$r" 0 0.3)"
        kill -9 "$srv"
        wait "$srv" 2>/dev/null
        started=$((started + 1)) killed=$((killed + 1)) early=$((early + 1))
        continue
    fi
    if ! wait_port "$port" 30; then
        echo "round $r: the server did not start"; tail -5 "$TMP/serve.log"
        break
    fi
    started=$((started + 1))
    "${TOOL[@]}" flood "$port" --conns 4 --cid-base $((r * 100000)) --start $START \
        --hours 3 --pad $((r * 7 % 50)) --batch 20 --duration 30 --seed "$r" \
        --sent-log "$TMP/sent" >>"$TMP/flood.log" 2>&1 &
    fpid=$!
    cleanup_pid "$fpid"
    sleep "$(rand "$r" 0.2 1.5)"
    [ "$policy" = always ] && echo "$r $(metric weir_durable_records_total --pipeline t)" >>"$TMP/durable"
    if [ $((r % 6)) = 2 ]; then
        # Killed in the middle of a clean shutdown (draining, sealing).
        kill -TERM "$srv"
        sleep "$(rand "$r" 0 0.2)"
        draining=$((draining + 1))
    fi
    kill -9 "$srv"
    wait "$srv" 2>/dev/null
    killed=$((killed + 1))
    wait "$fpid"
done
eq "$ROUNDS rounds: started and killed with SIGKILL ($early while starting, $draining while stopping)" \
    "$ROUNDS $ROUNDS" "$started $killed"

# The last start recovers; a clean stop seals.
config group
"$WEIR" serve -c "$TMP/w.yaml" 2>>"$TMP/serve.log" &
srv=$!
cleanup_pid "$srv"
ok "restart after the last crash" wait_port "$port" 30
kill -TERM "$srv"
wait "$srv"
eq "clean stop after the crashes: exit 0" 0 $?
echo "     $(($(date +%s) - t0)) s for $ROUNDS rounds; $(grep -c recovered "$TMP/serve.log") recoveries logged:"
grep recovered "$TMP/serve.log" | sed -E 's/.*recovered/recovered/' | sort | uniq -c | sed 's/^/     /' | head -8
tail -3 "$TMP/flood.log" | sed 's/^/     /'

"${TOOL[@]}" prefix "$D" t --sent "$TMP/sent" --sealed --rounds-out "$TMP/rounds" >"$TMP/prefix.out" 2>&1
rc=$?
sed 's/^/     /' "$TMP/prefix.out"
eq "no torn record, no duplicate, per connection a prefix with no hole" 0 "$rc"
ok "no server error logged" bash -c "! grep -E ' (error|fatal) ' '$TMP/serve.log'"
ok "no sanitizer report" bash -c "! grep -q 'Sanitizer' '$TMP/serve.log'"

# fsync always: what the server had counted as durable survived the kill.
lost=0 checked=0
while read -r r durable; do
    landed=$(awk -v r="$r" '$1 == r {print $2}' "$TMP/rounds")
    landed=${landed:-0}
    checked=$((checked + 1))
    if [ "$landed" -lt "$durable" ]; then
        lost=$((lost + 1))
        echo "     round $r (always): $durable durable before the kill, $landed landed"
    fi
done <"$TMP/durable"
echo "     always rounds: $(tr '\n' ' ' <"$TMP/durable" | sed -E 's/([0-9]+) ([0-9]+) /r\1:\2 /g')(durable before the kill)"
ok "fsync always: nothing lost that was counted durable ($checked rounds)" test "$lost" = 0 -a "$checked" -gt 0

finish
