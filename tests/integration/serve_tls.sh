#!/usr/bin/env bash
# tests/integration/serve_tls.sh - TLS ingest and the idle timeout, end to
# end: the real binary, real sockets on 127.0.0.1, certificates made here
# with the openssl command line (a CA, a server certificate for IP
# 127.0.0.1, a client certificate, and a second CA nobody trusts).
#
# Over TLS, what lands must equal what was sent, exactly, as a multiset per
# hour (tests/tools/ingest.py check): sent by weir send --tls (one and
# several connections), byte by byte, in random chunks, by a sender gone
# mid-record, over 200 connections open at once, through backpressure, and
# while SIGTERM drains. Refused and counted: a plain-TCP client, a client
# without a certificate or with one from the wrong CA, a client that never
# finishes its handshake (after handshake_timeout). weir check and serve
# name a missing or mismatched cert/key. A silent connection is closed
# after idle_timeout, its partial line quarantined as truncated.
. "$(dirname "$0")/lib.sh"

command -v openssl >/dev/null || { echo "skipped: no openssl command"; echo "0 passed, 0 failed"; exit 0; }
TOOL=(python3 "$WEIR_ROOT/tests/tools/ingest.py")
TLSC=(python3 "$WEIR_ROOT/tests/tools/tls_client.py")
ulimit -n 8192 2>/dev/null || ulimit -n "$(ulimit -Hn)"
START=1756684800                       # 2025-09-01T00:00:00Z
HOURS=6
NOW=$((START + HOURS * 3600 + 1800))
export WEIR_FAKE_NOW=$NOW
MAXREC=4096
"${TOOL[@]}" schema >"$TMP/schema.json"

# --- certificates ------------------------------------------------------------
C=$TMP/certs
mkdir -p "$C"
mkcert() { # NAME CN CA [EXT]: NAME.key, NAME.pem signed by CA (self-signed: CA=-)
    openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$C/$1.key" \
        -subj "/CN=$2" -out "$C/$1.csr" 2>/dev/null || return 1
    if [ "$3" = - ]; then
        openssl x509 -req -in "$C/$1.csr" -signkey "$C/$1.key" -days 2 -out "$C/$1.pem" \
            -extfile <(printf 'basicConstraints=critical,CA:TRUE\nkeyUsage=keyCertSign,cRLSign\n') 2>/dev/null
    else
        openssl x509 -req -in "$C/$1.csr" -CA "$C/$3.pem" -CAkey "$C/$3.key" -CAcreateserial \
            -days 2 -out "$C/$1.pem" ${4:+-extfile <(printf '%s\n' "$4")} 2>/dev/null
    fi
}
ok "certs: CA" mkcert ca weir-test-ca -
ok "certs: server for 127.0.0.1" mkcert server 127.0.0.1 ca "subjectAltName=IP:127.0.0.1"
ok "certs: client" mkcert client sensor-1 ca
ok "certs: a CA nobody trusts" mkcert evil evil-ca -
ok "certs: a client of that CA" mkcert evilclient sensor-2 evil
CLIENT=(--ca "$C/ca.pem" --cert "$C/client.pem" --key "$C/client.key")

