#!/usr/bin/env python3
"""results.py - bench/RESULTS.md, written by every benchmark script.

Each script owns one section, from its "## NAME" heading to the next
"## " heading, and replaces it (or appends it) without touching the
others; the file is replaced atomically. As a module (the report.py
scripts):

    import results
    results.replace_section(path, "## compact", text)
    lines += results.run_footer(command, versions)

From a shell script (bench/kafka/run.sh, bench/load/run.sh):

    python3 bench/tools/results.py RESULTS.md "## kafka" SECTION_FILE
"""
import datetime
import os
import re
import sys

PREAMBLE = ("# Benchmark results\n\nWritten by the scripts in bench/ "
            "(bench/README.md says what each one measures). Each script "
            "replaces its own section.\n\n")


def replace_section(path, heading, section):
    """Put section (starting with heading) in place of heading's section."""
    section = section.rstrip("\n") + "\n"
    text = ""
    if os.path.exists(path):
        with open(path) as f:
            text = f.read()
    if not text.strip():
        text = PREAMBLE
    m = re.search(r"^" + re.escape(heading) + r"[ \t]*\n", text, re.M)
    if m:
        nxt = re.search(r"^## ", text[m.end():], re.M)
        end = m.end() + nxt.start() if nxt else len(text)
        text = text[:m.start()] + section + ("\n" if nxt else "") + text[end:]
    else:
        text = text.rstrip("\n") + "\n\n" + section
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, path)


def run_footer(command, versions):
    """The "Run on DATE:" block: the command and the versions, fenced."""
    out = ["Run on %s:" % datetime.datetime.now(datetime.timezone.utc)
           .strftime("%Y-%m-%d %H:%M UTC"), "", "```", command]
    out.extend(versions.strip().splitlines())
    out += ["```", ""]
    return out


def main(argv):
    if len(argv) != 4 or not argv[2].startswith("## "):
        sys.stderr.write("usage: results.py RESULTS.md '## NAME' SECTION_FILE\n")
        return 2
    with open(argv[3]) as f:
        section = f.read()
    if not section.startswith(argv[2]):
        sys.stderr.write("results.py: the section must start with %s\n" % argv[2])
        return 2
    replace_section(argv[1], argv[2], section)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
