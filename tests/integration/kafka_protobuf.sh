#!/usr/bin/env bash
# tests/integration/kafka_protobuf.sh - a Protobuf round trip: binary
# messages (encoded by protoc from tests/data/protobuf/plant.proto) on the
# mock cluster, `weir serve` with format: protobuf, then `weir query`:
#
#   - exactly the values encoded come back (counts, sums, strings, enums,
#     nested fields, lists, a Timestamp as the event time, int64 extremes,
#     UTF-8), before and after `weir compact`;
#   - a payload that does not decode, and one whose JSON the derived schema
#     refuses (an enum number without a name), are quarantined with their
#     exact bytes (raw_b64) and the error;
#   - `weir check` reads the descriptor set and refuses a missing type;
#   - `weir requeue` decodes quarantined payloads too (they stay invalid).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib_kafka.sh"

if ! command -v protoc >/dev/null; then
    echo "skipped: protoc not installed (Debian: protobuf-compiler)"
    finish
    exit
fi
PROTOS="$WEIR_ROOT/tests/data/protobuf"
D=$TMP/data
N=120
DESC=$TMP/plant.desc
protoc -I "$PROTOS" --descriptor_set_out="$DESC" --include_imports "$PROTOS/plant.proto"
ok "protoc made the descriptor set" test -s "$DESC"

encode() { # TEXT OUT
    printf '%s\n' "$1" | protoc -I "$PROTOS" --encode=plant.v1.Reading "$PROTOS/plant.proto" >"$2"
}
mkdir -p "$TMP/msg"
files=()
for i in $(seq 0 $((N - 1))); do
    st=$([ $((i % 2)) = 0 ] && echo STATUS_OK || echo STATUS_FAULT)
    encode "sensor: \"s-$((i % 5))\" ts { seconds: $NOW nanos: 250000000 } value: $i.5
