#!/usr/bin/env bash
# schema_conformance.sh - JSON-Schema-Test-Suite (draft2020-12) against the
# schema compiler and validator.
#
# Runs the files directly in tests/draft2020-12/ (not optional/), with
# http://localhost:1234/ mapped to the suite's remotes/ directory. Each test
# case counts as one; cases of features weir refuses on purpose ("unsupported
# keyword: X") are listed as skipped, not failed (docs/schema.md).
#
# Four cases $ref the 2020-12 metaschema itself, which weir never fetches;
# if a copy is found (WEIR_METASCHEMA_DIR, or the Python package
# jsonschema_specifications), it is used, otherwise those cases are skipped.
# The suite is looked for in $WEIR_CONFORMANCE (default: ../shared/
# conformance beside the checkout).
set -u
root=${WEIR_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}
build=${WEIR_BUILD:-$root/build/asan}
conf=${WEIR_CONFORMANCE:-$root/../shared/conformance}
suite=$conf/JSON-Schema-Test-Suite
tool=$build/tools/schemasuite

if [ ! -d "$suite/tests/draft2020-12" ]; then
    echo "skipped: JSON-Schema-Test-Suite not found at $suite (set WEIR_CONFORMANCE)"
    echo "0 passed, 0 failed"
    exit 0
fi
if [ ! -x "$tool" ]; then
    echo "schema_conformance: $tool not built (make MODE=asan test-build)"
    echo "0 passed, 1 failed"
    exit 1
fi
meta=${WEIR_METASCHEMA_DIR:-}
if [ -z "$meta" ] && command -v python3 >/dev/null; then
    meta=$(python3 -c 'import jsonschema_specifications as j, os; print(os.path.join(os.path.dirname(j.__file__), "schemas", "draft202012"))' 2>/dev/null || true)
fi
args=(-r "$suite/remotes")
if [ -n "$meta" ] && [ -f "$meta/metaschema.json" ]; then
    args+=(-m "$meta")
    echo "metaschema: $meta"
else
    echo "metaschema: not found (its 4 cases are skipped)"
fi
exec "$tool" "${args[@]}" "$suite/tests/draft2020-12"
