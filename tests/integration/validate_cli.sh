#!/usr/bin/env bash
# validate_cli.sh - `weir validate` as DESIGN.md's interface contract says:
# files or stdin, --errors JSON lines with 1-based line numbers (empty lines
# counted), the summary on stderr, exit codes 0/1/2.
. "$(dirname "$0")/lib.sh"
S=$WEIR_ROOT/examples/telemetry.schema.json
D=$WEIR_ROOT/examples/telemetry.ndjson

"$WEIR" validate -s "$S" --errors "$D" >"$TMP/out" 2>"$TMP/err"
eq "exit 1 when some records are invalid" 1 $?
eq "summary on stderr" "7 valid, 4 invalid" "$(tail -n 1 "$TMP/err")"
eq "one error line per invalid record" 4 "$(wc -l <"$TMP/out")"
eq "line numbers count empty lines" "4 5 9 10" \
    "$(python3 -c 'import json,sys; print(*[json.loads(l)["line"] for l in open(sys.argv[1])])' "$TMP/out")"
eq "enum error names the pointer and the allowed values" \
    '{"line":4,"path":"/measurement/unit","error":"\"Kelvin\" is not one of [\"Celcius\",\"Fahrenheit\"]"}' \
    "$(sed -n 1p "$TMP/out")"
eq "type error path" "/sensor_id" \
    "$(sed -n 2p "$TMP/out" | python3 -c 'import json,sys; print(json.load(sys.stdin)["path"])')"
eq "missing property path is the object" "/measurement" \
    "$(sed -n 3p "$TMP/out" | python3 -c 'import json,sys; print(json.load(sys.stdin)["path"])')"
ok "invalid JSON names the byte offset" grep -q '"line":10,.*byte' "$TMP/out"

head -n 3 "$D" | "$WEIR" validate -s "$S" 2>"$TMP/err"
eq "stdin, all valid: exit 0" 0 $?
eq "stdin summary" "3 valid, 0 invalid" "$(tail -n 1 "$TMP/err")"

"$WEIR" validate -s "$S" - <"$D" >/dev/null 2>&1
eq "'-' reads stdin" 1 $?

"$WEIR" validate -s "$TMP/nope.json" "$D" >/dev/null 2>"$TMP/err"
eq "missing schema: exit 2" 2 $?
ok "missing schema: message names the file" grep -q nope.json "$TMP/err"

echo '{"type": "object", "frobnicate": {"$dynamicRef": "#x"}}' >"$TMP/bad.json"
printf '{"type":17}\n' >"$TMP/bad2.json"
"$WEIR" validate -s "$TMP/bad2.json" "$D" >/dev/null 2>&1
eq "malformed schema: exit 2" 2 $?

"$WEIR" validate "$D" >/dev/null 2>&1
eq "no schema: usage error, exit 2" 2 $?

"$WEIR" validate -s "$S" "$TMP/missing.ndjson" >/dev/null 2>&1
eq "missing input file: exit 2 or 3" true "$([ $? -ge 2 ] && echo true)"

: >"$TMP/empty"
"$WEIR" validate -s "$S" "$TMP/empty" 2>"$TMP/err"
eq "empty file: exit 0" 0 $?
eq "empty file summary" "0 valid, 0 invalid" "$(tail -n 1 "$TMP/err")"

printf '%s' "$(head -n 1 "$D")" >"$TMP/nonl"
"$WEIR" validate -s "$S" "$TMP/nonl" 2>"$TMP/err"
eq "last line without newline is a record" "1 valid, 0 invalid" "$(tail -n 1 "$TMP/err")"

printf '\xef\xbb\xbf%s\n' "$(head -n 1 "$D")" >"$TMP/bom"
"$WEIR" validate -s "$S" --errors "$TMP/bom" >"$TMP/out" 2>/dev/null
eq "byte-order mark: a verdict, exit 1" 1 $?

printf '{"timestamp":1,"sensor_id":2,"measurement":{"kind":"Temperature","value":1,"unit":"Celcius"},"a":"\x00"}\n' >"$TMP/nul"
"$WEIR" validate -s "$S" "$TMP/nul" >/dev/null 2>&1
eq "NUL byte: invalid, exit 1" 1 $?

python3 -c 'import sys; sys.stdout.write("[" * 1000000 + "\n")' >"$TMP/deep"
"$WEIR" validate -s "$S" --errors "$TMP/deep" >"$TMP/out" 2>/dev/null
eq "1,000,000 nested [: a verdict, exit 1" 1 $?

python3 -c 'import sys; sys.stdout.write("{\"timestamp\":1,\"x\":\"" + "a"*(100<<20) + "\"}\n"); sys.stdout.write("{}\n")' >"$TMP/big"
"$WEIR" validate -s "$S" --errors "$TMP/big" >"$TMP/out" 2>"$TMP/err"
eq "100 MB line: exit 1" 1 $?
ok "100 MB line: too-large verdict on line 1" grep -q '"line":1,.*max' "$TMP/out"
eq "100 MB line: next line still validated" 2 "$(wc -l <"$TMP/out")"

printf '{"timestamp":"1756803600","sensor_id":"10001","measurement":{"kind":"Temperature","value":"5.3","unit":"Celcius"}}\n' >"$TMP/lax"
"$WEIR" validate -s "$S" "$TMP/lax" >/dev/null 2>&1
eq "numeric strings invalid in strict mode" 1 $?
"$WEIR" validate -s "$S" --lax "$TMP/lax" >/dev/null 2>&1
eq "numeric strings valid with --lax" 0 $?

# --int64: integers must fit the lake's BIGINT (as serve checks); off by
# default, where JSON Schema integers are unbounded.
printf '%s\n' '{"timestamp": 1756803600, "sensor_id": 12345678901234567890, "measurement": {"kind": "Temperature", "value": 1, "unit": "Celcius"}}' >"$TMP/big"
"$WEIR" validate -s "$S" "$TMP/big" >/dev/null 2>&1
eq "a 20-digit integer is valid JSON Schema" 0 $?
"$WEIR" validate -s "$S" --int64 --errors "$TMP/big" >"$TMP/out" 2>/dev/null
eq "--int64: exit 1" 1 $?
eq "--int64: the verdict" '{"line":1,"path":"/sensor_id","error":"12345678901234567890 is outside the 64-bit integer range the lake stores"}' "$(cat "$TMP/out")"

finish
