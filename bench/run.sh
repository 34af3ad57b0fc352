#!/usr/bin/env bash
# bench/run.sh - run every benchmark in bench/ (`make bench` calls this).
#
#   bench/run.sh [NAME...]      all of them, or only those named (validate,
#                               load, ingest, compact, query, kafka)
#
# Each benchmark is bench/NAME/run.sh: it builds what it needs, prints its
# table and replaces its own section of bench/RESULTS.md. Benchmarks never
# fail a build: a peer that gets a wrong answer is a FAIL row in the table,
# and this script exits 0 unless a name is unknown.
set -uo pipefail
cd "$(dirname "$0")/.."
known=(validate load ingest compact query kafka)
all=("${known[@]}")
[ $# -gt 0 ] && all=("$@")
for name in "${all[@]}"; do
    if [ ! -x "bench/$name/run.sh" ]; then
        echo "bench: no benchmark '$name' (have: ${known[*]})" >&2
        exit 2
    fi
done
for name in "${all[@]}"; do
    echo "== bench/$name"
    "bench/$name/run.sh" || echo "bench: $name exited $? (ignored)" >&2
done
exit 0
