#!/usr/bin/env python3
"""report.py - the table of bench/compact/run.sh (stdlib only).

    report.py --runs runs.tsv --command CMD --versions TEXT --records N
              --bytes B --threads T [--results bench/RESULTS.md]

runs.tsv has one line per run: kind (compact or query), peer, rep, wall,
user, sys, maxrss_kb, exit, bytes (Parquet written), answer (the figures
read back, comma-separated). For each peer: the median compaction run by
wall time, the median query run; ratios against the duckdb peer. A peer
whose answer differs from the generated count, or from DuckDB's own
result, or that exited non-zero, is marked FAIL. With --results, the
section replaces "## compact" in that file.
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tools"))
import results  # noqa: E402  (bench/tools/results.py)

FIELDS = "kind peer rep wall user sys maxrss_kb exit bytes answer".split()
HEADING = "## compact"
REFERENCE = "duckdb"


def load(path):
    runs = []
    with open(path) as f:
        for line in f:
            parts = line.rstrip("\n").split("\t")
            parts += [""] * (len(FIELDS) - len(parts))
            r = dict(zip(FIELDS, parts))
            for k in ("rep", "maxrss_kb", "exit", "bytes"):
                r[k] = int(r[k] or 0)
            for k in ("wall", "user", "sys"):
                r[k] = float(r[k] or 0)
            runs.append(r)
    return runs


def median(rs):
    return sorted(rs, key=lambda r: r["wall"])[(len(rs) - 1) // 2]


def summarize(runs, records):
    peers, rows = [], []
    for r in runs:
        if r["peer"] not in peers:
            peers.append(r["peer"])
    answers = {}
    for p in peers:
        cs = [r for r in runs if r["peer"] == p and r["kind"] == "compact"]
        answers[p] = cs[-1]["answer"] if cs else ""
    ref = answers.get(REFERENCE) or next(iter(answers.values()), "")
    qref = next((r["answer"] for r in runs if r["kind"] == "query"
                 and r["peer"] == REFERENCE), None)
    for p in peers:
        cs = [r for r in runs if r["peer"] == p and r["kind"] == "compact"]
        qs = [r for r in runs if r["peer"] == p and r["kind"] == "query"]
        problem = None
        for r in cs:
            got = r["answer"].split(",")
            if r["exit"] != 0:
                problem = "exit %d" % r["exit"]
            elif not got or got[0] != str(records):
                problem = "read back %s rows, generated %d" % (got[0] if got else "no", records)
            elif r["answer"] != ref:
                problem = "sums %s differ from DuckDB's %s" % (r["answer"], ref)
        for r in qs:
            if r["exit"] != 0:
                problem = problem or "query exit %d" % r["exit"]
            elif qref is not None and r["answer"] != qref:
                problem = problem or "query answer %s, DuckDB's file %s" % (r["answer"], qref)
        m = median(cs)
        q = median(qs) if qs else None
        rows.append({
            "peer": p, "wall": m["wall"], "cpu": m["user"] + m["sys"],
            "rss": m["maxrss_kb"] / 1024.0, "bytes": m["bytes"],
            "spread": (min(r["wall"] for r in cs), max(r["wall"] for r in cs)),
            "cpu_spread": (min(r["user"] + r["sys"] for r in cs),
                           max(r["user"] + r["sys"] for r in cs)),
            "runs": len(cs),
            "query": q["wall"] if q else None,
            "query_cpu": q["user"] + q["sys"] if q else None,
            "query_spread": (min(r["wall"] for r in qs), max(r["wall"] for r in qs)) if qs else None,
            "problem": problem,
        })
    return rows


def render(rows, args):
    ref = next((r for r in rows if r["peer"] == REFERENCE), None)
    mb = args.bytes / 1e6
    out = [HEADING, ""]
    out.append("`weir compact` against DuckDB's own `COPY (SELECT * FROM read_json(...)) TO "
               "... (FORMAT parquet, COMPRESSION zstd)` on the same raw segments: %s records "
               "of telemetry (bench/tools/gen, all valid), %.0f MB of NDJSON in weir's raw "
               "layout (bench/compact/workload.sh), %d DuckDB threads for every peer. weir "
               "writes one Parquet file per hour and commits each to the table log, "
               "fsyncing file and commit (%d files here); DuckDB writes one file and does not "
               "fsync. Median "
               "run by wall time; CPU s is user + sys of that run; peak RSS from "
               "bench/tools/timed.py (wait4); \"vs duckdb\" divides by the duckdb row (below 1: weir is "
               "faster, smaller)." % ("{:,}".format(args.records), mb, args.threads, args.hours))
    out.append("")
    out.append("| peer | wall s | CPU s | peak RSS MB | MB/s | Parquet MB | wall vs duckdb | "
               "CPU vs duckdb | size vs duckdb | query s | query vs duckdb | verdict |")
    out.append("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|")
    for r in rows:
        def ratio(a, b):
            return "%.2f×" % (a / b) if ref and b else "–"
        verdict = "FAIL (%s)" % r["problem"] if r["problem"] else "OK"
        q = "%.2f" % r["query"] if r["query"] is not None else "–"
        qr = ratio(r["query"], ref["query"]) if ref and r["query"] and ref["query"] else "–"
        out.append("| %s | %.2f | %.2f | %.0f | %.0f | %.1f | %s | %s | %s | %s | %s | %s |" % (
            r["peer"], r["wall"], r["cpu"], r["rss"], mb / r["wall"] if r["wall"] else 0,
            r["bytes"] / 1e6, ratio(r["wall"], ref["wall"] if ref else 0),
            ratio(r["cpu"], ref["cpu"] if ref else 0),
            ratio(r["bytes"], ref["bytes"] if ref else 0), q, qr, verdict))
    out.append("")
    if max(r["runs"] for r in rows) > 1:
        out.append("Spread over %d runs (min–max): wall s %s; CPU s %s; query s %s." % (
            max(r["runs"] for r in rows),
            "; ".join("%s %.2f–%.2f" % (r["peer"], *r["spread"]) for r in rows),
            "; ".join("%s %.2f–%.2f" % (r["peer"], *r["cpu_spread"]) for r in rows),
            "; ".join("%s %.2f–%.2f" % (r["peer"], *r["query_spread"])
                      for r in rows if r["query_spread"])))
        out.append("")
    out.append("Peers: **weir** `weir compact --all -q --threads T`, the pipeline's schema "
               "the pydantic export of the seed model, whose root allows undeclared "
               "properties (so the `_extra` column exists); **weir-closed** the same schema "
               "with `\"additionalProperties\": false` at the root (no `_extra`); **duckdb** "
               "the statement above through bench/out/duckrun (libduckdb's C API, the "
               "library weir links), DuckDB's defaults; **duckdb-unordered** the same after "
               "`SET preserve_insertion_order = false`, which weir sets too. weir reads the "
               "segments with its own scanner (weir_read_ndjson, src/sql/ndjson.c: one pass "
               "per line, typed from the schema, `_extra` copied from the members no column "
               "takes) and lets DuckDB write the Parquet.")
    out.append("")
    out.append("Checks: each result read back with DuckDB must hold every generated record "
               "and the same sums of timestamp, sensor_id and value as DuckDB's own file. "
               "The query, run with plain DuckDB on each result so only the files differ: "
               "`SELECT count(*), round(sum(a), 3) FROM (SELECT sensor_id, timestamp // 3600 "
               "AS h, avg(measurement.value::DOUBLE) AS a FROM <files> GROUP BY ALL)` "
               "(%s groups); its answers must agree too. weir's `value` column is JSON "
               "(the schema says `float | str`), DuckDB's guess is DOUBLE: the cast is part "
               "of the query's cost on weir's files." % "{:,}".format(1000 * args.hours))
    out.append("")
    out.extend(results.run_footer(args.command, args.versions))
    return "\n".join(out)



def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", required=True)
    ap.add_argument("--command", required=True)
    ap.add_argument("--versions", default="")
    ap.add_argument("--records", type=int, required=True)
    ap.add_argument("--bytes", type=int, required=True)
    ap.add_argument("--threads", type=int, required=True)
    ap.add_argument("--hours", type=int, required=True)
    ap.add_argument("--results")
    args = ap.parse_args()
    section = render(summarize(load(args.runs), args.records), args)
    sys.stdout.write(section)
    if args.results:
        results.replace_section(args.results, HEADING, section)
        sys.stderr.write("compact: table written to %s\n" % args.results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
