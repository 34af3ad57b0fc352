#!/usr/bin/env bash
# fuzz_smoke.sh - build every libFuzzer target (so they never rot) and run
# each briefly over its seed corpus. The long runs are done by hand (see
# docs/*.md for their figures); this only proves the targets build and run.
. "$(dirname "$0")/lib.sh"
cd "$WEIR_ROOT"
if ! command -v clang >/dev/null; then
    echo "skipped: clang not installed"; finish; exit
fi
ok "make fuzz builds every target" make -s -j2 fuzz
for t in build/fuzz/fuzz_*; do
    name=$(basename "$t" | sed 's/^fuzz_//')
    corpus=""
    for d in fuzz/corpus/$name; do [ -d "$d" ] && corpus="$corpus $d"; done
    mkdir -p "$TMP/$name"
    if "$t" -max_total_time=10 -rss_limit_mb=2048 -artifact_prefix="$TMP/$name/" \
            "$TMP/$name" $corpus >"$TMP/$name.log" 2>&1; then
        eq "fuzz_$name runs 10 s without a finding" 0 0
    else
        eq "fuzz_$name runs 10 s without a finding" 0 1
        # Keep what it found: the input and the report, for a unit test.
        grep -v '^#\|Uses:' "$TMP/$name.log" | tail -n 40
        for a in "$TMP/$name"/crash-* "$TMP/$name"/leak-* "$TMP/$name"/timeout-*; do
            [ -f "$a" ] && { echo "input (base64): $(base64 -w0 "$a")"; }
        done
    fi
done
finish
