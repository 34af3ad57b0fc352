#!/usr/bin/env python3
"""sinks_data.py - data for the warehouse sink tests and bench/load.

  sinks_data.py special CSV EXPECTED [--pg]
      the special-values rows: weir CSV (src/sinks/csv.h) into CSV and the
      values they stand for, typed, one JSON array per line, into EXPECTED.
      --pg adds rows only PostgreSQL can hold (NaN, infinities, -0).
  sinks_data.py columns [--pg]
      the --columns argument of sinkload for those rows.
  sinks_data.py hourly N [SEED] [HOUR]
      N rows of the hourly_temperature shape (start_time, end_time,
      sensor_id, sensor_name, avg_temp, readings) as weir CSV on stdout.
  sinks_data.py compare pg|mysql EXPECTED ACTUAL
      ACTUAL holds one JSON array per row as the server printed it
      (json_build_array / JSON_ARRAY); exit 0 when every value equals the
      expected one exactly (doubles to the bit; MySQL stores -0 as 0).
"""
import datetime as dt
import decimal
import json
import math
import random
import sys

COLUMNS = [
    ("id", "bigint"), ("at", "timestamptz"), ("name", "varchar"), ("v", "double"),
    ("n", "bigint"), ("ok", "boolean"), ("day", "date"), ("doc", "json"),
    ("amount", "decimal(18,3)"), ("local", "timestamp"),
]

EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)


def us_of(text):
    """Microseconds since the epoch of a timestamp string (UTC when no zone)."""
    t = text.replace("T", " ").replace("Z", "+00:00").replace("z", "+00:00")
    # Python wants +HH:MM; weir CSV also allows +HH.
    if len(t) > 3 and t[-3] in "+-" and t[-2:].isdigit() and ":" not in t[-6:]:
        t += ":00"
    frac_ns = 0
    if "." in t[19:]:
        head, rest = t[:19], t[20:]
        digits = ""
        while rest and rest[0].isdigit():
            digits += rest[0]
            rest = rest[1:]
        frac_ns = int((digits + "000000000")[:9])
        t = head + rest
    d = dt.datetime.fromisoformat(t)
    if d.tzinfo is None:
        d = d.replace(tzinfo=dt.timezone.utc)
    delta = d - EPOCH
    whole = (delta.days * 86400 + delta.seconds) * 1000000
    return whole + (frac_ns + 500) // 1000


def q(s):
    return '"' + s.replace('"', '""') + '"'


def special_rows(pg):
    """(csv fields, expected values) per row; None is NULL."""
    uni = "h\u00e9llo \u4e2d\u6587 \U0001F321 e\u0301 \u00a0 \u2028"
    rows = [
        # id, at, name, v, n, ok, day, doc, amount, local
        ["1", "2025-09-02 10:00:00+00", q("plain"), "21.5", "42", "true", "2025-09-02",
         q('{"a": [1, 2.5], "b": "x\\"y"}'), "12.345", "2025-09-02 10:00:00"],
        ["2", "", "", "", "", "", "", "", "", ""],
        ["3", "2025-09-02T10:59:59.999999Z", q(""), "0.1", "-9223372036854775808", "f",
         "0001-01-01", q("[]"), "-999999999999999.999", "1970-01-01 00:00:00"],
        ["4", "2025-09-02 15:30:00.5+05:30", q('a "quoted", comma'), "1e-07",
         "9223372036854775807", "T", "9999-12-31", q('"just a string"'), "0.001",
         "9999-12-31 23:59:59.999999"],
        ["5", "2025-09-02 10:00:00.000001+00", q("line1\nline2\r\nline3\rend"), "5e-324",
         "0", "0", "2024-02-29", q("null"), "0", "2025-09-02 10:00:00.5"],
        ["6", "2025-09-02 10:00:00-02", q("NULL"), "1.7976931348623157e308", "1", "1",
         "2025-09-02", q("{}"), "1", "2025-09-02T10:00:00"],
        ["7", "2025-09-02 10:00:00+00", q("\\N"), "0.30000000000000004", "-1", "FALSE",
         "2025-09-02", q('{"k": "\\u00e9\\n"}'), "-0.5", "2025-09-02 10:00:00"],
        ["8", "2025-09-02 10:00:00+00", q("\\."), "123456789012345678", "2", "true",
         "2025-09-02", q("[1, [2, [3]]]"), "7.100", "2025-09-02 10:00:00"],
        ["9", "2025-09-02 10:00:00+00", q(uni), "-1.5", "3", "false", "2025-09-02",
         q("3.25"), "8", "2025-09-02 10:00:00"],
        ["10", "2025-09-02 10:00:00+00", q('"'), "2.2250738585072014e-308", "4", "t",
         "2025-09-02", q("true"), "9.9", "2025-09-02 10:00:00"],
        ["11", "2025-09-02 10:00:00+00", q("tab\there, back\\slash, 'single'"), "1e+22",
         "5", "true", "2025-09-02", q('{"nested": {"deep": [null]}}'), "0.010",
         "2025-09-02 10:00:00"],
        ["12", "2025-09-02 10:00:00+00", q("x" * 100000), "3", "6", "true", "2025-09-02",
         q("{}"), "1", "2025-09-02 10:00:00"],
        ["13", "2025-09-02 10:00:00+00", q(" leading and trailing spaces "), "-0.0",
         "7", "true", "2025-09-02", q("{}"), "1", "2025-09-02 10:00:00"],
    ]
    if pg:
        rows += [
            ["14", "2025-09-02 10:00:00+00", q("nan"), "nan", "8", "true", "2025-09-02",
             q("{}"), "1", "2025-09-02 10:00:00"],
            ["15", "2025-09-02 10:00:00+00", q("inf"), "inf", "9", "true", "2025-09-02",
             q("{}"), "1", "2025-09-02 10:00:00"],
            ["16", "2025-09-02 10:00:00+00", q("-inf"), "-Infinity", "10", "true",
             "2025-09-02", q("{}"), "1", "2025-09-02 10:00:00"],
        ]
    return rows


