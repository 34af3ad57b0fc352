#!/usr/bin/env bash
# The benchmark tools' self-test (bench/tools/test.sh): the workload
# generator's verdicts against an independent oracle, and loadgen delivering
# exactly those records over loopback. A few seconds; builds bench/out/.
exec "$WEIR_ROOT/bench/tools/test.sh"
