#!/usr/bin/env bash
# check.sh - `weir check` end to end: exit codes, messages with file and
# line, the effective config on stdout with secrets masked, and that the
# printed config reads back to itself.
set -u
: "${WEIR:?set WEIR to the weir binary}" "${WEIR_ROOT:?}"
pass=0 fail=0
tmp=$(mktemp -d /tmp/weir-check.XXXXXX)
trap 'rm -rf "$tmp"' EXIT

ok() { pass=$((pass + 1)); echo "ok   $1"; }
bad() { fail=$((fail + 1)); echo "FAIL $1"; [ -n "${2:-}" ] && sed 's/^/    /' <<<"$2"; }
expect() { # name want-exit cmd...
    local name=$1 want=$2; shift 2
    "$@" >"$tmp/out" 2>"$tmp/err"
    local got=$?
    if [ "$got" = "$want" ]; then ok "$name"; else bad "$name (exit $got, want $want)" "$(cat "$tmp/err")"; fi
}
contains() { # name file text
    if grep -qF -- "$3" "$2"; then ok "$1"; else bad "$1: no '$3' in" "$(cat "$2")"; fi
}

# The embedded default.
expect "default config" 0 "$WEIR" check
contains "default pipeline" "$tmp/out" "  - name: default"
contains "default listener" "$tmp/out" 'tcp: "127.0.0.1:7601"'
contains "default data_dir" "$tmp/out" "data_dir: \"$PWD/weir-data\""
contains "summary" "$tmp/err" "weir check: <default> is valid: 1 pipeline, 0 models, 0 dimensions"

# The example, with a secret from the environment: printed masked.
WEIR_PG_PASSWORD=topsecret expect "example config" 0 "$WEIR" check --no-files -c "$WEIR_ROOT/examples/weir.yaml"
if grep -q topsecret "$tmp/out" "$tmp/err"; then bad "secret masked" "$(cat "$tmp/out")"; else ok "secret masked"; fi
contains "masked dsn" "$tmp/out" "password=****"

# An error names file, line and key; exit 2.
cat >"$tmp/bad.yaml" <<'YAML'
pipelines:
  - name: telemetry
    source: {tcp: "127.0.0.1:7601"}
    time_unit: seconds
YAML
expect "bad value" 2 "$WEIR" check -c "$tmp/bad.yaml"
contains "bad value message" "$tmp/err" \
    "weir check: $tmp/bad.yaml:4: pipelines[0].time_unit: 'seconds' is not one of s, ms, us, ns, rfc3339"
printf 'pipelines:\n  - name: t\n    time_unti: ms\n' >"$tmp/typo.yaml"
expect "unknown key" 2 "$WEIR" check -c "$tmp/typo.yaml"
contains "did you mean" "$tmp/err" "typo.yaml:3: pipelines[0].time_unti: unknown key; did you mean 'time_unit'?"
expect "missing file" 2 "$WEIR" check -c "$tmp/nope.yaml"
contains "missing file message" "$tmp/err" "nope.yaml: No such file or directory"

# Files named by the config must exist unless --no-files.
mkdir -p "$tmp/cfg/models"
cat >"$tmp/cfg/weir.yaml" <<'YAML'
data_dir: data
pipelines:
  - name: telemetry
    schema: telemetry.schema.json
dimensions:
  sensors: sensors.csv
models:
  - name: hourly
    sql: models/hourly.sql
    inputs: [telemetry]
YAML
expect "missing schema" 2 "$WEIR" check -c "$tmp/cfg/weir.yaml"
contains "missing schema message" "$tmp/err" \
    "weir.yaml:3: pipelines[0].schema: $tmp/cfg/telemetry.schema.json: No such file or directory"
expect "no-files" 0 "$WEIR" check --no-files -q -c "$tmp/cfg/weir.yaml"
if [ -s "$tmp/out" ]; then bad "quiet prints nothing on stdout"; else ok "quiet prints nothing on stdout"; fi
echo '{"type":"object"}' >"$tmp/cfg/telemetry.schema.json"
printf 'id,name\n1,a\n' >"$tmp/cfg/sensors.csv"
echo 'select 1' >"$tmp/cfg/models/hourly.sql"
(cd / && expect "all files present (from another cwd)" 0 "$WEIR" check -c "$tmp/cfg/weir.yaml")
contains "paths relative to the config" "$tmp/out" "schema: \"$tmp/cfg/telemetry.schema.json\""
contains "data_dir relative to the config" "$tmp/out" "data_dir: \"$tmp/cfg/data\""

# What check prints is a config that checks to the same thing.
sed 1d "$tmp/out" >"$tmp/effective.yaml"
expect "effective config reloads" 0 "$WEIR" check -c "$tmp/effective.yaml"
if diff <(sed 1d "$tmp/out") "$tmp/effective.yaml" >/dev/null; then ok "round trip"; else
    bad "round trip" "$(diff <(sed 1d "$tmp/out") "$tmp/effective.yaml")"; fi

expect "help" 0 "$WEIR" check --help
contains "help text" "$tmp/out" "usage: weir check"
expect "bad option" 2 "$WEIR" check --frobnicate
expect "stray argument" 2 "$WEIR" check extra

echo "$pass passed, $fail failed"
[ "$fail" = 0 ]
