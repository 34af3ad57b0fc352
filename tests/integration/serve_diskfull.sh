#!/usr/bin/env bash
# tests/integration/serve_diskfull.sh - `weir serve` on a disk that fills.
#
# 1. data_dir is a tmpfs of 8 MiB; two senders push about 30 MB (3%
#    invalid, so quarantine fills too). When the disk is full the server
#    must stop reading (weir_backpressure_seconds_total grows,
#    weir_read_bytes_total stands still, the senders block), keep its
#    memory bounded (VmRSS), not crash, and leave no segment with a
#    partial line. Then the tmpfs grows to 64 MiB and every record must
#    arrive, exactly once (tests/tools/ingest.py check).
# 2. SIGTERM while the disk is full, space back during the drain: the
#    paused sender is read to its end, exit 0, everything landed.
# 3. SIGTERM while the disk is full and it stays full: the server retries
#    for drain_timeout + 10 s, then exits 3 saying how many bytes it could
#    not write; no segment holds a partial line.
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
mounts=()
# disk DIR SIZE: a tmpfs of SIZE at DIR.
disk() {
    mkdir -p "$1"
    mount -t tmpfs -o "size=$2" weirtest "$1" 2>"$TMP/mount.err" || return 1
    mounts+=("$1")
}
disk_cleanup() {
    for p in "${_pids[@]}"; do kill -9 "$p" 2>/dev/null; done
    sleep 0.2
    for m in "${mounts[@]}"; do umount "$m" 2>/dev/null || umount -l "$m"; done
    _cleanup
}
trap disk_cleanup EXIT
if ! disk "$TMP/disk" 8m; then
    echo "skipped: cannot mount a tmpfs for the full-disk test: $(cat "$TMP/mount.err")"
    finish
    exit 0
fi

"${TOOL[@]}" schema >"$TMP/schema.json"

# config DATA_DIR DRAIN: $TMP/w.yaml on fresh ports; sets $port, $mport.
config() {
    port=$(free_port) mport=$(free_port)
    while [ "$mport" = "$port" ]; do mport=$(free_port); done
    cat >"$TMP/w.yaml" <<EOF
data_dir: $1
workers: 2
grace: 2d
drain_timeout: $2
metrics: 127.0.0.1:$mport
limits:
  max_pending: 1MiB
pipelines:
  - name: t
    source: {tcp: 127.0.0.1:$port}
    schema: $TMP/schema.json
    compaction: manual            # these tests look at raw segments
    time_field: ts
    time_max_age: off
    max_record: 4KiB
EOF
}
serve() {
    "$WEIR" serve -c "$TMP/w.yaml" 2>"$TMP/$1.log" &
    srv=$!
    cleanup_pid "$srv"
    wait_port "$port" 30
}
metric() {
    curl -s --max-time 5 "http://127.0.0.1:$mport/metrics" | "${TOOL[@]}" metric "$@" --pipeline t
}
rss() { awk '/^VmRSS:/ {print $2}' "/proc/$srv/status" 2>/dev/null || echo 0; }
# send_bg DIR: each DIR/c*.ndjson over its own connection, in the
# background; pids in ${spid[@]}.
send_bg() {
    spid=()
    for f in "$1"/c*.ndjson; do
        "${TOOL[@]}" send "$port" "$f" --mode random --chunk 65536 --timeout 120 \
            >>"$TMP/send.out" 2>&1 &
        spid+=($!)
        cleanup_pid $!
    done
}
# wait_full: until the server counts a write error (30 s at most).
wait_full() {
    local _
    for _ in $(seq 1 300); do
        [ "$(metric weir_write_errors_total)" != 0 ] && return 0
        sleep 0.1
    done
    return 1
}

# --- 1. full, backpressure, space back, everything lands ------------------
G=$TMP/gen
"${TOOL[@]}" gen --out "$G" --conns 2 --records 110000 --start $START --hours 2 \
    --invalid 0.03 --pad 100 --crlf 0.1 --seed 5 >/dev/null
config "$TMP/disk/data" 5s
ok "serve on an 8 MiB tmpfs" serve one
rss0=$(rss)
send_bg "$G"
ok "the disk filled (write errors counted)" wait_full
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
ok "backpressure: the senders are blocked, not done" kill -0 "${spid[@]}"
ok "no crash: the server runs" kill -0 "$srv"
ok "memory bounded: VmRSS grew < 24 MiB while full (${rss0} -> ${rssmax} kB)" \
    test $((rssmax - rss0)) -lt 24576
ok "no segment holds a partial line while full" "${TOOL[@]}" whole "$TMP/disk/data" t
eq "/health still answers" "ok" "$(curl -s --max-time 5 "http://127.0.0.1:$mport/health")"
ok "the full disk is logged" grep -qi "no space" "$TMP/one.log"

ok "remount with 64 MiB" mount -o remount,size=64m "$TMP/disk"
for p in "${spid[@]}"; do
    wait "$p"
    eq "sender $p: everything sent, closed by the server" 0 $?
done
eq "no record found the write queue full" 0 "$(metric weir_overflow_records_total)"
kill -TERM "$srv"
wait "$srv"
eq "SIGTERM: exit 0" 0 $?
ok "logged that writing works again" grep -q "writing works again" "$TMP/one.log"
"${TOOL[@]}" check "$TMP/disk/data" t --sealed --expect "$G/expect" >"$TMP/check.out" 2>&1
rc=$?
sed 's/^/     /' "$TMP/check.out"
eq "every record arrived exactly once, segments sealed" 0 "$rc"

# --- 2. SIGTERM while full, space back during the drain -------------------
H=$TMP/gen2
"${TOOL[@]}" gen --out "$H" --conns 1 --records 60000 --start $START --hours 2 \
    --invalid 0.03 --pad 100 --seed 6 >/dev/null
disk "$TMP/disk2" 4m
config "$TMP/disk2/data" 20s
ok "drain: serve on a 4 MiB tmpfs" serve two
send_bg "$H"
ok "drain: the disk filled" wait_full
kill -TERM "$srv"
sleep 0.5
ok "drain: remount with 64 MiB" mount -o remount,size=64m "$TMP/disk2"
wait "${spid[0]}"
eq "drain: the paused sender was read to its end" 0 $?
wait "$srv"
eq "drain: exit 0" 0 $?
"${TOOL[@]}" check "$TMP/disk2/data" t --sealed --expect "$H/expect" >"$TMP/check2.out" 2>&1
rc=$?
sed 's/^/     /' "$TMP/check2.out"
eq "drain: every record arrived exactly once, segments sealed" 0 "$rc"

# --- 3. SIGTERM while full, and it stays full ---------------------------
disk "$TMP/disk3" 4m
config "$TMP/disk3/data" 0s
ok "stays full: serve on a 4 MiB tmpfs" serve three
send_bg "$H"
ok "stays full: the disk filled" wait_full
t0=$(date +%s)
kill -TERM "$srv"
wait "$srv"
rc=$?
eq "stays full: exit 3 (runtime failure)" 3 "$rc"
echo "     gave up after $(($(date +%s) - t0)) s"
ok "stays full: logs how much it could not write" grep -Eq "gave up writing at shutdown: [0-9]+ bytes" "$TMP/three.log"
eq "stays full: the retries are logged once per worker, not every 200 ms" 1 \
    "$(grep -c "cannot finish writing yet" "$TMP/three.log" | awk '{print ($1 <= 2)}')"
ok "stays full: no segment holds a partial line" "${TOOL[@]}" whole "$TMP/disk3/data" t
ok "stays full: no sanitizer report" bash -c "! grep -q Sanitizer '$TMP/three.log'"

finish
