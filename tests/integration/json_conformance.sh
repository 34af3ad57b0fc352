#!/usr/bin/env bash
# json_conformance.sh - JSONTestSuite (test_parsing) against the JSON scanner.
#
# Every y_ file must be accepted and every n_ file rejected (one test each);
# for i_ files the tool prints what weir does (docs/json.md keeps the table).
# The suite is looked for in $WEIR_CONFORMANCE (default: ../shared/
# conformance beside the checkout); without it the script says so and
# counts nothing.
set -u
root=${WEIR_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}
build=${WEIR_BUILD:-$root/build/asan}
conf=${WEIR_CONFORMANCE:-$root/../shared/conformance}
dir=$conf/JSONTestSuite/test_parsing
tool=$build/tools/jsontestsuite

if [ ! -d "$dir" ]; then
    echo "skipped: JSONTestSuite not found at $dir (set WEIR_CONFORMANCE)"
    echo "0 passed, 0 failed"
    exit 0
fi
if [ ! -x "$tool" ]; then
    echo "json_conformance: $tool not built (make MODE=asan test-build)"
    echo "0 passed, 1 failed"
    exit 1
fi
exec "$tool" "$dir"
