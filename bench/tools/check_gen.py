#!/usr/bin/env python3
"""check_gen.py - an independent oracle for gen's verdicts (stdlib only).

    check_gen.py FILE.ndjson MANIFEST.json

Validates every line of FILE against the seed model in strict mode, written
out by hand here (strict UTF-8, JSON, required fields, integer timestamp and
sensor_id, kind/unit enums, value a number or a string), recomputes what
telemetry.h's manifest promises (valid/invalid counts, per-hour valid counts,
bytes and FNV-1a checksums) and compares. Prints "N passed, N failed" and
exits 1 on any difference. Slow (pure Python): give it small files.
"""
import json
import sys

FNV_OFFSET = 0xCBF29CE484222325
FNV_PRIME = 0x100000001B3
MASK = (1 << 64) - 1


def fnv1a(b):
    h = FNV_OFFSET
    for c in b:
        h = ((h ^ c) * FNV_PRIME) & MASK
    return h


def is_int(v):
    return type(v) is int


def is_number(v):
    return type(v) in (int, float)


def verdict(line):
    """The parsed object when line is valid under the model, else None."""
    try:
        # Strict decoding first: json.loads(bytes) would let encoded
        # surrogates through (it decodes with surrogatepass).
        obj = json.loads(line.decode("utf-8"))
    except ValueError:
        return None
    if type(obj) is not dict:
        return None
    for key in ("timestamp", "sensor_id", "measurement"):
        if key not in obj:
            return None
    if not is_int(obj["timestamp"]) or not is_int(obj["sensor_id"]):
        return None
    m = obj["measurement"]
    if type(m) is not dict:
        return None
    for key in ("kind", "value", "unit"):
        if key not in m:
            return None
    if m["kind"] != "Temperature" or m["unit"] not in ("Celcius", "Fahrenheit"):
        return None
    if not (is_number(m["value"]) or type(m["value"]) is str):
        return None
    return obj


def main():
    path, manifest_path = sys.argv[1], sys.argv[2]
    with open(manifest_path) as f:
        man = json.load(f)
    cfg = man["config"]
    hours = [{"valid": 0, "bytes": 0, "checksum": 0} for _ in range(cfg["hours"])]
    records = valid = nbytes = total_sum = 0
    with open(path, "rb") as f:
        for raw in f:
            line = raw[:-1] if raw.endswith(b"\n") else raw
            records += 1
            nbytes += len(raw)
            h = fnv1a(line)
            total_sum = (total_sum + h) & MASK
            obj = verdict(line)
            if obj is None:
                continue
            valid += 1
            hour = (obj["timestamp"] - cfg["t0"]) // 3600
            hours[hour]["valid"] += 1
            hours[hour]["bytes"] += len(raw)
            hours[hour]["checksum"] = (hours[hour]["checksum"] + h) & MASK

    checks = [
        ("records", records, man["records"]),
        ("valid", valid, man["valid"]),
        ("invalid", records - valid, man["invalid"]),
        ("bytes", nbytes, man["bytes"]),
        ("checksum_all", "%016x" % total_sum, man["checksum_all"]),
    ]
    for i, want in enumerate(man["hours"]):
        got = hours[i]
        checks.append(("hour %d valid" % i, got["valid"], want["valid"]))
        checks.append(("hour %d bytes" % i, got["bytes"], want["bytes"]))
        checks.append(("hour %d checksum" % i, "%016x" % got["checksum"],
                       want["checksum"]))
    failed = 0
    for name, got, want in checks:
        if got != want:
            failed += 1
            print("FAIL %s: file has %s, manifest says %s" % (name, got, want))
    print("%d passed, %d failed" % (len(checks) - failed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