# config NAME DATA_DIR [LIMITS [PIPELINE_KEYS]]: pipelines t (TLS, client
# certificates required), n (TLS, no client certificates), p (plain TCP,
# idle_timeout 1s) and x (TLS, allow-list without 127.0.0.1); sets $port
# (t), $nport, $pport, $xport, $mport.
config() {
    port=$(free_port) nport=$(free_port) pport=$(free_port) xport=$(free_port) mport=$(free_port)
    cat >"$TMP/$1.yaml" <<EOF
data_dir: $2
workers: 2
grace: 2d
drain_timeout: 10s
metrics: 127.0.0.1:$mport
limits: {${3:-}}
pipelines:
  - name: t
    source:
      tcp: 127.0.0.1:$port
      tls: {cert: $C/server.pem, key: $C/server.key, ca: $C/ca.pem, handshake_timeout: 1s}
      idle_timeout: 2s
    schema: $TMP/schema.json
    compaction: manual
    time_field: ts
    time_unit: s
    time_max_age: off
    max_record: $MAXREC
    ${4:-}
  - name: n
    source:
      tcp: 127.0.0.1:$nport
      tls: {cert: $C/server.pem, key: $C/server.key}
    schema: $TMP/schema.json
    compaction: manual
    time_field: ts
    time_unit: s
    time_max_age: off
  - name: p
    source: {tcp: 127.0.0.1:$pport, idle_timeout: 1s}
    schema: $TMP/schema.json
    compaction: manual
    time_field: ts
    time_unit: s
    time_max_age: off
  - name: x
    source:
      tcp: 127.0.0.1:$xport
      allow: 10.0.0.0/8
      tls: {cert: $C/server.pem, key: $C/server.key}
EOF
}

serve() {
    "$WEIR" serve -c "$TMP/$1.yaml" 2>>"$TMP/$1.log" &
    srv=$!
    cleanup_pid "$srv"
    wait_port "$port" 30 && wait_port "$mport" 5
}
stop() {
    kill -TERM "$srv"
    wait "$srv"
    rc=$?
}
metrics() { curl -s --max-time 5 "http://127.0.0.1:$mport/metrics"; }
metric() { metrics | "${TOOL[@]}" metric "$@"; }

# --- weir check and serve refuse bad TLS files, naming them ------------------
D=$TMP/data
config a "$D"
ok "weir check: a good TLS config" "$WEIR" check -q -c "$TMP/a.yaml"
sed "s#key: $C/server.key, ca#key: $C/client.key, ca#" "$TMP/a.yaml" >"$TMP/mismatch.yaml"
"$WEIR" check -q -c "$TMP/mismatch.yaml" 2>"$TMP/check.err"
eq "weir check: key of another certificate: exit 2" 2 $?
ok "weir check: says the key does not match the certificate" \
    grep -q "pipeline t: source.tls.key: $C/client.key: does not match the certificate $C/server.pem" "$TMP/check.err"
sed "s#cert: $C/server.pem, key: $C/server.key, ca#cert: $C/nope.pem, key: $C/server.key, ca#" \
    "$TMP/a.yaml" >"$TMP/missing.yaml"
"$WEIR" check -q -c "$TMP/missing.yaml" 2>"$TMP/check.err"
eq "weir check: missing cert: exit 2" 2 $?
ok "weir check: names the missing cert" grep -q "source.tls.cert: $C/nope.pem: No such file or directory" "$TMP/check.err"
sed "s#key: $C/server.key, ca#key: $C/server.pem, ca#" "$TMP/a.yaml" >"$TMP/notakey.yaml"
"$WEIR" check -q -c "$TMP/notakey.yaml" 2>"$TMP/check.err"
eq "weir check: a certificate as the key: exit 2" 2 $?
ok "weir check: says it cannot load the key" grep -q "source.tls.key: $C/server.pem: cannot load the private key" "$TMP/check.err"
sed "s#ca: $C/ca.pem#ca: $TMP/schema.json#" "$TMP/a.yaml" >"$TMP/badca.yaml"
"$WEIR" check -q -c "$TMP/badca.yaml" 2>"$TMP/check.err"
eq "weir check: a CA file without certificates: exit 2" 2 $?
ok "weir check: names the CA file" grep -q "source.tls.ca: $TMP/schema.json: cannot load the CA certificates" "$TMP/check.err"
timeout 20 "$WEIR" serve -c "$TMP/mismatch.yaml" 2>"$TMP/serve.err"
eq "serve: mismatched key: exit 2 before listening" 2 $?
ok "serve: says why" grep -q "does not match the certificate" "$TMP/serve.err"

