#!/usr/bin/env bash
# bench/ingest/tls.sh - weir serve's ingest over TLS against plain TCP, and
# against stunnel terminating TLS in front of a plain weir, on the same file.
#
#   bench/ingest/tls.sh [--records N] [--reps R] [--conns LIST] [--no-results]
#
# N records (default 1,000,000) of the bench workload (bench/tools/gen, 5 %
# invalid), sent by `weir send` over each count of connections in LIST
# (default 1,4) to:
#   plain    weir serve, plain TCP (weir send uses sendfile)
#   tls      weir serve with source.tls (weir send --tls: SSL_write)
#   stunnel  stunnel (Debian's stunnel4) accepting TLS and forwarding plain
#            TCP to weir serve (skipped if stunnel is not installed)
# Each run: start, send, wait until weir counted every record, check the
# valid and quarantined counts against gen's manifest, SIGTERM. Reported:
# median records/s over R runs (default 3, interleaved), the ratio to
# plain, and CPU seconds of weir and of stunnel (the sender's CPU, on the
# same 2 cores, is not counted but competes). The table goes to stdout and,
# unless --no-results, to bench/RESULTS.md under "## ingest-tls". Never
# fails a build: exits 0 (2 on a usage error).
set -uo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
records=1000000 reps=3 conns=1,4 write=1
while [ $# -gt 0 ]; do
    case "$1" in
    --records) records=$2; shift 2 ;;
    --reps) reps=$2; shift 2 ;;
    --conns) conns=$2; shift 2 ;;
    --no-results) write=0; shift ;;
    -h|--help) sed -n '2,/^set /p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "tls.sh: unknown option $1" >&2; exit 2 ;;
    esac
done
[[ "$conns" =~ ^[1-9][0-9]*(,[1-9][0-9]*)*$ ]] || { echo "tls.sh: bad --conns '$conns'" >&2; exit 2; }
for v in "$records" "$reps"; do
    [[ "$v" =~ ^[1-9][0-9]*$ ]] || { echo "tls.sh: bad number '$v'" >&2; exit 2; }
done
log() { echo "ingest-tls: $*" >&2; }
make -s -C bench tools >/dev/null || { log "bench tools do not build"; exit 0; }
weir=${WEIR_BIN:-build/release/weir}
if [ -z "${WEIR_BIN:-}" ]; then
    make -s -j2 MODE=release all >/dev/null 2>&1 || { log "weir does not build"; exit 0; }
fi
tmp=$(mktemp -d "${BENCH_TMP:-/tmp}/weir-tls.XXXXXX") || exit 0
trap 'rm -rf "$tmp"' EXIT

# A CA and a server certificate for 127.0.0.1 (ECDSA P-256, as a small
# device would likely be given).
c=$tmp/certs
mkdir -p "$c"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
    -keyout "$c/ca.key" -out "$c/ca.pem" -subj /CN=bench-ca 2>/dev/null &&
openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$c/server.key" \
    -out "$c/server.csr" -subj /CN=127.0.0.1 2>/dev/null &&
openssl x509 -req -in "$c/server.csr" -CA "$c/ca.pem" -CAkey "$c/ca.key" -CAcreateserial \
    -days 2 -out "$c/server.pem" -extfile <(echo "subjectAltName=IP:127.0.0.1") 2>/dev/null ||
    { log "openssl cannot make certificates"; exit 0; }

bench/out/gen --records "$records" --manifest "$tmp/manifest.json" >"$tmp/in.ndjson" 2>/dev/null
schema=bench/validate/telemetry.schema.json
[ -f examples/telemetry.schema.json ] && schema=examples/telemetry.schema.json

python3 - "$weir" "$tmp" "$schema" "$records" "$reps" "$conns" "$write" "$c" <<'PYEOF'
import json, os, shutil, signal, socket, statistics, subprocess, sys, time, urllib.request
weir, tmp, schema, records, reps, conns, write, certs = sys.argv[1:]
records, reps, write = int(records), int(reps), write == "1"
conns_list = [int(x) for x in conns.split(",")]
man = json.load(open(tmp + "/manifest.json"))
size = os.path.getsize(tmp + "/in.ndjson")
stunnel = shutil.which("stunnel4") or shutil.which("stunnel")
modes = ["plain", "tls"] + (["stunnel"] if stunnel else [])
tick = os.sysconf("SC_CLK_TCK")
env = dict(os.environ, WEIR_FAKE_NOW=str(man["config"]["t0"] + 3 * 3600 + 1800))

def port():
    s = socket.socket(); s.bind(("127.0.0.1", 0)); p = s.getsockname()[1]; s.close(); return p

def cpu(pid):
    f = open("/proc/%d/stat" % pid).read().rsplit(")", 1)[1].split()
    return (int(f[11]) + int(f[12])) / tick

def metrics(mp):
    out = {}
    for line in urllib.request.urlopen("http://127.0.0.1:%d/metrics" % mp, timeout=5).read().decode().splitlines():
        if line and not line.startswith("#") and '{pipeline="b"}' in line:
            k, v = line.split()
            out[k.split("{")[0]] = float(v)
    return out

def wait_port(p, t=30):
    end = time.time() + t
    while time.time() < end:
        try:
            socket.create_connection(("127.0.0.1", p), timeout=1).close(); return True
        except OSError:
            time.sleep(0.05)
    return False

