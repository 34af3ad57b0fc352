#!/usr/bin/env python3
"""harness.py - the runs of bench/ingest/run.sh (stdlib only).

    harness.py --runs FILE.jsonl --workdir DIR --tmp DIR --schema FILE
               --weir BIN --tools DIR [--peers LIST] [--conns LIST]
               [--records N] [--py-records N] [--reps R] [--mem-conns C]
               [--always-records N] [--t0 T] [--weir-workers N|auto]
               [--keep-output]

Runs every peer on the same stream from bench/out/loadgen (records of
telemetry.h: --records records, 5 % invalid, 3 hours, seed 1; the Python
peers get --py-records of the same stream), with each count of connections,
--reps times, repetitions interleaved (rep 1 of every peer and count, then
rep 2, ...), and appends one JSON object per run to --runs.

One run, as in shared/research/peers-measured-here.md:
 1. start the peer on a free loopback port with its own config, data and
    log files in a fresh folder (under --tmp for the data, --workdir for
    the rest), and wait until it listens;
 2. read its CPU time, start watching /proc/PID: utime+stime and VmHWM
    every 20 ms;
 3. run loadgen (it pre-generates, then sends, then waits for the peer to
    close every connection) and take its first-byte wall time;
 4. once loadgen has finished and the peer's CPU time has not moved for
    0.4 s, SIGTERM it and reap it (wait4) when it exits;
 5. durable time = (last moment its CPU time moved - first byte) + (exit -
    SIGTERM): the time until every valid record was written (and, for
    weir, fsynced and sealed), without the idle window. CPU s = user + sys
    from wait4 minus what it used before the first byte. Peak RSS = the
    largest VmHWM seen (ru_maxrss would carry this process's high-water
    mark across the fork);
 6. check the output with bench/tools/verify.py: per hour count, bytes and
    checksum against loadgen's manifest (weir's raw segments; syslog-ng's
    hour files; the Python peers' files by value, as they re-serialise), and
    for weir every invalid record in quarantine. Then delete the data
    unless --keep-output.

Peers (--peers, comma-separated; unknown or missing ones are skipped with a
note):
  weir                weir serve, fsync group (the default: 100 ms / 4 MiB)
  syslog-ng           a private foreground syslog-ng (own persist, pid and
                      control files): network source, flags(no-parse),
                      json-parser, the research's filter, date-parser,
                      file destination with hour templates, flow-control
  python-seed         bench/ingest/python_seed.py on asyncio
  python-seed-uvloop  the same on uvloop
  sink                bench/out/sink, a discard server: the ceiling
weir-never (fsync: never; not in the default list, for comparison) and
the extra runs: weir-always (fsync: always, on --always-records, rep 1
only, since it fsyncs once per record) and weir-1000 (weir with
--mem-conns connections, every rep: the memory target); weir-1000-wN is
the same with `workers: N` instead of --weir-workers (peak RSS grows with
the number of workers, and `auto` is one per core).
"""
import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tools"))
import verify as verifier  # noqa: E402

CLK_TCK = os.sysconf("SC_CLK_TCK")
IDLE_S = 0.4
POLL_S = 0.02
PY = "/usr/bin/python3"  # Debian's, with python3-pydantic 1.10 and uvloop