ok "serve starts with TLS" serve a
ok "serve: logs TLS on the listener" grep -q "t: listening on 127.0.0.1:$port with TLS, client certificates required" "$TMP/a.log"

# --- records over TLS land exactly ------------------------------------------
G=$TMP/mix
"${TOOL[@]}" gen --out "$G" --conns 4 --records 800 --start $START --hours $HOURS \
    --now $NOW --invalid 0.05 --crlf 0.2 --empty 0.05 --pad 60 --max-record $MAXREC \
    --seed 21 >/dev/null
ok "weir send --tls with a client certificate" \
    "$WEIR" send --tls "${CLIENT[@]}" "127.0.0.1:$port" "$G/c000000.ndjson"
ok "weir send --tls --conns 3" \
    "$WEIR" send --tls "${CLIENT[@]}" --conns 3 "127.0.0.1:$port" "$G/c000001.ndjson"
ok "tls: sent in random chunks" "${TLSC[@]}" send "$port" "${CLIENT[@]}" "$G/c000002.ndjson" --mode random --chunk 97
ok "tls: sent in random small chunks" "${TLSC[@]}" send "$port" "${CLIENT[@]}" "$G/c000003.ndjson" --mode random --chunk 5 --seed 4
T12=$TMP/tls12
"${TOOL[@]}" gen --out "$T12" --conns 1 --cid-base 95 --records 300 --start $START \
    --hours $HOURS --now $NOW --invalid 0.05 --seed 28 >/dev/null
ok "tls: TLS 1.2 (ECDHE, AES-GCM)" "${TLSC[@]}" send "$port" "${CLIENT[@]}" --tls12 "$T12/c000095.ndjson" --mode random --chunk 500
B=$TMP/bytes
"${TOOL[@]}" gen --out "$B" --conns 1 --cid-base 20 --records 12 --start $START \
    --hours $HOURS --now $NOW --crlf 0.5 --empty 0.2 --seed 22 >/dev/null
ok "tls: byte by byte (one TLS record per byte)" "${TLSC[@]}" send "$port" "${CLIENT[@]}" "$B/c000020.ndjson" --mode bytes
NN=$TMP/nocerts
"${TOOL[@]}" gen --out "$NN" --conns 1 --cid-base 90 --records 500 --start $START \
    --hours $HOURS --now $NOW --invalid 0.05 --seed 27 >/dev/null
ok "weir send --tls to the pipeline without client certificates" \
    "$WEIR" send --tls --ca "$C/ca.pem" "127.0.0.1:$nport" "$NN/c000090.ndjson"
"${TOOL[@]}" gen --out "$NN" --conns 1 --cid-base 91 --records 50 --start $START \
    --hours $HOURS --now $NOW --seed 29 >/dev/null
ok "weir send --tls --insecure (no CA given)" \
    "$WEIR" send --tls --insecure "127.0.0.1:$nport" "$NN/c000091.ndjson"
"$WEIR" send --tls --ca "$C/ca.pem" "localhost:$nport" "$NN/c000091.ndjson" 2>"$TMP/host.err"
eq "weir send --tls to a name the certificate does not list: exit 3" 3 $?
ok "... says the host name does not match" grep -q "hostname mismatch" "$TMP/host.err"

# A sender gone mid-record (TCP closed, no close_notify): the fragment is
# quarantined as truncated, the records before it land.
M=$TMP/mid
"${TOOL[@]}" gen --out "$M" --conns 1 --cid-base 40 --records 5 --start $START \
    --hours $HOURS --now $NOW --seed 23 >/dev/null
frag="{\"ts\":$START,\"c\":40,\"s\":"
printf '%s' "$frag" >>"$M/c000040.ndjson"
"${TOOL[@]}" expect "$M/expect" "$frag" --reason truncated --path ""
ok "tls: a sender gone mid-record" "${TLSC[@]}" send "$port" "${CLIENT[@]}" "$M/c000040.ndjson" --abort

