#!/usr/bin/env python3
"""report.py - the table of bench/validate/run.sh (stdlib only).

    report.py --runs runs.tsv --command CMD --versions TEXT --big F --small F
              [--results bench/RESULTS.md]

Reads one line per run (peer, rep, records, bytes, wall, user, sys,
maxrss_kb, exit, valid, invalid, want_valid, want_invalid, note), takes the
median run of each peer by wall time, prints a markdown section to stdout
and, with --results, puts it in that file in place of its "## validate"
section (other sections are kept; the section is appended when missing).
A peer whose counts differ from the manifest in any run, or whose exit
status is not the contract's (1 when some record is invalid, 0 when none),
is marked FAIL.
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tools"))
import results  # noqa: E402  (bench/tools/results.py)

FIELDS = ("peer rep records bytes wall user sys maxrss_kb exit valid invalid "
          "want_valid want_invalid note").split()
HEADING = "## validate"


def load(path):
    runs = []
    with open(path) as f:
        for line in f:
            parts = line.rstrip("\n").split("\t")
            parts += [""] * (len(FIELDS) - len(parts))
            r = dict(zip(FIELDS, parts))
            for k in ("rep", "records", "bytes", "maxrss_kb", "exit", "valid",
                      "invalid", "want_valid", "want_invalid"):
                r[k] = int(r[k])
            for k in ("wall", "user", "sys"):
                r[k] = float(r[k])
            runs.append(r)
    return runs


def run_problem(r):
    """Why run r fails, or None."""
    if r["valid"] < 0:
        return "no \"N valid, M invalid\" line (exit %d)" % r["exit"]
    if r["invalid"] != r["want_invalid"] or r["valid"] != r["want_valid"]:
        return "counted %d valid, %d invalid; manifest %d, %d" % (
            r["valid"], r["invalid"], r["want_valid"], r["want_invalid"])
    want_exit = 1 if r["want_invalid"] else 0
    if r["exit"] != want_exit:
        return "exit %d, want %d" % (r["exit"], want_exit)
    return None


def fmt_int(n):
    return "{:,}".format(int(round(n)))


def summarize(runs):
    peers = []
    by_peer = {}
    for r in runs:
        if r["peer"] not in by_peer:
            peers.append(r["peer"])
            by_peer[r["peer"]] = []
        by_peer[r["peer"]].append(r)
    rows = []
    for p in peers:
        rs = by_peer[p]
        if rs[0]["note"].startswith("skipped"):
            rows.append({"peer": p, "skipped": rs[0]["note"]})
            continue
        problems = [x for x in (run_problem(r) for r in rs) if x]
        med = sorted(rs, key=lambda r: r["wall"])[(len(rs) - 1) // 2]
        rates = [r["records"] / r["wall"] for r in rs if r["wall"] > 0]
        wall = med["wall"]
        rows.append({
            "peer": p,
            "records": med["records"],
            "wall": wall,
            "rate": med["records"] / wall if wall > 0 else 0.0,
            "mbs": med["bytes"] / wall / 1e6 if wall > 0 else 0.0,
            "cpu": med["user"] + med["sys"],
            "rss": med["maxrss_kb"] / 1024.0,
            "spread": (min(rates), max(rates)) if rates else (0, 0),
            "runs": len(rs),
            "problem": problems[0] if problems else None,
            "counted": sum(1 for r in rs if r["valid"] >= 0) == len(rs),
        })
    return rows


def render(rows, args):
    ajv = next((r for r in rows if r["peer"] == "ajv" and "skipped" not in r
                and not r["problem"]), None)
    out = [HEADING, ""]
    out.append("`weir validate` against peers on the same NDJSON file: telemetry "
               "records of the seed model, 5 % invalid in 15 kinds (equal "
               "shares), timestamps over 3 hours, seed 1, about 121 bytes a "
               "line (bench/tools/gen). Each peer parses and validates every "
               "line against the pydantic 2 export of the model in strict "
               "mode and counts valid and invalid records; its counts must "
               "equal the generator's manifest, or the row says FAIL.")
    out.append("")
    out.append("One core each (pinned with taskset), median of the runs by "
               "wall time; CPU s is user + sys, and records/CPU s (records "
               "over the CPU s of the same run) is the figure least bent by "
               "other load on the machine; \"vs ajv\" compares records/s; "
               "peak RSS is the process's "
               "ru_maxrss (/usr/bin/time). **The Python peers run on %s "
               "records** (the same generator options), as in "
               "shared/research/peers-measured-here.md: their records/s "
               "compare, their times do not." % fmt_int(
                   next((r["records"] for r in rows if r["peer"].startswith("pydantic")
                         and "skipped" not in r), 200000)))
    out.append("")
    out.append("| peer | records | wall s | records/s | MB/s | CPU s | records/CPU s | peak RSS MB | vs ajv | verdict |")
    out.append("|---|---:|---:|---:|---:|---:|---:|---:|---:|---|")
    for r in rows:
        if "skipped" in r:
            out.append("| %s | – | – | – | – | – | – | – | – | %s |" % (r["peer"], r["skipped"]))
            continue
        verdict = "FAIL (%s)" % r["problem"] if r["problem"] else "OK"
        if r["counted"] == 0:
            # It did not do the work: its times mean nothing.
            out.append("| %s | %s | – | – | – | – | – | – | – | %s |" % (
                r["peer"], fmt_int(r["records"]), verdict))
            continue
        ratio = "–"
        if ajv and r["rate"] > 0:
            ratio = "%.2f×" % (r["rate"] / ajv["rate"])
        per_cpu = fmt_int(r["records"] / r["cpu"]) if r["cpu"] > 0 else "–"
        out.append("| %s | %s | %.2f | %s | %.1f | %.2f | %s | %.0f | %s | %s |" % (
            r["peer"], fmt_int(r["records"]), r["wall"], fmt_int(r["rate"]),
            r["mbs"], r["cpu"], per_cpu, r["rss"], ratio, verdict))
    out.append("")
    spread = ["%s %s–%s" % (r["peer"], fmt_int(r["spread"][0]), fmt_int(r["spread"][1]))
              for r in rows if "skipped" not in r and r["counted"]]
    if spread and max(r["runs"] for r in rows if "skipped" not in r) > 1:
        runs = max(r["runs"] for r in rows if "skipped" not in r)
        out.append("Spread of records/s over %d runs (min–max): %s." % (runs, "; ".join(spread)))
        out.append("")
    out.append("Peers: **weir** `weir validate -s SCHEMA FILE`; **ajv** Node.js "
               "+ Ajv 8 (`ajv/dist/2020`), JSON.parse then the compiled "
               "validator (bench/validate/ajv.js); **pydantic** Debian's "
               "pydantic 1.10 (pure Python), the seed's `parse_raw` per line "
               "with StrictInt / StrictFloat|StrictStr / enums "
               "(bench/validate/pydantic_seed.py); **pydantic2** the seed's "
               "own code, `TypeAdapter(...).validate_json(line, strict=True)` "
               "(bench/validate/pydantic2_seed.py), where a pydantic 2 is "
               "installed.")
    out.append("")
    out.extend(results.run_footer(
        args.command, "# files: %s, %s\n%s" % (args.big, args.small, args.versions)))
    return "\n".join(out)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", required=True)
    ap.add_argument("--command", required=True)
    ap.add_argument("--versions", default="")
    ap.add_argument("--big", default="")
    ap.add_argument("--small", default="")
    ap.add_argument("--results")
    args = ap.parse_args()
    section = render(summarize(load(args.runs)), args)
    sys.stdout.write(section)
    if args.results:
        results.replace_section(args.results, HEADING, section)
        sys.stderr.write("validate: table written to %s\n" % args.results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
