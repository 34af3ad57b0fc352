#!/usr/bin/env python3
"""verify.py - check a peer's hourly output against a workload manifest
(stdlib only; the byte work is done by bench/out/linesum).

    verify.py MANIFEST DIR [--quarantine QDIR] [--canonical SOURCE]
              [--linesum PATH] [--json]

DIR holds the peer's valid records, one per line, in files under
.../date=YYYY-MM-DD/hour=HH/... (any file name; folders and files whose name
starts with "_" or "." are the peer's bookkeeping and skipped). For each hour
of the manifest, the lines filed under it must be exactly the valid records
of that hour: same count, same bytes, same checksum (the sum mod 2^64 of
64-bit FNV-1a over each line without its newline, telemetry.h). Since the
checksum is a sum, this checks the multiset of lines whatever their order
and however they are spread over files. Also a problem: a file outside
every hour of the workload, a file in no hour folder, a "*.open" file (a
segment left unsealed).

When an hour does not match, the hour's lines are read again here: lines
that are not valid records under the seed model (the same hand-written
oracle as check_gen.py) are counted by kind as "leaked", taken out of the
sums, and the rest compared again, so the report says whether the valid
records are exact and what leaked. When that still differs, it says how
many lines are missing or extra (a sum cannot say which).

--quarantine QDIR: every line of every file under QDIR is one rejected
record (weir's quarantine); their number must equal the manifest's invalid
count.

--canonical SOURCE: for a peer that writes a re-serialisation of each
record rather than its bytes (the Python seed writes model.json()). SOURCE
is the workload as gen wrote it (same options as the manifest; checked
against it). Each line is compared by value: parsed as JSON and written
back with sorted keys, no spaces, and integral floats as integers (64.00,
64.0 and 64 are one value). The hours are compared as exact multisets of
such lines, which gives lost, duplicated and extra records precisely. The
oracle's view of SOURCE is checked against the manifest first (valid count,
bytes and checksum per hour), so the expected set is the manifest's.

Prints a summary (or, with --json, one JSON object: ok, problems, per-hour
figures, leaked kinds, quarantine count). Exit 0 when everything matches, 1
when not, 2 on usage errors.
"""
import argparse
import collections
import json
import os
import re
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from check_gen import fnv1a, verdict  # noqa: E402

MASK = (1 << 64) - 1
HOUR_RE = re.compile(r"(?:^|/)date=(\d{4})-(\d{2})-(\d{2})/hour=(\d{2})(?:/|$)")

# Lines of exactly this shape are valid records (a strict subset of the
# model: JSON number grammar, printable ASCII strings without escapes), so
# the oracle's full parse runs only on the others.
_NUM = rb"-?(?:0|[1-9][0-9]*)"
FAST_VALID = re.compile(
    rb'\{"timestamp": ' + _NUM + rb', "sensor_id": ' + _NUM +
    rb', "measurement": \{"kind": "Temperature", "value": (?:' + _NUM +
    rb'(?:\.[0-9]+)?(?:[eE][-+]?[0-9]+)?|"[ !#-\[\]-~]*"), '
    rb'"unit": "(?:Celcius|Fahrenheit)"\}\}')


def days_from_civil(y, m, d):
    """Days since 1970-01-01 of a proleptic Gregorian date (no time module,
    no time zone)."""
    y -= m <= 2
    era = (y if y >= 0 else y - 399) // 400
    yoe = y - era * 400
    doy = (153 * (m + (-3 if m > 2 else 9)) + 2) // 5 + d - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146097 + doe - 719468


def hour_start(path):
    """The UTC start (s) of the hour folder path is in, or None."""
    m = HOUR_RE.search(path)
    if not m:
        return None
    y, mo, d, h = (int(x) for x in m.groups())
    return days_from_civil(y, mo, d) * 86400 + h * 3600


def list_files(top):
    out = []
    for dirpath, dirnames, filenames in os.walk(top):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith(("_", ".")))
        for name in sorted(filenames):
            if not name.startswith(("_", ".")):
                out.append(os.path.join(dirpath, name))
    return out


def linesum(tool, paths=None, data=None):
    """[(lines, bytes, checksum)] per path, or one triple for data."""
    if data is not None:
        r = subprocess.run([tool], input=data, stdout=subprocess.PIPE, check=True)
        n, b, c = r.stdout.split()[:3]
        return int(n), int(b), int(c, 16)
    res = []
    for i in range(0, len(paths), 500):
        chunk = paths[i:i + 500]
        r = subprocess.run([tool] + chunk, stdout=subprocess.PIPE, check=False)
        lines = r.stdout.decode("utf-8", "replace").splitlines()
        if len(lines) != len(chunk) or r.returncode != 0:
            raise RuntimeError("linesum failed on %s" % chunk[0])
        for line in lines:
            n, b, c = line.split(" ", 3)[:3]
            res.append((int(n), int(b), int(c, 16)))
    return res