def free_port():
    """A port the kernel just handed out (the peer binds it right after;
    weir and the Python peer take port 0 themselves)."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class Watch(threading.Thread):
    """Polls /proc/PID for CPU time and VmHWM until stopped."""

    def __init__(self, pid):
        super().__init__(daemon=True)
        self.pid = pid
        self.cpu = None
        self.last_move = time.time()
        self.hwm_kib = 0
        self.stopped = threading.Event()

    def sample(self):
        try:
            with open("/proc/%d/stat" % self.pid) as f:
                fields = f.read().rsplit(")", 1)[1].split()
            cpu = int(fields[11]) + int(fields[12])
            with open("/proc/%d/status" % self.pid) as f:
                for line in f:
                    if line.startswith("VmHWM:"):
                        self.hwm_kib = max(self.hwm_kib, int(line.split()[1]))
                        break
        except (OSError, IndexError, ValueError):
            return
        if cpu != self.cpu:
            if self.cpu is not None:
                self.last_move = time.time()
            self.cpu = cpu

    def run(self):
        while not self.stopped.is_set():
            self.sample()
            time.sleep(POLL_S)

    def stop(self):
        self.stopped.set()
        self.join()


def wait_for(pred, timeout):
    end = time.time() + timeout
    while time.time() < end:
        v = pred()
        if v:
            return v
        time.sleep(0.02)
    return None


def file_text(path):
    try:
        with open(path, errors="replace") as f:
            return f.read()
    except OSError:
        return ""


def reap(proc, timeout):
    """wait4 the process for up to timeout s: (status, rusage, t_exit), or
    None."""
    end = time.time() + timeout
    while True:
        try:
            pid, status, ru = os.wait4(proc.pid, os.WNOHANG)
        except ChildProcessError:
            # Popen.poll() reaped it first (it exited on its own).
            return proc.returncode, None, time.time()
        if pid == proc.pid:
            t = time.time()
            proc.returncode = os.waitstatus_to_exitcode(status)
            return proc.returncode, ru, t
        if time.time() > end:
            return None
        time.sleep(0.005)


# --- peers --------------------------------------------------------------------
# Each start_* writes its config into rundir, starts the peer with its data
# under datadir, and returns (Popen, port, outputs) or raises RuntimeError.

WEIR_YAML = """\
# generated by bench/ingest/harness.py
data_dir: {data}
metrics: 127.0.0.1:0
drain_timeout: 5s
workers: {workers}
pipelines:
  - name: telemetry
    source:
      tcp: 127.0.0.1:0
    schema: {schema}
    time_field: timestamp
    time_unit: s
    time_max_age: off          # the workload's hours are 2025-09-02
    compaction: manual         # ingest only: no Parquet during the run
    fsync: {fsync}
