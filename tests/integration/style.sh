#!/usr/bin/env bash
# style.sh - the banned-function check of STYLE.md (make check-style).
. "$(dirname "$0")/lib.sh"
ok "no banned C library calls in src/, tests/, fuzz/, bench/tools/" "$WEIR_ROOT/scripts/check-style.sh"
finish