def unquote(field):
    if field == "":
        return None
    if field.startswith('"'):
        return field[1:-1].replace('""', '"')
    return field


def typed(kind, text):
    if text is None:
        return None
    if kind == "bigint":
        return int(text)
    if kind == "double":
        return text  # parsed by compare, exactly
    if kind == "boolean":
        return text.lower() in ("true", "t", "1")
    if kind in ("timestamptz", "timestamp"):
        return us_of(text)
    if kind == "json":
        return json.loads(text)
    return text


def cmd_special(args):
    pg = "--pg" in args
    path_csv, path_exp = [a for a in args if not a.startswith("--")][:2]
    with open(path_csv, "w", encoding="utf-8", newline="") as f, \
            open(path_exp, "w", encoding="utf-8") as g:
        for row in special_rows(pg):
            f.write(",".join(row) + "\n")
            vals = [typed(k if not k.startswith("decimal") else "decimal", unquote(x))
                    for (name, k), x in zip(COLUMNS, row)]
            g.write(json.dumps(vals, ensure_ascii=False) + "\n")


def cmd_columns(args):
    print(",".join("%s:%s" % c for c in COLUMNS))


def cmd_hourly(args):
    n = int(args[0])
    rng = random.Random(int(args[1]) if len(args) > 1 else 1)
    hour = args[2] if len(args) > 2 else "2025-09-02 10:00:00"
    start = dt.datetime.fromisoformat(hour)
    end = start + dt.timedelta(hours=1)
    s0, s1 = start.strftime("%Y-%m-%d %H:%M:%S+00"), end.strftime("%Y-%m-%d %H:%M:%S+00")
    out = sys.stdout
    buf = []
    for i in range(n):
        sensor = 10001 + i
        avg = round(rng.uniform(-20, 45), rng.randint(0, 6))
        buf.append('%s,%s,%d,"sensor-%d %s",%r,%d\n' % (
            s0, s1, sensor, sensor, "hall %d" % (sensor % 17), avg, rng.randint(1, 3600)))
        if len(buf) >= 10000:
            out.write("".join(buf))
            buf = []
    out.write("".join(buf))


def as_float(x):
    if isinstance(x, str):
        low = x.lower()
        if low in ("nan",):
            return math.nan
        if low in ("infinity", "inf", "+inf", "+infinity"):
            return math.inf
        if low in ("-infinity", "-inf"):
            return -math.inf
        return float(x)
    return float(x)


def same(kind, want, got, dialect):
    if want is None or got is None:
        return want is None and got is None
    if kind == "double":
        w, g = as_float(want), as_float(got)
        if math.isnan(w):
            return math.isnan(g)
        if w != g:
            return False
        if w == 0 and dialect == "pg":
            return math.copysign(1, w) == math.copysign(1, g)
        return True
    if kind.startswith("decimal"):
        return decimal.Decimal(str(want)) == decimal.Decimal(str(got))
    if kind in ("timestamptz", "timestamp"):
        return want == us_of(got)
    if kind == "boolean":
        return want == (str(got).lower() in ("true", "1"))
    if kind == "bigint":
        return want == int(got)
    if kind == "json":
        if isinstance(got, str) and dialect == "mysql":
            try:
                got = json.loads(got)
            except ValueError:
                pass
        return want == got
    return want == got


def cmd_compare(args):
    dialect, path_exp, path_act = args[:3]
    with open(path_exp, encoding="utf-8") as f:
        want = [json.loads(l) for l in f if l.strip()]
    with open(path_act, encoding="utf-8") as f:
        lines = [l for l in f if l.strip()]
    # Numbers as their text (so -0 keeps its sign and decimals their
    # digits); JSON documents with exact decimals.
    got = [json.loads(l, parse_int=str, parse_float=str, parse_constant=str) for l in lines]
    docs = [json.loads(l, parse_float=decimal.Decimal) for l in lines]
    for g, d in zip(got, docs):
        for i, (name, kind) in enumerate(COLUMNS):
            if kind == "json" and i < len(g):
                g[i] = d[i]
    bad = 0
    if len(want) != len(got):
        print("rows: want %d, got %d" % (len(want), len(got)))
        bad += 1
    for i, (w, g) in enumerate(zip(want, got)):
        for (name, kind), a, b in zip(COLUMNS, w, g):
            if not same(kind, a, b, dialect):
                bad += 1
                print("row %d column %s (%s): want %r, got %r"
                      % (i + 1, name, kind, str(a)[:80], str(b)[:80]))
    sys.exit(1 if bad else 0)


def main():
    cmds = {"special": cmd_special, "columns": cmd_columns, "hourly": cmd_hourly,
            "compare": cmd_compare}
    if len(sys.argv) < 2 or sys.argv[1] not in cmds:
        sys.stderr.write(__doc__)
        sys.exit(2)
    cmds[sys.argv[1]](sys.argv[2:])


if __name__ == "__main__":
    main()
