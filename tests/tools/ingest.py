#!/usr/bin/env python3
"""ingest.py - generate, send and check records for the `weir serve` tests.

The integration tests (tests/integration/serve_*.sh) drive the real server
over real sockets with this one tool, python3 standard library only:

  gen     write what each connection will send (DIR/c<N>.ndjson) and what
          must come out of it (expectation lines appended to DIR/expect)
  send    send one file over one connection, whole, byte by byte, each
          line split in two at a moving position, or in random chunks;
          then half-close and wait for the server to close (it has read
          everything then)
  conns   send every DIR/c*.ndjson over its own connection, all open at
          once, interleaved in random chunks
  flood   N connections sending numbered records as fast as the server
          reads them, until a duration ends (then close cleanly) or the
          server dies; writes how many whole records each one sent
  nonl    a record, then BYTES bytes without a newline, then a newline and
          a record: the server must stay small while it reads them
  check   compare what landed (raw segments per partition, quarantine by
          reason) with the expectations: exactly, as multisets
  prefix  crash invariants: every raw line whole and valid, no duplicate,
          per connection the records landed are 0..k-1 of what it sent
  whole   every segment file, active ones too, holds whole lines only
  expect  append one expectation line (for hand-made cases)
  metric  print one value of a Prometheus /metrics page

Records are {"ts":T,"c":C,"s":S,"p":"..."}: event time in seconds, the
connection number and the record's sequence number on that connection,
so any loss, duplicate, hole or reordering is visible. The schema the
tests configure (schema_json()) requires c and s to be integers and ts to
be an integer or a string, so the time field can be missing or unparsable
without failing the schema.

Expectation lines (JSON, one per line):
  {"k":"raw","part":"2025-09-02T10","line":"..."}        a valid record
  {"k":"q","reason":"invalid","path":"/c","raw":"..."}   a quarantined one
  (path null: not checked)
"""
import argparse
import base64
import collections
import datetime
import glob
import json
import os
import random
import re
import selectors
import socket
import sys
import time

SCHEMA = {
    "type": "object",
    "required": ["c", "s"],
    "properties": {
        "ts": {"type": ["integer", "string"]},
        "c": {"type": "integer"},
        "s": {"type": "integer"},
        "p": {"type": "string"},
    },
}


def schema_json():
    return json.dumps(SCHEMA)


def hour_of(ts):
    t = datetime.datetime.fromtimestamp(ts, datetime.timezone.utc)
    return t.strftime("%Y-%m-%dT%H")


