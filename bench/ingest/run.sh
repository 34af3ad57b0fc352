#!/usr/bin/env bash
# bench/ingest/run.sh - `weir serve` against syslog-ng and the seed's Python
# server, on the same TCP stream, outputs checked.
#
#   bench/ingest/run.sh [--records N] [--py-records N] [--reps R]
#                       [--conns LIST] [--peers LIST] [--mem-conns C]
#                       [--always-records N] [--t0 T] [--weir-workers N]
#                       [--keep-output] [--no-results]
#
# Builds what it needs (bench tools, build/release/weir; WEIR_BIN= to use
# another binary), then bench/ingest/harness.py runs every peer R times
# (default 3, repetitions interleaved) with each count of connections
# (default 1,50) on loadgen's stream: N records (default 2,000,000), 5 %
# invalid, 3 hours, seed 1; the Python peers on --py-records (default
# 200,000, as the research did). Each run: start the peer with a generated
# config, send, wait until it is idle, SIGTERM, measure durable time, CPU s
# and peak RSS, check its output against the manifest (per hour count,
# bytes and checksum; weir's quarantine = the invalid records). Also weir
# with --mem-conns connections (default 1000; 0 skips) for the memory
# target, and weir with fsync: always on --always-records (default 20,000,
# once per count of connections: it fsyncs every record; 0 skips).
# --t0 moves the stream's first hour (default 2025-09-02 09:00 UTC, whose
# hours weir counts as late); --weir-workers sets weir's `workers` (default
# auto: one per core), e.g. to see peak RSS grow with the worker count.
#
# Peers (--peers, default all): weir, weir-always, weir-1000,
# weir-1000-w8 (8 workers, as `auto` gives on 8 cores), syslog-ng,
# python-seed, python-seed-uvloop, sink; weir-never and weir-1000-wN on
# request. Missing ones (scripts/install-deps.sh
# bench installs syslog-ng-core, python3-pydantic, python3-uvloop) are
# skipped with a note. The data goes to a fresh folder under $BENCH_TMP
# (default /tmp; its file system is recorded, since fsync on tmpfs is free)
# and is deleted after each check unless --keep-output; configs, logs and
# loadgen reports stay in bench/out/ingest/runs/.
#
# The table (median run by durable time) goes to stdout and, unless
# --no-results, into bench/RESULTS.md under "## ingest" (that section
# only). A benchmark never fails a build: this exits 0 whatever the rows
# say, 2 only on a usage error. About 6 minutes on 2 cores.
set -uo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"

cmdline="bench/ingest/run.sh${*:+ $*}"
records=2000000 py_records=200000 reps=3 conns=1,50 mem_conns=1000
always_records=20000 write=1 keep=() t0=0 workers=auto
peers=weir,weir-always,syslog-ng,python-seed,python-seed-uvloop,sink,weir-1000,weir-1000-w8
while [ $# -gt 0 ]; do
    case "$1" in
    --records) records=$2; shift 2 ;;
    --py-records) py_records=$2; shift 2 ;;
    --reps) reps=$2; shift 2 ;;
    --conns) conns=$2; shift 2 ;;
    --peers) peers=$2; shift 2 ;;
    --mem-conns) mem_conns=$2; shift 2 ;;
    --always-records) always_records=$2; shift 2 ;;
    --t0) t0=$2; shift 2 ;;
    --weir-workers) workers=$2; shift 2 ;;
    --keep-output) keep=(--keep-output); shift ;;
    --no-results) write=0; shift ;;
    -h|--help) sed -n '2,/^set /p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "ingest/run.sh: unknown option $1" >&2; exit 2 ;;
    esac
done
for v in "$records" "$py_records" "$reps"; do
    [[ "$v" =~ ^[1-9][0-9]*$ ]] || { echo "ingest/run.sh: bad number '$v'" >&2; exit 2; }
done
for v in "$mem_conns" "$always_records" "$t0"; do
    [[ "$v" =~ ^[0-9]+$ ]] || { echo "ingest/run.sh: bad number '$v'" >&2; exit 2; }
