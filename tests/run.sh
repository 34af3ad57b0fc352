#!/usr/bin/env bash
# tests/run.sh BUILD_DIR - run every test weir has and print one total.
#
# Unit tests: each BUILD_DIR/tests/test_* binary (cmocka); its test count
# comes from cmocka's own summary lines.
# Integration and conformance: each tests/integration/*.sh script, run with
# WEIR=BUILD_DIR/weir; a script prints "N passed, N failed" as its last line
# (counted as such), or is counted as one test by its exit status.
#
# The last line is "TOTAL: N passed, N failed".
# TESTS=pattern runs only the tests whose file name contains pattern.
set -u
build=${1:-build/asan}
cd "$(dirname "$0")/.."
export WEIR="$PWD/$build/weir" WEIR_BUILD="$PWD/$build" WEIR_ROOT="$PWD"
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
pass=0 fail=0 failed_names=()
logdir=$(mktemp -d /tmp/weir-tests.XXXXXX)

count() { # name status log
    local name=$1 status=$2 log=$3 p f line
    line=$(grep -E '^([A-Za-z]+: )?[0-9]+ passed, [0-9]+ failed' "$log" | tail -n 1)
    if grep -q '^\[==========\]' "$log"; then
        p=$(grep -E '^\[  PASSED  \] [0-9]+ test' "$log" | awk '{s+=$4} END {print s+0}')
        f=$(grep -E '^\[  FAILED  \] [0-9]+ test' "$log" | awk '{s+=$4} END {print s+0}')
    elif [ -n "$line" ]; then
        p=$(sed -E 's/^([A-Za-z]+: )?([0-9]+) passed, ([0-9]+) failed.*/\2/' <<<"$line")
        f=$(sed -E 's/^([A-Za-z]+: )?([0-9]+) passed, ([0-9]+) failed.*/\3/' <<<"$line")
    elif [ "$status" = 0 ]; then
        p=1 f=0
    else
        p=0 f=1
    fi
    # A crash after the summary (sanitizer at exit) still fails the file.
    if [ "$status" != 0 ] && [ "$f" = 0 ]; then f=1; fi
    pass=$((pass + p)) fail=$((fail + f))
    if [ "$f" != 0 ]; then
        failed_names+=("$name")
        echo "FAIL $name (exit $status), last lines of its log:"
        tail -n 40 "$log" | sed 's/^/    /'
    else
        echo "ok   $name ($p passed)"
    fi
}

for t in "$build"/tests/test_*; do
    [ -x "$t" ] || continue
    name=$(basename "$t")
    [[ -n "${TESTS:-}" && "$name" != *"$TESTS"* ]] && continue
    log="$logdir/$name.log"
    ( cd tests && "../$t" ) >"$log" 2>&1
    count "$name" $? "$log"
done

for s in tests/integration/*.sh; do
    [ -f "$s" ] || continue
    [[ "$(basename "$s")" == lib* ]] && continue
    name=$(basename "$s" .sh)
    [[ -n "${TESTS:-}" && "$name" != *"$TESTS"* ]] && continue
    log="$logdir/$name.log"
    timeout 1200 bash "$s" >"$log" 2>&1
    count "$name" $? "$log"
done

if [ ${#failed_names[@]} -gt 0 ]; then
    echo "failed: ${failed_names[*]} (logs in $logdir)"
else
    rm -rf "$logdir"
fi
echo "TOTAL: $pass passed, $fail failed"
[ "$fail" = 0 ]