def invalid_kind(line):
    """The telemetry.h kind an invalid line most likely is (for reports)."""
    try:
        text = line.decode("utf-8")
    except UnicodeDecodeError:
        return "bad_utf8"
    try:
        obj = json.loads(text)
    except ValueError:
        t = text.rstrip()
        if ",}" in t:
            return "trailing_comma"
        if t.endswith("}}}"):
            return "extra_brace"
        if t.startswith('{"'):
            return "truncated"
        return "garbage"
    if type(obj) is not dict:
        return "garbage"
    if not obj:
        return "empty_object"
    if "sensor_id" not in obj:
        return "no_sensor_id"
    if "measurement" not in obj:
        return "no_measurement"
    if type(obj.get("timestamp")) is not int:
        return "timestamp_string" if type(obj.get("timestamp")) is str else "timestamp_other"
    if type(obj["sensor_id"]) is not int:
        return "sensor_id_float" if type(obj["sensor_id"]) is float else "sensor_id_other"
    m = obj["measurement"]
    if type(m) is not dict:
        return "measurement_other"
    v = m.get("value")
    if v is None:
        return "value_null"
    if type(v) is dict:
        return "value_object"
    if type(v) is list:
        return "value_array"
    if m.get("unit") not in ("Celcius", "Fahrenheit"):
        return "unit_kelvin"
    if m.get("kind") != "Temperature":
        return "kind_wrong"
    return "other"


def is_valid(line):
    return FAST_VALID.fullmatch(line) is not None or verdict(line) is not None


def _canon(v):
    if type(v) is dict:
        return {k: _canon(x) for k, x in v.items()}
    if type(v) is list:
        return [_canon(x) for x in v]
    if type(v) is float and v.is_integer() and abs(v) < 2 ** 53:
        return int(v)
    return v


def canonical(line):
    """line as compared by value, or None when it is not JSON."""
    try:
        obj = json.loads(line)
    except ValueError:
        return None
    return json.dumps(_canon(obj), sort_keys=True, separators=(",", ":"),
                      ensure_ascii=False).encode("utf-8", "surrogatepass")


def read_lines(paths):
    for p in paths:
        with open(p, "rb") as f:
            for raw in f:
                yield raw[:-1] if raw.endswith(b"\n") else raw


_expected_cache = {}


def expected_canonical(man, source, tool, problems):
    """Per hour, the Counter of canonical lines of the valid records of
    SOURCE, after checking SOURCE against the manifest."""
    key = (os.path.abspath(source), os.path.getmtime(source), man["checksum_all"])
    if key in _expected_cache:
        return _expected_cache[key]
    cfg = man["config"]
    n, b, c = linesum(tool, [source])[0]
    if (n, b, "%016x" % c) != (man["records"], man["bytes"], man["checksum_all"]):
        problems.append("canonical source %s is not the manifest's stream "
                        "(%d lines, %d bytes, %016x)" % (source, n, b, c))
        return None
    hours = [collections.Counter() for _ in range(cfg["hours"])]
    raw_valid = [[] for _ in range(cfg["hours"])]
    for line in read_lines([source]):
        if FAST_VALID.fullmatch(line):
            obj = json.loads(line)
        else:
            obj = verdict(line)
            if obj is None:
                continue
        h = (obj["timestamp"] - cfg["t0"]) // 3600
        hours[h][json.dumps(_canon(obj), sort_keys=True, separators=(",", ":"),
                            ensure_ascii=False).encode("utf-8", "surrogatepass")] += 1
        raw_valid[h].append(line)
    for h, want in enumerate(man["hours"]):
        got = linesum(tool, data=b"".join(x + b"\n" for x in raw_valid[h]))
        if (got[0], got[1], "%016x" % got[2]) != (want["valid"], want["bytes"], want["checksum"]):
            problems.append("hour %d: the oracle's valid records of the source "
                            "differ from the manifest" % h)
            return None
    _expected_cache[key] = hours
    return hours