def record(ts, c, s, pad=0):
    r = '{"ts":%d,"c":%d,"s":%d' % (ts, c, s)
    if pad:
        r += ',"p":"%s"' % ("abcdefghij" * (pad // 10 + 1))[:pad]
    return r + "}"


def exp_raw(line, ts):
    return json.dumps({"k": "raw", "part": hour_of(ts), "line": line})


def exp_q(reason, raw, path=None):
    return json.dumps({"k": "q", "reason": reason, "path": path, "raw": raw})


# ---- gen ------------------------------------------------------------------

INVALID_KINDS = ["notjson", "type", "time_missing", "time_unparsable",
                 "time_out_of_range", "too_large"]


def invalid_record(kind, ts, c, s, max_record, now):
    """An invalid record of the given kind and what quarantine must hold."""
    if kind == "notjson":
        r = '{"ts":%d,"c":%d,"s":%d' % (ts, c, s)
        return r, exp_q("invalid", r, "")
    if kind == "type":
        r = '{"ts":%d,"c":"%d","s":%d}' % (ts, c, s)
        return r, exp_q("invalid", r, "/c")
    if kind == "time_missing":
        r = '{"c":%d,"s":%d}' % (c, s)
        return r, exp_q("time_missing", r, "")
    if kind == "time_unparsable":
        r = '{"ts":"soon","c":%d,"s":%d}' % (c, s)
        return r, exp_q("time_unparsable", r, "")
    if kind == "time_out_of_range":
        r = record(now + 10 * 86400 + s, c, s)
        return r, exp_q("time_out_of_range", r, "")
    if kind == "too_large":
        r = record(ts, c, s, pad=max_record + 100)
        return r, exp_q("too_large", r[:max_record], "")
    raise ValueError(kind)


def cmd_gen(a):
    rng = random.Random(a.seed)
    os.makedirs(a.out, exist_ok=True)
    exp = open(os.path.join(a.out, "expect"), "a")
    span = a.hours * 3600
    now = a.now if a.now else a.start + span
    total = valid = 0
    for i in range(a.conns):
        c = a.cid_base + i
        parts = []
        for s in range(a.records):
            ts = a.start + rng.randrange(span)
            if rng.random() < a.invalid:
                kind = rng.choice(INVALID_KINDS)
                r, e = invalid_record(kind, ts, c, s, a.max_record, now)
            else:
                r = record(ts, c, s, rng.randrange(a.pad + 1) if a.pad else 0)
                e = exp_raw(r, ts)
                valid += 1
            exp.write(e + "\n")
            if rng.random() < a.empty:
                parts.append(rng.choice(["\n", "\r\n"]))
            parts.append(r + ("\r\n" if rng.random() < a.crlf else "\n"))
            total += 1
        data = "".join(parts)
        if a.no_final_newline and data.endswith("\n"):
            data = data[:-2] if data.endswith("\r\n") else data[:-1]
        with open(os.path.join(a.out, "c%06d.ndjson" % c), "w") as f:
            f.write(data)
    exp.close()
    print("generated %d records (%d valid) for %d connections" % (total, valid, a.conns))


# ---- sending ----------------------------------------------------------------

def connect(port, timeout=10.0):
    deadline = time.monotonic() + timeout
    while True:
        try:
            s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            return s
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def wait_close(sock, timeout):
    """Half-close and read until the server closes: then it read it all."""
    sock.shutdown(socket.SHUT_WR)
    sock.settimeout(timeout)
    try:
        while sock.recv(4096):
            pass
    except socket.timeout:
        print("the server did not close the connection within %.0f s" % timeout,
              file=sys.stderr)
        return False
    except OSError:
        pass
    return True


def rss_kb(pid):
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


class RssWatch:
    def __init__(self, pid):
        self.pid = pid
        self.start = rss_kb(pid) if pid else 0
        self.max = self.start
        self.last = 0.0

    def sample(self, force=False):
        if not self.pid:
            return
        t = time.monotonic()
        if force or t - self.last > 0.02:
            self.last = t
            self.max = max(self.max, rss_kb(self.pid))

    def report(self):
        if self.pid:
            self.sample(True)
            print("rss_start_kb=%d rss_max_kb=%d" % (self.start, self.max))


def cmd_send(a):
    data = open(a.file, "rb").read()
    rng = random.Random(a.seed)
    sock = connect(a.port)
    sock.settimeout(a.timeout)  # a server applying backpressure blocks us
    if a.mode == "whole":
        sock.sendall(data)
    elif a.mode == "bytes":
        for i in range(len(data)):
            sock.send(data[i:i + 1])
            if a.gap:
                time.sleep(a.gap / 1000.0)
    elif a.mode == "split":
        # Line j is cut at byte j % len + 1, with a pause between the two
        # pieces: the server gets every cut position of every line length.
        lines = data.splitlines(keepends=True)
        for j, line in enumerate(lines):
            k = j % len(line) + 1
            sock.sendall(line[:k])
            time.sleep(a.gap / 1000.0)
            sock.sendall(line[k:])
    elif a.mode == "random":
        i = 0
        while i < len(data):
            n = rng.randint(1, a.chunk)
            sock.sendall(data[i:i + n])
            i += n
            if rng.random() < 0.05:
                time.sleep(0.001)
    if a.abort:
        sock.close()  # FIN without waiting: a sender that just goes away
        return 0
    return 0 if wait_close(sock, a.timeout) else 1


def cmd_nonl(a):
    """A valid record, BYTES without newline, '\\n', a valid record."""
    watch = RssWatch(a.watch_pid)
    sock = connect(a.port)
    sock.sendall((record(a.ts, a.cid, 0) + "\n").encode())
    chunk = b"x" * 65536
    left = a.bytes
    while left > 0:
        n = min(left, len(chunk))
        sock.sendall(chunk[:n])
        left -= n
        watch.sample()
    sock.sendall(("\n" + record(a.ts, a.cid, 1) + "\n").encode())
    ok = wait_close(sock, a.timeout)
    watch.report()
    return 0 if ok else 1


def cmd_conns(a):
    """All files of DIR over their own connections, open at the same time."""
    rng = random.Random(a.seed)
    files = sorted(glob.glob(os.path.join(a.dir, "c*.ndjson")))
    conns = []
    for f in files:
        s = connect(a.port)
        s.setblocking(False)
        conns.append({"sock": s, "data": open(f, "rb").read(), "off": 0,
                      "state": "send"})
    print("connected %d" % len(conns), flush=True)
    sel = selectors.DefaultSelector()
    # First half of every connection, then wait for the go file if asked:
    # the test can look at the server with all connections open mid-record.
    for c in conns:
        half = len(c["data"]) // 2
        c["sock"].setblocking(True)
        c["sock"].sendall(c["data"][:half])
        c["sock"].setblocking(False)
        c["off"] = half
    if a.go_file:
        deadline = time.monotonic() + 60
        while not os.path.exists(a.go_file) and time.monotonic() < deadline:
            time.sleep(0.02)
    for c in conns:
        sel.register(c["sock"], selectors.EVENT_WRITE, c)
    open_ = len(conns)
    deadline = time.monotonic() + a.timeout
    while open_ and time.monotonic() < deadline:
        for key, ev in sel.select(timeout=1.0):
            c = key.data
            s = c["sock"]
            if c["state"] == "send":
                n = rng.randint(1, a.chunk)
                try:
                    c["off"] += s.send(c["data"][c["off"]:c["off"] + n])
                except BlockingIOError:
                    continue
                if c["off"] >= len(c["data"]):
                    s.shutdown(socket.SHUT_WR)
                    c["state"] = "wait"
                    sel.modify(s, selectors.EVENT_READ, c)
            else:
                try:
                    got = s.recv(4096)
                except BlockingIOError:
                    continue
                except OSError:
                    got = b""
                if not got:
                    sel.unregister(s)
                    s.close()
                    open_ -= 1
    if open_:
        print("%d connections not closed by the server in time" % open_, file=sys.stderr)
        return 1
    print("sent %d connections" % len(conns))
    return 0


def cmd_flood(a):
    """Numbered records on N connections until the duration ends or the
    server goes away; the log says how many whole records each sent."""
    rng = random.Random(a.seed)
    sel = selectors.DefaultSelector()
    conns = []
    for i in range(a.conns):
        try:
            s = connect(a.port, timeout=5)
        except OSError as e:
            print("connect: %s" % e, file=sys.stderr)
            break
        s.setblocking(False)
        c = {"sock": s, "c": a.cid_base + i, "next": 0, "sent": 0,
             "buf": b"", "ends": collections.deque(), "base": 0, "done": False}
        conns.append(c)
        sel.register(s, selectors.EVENT_WRITE, c)
    span = a.hours * 3600
    t_end = time.monotonic() + a.duration
    pause = a.pause / 1000.0

    def refill(c):
        # A batch of records; remember where each ends in the stream.
        parts = []
        pos = c["base"] + len(c["buf"])
        for _ in range(a.batch):
            r = (record(a.start + rng.randrange(span), c["c"], c["next"], a.pad) +
                 "\n").encode()
            c["next"] += 1
            pos += len(r)
            c["ends"].append(pos)
            parts.append(r)
        c["buf"] += b"".join(parts)

    live = len(conns)
    while live and time.monotonic() < t_end:
        events = sel.select(timeout=0.2)
        for key, ev in events:
            c = key.data
            if not c["buf"]:
                refill(c)
            try:
                n = c["sock"].send(c["buf"])
            except BlockingIOError:
                continue
            except OSError:
                sel.unregister(c["sock"])
                c["sock"].close()
                c["done"] = True
                live -= 1
                continue
            c["buf"] = c["buf"][n:]
            c["base"] += n
            while c["ends"] and c["ends"][0] <= c["base"]:
                c["ends"].popleft()
                c["sent"] += 1
        if pause:
            time.sleep(pause)
    # Duration over: finish the record in flight, then close cleanly.
    clean = 0
    for c in conns:
        if c["done"]:
            continue
        s = c["sock"]
        sel.unregister(s)
        s.setblocking(True)
        s.settimeout(a.timeout)
        try:
            if c["ends"]:
                # Send up to the end of the record being sent, no further.
                rest = c["ends"][0] - c["base"]
                s.sendall(c["buf"][:rest])
                c["sent"] += 1
            if wait_close(s, a.timeout):
                clean += 1
        except OSError:
            pass
        s.close()
    with open(a.sent_log, "a") as f:
        for c in conns:
            f.write("%d %d\n" % (c["c"], c["sent"]))
    print("flood: %d connections, %d records sent, %d closed cleanly" %
          (len(conns), sum(c["sent"] for c in conns), clean))
    return 0


# ---- reading what landed ----------------------------------------------------

def part_of(path):
    """'.../date=2025-09-02/hour=10/x.ndjson' -> '2025-09-02T10'."""
    d = h = None
    for comp in path.split(os.sep):
        if comp.startswith("date="):
            d = comp[5:]
        elif comp.startswith("hour="):
            h = comp[5:]
    return d + ("T" + h if h is not None else "")


def segments(data, pipe, kind):
    root = os.path.join(data, pipe, kind)
    out = []
    for dirpath, dirs, files in os.walk(root):
        dirs[:] = [d for d in dirs if not d.startswith("_")]
        for f in files:
            if f.endswith(".ndjson") or f.endswith(".ndjson.open"):
                out.append(os.path.join(dirpath, f))
    return sorted(out)


class Problems:
    def __init__(self):
        self.n = 0

    def __call__(self, msg):
        self.n += 1
        if self.n <= 20:
            print("  " + msg)
        elif self.n == 21:
            print("  ...")


def read_lines(path, bad):
    """The lines of a segment; a torn or NUL-holding file is a problem."""
    data = open(path, "rb").read()
    if data and not data.endswith(b"\n"):
        bad("%s: last line not whole (%d bytes after the last newline)" %
            (path, len(data) - data.rfind(b"\n") - 1))
    if b"\0" in data:
        bad("%s: NUL byte at %d" % (path, data.index(b"\0")))
    return [l.decode("utf-8", "replace") for l in data.split(b"\n")[:-1]] if data else []


def quarantined(data, pipe, bad):
    out = []
    for p in segments(data, pipe, "quarantine"):
        for line in read_lines(p, bad):
            try:
                q = json.loads(line)
            except ValueError:
                bad("%s: quarantine line is not JSON: %.80s" % (p, line))
                continue
            if "raw" in q:
                raw = q["raw"]
            else:
                raw = base64.b64decode(q["raw_b64"]).decode("utf-8", "replace")
            out.append((q, raw))
    return out


def check_open(data, pipe, bad):
    for kind in ("raw", "quarantine"):
        for p in segments(data, pipe, kind):
            if p.endswith(".open"):
                bad("%s: still active (not sealed)" % p)


def cmd_check(a):
    bad = Problems()
    want_raw = collections.Counter()
    want_q = collections.Counter()
    want_path = {}
    for f in a.expect:
        for line in open(f):
            e = json.loads(line)
            if e["k"] == "raw":
                want_raw[(e["part"], e["line"])] += 1
            else:
                want_q[(e["reason"], e["raw"])] += 1
                if e.get("path") is not None:
                    want_path[(e["reason"], e["raw"])] = e["path"]
    got_raw = collections.Counter()
    for p in segments(a.data, a.pipeline, "raw"):
        part = part_of(p)
        for line in read_lines(p, bad):
            got_raw[(part, line)] += 1
    got_q = collections.Counter()
    for q, raw in quarantined(a.data, a.pipeline, bad):
        key = (q["reason"], raw)
        got_q[key] += 1
        if key in want_path and q.get("path") != want_path[key]:
            bad("quarantine %s %.60s: path %r, expected %r" %
                (q["reason"], raw, q.get("path"), want_path[key]))
        if q["reason"] == "too_large" and q.get("truncated") is not True:
            bad("quarantine too_large %.60s: not marked truncated" % raw)
        if "size" in q and not q["size"] > len(raw):
            bad("quarantine %s %.60s: size %r, but %d bytes were kept" %
                (q["reason"], raw, q["size"], len(raw)))
        if q.get("pipeline") != a.pipeline:
            bad("quarantine line names pipeline %r" % q.get("pipeline"))
    for (part, line), n in (want_raw - got_raw).items():
        bad("missing from raw %s (%d time(s)): %.100s" % (part, n, line))
    for (part, line), n in (got_raw - want_raw).items():
        bad("unexpected in raw %s (%d time(s)): %.100s" % (part, n, line))
    for (reason, raw), n in (want_q - got_q).items():
        bad("missing from quarantine (%s, %d time(s)): %.100s" % (reason, n, raw))
    for (reason, raw), n in (got_q - want_q).items():
        bad("unexpected in quarantine (%s, %d time(s)): %.100s" % (reason, n, raw))
    if a.sealed:
        check_open(a.data, a.pipeline, bad)
    hours = len({p for p, _ in got_raw})
    reasons = collections.Counter(r for r, _ in got_q.elements())
    print("raw: %d records in %d partitions (expected %d); quarantine: %d %s" %
          (sum(got_raw.values()), hours, sum(want_raw.values()), sum(got_q.values()),
           dict(sorted(reasons.items()))))
    if a.hours is not None and hours != a.hours:
        bad("%d partitions, expected %d" % (hours, a.hours))
    print("check: %s" % ("ok" if bad.n == 0 else "%d problem(s)" % bad.n))
    return 0 if bad.n == 0 else 1


TORN_ID = re.compile(r'^\{"ts":\d+,"c":(\d+),"s":(\d+)[,}]')


def cmd_prefix(a):
    bad = Problems()
    sent = {}
    for f in a.sent:
        for line in open(f):
            c, n = line.split()
            sent[int(c)] = int(n)
    seen = collections.defaultdict(list)
    total = 0
    for p in segments(a.data, a.pipeline, "raw"):
        part = part_of(p)
        for line in read_lines(p, bad):
            try:
                r = json.loads(line)
                ts, c, s = r["ts"], r["c"], r["s"]
            except (ValueError, KeyError, TypeError):
                bad("%s: not a whole record: %.80s" % (p, line))
                continue
            if hour_of(ts) != part:
                bad("%s: record of %s in partition %s" % (p, hour_of(ts), part))
            seen[c].append(s)
            total += 1
    per_round = collections.Counter()
    for c, ss in seen.items():
        ss.sort()
        k = len(ss)
        if len(set(ss)) != k:
            bad("connection %d: %d duplicate record(s)" % (c, k - len(set(ss))))
        elif ss != list(range(k)):
            hole = next(i for i, s in enumerate(ss) if s != i)
            bad("connection %d: hole: record %d missing, %d landed up to %d" %
                (c, hole, k, ss[-1]))
        if c not in sent:
            bad("connection %d: landed %d records but is in no sent log" % (c, k))
        elif k > sent[c]:
            bad("connection %d: %d records landed, only %d sent" % (c, k, sent[c]))
        elif a.exact and k != sent[c]:
            bad("connection %d: %d records landed of %d sent" % (c, k, sent[c]))
        per_round[c // a.round_size] += k
    if a.exact:
        for c, n in sent.items():
            if n and c not in seen:
                bad("connection %d: none of its %d records landed" % (c, n))
    reasons = collections.Counter()
    for q, raw in quarantined(a.data, a.pipeline, bad):
        reasons[q["reason"]] += 1
        if q["reason"] not in a.allow:
            bad("quarantined (%s): %.80s" % (q["reason"], raw))
        m = TORN_ID.match(raw)
        if q["reason"] == "torn" and m:
            # The torn tail of a connection's stream is the record right
            # after the ones that landed, never one already landed.
            c, s = int(m.group(1)), int(m.group(2))
            if s != len(seen.get(c, [])):
                bad("torn record c=%d s=%d, but %d records of c landed" %
                    (c, s, len(seen.get(c, []))))
    if a.sealed:
        check_open(a.data, a.pipeline, bad)
    if a.rounds_out:
        with open(a.rounds_out, "w") as f:
            for r in sorted(per_round):
                f.write("%d %d\n" % (r, per_round[r]))
    print("prefix: %d records from %d connections landed, %d sent; quarantine %s" %
          (total, len(seen), sum(sent.values()), dict(reasons)))
    print("prefix: %s" % ("ok" if bad.n == 0 else "%d problem(s)" % bad.n))
    return 0 if bad.n == 0 else 1


def cmd_whole(a):
    """Every segment file (active ones too) holds whole lines only. A
    writer cuts a failed write back at once: look twice before blaming."""
    bad = Problems()
    files = 0
    for kind in ("raw", "quarantine"):
        for p in segments(a.data, a.pipeline, kind):
            files += 1
            try:
                data = open(p, "rb").read()
            except FileNotFoundError:
                continue  # sealed (renamed) meanwhile
            if data and not data.endswith(b"\n"):
                time.sleep(0.05)
                try:
                    data = open(p, "rb").read()
                except FileNotFoundError:
                    continue
                if data and not data.endswith(b"\n"):
                    bad("%s: ends in a partial line" % p)
    print("whole: %d segment files, %s" % (files, "ok" if not bad.n else "%d bad" % bad.n))
    return 0 if bad.n == 0 else 1


def cmd_expect(a):
    """Append one expectation: a valid line (its partition from its ts), or
    a quarantined record with its reason."""
    with open(a.out, "a") as f:
        if a.reason is None:
            f.write(exp_raw(a.text, json.loads(a.text)["ts"]) + "\n")
        else:
            f.write(exp_q(a.reason, a.text, a.path) + "\n")
    return 0


def cmd_metric(a):
    """The value of NAME{pipeline="P"} (or NAME alone) on a /metrics page."""
    for line in sys.stdin:
        if line.startswith("#"):
            continue
        parts = line.split()
        if len(parts) != 2:
            continue
        name = parts[0]
        want = a.name if not a.pipeline else '%s{pipeline="%s"}' % (a.name, a.pipeline)
        if name == want:
            print(parts[1])
            return 0
    print("0")
    return 1


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)

    g = sub.add_parser("gen")
    g.add_argument("--out", required=True)
    g.add_argument("--conns", type=int, default=1)
    g.add_argument("--records", type=int, default=100)
    g.add_argument("--start", type=int, required=True)
    g.add_argument("--hours", type=int, default=1)
    g.add_argument("--now", type=int, default=0)
    g.add_argument("--cid-base", type=int, default=0)
    g.add_argument("--invalid", type=float, default=0.0)
    g.add_argument("--crlf", type=float, default=0.0)
    g.add_argument("--empty", type=float, default=0.0)
    g.add_argument("--pad", type=int, default=0)
    g.add_argument("--max-record", type=int, default=4096)
    g.add_argument("--no-final-newline", action="store_true")
    g.add_argument("--seed", type=int, default=1)

    s = sub.add_parser("send")
    s.add_argument("port", type=int)
    s.add_argument("file")
    s.add_argument("--mode", choices=["whole", "bytes", "split", "random"], default="whole")
    s.add_argument("--gap", type=float, default=1.0, help="ms between pieces")
    s.add_argument("--chunk", type=int, default=300)
    s.add_argument("--abort", action="store_true")
    s.add_argument("--timeout", type=float, default=60)
    s.add_argument("--seed", type=int, default=1)

    n = sub.add_parser("nonl")
    n.add_argument("port", type=int)
    n.add_argument("--bytes", type=int, required=True)
    n.add_argument("--ts", type=int, required=True)
    n.add_argument("--cid", type=int, default=0)
    n.add_argument("--watch-pid", type=int, default=0)
    n.add_argument("--timeout", type=float, default=60)

    c = sub.add_parser("conns")
    c.add_argument("port", type=int)
    c.add_argument("dir")
    c.add_argument("--chunk", type=int, default=200)
    c.add_argument("--go-file")
    c.add_argument("--timeout", type=float, default=120)
    c.add_argument("--seed", type=int, default=1)

    f = sub.add_parser("flood")
    f.add_argument("port", type=int)
    f.add_argument("--conns", type=int, default=4)
    f.add_argument("--cid-base", type=int, default=0)
    f.add_argument("--start", type=int, required=True)
    f.add_argument("--hours", type=int, default=2)
    f.add_argument("--pad", type=int, default=0)
    f.add_argument("--batch", type=int, default=50)
    f.add_argument("--pause", type=float, default=0.0, help="ms between rounds")
    f.add_argument("--duration", type=float, default=60)
    f.add_argument("--sent-log", required=True)
    f.add_argument("--timeout", type=float, default=60)
    f.add_argument("--seed", type=int, default=1)

    k = sub.add_parser("check")
    k.add_argument("data")
    k.add_argument("pipeline")
    k.add_argument("--expect", action="append", required=True)
    k.add_argument("--sealed", action="store_true")
    k.add_argument("--hours", type=int)

    p = sub.add_parser("prefix")
    p.add_argument("data")
    p.add_argument("pipeline")
    p.add_argument("--sent", action="append", required=True)
    p.add_argument("--allow", action="append", default=["torn"])
    p.add_argument("--sealed", action="store_true")
    p.add_argument("--exact", action="store_true", help="all sent records landed")
    p.add_argument("--round-size", type=int, default=100000)
    p.add_argument("--rounds-out")

    w = sub.add_parser("whole")
    w.add_argument("data")
    w.add_argument("pipeline")

    x = sub.add_parser("expect")
    x.add_argument("out")
    x.add_argument("text")
    x.add_argument("--reason")
    x.add_argument("--path")

    m = sub.add_parser("metric")
    m.add_argument("name")
    m.add_argument("--pipeline")

    sub.add_parser("schema")

    a = ap.parse_args()
    if a.cmd == "schema":
        print(schema_json())
        return 0
    return {"gen": cmd_gen, "send": cmd_send, "nonl": cmd_nonl, "conns": cmd_conns,
            "flood": cmd_flood, "check": cmd_check, "prefix": cmd_prefix,
            "expect": cmd_expect, "whole": cmd_whole, "metric": cmd_metric}[a.cmd](a)


if __name__ == "__main__":
    sys.exit(main())