def run(mode, rep, conns):
    wp, mp, sp = port(), port(), port()
    d = "%s/%s-%d" % (tmp, mode, rep)
    os.makedirs(d)
    tls = ("      tls: {cert: %s/server.pem, key: %s/server.key}\n" % (certs, certs)
           if mode == "tls" else "")
    open(d + "/weir.yaml", "w").write(
        "data_dir: %s/data\ngrace: 2d\nmetrics: 127.0.0.1:%d\nlog: {level: warn}\npipelines:\n"
        "  - name: b\n    source:\n      tcp: 127.0.0.1:%d\n%s    schema: %s\n"
        "    time_field: timestamp\n    time_unit: s\n    time_max_age: off\n"
        "    compaction: manual\n" % (d, mp, wp, tls, os.path.abspath(schema)))
    srv = subprocess.Popen([weir, "serve", "-c", d + "/weir.yaml"], env=env,
                           stderr=open(d + "/weir.log", "w"))
    tun = None
    target = wp
    try:
        if not wait_port(mp):
            return None
        if mode == "stunnel":
            open(d + "/stunnel.conf", "w").write(
                "foreground = yes\npid =\nsyslog = no\noutput = %s/stunnel.log\n"
                "[weir]\naccept = 127.0.0.1:%d\nconnect = 127.0.0.1:%d\ncert = %s/server.pem\n"
                "key = %s/server.key\nsslVersionMin = TLSv1.2\n" % (d, sp, wp, certs, certs))
            tun = subprocess.Popen([stunnel, d + "/stunnel.conf"], stderr=subprocess.DEVNULL)
            if not wait_port(sp):
                return None
            target = sp
        cmd = [weir, "send", "--conns", str(conns), "--timeout", "120"]
        if mode != "plain":
            cmd += ["--tls", "--ca", certs + "/ca.pem"]
        c0 = cpu(srv.pid); t0 = time.monotonic()
        u0 = cpu(tun.pid) if tun else 0
        rc = subprocess.call(cmd + ["127.0.0.1:%d" % target, tmp + "/in.ndjson"])
        while True:
            m = metrics(mp)
            if m.get("weir_records_total", 0) >= records or time.monotonic() - t0 > 300:
                break
            time.sleep(0.01)
        secs = time.monotonic() - t0
        wcpu = cpu(srv.pid) - c0
        tcpu = cpu(tun.pid) - u0 if tun else 0.0
        ok = (rc == 0 and m.get("weir_valid_records_total") == man["valid"] and
              m.get("weir_quarantined_records_total") == man["invalid"])
        return {"mode": mode, "secs": secs, "rate": records / secs, "weir_cpu": wcpu,
                "stunnel_cpu": tcpu, "ok": ok}
    finally:
        if tun:
            tun.terminate(); tun.wait()
        srv.send_signal(signal.SIGTERM)
        try:
            srv.wait(60)
        except subprocess.TimeoutExpired:
            srv.kill(); srv.wait()
        shutil.rmtree(d + "/data", ignore_errors=True)

runs = {(m, c): [] for m in modes for c in conns_list}
n = 0
for rep in range(reps):
    for c in conns_list:
        for m in modes:
            n += 1
            r = run(m, n, c)
            if r:
                runs[(m, c)].append(r)
                print("ingest-tls: %-8s %d conn(s) run %d: %.0f records/s%s" % (
                    m, c, rep + 1, r["rate"], "" if r["ok"] else " (WRONG COUNTS)"), file=sys.stderr)

def med(m, c):
    rs = sorted(runs[(m, c)], key=lambda r: r["rate"])
    return rs[len(rs) // 2] if rs else None

lines = ["## ingest-tls", "",
         "`bench/ingest/tls.sh --records %d --reps %d --conns %s`: %d records (%.1f MB, %d invalid) "
         "sent by `weir send`, median of %d runs by records/s, timed from the start of "
         "`weir send` until weir counted every record." % (records, reps, conns, records,
                                                           size / 1e6, man["invalid"], reps), "",
         "| peer | conns | records/s | MB/s | vs plain | weir CPU s | stunnel CPU s | counts |",
         "|---|---:|---:|---:|---:|---:|---:|---|"]
for c in conns_list:
  base = med("plain", c)
  for m in modes:
    r = med(m, c)
    if not r:
        lines.append("| %s | %d | - | - | - | - | - | FAIL (did not start) |" % (m, c)); continue
    lines.append("| %s | %d | %.0f | %.1f | %.2f | %.2f | %s | %s |" % (
        {"plain": "weir, plain TCP (sendfile)", "tls": "weir, source.tls",
         "stunnel": "stunnel -> weir plain"}[m], c,
        r["rate"], size / r["secs"] / 1e6, r["rate"] / base["rate"] if base else 0,
        r["weir_cpu"], "%.2f" % r["stunnel_cpu"] if m == "stunnel" else "-",
        "ok" if all(x["ok"] for x in runs[(m, c)]) else "FAIL"))
ver = subprocess.run(["openssl", "version"], capture_output=True, text=True).stdout.strip()
sv = ""
if stunnel:
    out = subprocess.run([stunnel, "-version"], capture_output=True, text=True)
    sv = next((l for l in (out.stdout + out.stderr).splitlines() if l.startswith("stunnel ")), "")
lines += ["", "machine: %d cores, %s; sender, weir (2 workers) and stunnel share them. TLS 1.3, "
          "ECDSA P-256 server key, TLS_AES_256_GCM_SHA384. %s. %s" % (os.cpu_count(),
          os.uname().release, ver, sv.strip())]
text = "\n".join(lines) + "\n"
print(text)
if write:
    sys.path.insert(0, "bench/tools")
    import results
    results.replace_section("bench/RESULTS.md", "## ingest-tls", text)
PYEOF
exit 0
