#!/usr/bin/env bash
# bench/validate/run.sh - `weir validate` against its peers on one NDJSON file.
#
#   bench/validate/run.sh [--records N] [--py-records N] [--reps R]
#                         [--peers weir,ajv,pydantic,pydantic2] [--no-results]
#
# Builds what it needs (bench tools, build/release/weir, bench/node_modules),
# generates the workload once into bench/out/ (2,000,000 records, 5 % invalid
# in 15 kinds, 3 hours, seed 1: the research workload), then runs every peer
# R times (default 3, repetitions interleaved), one core each (taskset; set
# BENCH_CPU=none to let them float), and measures wall time, CPU seconds and
# peak RSS with /usr/bin/time. Each run's "N valid, M invalid" must equal the
# manifest, or the row says FAIL. The Python peers run on a 200,000-record
# file (same options), as the research did, because pure-Python pydantic 1
# needs a minute per 2 M; their records/s are comparable, their totals are
# not. The table (median run by wall time) goes to stdout and, unless
# --no-results, into bench/RESULTS.md under "## validate" (that section
# only). A benchmark never fails a build: this exits 0 whatever the rows say,
# 2 only on a usage error.
#
# Peers:
#   weir       build/release/weir validate -s SCHEMA FILE (WEIR_BIN= to override)
#   ajv        node + Ajv 8 (ajv/dist/2020), bench/validate/ajv.js
#   pydantic   Debian's python3-pydantic 1.10, the seed's parse_raw per line
#   pydantic2  the seed's exact code (pydantic 2, validate_json strict=True),
#              only where a python3 with pydantic 2 is found (else skipped)
# SCHEMA is examples/telemetry.schema.json when the tree has it, else
# bench/validate/telemetry.schema.json (the same pydantic 2 export); every
# JSON Schema peer uses the same file.
set -uo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"

cmdline="bench/validate/run.sh${*:+ $*}"
records=2000000 py_records=200000 reps=3 peers=weir,ajv,pydantic,pydantic2 write=1
while [ $# -gt 0 ]; do
    case "$1" in
    --records) records=$2; shift 2 ;;
    --py-records) py_records=$2; shift 2 ;;
    --reps) reps=$2; shift 2 ;;
    --peers) peers=$2; shift 2 ;;
    --no-results) write=0; shift ;;
    -h|--help) sed -n '2,/^set /p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "validate/run.sh: unknown option $1" >&2; exit 2 ;;
    esac
done
for v in "$records" "$py_records" "$reps"; do
    [[ "$v" =~ ^[1-9][0-9]*$ ]] || { echo "validate/run.sh: bad number '$v'" >&2; exit 2; }
done

out=bench/out/validate
mkdir -p "$out"
log() { echo "validate: $*" >&2; }

# --- build ------------------------------------------------------------------
make -s -C bench tools >/dev/null || { log "bench tools do not build"; exit 0; }
notes=()
want() { [[ ",$peers," == *",$1,"* ]]; }

weir_bin=${WEIR_BIN:-build/release/weir}
if want weir && [ -z "${WEIR_BIN:-}" ]; then
    log "building build/release/weir"
    make -s -j2 MODE=release all >"$out/weir-build.log" 2>&1 ||
        log "weir does not build (see $out/weir-build.log)"
fi
if want ajv; then
    if ! command -v node >/dev/null; then
        log "node not found: ajv skipped"
    elif [ ! -d bench/node_modules/ajv ] || [ bench/package-lock.json -nt bench/node_modules/.package-lock.json ]; then
        log "npm ci --prefix bench"
        npm ci --prefix bench --ignore-scripts --no-audit --no-fund >"$out/npm.log" 2>&1 ||
            log "npm ci failed (see $out/npm.log)"
    fi
fi
py1=/usr/bin/python3
py2=${PYDANTIC2_PYTHON:-}
if [ -z "$py2" ]; then
    for p in python3 python3.13 python3.12 python3.11; do
        c=$(command -v "$p") || continue
        if "$c" -c 'import sys, pydantic; sys.exit(0 if pydantic.VERSION >= "2" and sys.version_info >= (3, 11) else 1)' 2>/dev/null; then
            py2=$c; break
        fi
    done
fi

schema=bench/validate/telemetry.schema.json
[ -f examples/telemetry.schema.json ] && schema=examples/telemetry.schema.json
timer=/usr/bin/time
[ -x "$timer" ] || { log "/usr/bin/time not found (apt-get install time)"; exit 0; }
pin=()
cpu=${BENCH_CPU:-$(( $(nproc) > 1 ? 1 : 0 ))}
[ "$cpu" != none ] && command -v taskset >/dev/null && pin=(taskset -c "$cpu")

# --- workload ---------------------------------------------------------------
# Generated once per size; gen is deterministic, so a file newer than the
# gen binary is the file gen would write again.
workload() { # records -> prints the file name
    local n=$1 f="$out/telemetry-$1-s1.ndjson"
    if [ ! -s "$f" ] || [ ! -s "$f.manifest.json" ] || [ bench/out/gen -nt "$f.manifest.json" ]; then
        log "generating $n records into $f"
        bench/out/gen --records "$n" --invalid-frac 0.05 --hours 3 --seed 1 \
            --manifest "$f.manifest.json" >"$f" || { log "gen failed"; exit 0; }
    fi
    echo "$f"
}
big=$(workload "$records")
small=$(workload "$py_records")