done
[[ "$workers" =~ ^(auto|[1-9][0-9]*)$ ]] ||
    { echo "ingest/run.sh: bad --weir-workers '$workers'" >&2; exit 2; }
[[ "$conns" =~ ^[1-9][0-9]*(,[1-9][0-9]*)*$ ]] ||
    { echo "ingest/run.sh: bad --conns '$conns'" >&2; exit 2; }

out=bench/out/ingest
mkdir -p "$out"
log() { echo "ingest: $*" >&2; }

# --- build ------------------------------------------------------------------
make -s -C bench tools >/dev/null || { log "bench tools do not build"; exit 0; }
weir_bin=${WEIR_BIN:-build/release/weir}
if [ -z "${WEIR_BIN:-}" ]; then
    log "building build/release/weir"
    make -s -j2 MODE=release all >"$out/weir-build.log" 2>&1 ||
        log "weir does not build (see $out/weir-build.log)"
fi
schema=bench/validate/telemetry.schema.json
[ -f examples/telemetry.schema.json ] && schema=examples/telemetry.schema.json

# 1,000 connections need that many descriptors in loadgen and in weir.
want_fds=$((mem_conns + 1024))
if [ "$(ulimit -n)" != unlimited ] && [ "$(ulimit -n)" -lt "$want_fds" ]; then
    ulimit -n "$want_fds" 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null ||
        log "ulimit -n is $(ulimit -n): the $mem_conns-connection run may fail"
fi

tmp=$(mktemp -d "${BENCH_TMP:-/tmp}/weir-ingest.XXXXXX") || { log "no temp dir"; exit 0; }
trap 'rm -rf "$tmp"' EXIT
fs=$(findmnt -n -o FSTYPE --target "$tmp" 2>/dev/null || stat -f -c %T "$tmp" 2>/dev/null || echo "?")

# --- runs -------------------------------------------------------------------
runs=$out/runs.jsonl
: >"$runs"
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
start=$(date +%s)
python3 bench/ingest/harness.py --runs "$runs" --workdir "$out" --tmp "$tmp" \
    --schema "$schema" --weir "$weir_bin" --tools bench/out \
    --peers "$peers" --conns "$conns" --records "$records" \
    --py-records "$py_records" --reps "$reps" --mem-conns "$mem_conns" \
    --always-records "$always_records" --t0 "$t0" --weir-workers "$workers" \
    "${keep[@]}" ||
    log "harness failed (exit $?)"
[ ${#keep[@]} -gt 0 ] && { trap - EXIT; log "outputs kept in $tmp"; }

# --- report -----------------------------------------------------------------
pyver() { /usr/bin/python3 -c "$1" 2>/dev/null || echo missing; }
versions=$(
    echo "machine: $(nproc) cores, $(uname -sr), $(sed -n 's/^PRETTY_NAME="\(.*\)"/\1/p' /etc/os-release 2>/dev/null); data on $fs ($tmp)"
    echo "load average before the runs: $load_before, after: $(cut -d' ' -f1-3 /proc/loadavg); $(( $(date +%s) - start )) s of runs"
    echo "weir: $("$weir_bin" version 2>/dev/null | head -n 1 || echo '?') ($(git rev-parse --short HEAD 2>/dev/null), $(cc --version | head -n 1)), schema $schema, workers $workers"
    sng=$(command -v syslog-ng || echo /usr/sbin/syslog-ng)
    echo "syslog-ng: $("$sng" --version 2>/dev/null | head -n 1 || echo missing) ($(dpkg-query -W -f='${Package} ${Version}' syslog-ng-core 2>/dev/null))"
    echo "python-seed: $(pyver 'import sys, pydantic; print("python", sys.version.split()[0], "pydantic", pydantic.VERSION, "(compiled=%s)" % pydantic.compiled)'), uvloop $(pyver 'import uvloop; print(uvloop.__version__)')"
    echo "loadgen, sink, linesum: bench/tools (cc -O2); raw runs: $runs"
)
args=(--runs "$runs" --command "$cmdline" --versions "$versions" --workers "$workers")
[ "$write" = 1 ] && args+=(--results bench/RESULTS.md)
python3 bench/ingest/report.py "${args[@]}" || log "report failed"
exit 0