status: $st location { site: \"north\" line: $((i % 3)) point { x: $i y: -1 } }
samples: [$i, 2] tags: \"t$i\" counters { key: \"k\" value: $i } seq: $((i + 1))" \
        "$TMP/msg/$i.bin"
    files+=("$TMP/msg/$i.bin")
done
encode "sensor: \"\\303\\274n\\303\\257\" ts { seconds: $NOW } value: -1.25 seq: -9223372036854775808
location { point { x: 0.5 } } scalars { f_sint64: -7 f_uint64: 9223372036854775807 f_bytes: \"\\001\\002\" }" \
    "$TMP/msg/special.bin"
printf '\x0a\x05ab' >"$TMP/msg/bad.bin"                  # length past the end
printf '\x0a\x01x\x20\x09' >"$TMP/msg/enum.bin"          # status 9: no such name
ok "encoded $N + 3 messages" test -s "$TMP/msg/special.bin"

start_mock pb:2
produce pb --spread 2 --each-file "${files[@]}" "$TMP/msg/special.bin" 2>"$TMP/produce.log"
produce pb --partition 1 --key bad --each-file "$TMP/msg/bad.bin" "$TMP/msg/enum.bin" \
    2>>"$TMP/produce.log"
eq "produced $((N + 3)) messages, one per file" "$((N + 1)) 2" \
    "$(grep -o '^[0-9]* produced' "$TMP/produce.log" | cut -d' ' -f1 | tr '\n' ' ' | sed 's/ $//')"

cat >"$TMP/w.yaml" <<EOF
data_dir: $D
metrics: 127.0.0.1:0
pipelines:
  - name: k
    source:
      kafka: {brokers: "$BOOT", topic: pb, group: g1, format: protobuf,
              descriptor_set: $DESC, message: plant.v1.Reading,
              batch: {max_records: 50, max_wait: 100ms}, $KOPTS}
    time_field: ts
    time_unit: rfc3339
    compaction: manual
EOF
ok "weir check reads the descriptor set" "$WEIR" check -q -c "$TMP/w.yaml"
sed 's/message: plant.v1.Reading/message: plant.v1.Nope/' "$TMP/w.yaml" >"$TMP/bad.yaml"
"$WEIR" check -q -c "$TMP/bad.yaml" 2>"$TMP/check.err"
eq "weir check: a missing type is refused (exit 2)" 2 $?
ok "weir check: the message lists the types there are" \
    grep -q 'no message type "plant.v1.Nope" in the descriptor set; it has: .*plant.v1.Reading' \
    "$TMP/check.err"
timeout 30 "$WEIR" serve -c "$TMP/bad.yaml" 2>"$TMP/serve-bad.err"
ok "weir serve refuses a missing type at start" test $? -ne 0
ok "weir serve: says which pipeline and why" \
    grep -q 'pipeline k: source.kafka: descriptor set .*: no message type "plant.v1.Nope"' \
    "$TMP/serve-bad.err"

"$WEIR" serve -c "$TMP/w.yaml" 2>"$TMP/serve.log" &
srv=$!
cleanup_pid "$srv"
ok "the group commits every offset of the topic" caught_up pb g1 90
ok "log: the source says what it decodes" \
    grep -q "k: kafka: payloads are Protobuf plant.v1.Reading messages" "$TMP/serve.log"
kill -TERM "$srv"
wait "$srv"
eq "SIGTERM: exit 0" 0 $?

q() { "$WEIR" query -c "$TMP/w.yaml" --format csv "$1" 2>>"$TMP/query.err" | tail -n +2; }
TOTALS="SELECT count(*), sum(seq + 9223372036854775808::HUGEINT), sum(value),
  count(DISTINCT sensor), sum(location.line), sum(location.point.x),
  sum(list_sum(samples)), count(*) FILTER (status = 'STATUS_FAULT'),
  count(*) FILTER (counters->>'k' IS NOT NULL), max(ts), count(DISTINCT tags[1]) FROM k"
want=$(python3 -c "
n = $N
print(','.join(map(str, [
    n + 1,
    sum(i + 1 + 2**63 for i in range(n)) + 0,
    sum(i + 0.5 for i in range(n)) - 1.25,
    6,
    sum(i % 3 for i in range(n)),
    sum(float(i) for i in range(n)) + 0.5,
    sum(i + 2 for i in range(n)),
    n // 2,
    n,
])) + ',$(date -u -d @$NOW +%Y-%m-%dT%H:%M:%S)Z,' + str(n))")
got=$(q "$TOTALS")
eq "query: count, sums, distinct, nested, lists, enums, maps" "$want" "$got"
eq "query: the message with extremes and UTF-8" \
    "ünï,-9223372036854775808,-1.25,0.5,-7,9223372036854775807,AQI=,STATUS_UNSPECIFIED" \
    "$(q "SELECT sensor, seq, value, location.point.x, scalars.f_sint64, scalars.f_uint64,
             scalars.f_bytes, status FROM k WHERE seq < 0")"
eq "query: the Timestamp keeps its fraction" "1" \
    "$(q "SELECT count(DISTINCT ts) FROM k WHERE ts LIKE '%.250Z'")"

Q=$(find "$D/k/quarantine" -name '*.ndjson*' -exec cat {} +)
eq "quarantine: 2 records, reason invalid" "2" "$(grep -c '"reason":"invalid"' <<<"$Q")"
ok "quarantine: the bad payload's exact bytes" grep -qF "\"raw_b64\":\"$(base64 -w0 "$TMP/msg/bad.bin")\"" <<<"$Q"
ok "quarantine: the decode error names the byte and the type" \
    grep -qF '"error":"at byte 1: message plant.v1.Reading: length past the end of the message"' <<<"$Q"
ok "quarantine: an enum number without a name: exact bytes, path /status" \
    grep -qF "\"path\":\"/status\",\"error\":" <<<"$(grep -F "$(base64 -w0 "$TMP/msg/enum.bin")" <<<"$Q")"
ok "quarantine: peer is topic/partition@offset" grep -qE '"peer":"pb/1@[0-9]+ ts=[0-9]+ key=bad"' <<<"$Q"

(cd "$TMP" && "$WEIR" compact -c "$TMP/w.yaml" --all 2>"$TMP/compact.err")
eq "compact: exit 0" 0 $?
ok "compact: Parquet files written" bash -c "find '$D/k/parquet' -name '*.parquet' | grep -q ."
eq "after compaction: no raw segment left" "" "$(find "$D/k/raw" -name '*.ndjson*' 2>/dev/null)"
eq "after compaction: the same answers" "$want" "$(q "$TOTALS")"
eq "after compaction: the same extremes" \
    "ünï,-9223372036854775808,-1.25,0.5,-7,9223372036854775807,AQI=,STATUS_UNSPECIFIED" \
    "$(q "SELECT sensor, seq, value, location.point.x, scalars.f_sint64, scalars.f_uint64,
             scalars.f_bytes, status FROM k WHERE seq < 0")"

"$WEIR" requeue -c "$TMP/w.yaml" k >"$TMP/requeue.out" 2>&1
eq "requeue: exit 1 (records stay in quarantine)" 1 $?
ok "requeue: both stay (decoded again, still invalid)" grep -qE '^invalid +0 +2' "$TMP/requeue.out"
ok "requeue: the verdicts are the same, nothing rewritten" grep -q ', 0 rewritten' "$TMP/requeue.out"

ok "no sanitizer report" bash -c "! grep -q Sanitizer '$TMP'/*.log '$TMP'/*.err"
stop_mock
finish
