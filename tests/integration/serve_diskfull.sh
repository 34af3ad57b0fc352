#!/usr/bin/env bash
# tests/integration/serve_diskfull.sh - `weir serve` on a disk that fills.
#
# data_dir is a tmpfs of 8 MiB; two senders push about 30 MB (3% invalid,
# so quarantine fills too). When the disk is full the server must stop
# reading (weir_backpressure_seconds_total grows, weir_read_bytes_total
# stands still, the senders block), keep its memory bounded (VmRSS), not
# crash, and leave no segment with a partial line. Then the tmpfs grows to
# 64 MiB, and every record must arrive, exactly once
# (tests/tools/ingest.py check).
#
# Needs root for mount; without it the script says "skipped" and counts
# nothing.
. "$(dirname "$0")/lib.sh"

TOOL=(python3 "$WEIR_ROOT/tests/tools/ingest.py")
START=1756684800                       # 2025-09-01T00:00:00Z
export WEIR_FAKE_NOW=$((START + 2 * 3600 + 600))
# ASan keeps freed memory aside (256 MB by default) to catch use after
# free; a small quarantine lets VmRSS show what weir itself holds.
export ASAN_OPTIONS="${ASAN_OPTIONS:-}:quarantine_size_mb=8:thread_local_quarantine_size_kb=256"
DISK=$TMP/disk
mkdir -p "$DISK"
if ! mount -t tmpfs -o size=8m weirtest "$DISK" 2>"$TMP/mount.err"; then
    echo "skipped: cannot mount a tmpfs for the full-disk test: $(cat "$TMP/mount.err")"
    finish
    exit 0
fi
disk_cleanup() {
    for p in "${_pids[@]}"; do kill -9 "$p" 2>/dev/null; done
    sleep 0.2
    umount "$DISK" 2>/dev/null || umount -l "$DISK"
    _cleanup
}
trap disk_cleanup EXIT

"${TOOL[@]}" schema >"$TMP/schema.json"
G=$TMP/gen
"${TOOL[@]}" gen --out "$G" --conns 2 --records 110000 --start $START --hours 2 \
    --invalid 0.03 --pad 100 --crlf 0.1 --seed 5 >/dev/null
port=$(free_port) mport=$(free_port)
while [ "$mport" = "$port" ]; do mport=$(free_port); done
cat >"$TMP/w.yaml" <<EOF
data_dir: $DISK/data
workers: 2
grace: 2d
metrics: 127.0.0.1:$mport
limits:
  max_pending: 1MiB
pipelines:
  - name: t
    source: {tcp: 127.0.0.1:$port}
    schema: $TMP/schema.json
    time_field: ts
    time_max_age: off
    max_record: 4KiB
EOF
metric() {
    curl -s --max-time 5 "http://127.0.0.1:$mport/metrics" | "${TOOL[@]}" metric "$@" --pipeline t
}
rss() { awk '/^VmRSS:/ {print $2}' "/proc/$srv/status" 2>/dev/null || echo 0; }

"$WEIR" serve -c "$TMP/w.yaml" 2>"$TMP/serve.log" &
srv=$!
cleanup_pid "$srv"
ok "serve on an 8 MiB tmpfs" wait_port "$port" 30
rss0=$(rss)
for c in 0 1; do
    "${TOOL[@]}" send "$port" "$G/c00000$c.ndjson" --mode random --chunk 65536 --timeout 120 \
        >"$TMP/send$c.out" 2>&1 &
    spid[$c]=$!
    cleanup_pid "${spid[$c]}"
done

# The disk fills.
full=0
for _ in $(seq 1 300); do
    [ "$(metric weir_write_errors_total)" != 0 ] && full=1 && break
    sleep 0.1
done
eq "the disk filled (write errors counted)" 1 "$full"
sleep 0.5
bp1=$(metric weir_backpressure_seconds_total) rd1=$(metric weir_read_bytes_total)
rssmax=$(rss)
for _ in $(seq 1 15); do
    sleep 0.1
    r=$(rss)
    [ "$r" -gt "$rssmax" ] && rssmax=$r
done
bp2=$(metric weir_backpressure_seconds_total) rd2=$(metric weir_read_bytes_total)
echo "     backpressure ${bp1} -> ${bp2} s, read ${rd1} -> ${rd2} bytes, VmRSS ${rss0} -> at most ${rssmax} kB"
ok "backpressure: weir_backpressure_seconds_total grows" python3 -c "import sys; sys.exit(not $bp2 - $bp1 >= 1.0)"
eq "backpressure: nothing read while the disk is full" "$rd1" "$rd2"
ok "backpressure: the senders are blocked, not done" kill -0 "${spid[0]}" "${spid[1]}"
ok "no crash: the server runs" kill -0 "$srv"
ok "memory bounded: VmRSS grew < 24 MiB while full (${rss0} -> ${rssmax} kB)" \
    test $((rssmax - rss0)) -lt 24576
ok "no segment holds a partial line while full" "${TOOL[@]}" whole "$DISK/data" t
eq "/health still answers" "ok" "$(curl -s --max-time 5 "http://127.0.0.1:$mport/health")"
ok "the full disk is logged" grep -qi "no space" "$TMP/serve.log"

# Space comes back.
ok "remount with 64 MiB" mount -o remount,size=64m "$DISK"
for c in 0 1; do
    wait "${spid[$c]}"
    eq "sender $c: everything sent, closed by the server" 0 $?
done
eq "no record found the write queue full" 0 "$(metric weir_overflow_records_total)"
kill -TERM "$srv"
wait "$srv"
eq "SIGTERM: exit 0" 0 $?
ok "logged that writing works again" grep -q "writing works again" "$TMP/serve.log"
"${TOOL[@]}" check "$DISK/data" t --sealed --expect "$G/expect" >"$TMP/check.out" 2>&1
rc=$?
sed 's/^/     /' "$TMP/check.out"
eq "every record arrived exactly once, segments sealed" 0 "$rc"

finish