# --- refused and counted ----------------------------------------------------
before=$(metric weir_tls_failures_total --pipeline t)
ok "a plain-TCP client to a TLS port is closed" "${TLSC[@]}" plain "$port" --timeout 5
"$WEIR" send --tls --ca "$C/ca.pem" "127.0.0.1:$port" "$G/c000000.ndjson" 2>"$TMP/nocert.err"
eq "no client certificate where ca is set: weir send exits 3" 3 $?
ok "no client certificate: weir send says the server may have refused it" \
    grep -Eq "certificate required|may have refused this client" "$TMP/nocert.err"
"$WEIR" send --tls --ca "$C/ca.pem" --cert "$C/evilclient.pem" --key "$C/evilclient.key" \
    "127.0.0.1:$port" "$G/c000000.ndjson" 2>"$TMP/evil.err"
eq "a client certificate from another CA: weir send exits 3" 3 $?
"$WEIR" send --tls --ca "$C/evil.pem" "${CLIENT[@]:2}" "127.0.0.1:$port" "$G/c000000.ndjson" 2>"$TMP/wrongca.err"
eq "weir send trusting the wrong CA: exit 3" 3 $?
ok "weir send trusting the wrong CA: says the verification failed" grep -q "TLS handshake: certificate verify failed" "$TMP/wrongca.err"
# (Its exit status is a race: the server's alert and FIN may reach it before
# the reset its unread bytes cause. The failure is counted below either way.)
"$WEIR" send "127.0.0.1:$port" "$G/c000000.ndjson" 2>/dev/null
t=$("${TLSC[@]}" stall "$port" --timeout 8)
eq "a client that never starts its handshake is closed" 0 $?
ok "... after about handshake_timeout (1s; took ${t}s)" python3 -c "import sys; sys.exit(not 0.9 <= $t <= 3.0)"
# A TLS record header announcing a ClientHello, then nothing.
t=$("${TLSC[@]}" stall "$port" --bytes 160301 --timeout 8)
eq "a client that stalls mid-handshake is closed" 0 $?
ok "... after about handshake_timeout (took ${t}s)" python3 -c "import sys; sys.exit(not 0.9 <= $t <= 3.0)"
after=$(metric weir_tls_failures_total --pipeline t)
eq "failed handshakes counted (plain, no cert, wrong CA x2 (one each side), plain weir send, 2 stalls)" \
    7 $((after - before))
eq "handshake timeouts counted" 2 "$(metric weir_tls_handshake_timeouts_total --pipeline t)"
ok "failed handshakes logged with the peer and the reason" grep -Eq "t: TLS handshake with 127.0.0.1:[0-9]+ failed: " "$TMP/a.log"
eq "weir_tls_failures_total in /status too" "$after" \
    "$(curl -s --max-time 5 "http://127.0.0.1:$mport/status" | python3 -c 'import json,sys; print(json.load(sys.stdin)["pipelines"][0]["tls_failures_total"])')"
ok "weir status: a tls line with the counts" bash -c \
    "'$WEIR' status -c '$TMP/a.yaml' | grep -Eq '^  tls +[0-9]+ handshakes, $after failed \(2 timed out\)'"

# TLS 1.1 is refused; so is a client outside the allow-list, before any
# handshake (refused, not a TLS failure).
before=$(metric weir_tls_failures_total --pipeline t)
echo | timeout 10 openssl s_client -connect "127.0.0.1:$port" -tls1_1 -cipher 'DEFAULT@SECLEVEL=0' >"$TMP/tls11.out" 2>&1
ok "TLS 1.1 client: refused with a protocol version alert" grep -q "alert protocol version" "$TMP/tls11.out"
eq "TLS 1.1 client: counted" $((before + 1)) "$(metric weir_tls_failures_total --pipeline t)"
ok "TLS 1.1 client: logged" grep -q "failed: unsupported protocol" "$TMP/a.log"
"$WEIR" send --tls --ca "$C/ca.pem" "127.0.0.1:$xport" "$G/c000000.ndjson" 2>/dev/null
eq "not in the allow-list: weir send --tls exits 3" 3 $?
eq "not in the allow-list: refused" 1 "$(metric weir_connections_refused_total --pipeline x)"
eq "not in the allow-list: no handshake was tried" 0 "$(metric weir_tls_failures_total --pipeline x)"