"""

SYSLOG_NG_CONF = """\
@version: 3.38
# generated by bench/ingest/harness.py: the research's syslog-ng peer
# (shared/research/peers-measured-here.md 4.2), hour files in weir's layout.
options {{
    threaded(yes); use-dns(no); dns-cache(no); use-fqdn(no);
    stats-freq(0); mark-freq(0); create-dirs(yes); chain-hostnames(no);
    log-fifo-size(1000000); time-reopen(1);
}};
source s_net {{
    network(ip("127.0.0.1") port({port}) transport("tcp") flags(no-parse)
            max-connections(100) log-iw-size(1000000) log-msg-size(65536));
}};
parser p_json {{ json-parser(prefix(".json.")); }};
filter f_model {{
    match("^-?[0-9]+$" value(".json.timestamp"))
    and match("^-?[0-9]+$" value(".json.sensor_id"))
    and "${{.json.measurement.kind}}" eq "Temperature"
    and ("${{.json.measurement.unit}}" eq "Celcius"
         or "${{.json.measurement.unit}}" eq "Fahrenheit")
    and "${{.json.measurement.value}}" ne ""
}};
parser p_time {{
    date-parser(format("%s") template("${{.json.timestamp}}") time-zone("UTC"));
}};
destination d_hours {{
    file("{data}/date=${{S_YEAR}}-${{S_MONTH}}-${{S_DAY}}/hour=${{S_HOUR}}/syslog-ng.ndjson"
         template("${{MSG}}\\n") time-zone("UTC") create-dirs(yes));
}};
log {{
    source(s_net); parser(p_json); filter(f_model); parser(p_time);
    destination(d_hours); flags(flow-control);
}};
"""


def start_weir(a, rundir, datadir, fsync, workers=None):
    cfg = os.path.join(rundir, "weir.yaml")
    with open(cfg, "w") as f:
        f.write(WEIR_YAML.format(data=datadir, schema=os.path.abspath(a.schema),
                                 fsync=fsync, workers=workers or a.weir_workers))
    log = os.path.join(rundir, "weir.log")
    proc = subprocess.Popen([a.weir, "serve", "-c", cfg], stdin=subprocess.DEVNULL,
                            stdout=open(log, "w"), stderr=subprocess.STDOUT)

    def port():
        for line in file_text(log).splitlines():
            if "telemetry: listening on 127.0.0.1:" in line:
                return int(line.split("127.0.0.1:")[1].split()[0])
        return None
    p = wait_for(lambda: port() or proc.poll() is not None, 15)
    if not isinstance(p, int) or isinstance(p, bool):
        proc.kill()
        raise RuntimeError("weir did not start: %s" % file_text(log)[-300:])
    return proc, p, {"out": os.path.join(datadir, "telemetry", "raw"),
                     "quarantine": os.path.join(datadir, "telemetry", "quarantine"),
                     "log": log}


def start_syslog_ng(a, rundir, datadir):
    port = free_port()
    cfg = os.path.join(rundir, "syslog-ng.conf")
    with open(cfg, "w") as f:
        f.write(SYSLOG_NG_CONF.format(port=port, data=datadir))
    log = os.path.join(rundir, "syslog-ng.log")
    proc = subprocess.Popen(
        [a.syslog_ng, "-F", "-e", "--no-caps", "-f", cfg,
         "-R", os.path.join(rundir, "syslog-ng.persist"),
         "-p", os.path.join(rundir, "syslog-ng.pid"),
         "-c", os.path.join(rundir, "syslog-ng.ctl")],
        stdin=subprocess.DEVNULL, stdout=open(log, "w"), stderr=subprocess.STDOUT)
    ok = wait_for(lambda: "Accepting connections" in file_text(log)
                  or proc.poll() is not None, 15)
    if not ok or proc.poll() is not None:
        proc.kill()
        raise RuntimeError("syslog-ng did not start: %s" % file_text(log)[-300:])
    return proc, port, {"out": datadir, "log": log}


def start_python(a, rundir, datadir, uvloop):
    pf = os.path.join(rundir, "port")
    log = os.path.join(rundir, "python-seed.log")
    cmd = [PY, os.path.join(HERE, "python_seed.py"), "--data", datadir,
           "--port", "0", "--port-file", pf]
    if uvloop:
        cmd.append("--uvloop")
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=open(log, "w"),
                            stderr=subprocess.STDOUT)
    ok = wait_for(lambda: os.path.exists(pf) or proc.poll() is not None, 15)
    if not ok or proc.poll() is not None:
        proc.kill()
        raise RuntimeError("python_seed.py did not start: %s" % file_text(log)[-300:])
    return proc, int(file_text(pf)), {"out": datadir, "log": log}


def start_sink(a, rundir, conns):
    pf = os.path.join(rundir, "port")
    log = os.path.join(rundir, "sink.json")
    proc = subprocess.Popen([os.path.join(a.tools, "sink"), "--port-file", pf,
                             "--conns", str(conns), "--timeout", "300"],
                            stdin=subprocess.DEVNULL, stdout=open(log, "w"),
                            stderr=subprocess.STDOUT)
    ok = wait_for(lambda: os.path.exists(pf) or proc.poll() is not None, 15)
    if not ok or proc.poll() is not None:
        proc.kill()
        raise RuntimeError("sink did not start")
    return proc, int(file_text(pf)), {"log": log}


def peer_missing(a, peer):
    """Why peer cannot run here, or None."""
    if peer.startswith("weir") and not os.access(a.weir, os.X_OK):
        return "%s not built" % a.weir
    if peer == "syslog-ng" and not a.syslog_ng:
        return "syslog-ng not installed (scripts/install-deps.sh bench)"
    if peer.startswith("python-seed"):
        mods = "pydantic, uvloop" if peer.endswith("uvloop") else "pydantic"
        r = subprocess.run([PY, "-c", "import %s, sys; sys.exit(pydantic.VERSION[0] != '1')" % mods],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if r.returncode:
            return ("Debian's python3-pydantic 1.x%s missing (scripts/install-deps.sh bench)"
                    % (" or python3-uvloop" if "uvloop" in mods else ""))
    return None


# --- one run ------------------------------------------------------------------

def one_run(a, peer, conns, records, rep, source):
    name = "%s-c%d-r%d" % (peer, conns, rep)
    rundir = os.path.join(a.workdir, "runs", name)
    datadir = os.path.join(a.tmp, name)
    shutil.rmtree(rundir, ignore_errors=True)
    shutil.rmtree(datadir, ignore_errors=True)
    os.makedirs(rundir)
    os.makedirs(datadir)
    manifest = os.path.join(rundir, "manifest.json")
    res = {"peer": peer, "conns": conns, "rep": rep, "records": records,
           "problems": [], "ok": False}
    try:
        if peer in ("weir", "weir-1000"):
            proc, port, outs = start_weir(a, rundir, datadir, "group")
        elif peer.startswith("weir-1000-w"):
            proc, port, outs = start_weir(a, rundir, datadir, "group",
                                          peer[len("weir-1000-w"):])
        elif peer == "weir-always":
            proc, port, outs = start_weir(a, rundir, datadir, "always")
        elif peer == "weir-never":
            proc, port, outs = start_weir(a, rundir, datadir, "never")
        elif peer == "syslog-ng":
            proc, port, outs = start_syslog_ng(a, rundir, datadir)
        elif peer.startswith("python-seed"):
            proc, port, outs = start_python(a, rundir, datadir, peer.endswith("uvloop"))
        elif peer == "sink":
            proc, port, outs = start_sink(a, rundir, conns)
        else:
            raise RuntimeError("unknown peer")
    except RuntimeError as e:
        res["problems"].append(str(e))
        return res

    watch = Watch(proc.pid)
    watch.sample()
    cpu0 = (watch.cpu or 0) / CLK_TCK
    watch.start()
    lg_cmd = [os.path.join(a.tools, "loadgen"), "--port", str(port),
              "--conns", str(conns), "--records", str(records),
              "--invalid-frac", "0.05", "--hours", "3", "--seed", "1",
              "--manifest", manifest, "--timeout", str(a.timeout)]
    if a.t0:
        lg_cmd += ["--t0", str(a.t0)]
    lg = subprocess.run(lg_cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    t_lg = time.time()
    with open(os.path.join(rundir, "loadgen.json"), "wb") as f:
        f.write(lg.stdout + lg.stderr)
    try:
        rep_lg = json.loads(lg.stdout)
    except ValueError:
        rep_lg = {}
    if lg.returncode != 0:
        res["problems"].append("loadgen exit %d: %s" % (
            lg.returncode, lg.stderr.decode(errors="replace").strip()[:200]))
    first = rep_lg.get("first_byte_unix") or t_lg
    res.update(bytes=rep_lg.get("bytes"), valid=rep_lg.get("valid"),
               invalid=rep_lg.get("invalid"), sent_by_s=rep_lg.get("sent_by_s"),
               drain_s=rep_lg.get("drain_s"), gen_s=rep_lg.get("gen_s"))

    if peer == "sink":
        # It stops by itself after the last connection closed: its time is
        # loadgen's drain (first byte to the last close by the receiver).
        got = reap(proc, 60)
        watch.stop()
        if got is None:
            proc.kill()
            reap(proc, 10)
            res["problems"].append("sink did not stop")
            return res
        status, ru, _ = got
        res.update(durable_s=rep_lg.get("drain_s"), exit=status,
                   cpu_s=ru.ru_utime + ru.ru_stime - cpu0,
                   rss_kib=watch.hwm_kib, ok=status == 0 and not res["problems"],
                   verified=False)
        return res

    # Idle: loadgen is done and the CPU time has stood still for IDLE_S.
    idle = wait_for(lambda: proc.poll() is not None or
                    time.time() - max(watch.last_move, t_lg) >= IDLE_S, a.idle_timeout)
    if not idle:
        res["problems"].append("still busy %d s after loadgen finished" % a.idle_timeout)
    last_move = watch.last_move
    t_term = time.time()
    if proc.poll() is None or proc.returncode is None:
        try:
            os.kill(proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
    got = reap(proc, 60)
    watch.stop()
    if got is None:
        proc.kill()
        reap(proc, 10)
        res["problems"].append("did not exit within 60 s of SIGTERM")
        res["exit"] = None
    else:
        status, ru, t_exit = got
        res["exit"] = status
        if status != 0:
            res["problems"].append("exit status %d after SIGTERM" % status)
        res["cpu_s"] = (ru.ru_utime + ru.ru_stime if ru else (watch.cpu or 0) / CLK_TCK) - cpu0
        res["durable_s"] = max(last_move, first) - first + (t_exit - t_term)
        res["shutdown_s"] = t_exit - t_term
    res["rss_kib"] = watch.hwm_kib

    # Check the output.
    if os.path.exists(manifest):
        try:
            v = verifier.verify(manifest, outs["out"], outs.get("quarantine"),
                                source if peer.startswith("python-seed") else None,
                                os.path.join(a.tools, "linesum"))
        except Exception as e:  # a broken output is a FAIL row, not a crash
            v = {"ok": False, "problems": ["verify: %r" % e]}
        res["verify"] = {k: v.get(k) for k in ("ok", "files", "lines", "lost", "dup",
                                                "extra", "leaked", "quarantined",
                                                "canonical")}
        res["problems"] += v["problems"]
        res["verified"] = True
    else:
        res["problems"].append("no manifest from loadgen")
    if peer.startswith("weir"):
        for line in file_text(outs["log"]).splitlines():
            if "records (" in line and "quarantined" in line:
                res["weir_counters"] = line.split(" info  ", 1)[-1]
    res["ok"] = not res["problems"]
    if not a.keep_output:
        shutil.rmtree(datadir, ignore_errors=True)
    return res


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", required=True)
    ap.add_argument("--workdir", required=True)
    ap.add_argument("--tmp", required=True)
    ap.add_argument("--schema", required=True)
    ap.add_argument("--weir", required=True)
    ap.add_argument("--tools", required=True)
    ap.add_argument("--syslog-ng", default=shutil.which("syslog-ng") or
                    (os.path.exists("/usr/sbin/syslog-ng") and "/usr/sbin/syslog-ng") or "")
    ap.add_argument("--peers", default="weir,syslog-ng,python-seed,python-seed-uvloop,sink")
    ap.add_argument("--conns", default="1,50")
    ap.add_argument("--records", type=int, default=2000000)
    ap.add_argument("--py-records", type=int, default=200000)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--mem-conns", type=int, default=1000)
    ap.add_argument("--always-records", type=int, default=20000)
    ap.add_argument("--t0", type=int, default=0)
    ap.add_argument("--weir-workers", default="auto")
    ap.add_argument("--timeout", type=int, default=300)
    ap.add_argument("--idle-timeout", type=int, default=120)
    ap.add_argument("--keep-output", action="store_true")
    a = ap.parse_args()

    peers = [p for p in a.peers.split(",") if p]
    conns_list = [int(c) for c in a.conns.split(",") if c]
    os.makedirs(a.workdir, exist_ok=True)
    os.makedirs(a.tmp, exist_ok=True)

    # The Python peers' output is checked by value against the stream gen
    # writes for the same options.
    source = None
    if any(p.startswith("python-seed") for p in peers):
        source = os.path.join(a.workdir, "telemetry-%d-s1.ndjson" % a.py_records)
        cmd = [os.path.join(a.tools, "gen"), "--records", str(a.py_records),
               "--invalid-frac", "0.05", "--hours", "3", "--seed", "1"]
        if a.t0:
            cmd += ["--t0", str(a.t0)]
        with open(source, "wb") as f:
            subprocess.run(cmd, stdout=f, stderr=subprocess.DEVNULL, check=True)

    plan = []
    for rep in range(1, a.reps + 1):
        for conns in conns_list:
            for peer in peers:
                if peer == "weir-always" or peer.startswith("weir-1000"):
                    continue
                n = a.py_records if peer.startswith("python-seed") else a.records
                plan.append((peer, conns, n, rep))
            if "weir-always" in peers and rep == 1 and a.always_records:
                plan.append(("weir-always", conns, a.always_records, rep))
        for peer in peers:
            if peer.startswith("weir-1000") and a.mem_conns:
                plan.append((peer, a.mem_conns, a.records, rep))

    skipped = {}
    with open(a.runs, "a") as out:
        for peer, conns, n, rep in plan:
            if peer not in skipped:
                skipped[peer] = peer_missing(a, peer)
                if skipped[peer]:
                    sys.stderr.write("ingest: %s: skipped: %s\n" % (peer, skipped[peer]))
                    out.write(json.dumps({"peer": peer, "skipped": skipped[peer]}) + "\n")
                    out.flush()
            if skipped[peer]:
                continue
            t = time.time()
            res = one_run(a, peer, conns, n, rep, source)
            res["load"] = open("/proc/loadavg").read().split()[0]
            out.write(json.dumps(res) + "\n")
            out.flush()
            rate = n / res["durable_s"] if res.get("durable_s") else 0
            sys.stderr.write("ingest: %-18s c%-4d r%d %9d rec %7.2f s %10.0f rec/s "
                             "cpu %6.2f s rss %5.1f MiB %s (%.0f s)\n" % (
                                 peer, conns, rep, n, res.get("durable_s") or 0, rate,
                                 res.get("cpu_s") or 0, (res.get("rss_kib") or 0) / 1024,
                                 "OK" if res["ok"] else "FAIL: " + "; ".join(res["problems"])[:200],
                                 time.time() - t))
    return 0


if __name__ == "__main__":
    sys.exit(main())
