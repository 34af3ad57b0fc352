#!/usr/bin/env bash
# tests/integration/kafka_rebalance.sh - scale-out: two `weir serve`
# processes (nodes a and b, one shared data_dir) in one consumer group
# share a topic's 6 partitions while records keep coming.
#
#   1. a reads all 6 partitions;
#   2. b joins: a hands 3 over at a checkpoint (revoke), each reads 3;
#   3. a is killed with SIGKILL: after its session times out, b takes its
#      partitions over, starting where a's checkpoint (or commit) ends;
#   4. b catches up and stops; a restarts (its rollback drops what it had
#      landed without a checkpoint, which b read again), catches up, stops.
# Then every record is in the lake exactly once, and both nodes wrote
# segments of their own.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib_kafka.sh"

N=${WEIR_KAFKA_REBALANCE_RECORDS:-30000}
D=$TMP/data
start_mock t:6

config() { # NODE
    cat >"$TMP/$1.yaml" <<EOF
data_dir: $D
node: $1
workers: 2
metrics: 127.0.0.1:0
pipelines:
  - name: k
    source:
      kafka: {brokers: "$BOOT", topic: t, group: g, batch: {max_records: 2000, max_wait: 150ms}, $KOPTS}
    time_field: ts
    compaction: manual
EOF
}
config a
config b

gen_records 0 "$N" >"$TMP/all.ndjson"
produce t --spread 6 --rate $((N / 25)) "$TMP/all.ndjson" 2>"$TMP/produce.log" &
prod=$!
cleanup_pid "$prod"

"$WEIR" serve -c "$TMP/a.yaml" 2>"$TMP/a.log" &
a=$!
cleanup_pid "$a"
ok "a: assigned all 6 partitions" assigned_after "$TMP/a.log" 0 6 60
sleep 2

"$WEIR" serve -c "$TMP/b.yaml" 2>"$TMP/b.log" &
b=$!
cleanup_pid "$b"
ok "b joins: assigned 3 partitions" assigned_after "$TMP/b.log" 0 3 60
ok "a: 3 partitions again after the rebalance" assigned_after "$TMP/a.log" 6 3 30
ok "a: revoked at a checkpoint" grep -q "6 partitions revoked" "$TMP/a.log"
sleep 2

kill -9 "$a"
wait "$a" 2>/dev/null
ok "a killed: b takes all 6 partitions" assigned_after "$TMP/b.log" 3 6 60
wait "$prod"
eq "producer: $N records" "$N produced" "$(tail -1 "$TMP/produce.log")"
ok "b catches up" caught_up t g 120
kill -TERM "$b"
wait "$b"
eq "b: clean stop, exit 0" 0 $?
twice=$(lake_ids "$D" | uniq -d | wc -l)
echo "     before a restarts: $twice records twice (a's batch in flight at the kill, read again by b)"

"$WEIR" serve -c "$TMP/a.yaml" 2>>"$TMP/a.log" &
a=$!
cleanup_pid "$a"
ok "a restarts and takes the partitions" assigned_after "$TMP/a.log" 9 6 60
ok "a catches up" caught_up t g 60
kill -TERM "$a"
wait "$a"
eq "a: clean stop, exit 0" 0 $?

ids=$(lake_ids "$D")
eq "raw: $N records" "$N" "$(grep -c . <<<"$ids")"
eq "raw: none twice" "" "$(uniq -d <<<"$ids" | head -5 | tr '\n' ' ')"
eq "raw: every id 0..$((N - 1))" "$(seq 0 $((N - 1)) | md5sum)" "$(md5sum <<<"$ids")"
na=$(find "$D/k/raw" -name 'a-*' -exec cat {} + | wc -l)
nb=$(find "$D/k/raw" -name 'b-*' -exec cat {} + | wc -l)
echo "     node a landed $na records, node b $nb"
ok "both nodes landed records" test "$na" -gt 0 -a "$nb" -gt 0
ok "checkpoints of both nodes" test -s "$D/k/_offsets/a-0" -a -s "$D/k/_offsets/b-0"
ok "no error logged" bash -c "! grep -E ' error ' '$TMP/a.log' '$TMP/b.log'"
ok "no sanitizer report" bash -c "! grep -q Sanitizer '$TMP/a.log' '$TMP/b.log'"
stop_mock
finish
