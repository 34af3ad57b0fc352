#!/usr/bin/env bash
# check-style.sh - refuse the C library calls STYLE.md bans (curl's checksrc
# idea): unbounded string functions and non-reentrant time functions.
set -u
cd "$(dirname "$0")/.."
banned='\b(sprintf|vsprintf|strcpy|strcat|strtok|atoi|atol|atoll|gmtime|localtime|gets|asctime|ctime)[[:space:]]*\('
hits=$(grep -rnE "$banned" src tests fuzz bench/tools 2>/dev/null | grep -v '^\S*:[0-9]*:\s*\*' | grep -v 'check-style: allow')
if [ -n "$hits" ]; then
    echo "check-style: banned functions (use snprintf, bounded copies, strtoll, wtime.h):"
    echo "$hits"
    exit 1
fi
echo "check-style: ok"
