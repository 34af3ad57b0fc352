#!/usr/bin/env bash
# tests/integration/kafka_crash.sh - kill -9 `weir serve` while it reads a
# topic being written, restart it, several rounds; at the end every record
# is in the lake exactly once.
#
# A producer writes numbered records to 4 partitions at a steady rate
# while weir is killed with SIGKILL at a random instant of each round.
# Batches last 700 ms while group commit writes every 100 ms, so a kill
# usually finds records in the segments that no checkpoint acknowledges.
# The fsync policy turns through group, always and never (a process crash
# keeps the page cache, so all three must hold). In every third round weir
# commits nothing to Kafka (WEIR_TEST_KAFKA_NO_COMMIT), so the next round
# has only the checkpoint beside the lake to know what it already holds.
# Then (after a last clean run that catches up):
#   - the ids in raw/ are 0..N-1, each once;
#   - nothing went to quarantine (no torn record: rollback cut whole
#     records, and Kafka delivered them again);
#   - the rollback and the skip of redelivered records did happen.
# WEIR_KAFKA_CRASH_ROUNDS sets the number of rounds (default 6).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib_kafka.sh"

ROUNDS=${WEIR_KAFKA_CRASH_ROUNDS:-6}
N=${WEIR_KAFKA_CRASH_RECORDS:-40000}
D=$TMP/data
POLICIES=(group always never)
start_mock t:4

config() { # FSYNC
    cat >"$TMP/w.yaml" <<EOF
data_dir: $D
workers: 2
metrics: 127.0.0.1:0
pipelines:
  - name: k
    source:
      kafka: {brokers: "$BOOT", topic: t, group: g, batch: {max_records: 20000, max_wait: 700ms}, $KOPTS}
    time_field: ts
    compaction: manual
    fsync: $1
EOF
}

gen_records 0 "$N" >"$TMP/all.ndjson"
# Records keep coming for the whole test (about 6 s a round).
rate=$((N / (ROUNDS * 6 + 4)))
produce t --spread 4 --rate "$rate" "$TMP/all.ndjson" 2>"$TMP/produce.log" &
prod=$!
cleanup_pid "$prod"

t0=$(date +%s)
killed=0
for r in $(seq 0 $((ROUNDS - 1))); do
    config "${POLICIES[$((r % 3))]}"
    before=$(grep -c " starts at " "$TMP/serve.log" 2>/dev/null)
    if [ $((r % 3)) = 1 ]; then
        WEIR_TEST_KAFKA_NO_COMMIT=1 "$WEIR" serve -c "$TMP/w.yaml" 2>>"$TMP/serve.log" &
    else
        "$WEIR" serve -c "$TMP/w.yaml" 2>>"$TMP/serve.log" &
    fi
    srv=$!
    cleanup_pid "$srv"
    # Kill at a random instant once it reads: the group first takes the
    # killed member's session (3 s) to hand its partitions over.
    assigned_after "$TMP/serve.log" "$before" 4 60 ||
        echo "     round $r: not assigned within 60 s"
    # Rounds without commits read at least a second, so that they
    # checkpoint batches Kafka does not know about.
    min=0.3
    [ $((r % 3)) = 1 ] && min=1.6
    sleep "$(awk -v r="$r" -v m="$min" 'BEGIN {srand(r + 7); printf "%.2f", m + rand() * 1.5}')"
    kill -9 "$srv"
    wait "$srv" 2>/dev/null
    killed=$((killed + 1))
    echo "     round $r (${POLICIES[$((r % 3))]}$([ $((r % 3)) = 1 ] && echo ', no commits')): $(lake_ids "$D" | wc -l) raw lines after the kill"
done
eq "$ROUNDS rounds killed with SIGKILL" "$ROUNDS" "$killed"
wait "$prod"
eq "producer: $N records" "$N produced" "$(tail -1 "$TMP/produce.log")"

config group
"$WEIR" serve -c "$TMP/w.yaml" 2>>"$TMP/serve.log" &
srv=$!
cleanup_pid "$srv"
ok "the last run catches up" caught_up t g 120
kill -TERM "$srv"
wait "$srv"
eq "clean stop: exit 0" 0 $?
echo "     $(($(date +%s) - t0)) s"

ids=$(lake_ids "$D")
eq "raw: $N records" "$N" "$(grep -c . <<<"$ids")"
eq "raw: none twice" "" "$(uniq -d <<<"$ids" | head -5 | tr '\n' ' ')"
eq "raw: every id 0..$((N - 1))" "$(seq 0 $((N - 1)) | md5sum)" "$(md5sum <<<"$ids")"
eq "quarantine: empty (no torn record)" 0 \
    "$(find "$D/k/quarantine" -name '*.ndjson*' -exec cat {} + 2>/dev/null | wc -l)"
rolled=$(grep -c "rolled back to the last checkpoint" "$TMP/serve.log")
skipped=$(grep -c "already in the lake are not read again" "$TMP/serve.log")
echo "     rollbacks at start-up: $rolled; partitions started past the committed offset: $skipped"
grep "rolled back" "$TMP/serve.log" | sed -E 's/.*rolled back/     rolled back/' | head -4
ok "a kill left records without a checkpoint, cut at the restart" test "$rolled" -gt 0
ok "a restart skipped what the checkpoint had and Kafka had not" test "$skipped" -gt 0
ok "no error logged" bash -c "! grep -E ' error ' '$TMP/serve.log'"
ok "no sanitizer report" bash -c "! grep -q Sanitizer '$TMP/serve.log'"
stop_mock
finish