# --- 200 TLS connections at once -----------------------------------------
K=$TMP/k
"${TOOL[@]}" gen --out "$K" --conns 200 --cid-base 1000 --records 8 --start $START \
    --hours $HOURS --now $NOW --invalid 0.03 --crlf 0.2 --seed 24 >/dev/null
rss0=$(awk '/VmRSS/ {print $2}' "/proc/$srv/status")
"${TLSC[@]}" conns "$port" "${CLIENT[@]}" "$K" --go-file "$TMP/go" --timeout 60 >"$TMP/conns.out" 2>&1 &
cpid=$!
open=0
for _ in $(seq 1 600); do
    open=$(metric weir_connections --pipeline t)
    [ "$open" = 200 ] && break
    sleep 0.1
done
eq "200 TLS connections open at once, each mid-record" 200 "$open"
rss1=$(awk '/VmRSS/ {print $2}' "/proc/$srv/status")
echo "     VmRSS ${rss0} kB before, ${rss1} kB with 200 TLS connections open (ASan build)"
touch "$TMP/go"
wait "$cpid"
eq "200 TLS connections: all sent, all closed by the server" 0 $?
tail -n 3 "$TMP/conns.out" | sed 's/^/     /'

# --- idle timeout ------------------------------------------------------------
I=$TMP/idle
mkdir -p "$I"
"${TOOL[@]}" expect "$I/expect_p" "{\"ts\":$START,\"c\":70,\"s\":0}"
"${TOOL[@]}" expect "$I/expect_p" "{\"ts\":$START,\"c\":70,\"s\":" --reason truncated --path ""
t=$("${TLSC[@]}" idle "$pport" --plain "{\"ts\":$START,\"c\":70,\"s\":0}
{\"ts\":$START,\"c\":70,\"s\":" --timeout 8)
eq "plain TCP: a silent connection is closed" 0 $?
ok "... after about idle_timeout (1s; took ${t}s)" python3 -c "import sys; sys.exit(not 0.9 <= $t <= 2.5)"
eq "idle closes counted (p)" 1 "$(metric weir_idle_closed_total --pipeline p)"
"${TOOL[@]}" expect "$I/expect_t" "{\"ts\":$START,\"c\":71,\"s\":0}"
"${TOOL[@]}" expect "$I/expect_t" "{\"ts\":$START,\"c\":71,\"s\":" --reason truncated --path ""
t=$("${TLSC[@]}" idle "$port" "${CLIENT[@]}" "{\"ts\":$START,\"c\":71,\"s\":0}
{\"ts\":$START,\"c\":71,\"s\":" --timeout 8)
eq "TLS: a silent connection is closed" 0 $?
ok "... after about idle_timeout (2s; took ${t}s)" python3 -c "import sys; sys.exit(not 1.9 <= $t <= 3.5)"
eq "idle closes counted (t)" 1 "$(metric weir_idle_closed_total --pipeline t)"
ok "idle close logged" grep -Eq "t: 127.0.0.1:[0-9]+: closed after [0-9]+ ms without data \(source.idle_timeout" "$TMP/a.log"
# weir send: 1 + 3 connections, tls_client: 2 + TLS 1.2 + bytes + mid-record, 200, idle
eq "TLS handshakes counted" 210 "$(metric weir_tls_handshakes_total --pipeline t)"

# --- SIGTERM drains TLS senders ------------------------------------------
R=$TMP/rate
"${TOOL[@]}" gen --out "$R" --conns 2 --cid-base 3000 --records 150 --start $START \
    --hours $HOURS --now $NOW --seed 25 >/dev/null
"$WEIR" send --tls "${CLIENT[@]}" --rate 100 "127.0.0.1:$port" "$R/c003000.ndjson" 2>"$TMP/rate1.err" &
s1=$!
"$WEIR" send --tls "${CLIENT[@]}" --rate 100 "127.0.0.1:$port" "$R/c003001.ndjson" 2>"$TMP/rate2.err" &
s2=$!
sleep 0.7
kill -TERM "$srv"
wait "$s1"
eq "drain: TLS sender 1 finished, closed cleanly by the server" 0 $?
wait "$s2"
eq "drain: TLS sender 2 finished, closed cleanly by the server" 0 $?
wait "$srv"
eq "drain: exit 0" 0 $?
ok "drain: the TLS senders were drained" grep -Eq "t: shutting down: draining [12] connection" "$TMP/a.log"
ok "drain: no sanitizer report" bash -c "! grep -Eq 'Sanitizer|runtime error' '$TMP/a.log'"

EXP=("$G/expect" "$T12/expect" "$B/expect" "$M/expect" "$K/expect" "$R/expect" "$I/expect_t")
"${TOOL[@]}" check "$D" t --sealed "${EXP[@]/#/--expect=}" >"$TMP/check.out" 2>&1
rc=$?
sed 's/^/     /' "$TMP/check.out"
eq "t: what landed over TLS is what was sent, exactly" 0 "$rc"
"${TOOL[@]}" check "$D" n --sealed --expect "$NN/expect" >"$TMP/check_n.out" 2>&1
eq "n: what landed over TLS is what was sent, exactly" 0 $?
"${TOOL[@]}" check "$D" p --sealed --expect "$I/expect_p" >"$TMP/check_p.out" 2>&1
eq "p: the idle connection's partial line is quarantined as truncated" 0 $?
sent=$(cat "${EXP[@]}" | python3 -c 'import sys,json,hashlib; print(hashlib.sha256("".join(sorted(json.loads(l)["line"]+"\n" for l in sys.stdin if json.loads(l)["k"]=="raw")).encode()).hexdigest())')
got=$(find "$D/t/raw" -name '*.ndjson' -exec cat {} + | LC_ALL=C sort | sha256sum | cut -d' ' -f1)
eq "t: checksum of the sorted raw lines equals the sent valid lines'" "$sent" "$got"

# --- backpressure over TLS -------------------------------------------------
# A 64 KiB write queue: the source pauses every few dozen records while
# OpenSSL may hold decrypted bytes; every one must still arrive.
D3=$TMP/data3
config c "$D3" "max_pending: 64KiB, max_record: $MAXREC" "fsync_interval: 5ms"
ok "backpressure: serve with a 64 KiB queue" serve c
P=$TMP/bp
"${TOOL[@]}" gen --out "$P" --conns 2 --cid-base 0 --records 12000 --start $START \
    --hours 3 --now $NOW --invalid 0.02 --pad 100 --seed 26 >/dev/null
ok "backpressure: weir send --tls, 1.5 MB through a 64 KiB queue" \
    "$WEIR" send --tls "${CLIENT[@]}" --timeout 60 "127.0.0.1:$port" "$P/c000000.ndjson"
ok "backpressure: TLS random chunks" "${TLSC[@]}" send "$port" "${CLIENT[@]}" "$P/c000001.ndjson" --mode random --chunk 30000 --timeout 60
bp=$(metric weir_backpressure_seconds_total --pipeline t)
echo "     $bp s of backpressure"
ok "backpressure: counted" python3 -c "import sys; sys.exit(not $bp > 0)"
stop
eq "backpressure: exit 0" 0 "$rc"
"${TOOL[@]}" check "$D3" t --sealed --expect "$P/expect" >"$TMP/check3.out" 2>&1
rc=$?
sed 's/^/     /' "$TMP/check3.out"
eq "backpressure: what landed is what was sent" 0 "$rc"

finish