def verify(manifest, outdir, quarantine=None, canonical_source=None,
           tool=None):
    """Check outdir; returns a dict (ok, problems, hours, leaked, ...)."""
    if tool is None:
        tool = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..",
                            "out", "linesum")
    with open(manifest) as f:
        man = json.load(f)
    cfg = man["config"]
    t0, nh = cfg["t0"], cfg["hours"]
    problems = []
    res = {"ok": False, "problems": problems, "hours": [], "leaked": {},
           "files": 0, "lines": 0, "lost": 0, "dup": 0, "extra": 0,
           "quarantined": None, "canonical": bool(canonical_source)}
    by_hour = [[] for _ in range(nh)]
    files = list_files(outdir) if os.path.isdir(outdir) else []
    if not os.path.isdir(outdir):
        problems.append("no output folder %s" % outdir)
    res["files"] = len(files)
    unsealed = [p for p in files if p.endswith(".open")]
    if unsealed:
        problems.append("%d unsealed file(s) (*.open), e.g. %s" % (
            len(unsealed), os.path.relpath(unsealed[0], outdir)))
    for p in files:
        start = hour_start(os.path.relpath(p, outdir))
        if start is None:
            problems.append("file in no date=/hour= folder: %s" % os.path.relpath(p, outdir))
            continue
        h = (start - t0) // 3600
        if start < t0 or h >= nh:
            problems.append("file for an hour outside the workload: %s" % os.path.relpath(p, outdir))
            continue
        by_hour[h].append(p)

    if canonical_source:
        want_hours = expected_canonical(man, canonical_source, tool, problems)
        for h in range(nh):
            got = collections.Counter()
            for line in read_lines(by_hour[h]):
                c = canonical(line)
                if c is None or not is_valid(line):
                    k = invalid_kind(line)
                    res["leaked"][k] = res["leaked"].get(k, 0) + 1
                got[c if c is not None else b"\0" + line] += 1
            n = sum(got.values())
            res["lines"] += n
            row = {"hour": h, "lines": n, "want": man["hours"][h]["valid"]}
            if want_hours is not None:
                want = want_hours[h]
                lost = sum((want - got).values())
                over = got - want
                dup = sum(min(v, got[k] - want[k]) for k, v in over.items() if k in want)
                extra = sum(v for k, v in over.items() if k not in want)
                row.update(lost=lost, dup=dup, extra=extra)
                res["lost"] += lost
                res["dup"] += dup
                res["extra"] += extra
            res["hours"].append(row)
        if want_hours is not None and (res["lost"] or res["dup"] or res["extra"]):
            problems.append("lost %d, duplicated %d, extra %d (by value)" % (
                res["lost"], res["dup"], res["extra"]))
    else:
        sums = linesum(tool, files) if files else []
        per_file = dict(zip(files, sums))
        for h in range(nh):
            want = man["hours"][h]
            n = sum(per_file[p][0] for p in by_hour[h])
            b = sum(per_file[p][1] for p in by_hour[h])
            c = sum(per_file[p][2] for p in by_hour[h]) & MASK
            res["lines"] += n
            row = {"hour": h, "lines": n, "bytes": b, "checksum": "%016x" % c,
                   "want": want["valid"], "exact": False}
            if (n, b, "%016x" % c) == (want["valid"], want["bytes"], want["checksum"]):
                row["exact"] = True
            else:
                # Take out what is not a valid record, and compare again.
                for line in read_lines(by_hour[h]):
                    if is_valid(line):
                        continue
                    k = invalid_kind(line)
                    res["leaked"][k] = res["leaked"].get(k, 0) + 1
                    n -= 1
                    b -= len(line) + 1
                    c = (c - fnv1a(line)) & MASK
                row["valid_exact"] = (n, b, "%016x" % c) == (
                    want["valid"], want["bytes"], want["checksum"])
                if not row["valid_exact"]:
                    row["valid_lines"] = n
                    if n < want["valid"]:
                        res["lost"] += want["valid"] - n
                    elif n > want["valid"]:
                        res["extra"] += n - want["valid"]
                    problems.append("hour %d: %d valid lines (want %d), checksum "
                                    "%016x (want %s)" % (h, n, want["valid"], c,
                                                         want["checksum"]))
            res["hours"].append(row)
    if res["leaked"]:
        total = sum(res["leaked"].values())
        rest_ok = not problems and not res["lost"] and not res["dup"] and not res["extra"]
        problems.append("%s invalid records leaked (%s)%s" % (
            "{:,}".format(total), ", ".join("%s %d" % kv for kv in sorted(
                res["leaked"].items(), key=lambda kv: -kv[1])),
            "; the valid records are exact" if rest_ok else ""))
    if quarantine is not None:
        qfiles = list_files(quarantine) if os.path.isdir(quarantine) else []
        q = sum(x[0] for x in linesum(tool, qfiles)) if qfiles else 0
        res["quarantined"] = q
        if q != man["invalid"]:
            problems.append("%d quarantined, want %d invalid" % (q, man["invalid"]))
    res["ok"] = not problems
    return res


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("manifest")
    ap.add_argument("outdir")
    ap.add_argument("--quarantine")
    ap.add_argument("--canonical", metavar="SOURCE")
    ap.add_argument("--linesum")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    res = verify(args.manifest, args.outdir, args.quarantine, args.canonical,
                 args.linesum)
    if args.json:
        json.dump(res, sys.stdout)
        sys.stdout.write("\n")
    else:
        for row in res["hours"]:
            if "exact" in row:
                how = "exact" if row["exact"] else (
                    "valid records exact, invalid lines besides" if row.get("valid_exact")
                    else "MISMATCH")
            else:
                how = "lost %s, dup %s, extra %s (by value)" % (
                    row.get("lost", "?"), row.get("dup", "?"), row.get("extra", "?"))
            print("hour %d: %d lines, want %d: %s" % (row["hour"], row["lines"],
                                                     row["want"], how))
        if res["quarantined"] is not None:
            print("quarantined: %d" % res["quarantined"])
        for p in res["problems"]:
            print("FAIL " + p)
        print("OK" if res["ok"] else "FAIL")
    return 0 if res["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