# --- runs -------------------------------------------------------------------
# One line per run in runs.tsv:
#   peer rep records bytes wall user sys maxrss_kb exit valid invalid want_valid want_invalid note
runs=$out/runs.tsv
: >"$runs"
mval() { sed -n "s/^  \"$2\": \([0-9]*\),/\1/p" "$1.manifest.json"; }

peer_cmd() { # peer -> sets cmd=() and file, or returns 1 with a note
    local peer=$1
    cmd=() file=$big note=""
    case "$peer" in
    weir)
        [ -x "$weir_bin" ] || { note="$weir_bin not built"; return 1; }
        cmd=("$weir_bin" validate -s "$schema" "$big") ;;
    ajv)
        [ -d bench/node_modules/ajv ] || { note="bench/node_modules missing"; return 1; }
        cmd=(node bench/validate/ajv.js "$schema" "$big") ;;
    pydantic)
        "$py1" -c 'import pydantic, sys; sys.exit(pydantic.VERSION[0] != "1")' 2>/dev/null ||
            { note="Debian python3-pydantic 1.x missing (scripts/install-deps.sh bench)"; return 1; }
        file=$small
        cmd=("$py1" bench/validate/pydantic_seed.py "$small") ;;
    pydantic2)
        [ -n "$py2" ] || { note="no python3 >= 3.11 with pydantic 2 on PATH"; return 1; }
        file=$small
        cmd=("$py2" bench/validate/pydantic2_seed.py "$small") ;;
    *) note="unknown peer"; return 1 ;;
    esac
}

IFS=, read -r -a peer_list <<<"$peers"
# The machine may be shared (other builds, fuzzers): the load before the
# runs goes into the report, beside the figures it may have bent.
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
for rep in $(seq "$reps"); do
    for peer in "${peer_list[@]}"; do
        if ! peer_cmd "$peer"; then
            [ "$rep" = 1 ] && log "$peer: skipped: $note"
            [ "$rep" = 1 ] && printf '%s\t0\t0\t0\t0\t0\t0\t0\t-1\t-1\t-1\t0\t0\tskipped: %s\n' "$peer" "$note" >>"$runs"
            continue
        fi
        n=$(mval "$file" records) b=$(mval "$file" bytes)
        wv=$(mval "$file" valid) wi=$(mval "$file" invalid)
        "$timer" -f '%e %U %S %M' -o "$out/time.txt" "${pin[@]}" "${cmd[@]}" \
            >"$out/$peer.stdout" 2>"$out/$peer.stderr" </dev/null
        rc=$?
        # The figures are time's last line ("Command exited with non-zero
        # status N" may come first).
        wall=0 user=0 sys=0 rss=0
        [ -s "$out/time.txt" ] && read -r wall user sys rss < <(tail -n 1 "$out/time.txt")
        counts=$(grep -E '^[0-9]+ valid, [0-9]+ invalid' "$out/$peer.stderr" | tail -n 1)
        v=-1 i=-1
        if [ -n "$counts" ]; then
            v=$(sed -E 's/^([0-9]+) valid.*/\1/' <<<"$counts")
            i=$(sed -E 's/^[0-9]+ valid, ([0-9]+) invalid.*/\1/' <<<"$counts")
        fi
        printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' \
            "$peer" "$rep" "$n" "$b" "$wall" "$user" "$sys" "$rss" "$rc" "$v" "$i" "$wv" "$wi" "" >>"$runs"
        log "$peer rep $rep: ${wall}s wall, $((n)) records, exit $rc, ${counts:-no counts on stderr}"
    done
done

# --- report -----------------------------------------------------------------
versions=$(
    echo "machine: $(nproc) cores, $(uname -sr), $(sed -n 's/^PRETTY_NAME="\(.*\)"/\1/p' /etc/os-release 2>/dev/null)"
    echo "pinning: ${pin[*]:-none}; load average before the runs: $load_before, after: $(cut -d' ' -f1-3 /proc/loadavg)"
    echo "weir: $("$weir_bin" version 2>/dev/null | head -n 1 || echo '?') ($(git rev-parse --short HEAD 2>/dev/null), $(cc --version | head -n 1))"
    command -v node >/dev/null && echo "ajv: $(node -p 'require("./bench/node_modules/ajv/package.json").version' 2>/dev/null || echo '?') on node $(node --version)"
    echo "pydantic: $("$py1" -c 'import pydantic, sys; print(pydantic.VERSION, "(compiled=%s)" % pydantic.compiled, "on python", sys.version.split()[0])' 2>/dev/null || echo 'missing')"
    [ -n "$py2" ] && echo "pydantic2: $("$py2" -c 'import pydantic, pydantic_core, sys; print(pydantic.VERSION, "(pydantic-core %s)" % pydantic_core.__version__, "on python", sys.version.split()[0])' 2>/dev/null)"
    echo "schema: $schema"
)
args=(--runs "$runs" --command "$cmdline" --versions "$versions" --big "$big" --small "$small")
[ "$write" = 1 ] && args+=(--results bench/RESULTS.md)
python3 bench/validate/report.py "${args[@]}" || log "report failed"
exit 0
