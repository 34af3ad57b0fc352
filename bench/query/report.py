#!/usr/bin/env python3
"""report.py - the table of bench/query/run.sh (stdlib only).

    report.py --runs runs.tsv --command CMD --versions TEXT --queries TEXT
              --threads T [--results bench/RESULTS.md]

runs.tsv has one line per run: query, peer (weir or duckdb), rep, wall,
user, sys, maxrss_kb, exit, same (1 when weir's answer equalled DuckDB's
in that repetition). Per query: the median wall and CPU time of each peer
and weir's overhead, median over median, minus 1. A query where a run
failed or the answers differed is marked FAIL. With --results, the section
replaces "## query" in that file.
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tools"))
import results  # noqa: E402  (bench/tools/results.py)

FIELDS = "query peer rep wall user sys maxrss_kb exit same".split()
HEADING = "## query"


def load(path):
    runs = []
    with open(path) as f:
        for line in f:
            parts = line.rstrip("\n").split("\t")
            parts += ["0"] * (len(FIELDS) - len(parts))
            r = dict(zip(FIELDS, parts))
            for k in ("rep", "maxrss_kb", "exit", "same"):
                r[k] = int(r[k] or 0)
            for k in ("wall", "user", "sys"):
                r[k] = float(r[k] or 0)
            runs.append(r)
    return runs


def med(xs):
    xs = sorted(xs)
    n = len(xs)
    return (xs[(n - 1) // 2] + xs[n // 2]) / 2 if n else 0.0


def summarize(runs):
    names, rows = [], []
    for r in runs:
        if r["query"] not in names:
            names.append(r["query"])
    for q in names:
        w = [r for r in runs if r["query"] == q and r["peer"] == "weir"]
        d = [r for r in runs if r["query"] == q and r["peer"] == "duckdb"]
        problem = None
        if any(r["exit"] for r in w + d):
            problem = "a run failed"
        elif not all(r["same"] for r in d):
            problem = "answers differ"
        row = {
            "query": q, "runs": len(w), "problem": problem,
            "weir": med([r["wall"] for r in w]), "duck": med([r["wall"] for r in d]),
            "weir_cpu": med([r["user"] + r["sys"] for r in w]),
            "duck_cpu": med([r["user"] + r["sys"] for r in d]),
            "weir_rng": (min(r["wall"] for r in w), max(r["wall"] for r in w)),
            "duck_rng": (min(r["wall"] for r in d), max(r["wall"] for r in d)),
        }
        rows.append(row)
    return rows


def pct(a, b):
    return "%+.0f %%" % ((a / b - 1) * 100) if b else "–"


def render(rows, args):
    out = [HEADING, ""]
    out.append("`weir query` against plain DuckDB over the same Parquet files: the lake of "
               "bench/compact's workload, compacted by `weir compact`. weir builds the "
               "pipeline's view from the table log (live files of the latest version, plus "
               "raw segments not compacted: none here) and runs the SQL; DuckDB alone reads "
               "the files with `read_parquet(glob, hive_partitioning = true, hive_types = "
               "..., union_by_name = true)` behind a view of the same name "
               "(bench/out/duckrun). Each is a whole process, timed by bench/tools/timed.py, %d "
               "DuckDB threads; the peers alternate, median of the runs; \"overhead\" is "
               "weir's median wall time over DuckDB's, minus 1 (target: at most 10 %%), and "
               "the same for CPU. Both must print the same answer in every run." % args.threads)
    out.append("")
    out.append("| query | weir s | duckdb s | overhead | weir CPU s | duckdb CPU s | CPU overhead | verdict |")
    out.append("|---|---:|---:|---:|---:|---:|---:|---|")
    for r in rows:
        verdict = "FAIL (%s)" % r["problem"] if r["problem"] else "OK"
        out.append("| %s | %.3f | %.3f | %s | %.3f | %.3f | %s | %s |" % (
            r["query"], r["weir"], r["duck"], pct(r["weir"], r["duck"]), r["weir_cpu"],
            r["duck_cpu"], pct(r["weir_cpu"], r["duck_cpu"]), verdict))
    tw = sum(r["weir"] for r in rows)
    td = sum(r["duck"] for r in rows)
    out.append("| all (sum of medians) | %.3f | %.3f | %s | %.3f | %.3f | %s | |" % (
        tw, td, pct(tw, td), sum(r["weir_cpu"] for r in rows),
        sum(r["duck_cpu"] for r in rows),
        pct(sum(r["weir_cpu"] for r in rows), sum(r["duck_cpu"] for r in rows))))
    out.append("")
    out.append("Spread of wall s over %d runs (min–max): %s." % (
        max(r["runs"] for r in rows),
        "; ".join("%s weir %.3f–%.3f, duckdb %.3f–%.3f" % (
            r["query"], r["weir_rng"][0], r["weir_rng"][1], r["duck_rng"][0], r["duck_rng"][1])
            for r in rows)))
    out.append("")
    out.append("Queries:")
    out.append("")
    for line in args.queries.strip().splitlines():
        name, sql = line.split("\t", 1)
        out.append("- **%s** `%s`" % (name, sql))
    out.append("")
    out.extend(results.run_footer(args.command, args.versions))
    return "\n".join(out)



def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", required=True)
    ap.add_argument("--command", required=True)
    ap.add_argument("--versions", default="")
    ap.add_argument("--queries", required=True)
    ap.add_argument("--threads", type=int, required=True)
    ap.add_argument("--results")
    args = ap.parse_args()
    section = render(summarize(load(args.runs)), args)
    sys.stdout.write(section)
    if args.results:
        results.replace_section(args.results, HEADING, section)
        sys.stderr.write("query: table written to %s\n" % args.results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
