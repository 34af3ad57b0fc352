/*
 * main.c - the weir binary: dispatch argv[1] to a subcommand.
 *
 * The table below is the whole command surface; docs/cli.md and the
 * README describe it for people.
 */
#include "cli/cli.h"
#include "core/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

const struct cli_cmd cli_commands[] = {
    {"check", cmd_check, "check a config file and print the effective config",
     "usage: weir check [-c FILE] [--no-files] [-q]\n"
     "\n"
     "Load the config (without -c: the embedded default), check every key and\n"
     "the files it names, and print the effective config on stdout: every key,\n"
     "defaults filled in, paths absolute, passwords in DSNs masked.\n"
     "\n"
     "  -c, --config FILE     the config file (see docs/config.md)\n"
     "      --no-files        do not check that schema, SQL and other files exist\n"
     "  -q, --quiet           print nothing on success but the summary line\n"
     "\n"
     "Exit: 0 valid, 2 the config has an error (printed as FILE:LINE: KEY: what).\n"},
    {"serve", cmd_serve, "run the pipelines of a config (none: the embedded default)",
     "usage: weir serve [-c FILE]\n"
     "\n"
     "Listen, validate every record, file it by event hour in raw segments\n"
     "(or in quarantine with the reason), until SIGTERM or SIGINT.\n"
     "\n"
     "  -c, --config FILE   the config (docs/config.md); without it the embedded\n"
     "                      default: NDJSON on 127.0.0.1:7601, any JSON object,\n"
     "                      data in ./weir-data, metrics on 127.0.0.1:7690\n"
     "\n"
     "On SIGTERM/SIGINT: stop accepting, read what connected senders already\n"
     "sent (drain_timeout, 5 s), flush, fsync, seal, log the counters, exit 0.\n"
     "Environment: WEIR_LOG=debug|info|warn|error, WEIR_LOG_FORMAT=text|json.\n"
     "Exit: 0 clean stop, 2 configuration error, 3 runtime failure.\n"},
    {"status", cmd_status, "counters of a running server, and what is on disk",
     "usage: weir status [-c FILE] [--json]\n"
     "\n"
     "Per pipeline: records, valid, quarantined by reason, late, connections,\n"
     "backpressure (from the running server's /status endpoint), and on disk:\n"
     "partitions, raw segments (sealed / being written), quarantine.\n"
     "Per model: partitions run, and the failing ones with their error and\n"
     "next retry (weir models shows every partition).\n"
     "\n"
     "  -c, --config FILE   the config the server runs with\n"
     "      --json          print the server's /status JSON as is\n"
     "Exit: 0, 2 configuration error, 3 when the server is not reachable\n"
     "(the on-disk part is printed all the same).\n"},
    {"validate", cmd_validate, "validate NDJSON records against a JSON Schema",
     "usage: weir validate -s SCHEMA [--lax] [--errors] [--format-assert] [--int64]\n"
     "                     [--max-record BYTES] [--max-depth N] [FILE...]\n"
     "\n"
     "Validate newline-delimited JSON from FILEs (or stdin, or '-') against\n"
     "SCHEMA (JSON Schema draft 2020-12).\n"
     "\n"
     "  -s, --schema FILE     the schema (required)\n"
     "      --lax             pydantic-style coercions (\"5.3\" -> 5.3); see docs/lax.md\n"
     "      --errors          print one JSON line per rejected record on stdout:\n"
     "                        {\"line\":N,\"path\":\"/a/b\",\"error\":\"...\"}\n"
     "      --format-assert   treat \"format\" as an assertion (default: annotation)\n"
     "      --int64           integers checked against \"type\": \"integer\" must fit in\n"
     "                        64 bits, as `weir serve` checks them (the lake stores BIGINT)\n"
     "      --max-record N    longest record in bytes (default 1 MiB)\n"
     "      --max-depth N     deepest nesting (default 256)\n"
     "      --valid-out FILE  write the valid records to FILE, as they would be\n"
     "                        stored (with --lax: the coerced values)\n"
     "  -q, --quiet           no summary line\n"
     "\n"
     "Line numbers count from 1, empty lines included; empty lines are skipped.\n"
     "Prints \"N valid, M invalid\" on stderr.\n"
     "Exit: 0 all valid, 1 some invalid, 2 usage or schema error, 3 I/O error.\n"},
    {"send", cmd_send, "stream NDJSON records from files or stdin to a TCP listener",
     "usage: weir send [--conns N] [--rate R] [--timeout T] [-v]\n"
     "                 [--tls [--ca FILE] [--cert FILE --key FILE] [--insecure]]\n"
     "                 HOST:PORT [FILE...]\n"
     "\n"
     "Stream newline-delimited records from FILEs (or stdin, or '-') to the\n"
     "listener at HOST:PORT (127.0.0.1:7601, [::1]:7601, name:7601).\n"
     "\n"
     "  -n, --conns N     deal whole lines round robin over N connections; each\n"
     "                    connection's lines keep their file order (default 1)\n"
     "  -r, --rate R      about R lines per second (default: as fast as possible)\n"
     "  -t, --timeout T   for connecting, and for the server to close after the\n"
     "                    last byte: 30, 30s, 2m (default 30s)\n"
     "  -v, --verbose     print lines, bytes and rate on stderr at the end\n"
     "      --tls         speak TLS (1.2 or later); the server's certificate must\n"
     "                    match HOST and verify against --ca FILE (PEM), or the\n"
     "                    system's CAs without it\n"
     "      --cert FILE --key FILE   a client certificate (PEM) for servers that\n"
     "                    require one (source.tls.ca)\n"
     "      --insecure    do not verify the server's certificate (tests only)\n"
     "\n"
     "A file not ending in a newline gets one, so its last record is not glued to\n"
     "the next file's first. One connection without --rate sends regular files\n"
     "with sendfile(2) (not with --tls). At the end each connection is half-closed and weir send\n"
     "waits for the server to close its side, which it does once it has read\n"
     "everything.\n"
     "Exit: 0 all sent and the server closed cleanly, 2 usage error,\n"
     "3 unreadable FILE or connection error (refused, reset, timed out).\n"},
    {"compact", cmd_compact, "compact closed hours of raw segments to Parquet",
     "usage: weir compact [-c FILE] [--all] [-q] [PIPELINE...]\n"
     "\n"
     "For each pipeline (or those named), write the sealed raw segments of every\n"
     "closed partition (its end plus `grace` has passed) as one zstd Parquet file\n"
     "under parquet/date=.../hour=.../, commit it to the table log, then delete\n"
     "the segments it absorbed. Safe beside a running `weir serve` and against\n"
     "crashes at any instant (docs/lake.md).\n"
     "\n"
     "  -c, --config FILE       the config (docs/config.md)\n"
     "      --all               every sealed segment, also of partitions still open\n"
     "      --orphan-grace D    unreferenced Parquet files younger than D are left to\n"
     "                          a writer that may still commit them (default 1h; 0\n"
     "                          only when no other compactor can be running)\n"
     "      --memory-limit M    DuckDB's memory limit (\"2GB\"; default 80% of RAM)\n"
     "      --threads N         DuckDB's threads (default: one per core)\n"
     "  -q, --quiet             no progress line, no summary\n"
     "\n"
     "A progress line (partitions done of total, MB/s) shows on a terminal.\n"
     "Exit: 0 done, 2 configuration error or a schema change that would make\n"
     "old data unreadable (the message names the column), 3 runtime failure.\n"},
    {"optimize", cmd_optimize, "merge the small Parquet files of partitions",
     "usage: weir optimize [-c FILE] [--partition KEY] [-q] [PIPELINE...]\n"
     "\n"
     "Merge the live Parquet files of each partition that has two or more (late\n"
     "data adds files) into one file, in one commit. The old files leave the\n"
     "table at once and are deleted by `weir gc` after the vacuum retention.\n"
     "\n"
     "  -c, --config FILE       the config\n"
     "      --partition KEY     only this partition: date=2025-09-02/hour=10\n"
     "      --orphan-grace D, --memory-limit M, --threads N: as for weir compact\n"
     "  -q, --quiet             no progress line, no summary\n"
     "Exit: 0 done, 2 configuration error, 3 runtime failure.\n"},
    {"gc", cmd_gc, "apply retention, vacuum, clean up after crashes",
     "usage: weir gc [-c FILE] [-q] [PIPELINE...]\n"
     "\n"
     "Per pipeline: Parquet files older than retention.parquet leave the table by\n"
     "a commit; files removed from the table longer than 7 days ago are deleted\n"
     "(vacuum); raw and quarantine segments older than retention.raw and\n"
     "retention.quarantine are deleted; leftovers of crashed compactions and\n"
     "queries are removed. Ages are by partition time. `weir serve` runs this\n"
     "hourly. Without retention settings nothing but leftovers is deleted.\n"
     "\n"
     "  -c, --config FILE       the config\n"
     "  -q, --quiet             no summary\n"
     "Exit: 0 done, 2 configuration error, 3 runtime failure.\n"},
    {"query", cmd_query, "run SQL over the lake: Parquet plus fresh raw data",
     "usage: weir query [-c FILE] [--format table|csv|json] [--as-of [PIPELINE=]N] SQL\n"
     "\n"
     "Run SQL (DuckDB's dialect; '-' reads it from stdin) with one view per\n"
     "pipeline, named after it: the committed Parquet files plus the raw segments\n"
     "not compacted yet (being written ones up to their last complete line),\n"
     "typed from the schema, with date and hour columns. Each record is counted\n"
     "once, also while `weir serve` writes and compacts (docs/query.md).\n"
     "\n"
     "  -c, --config FILE       the config\n"
     "  -f, --format F          table (aligned, for people; default), csv (header\n"
     "                          row first), json (one object per line)\n"
     "      --as-of [P=]N       the table as of version N (Parquet only: raw data\n"
     "                          absorbed since is gone); P= for one pipeline\n"
     "      --memory-limit M    DuckDB's memory limit (\"2GB\")\n"
     "      --threads N         DuckDB's threads\n"
     "Exit: 0 done, 1 the SQL failed (message on stderr), 2 usage or\n"
     "configuration error, 3 runtime failure.\n"},
    {"run", cmd_run, "run a model's partitions that need it, or backfill a range",
     "usage: weir run [-c FILE] MODEL [--from T] [--to T] [-q]\n"
     "       weir run [-c FILE] --all\n"
     "\n"
     "Without --from: run the partitions of MODEL whose inputs are committed\n"
     "(closed and compacted) and changed since its last successful run, or whose\n"
     "last run failed and is due for a retry. With --from (and --to, default now):\n"
     "run every partition overlapping [from, to), in order, replacing each\n"
     "partition's rows in every output (docs/models.md).\n"
     "\n"
     "  -c, --config FILE   the config\n"
     "      --from T        first partition (T: 2025-09-02, 2025-09-02T10, RFC 3339)\n"
     "      --to T          end of the range, exclusive\n"
     "  -q, --quiet         no progress line, no summary\n"
     "      --all           every model, in dependency order, the partitions that\n"
     "                      need a run: one round of serve's scheduler (for cron)\n"
     "Exit: 0 every partition ran, 1 some failed (recorded, see weir models),\n"
     "2 usage or configuration error, 3 runtime failure.\n"},
    {"replay", cmd_replay, "rebuild a transform's dataset from the pipeline's Parquet",
     "usage: weir replay [-c FILE] PIPELINE --from T [--to T] [-q]\n"
     "\n"
     "Run PIPELINE's transform (pipeline.transform) over its committed Parquet,\n"
     "partition by partition, and replace the derived dataset's rows of each\n"
     "partition with the result, in one commit per partition: the same SQL and\n"
     "the same runner as the stream, so after a change of the SQL, or a batch\n"
     "the transform failed on, the derived dataset is what the SQL makes of the\n"
     "pipeline's records. Partitions not closed yet, or with raw segments not\n"
     "compacted, are skipped (run weir compact first). Running it again gives\n"
     "the same rows; it is safe beside a running weir serve (docs/kafka.md).\n"
     "\n"
     "  -c, --config FILE   the config\n"
     "      --from T        first partition (T: 2025-09-02, 2025-09-02T10, RFC 3339)\n"
     "      --to T          end of the range, exclusive (default: now)\n"
     "  -q, --quiet         no progress line, no summary\n"
     "Exit: 0 every partition replayed, 1 some skipped or failed, or rows the\n"
     "derived dataset's schema refused, 2 usage or configuration error (a SQL\n"
     "error included), 3 runtime failure.\n"},
    {"models", cmd_models, "the models' dependency graph and the last run of each partition",
     "usage: weir models [-c FILE]\n"
     "\n"
     "Per model: inputs -> model -> outputs, how many partitions need a run now,\n"
     "and per partition its last run (time, status, rows, failed attempts in a\n"
     "row, the next retry and the error).\n"
     "Exit: 0, 1 some partition's last run failed, 2 usage or configuration error.\n"},
    {"requeue", cmd_requeue, "re-validate quarantined records and file the ones now valid",
     "usage: weir requeue [-c FILE] PIPELINE [--dry-run] [--reason R]... [--from T] [--to T]\n"
     "\n"
     "Re-validate the quarantined records of PIPELINE against the schema and time\n"
     "rules the config has now (time_max_ahead/_age measured from received_at),\n"
     "file the ones now valid in raw segments of their event hour and remove them\n"
     "from quarantine; the others stay there with their new verdict. Only sealed\n"
     "quarantine segments are read, so it may run while weir serve runs. An\n"
     "interrupted run (even kill -9) loses and duplicates nothing: the next run,\n"
     "or weir serve at start, finishes it. See docs/storage.md, \"Requeue\".\n"
     "\n"
     "  -c, --config FILE   the config (docs/config.md)\n"
     "  -n, --dry-run       only count what would be requeued; change nothing\n"
     "      --reason R      only records quarantined for R (repeat, or R1,R2):\n"
     "                      invalid, truncated, time_missing, time_unparsable,\n"
     "                      time_out_of_range, torn (too_large records are cut\n"
     "                      at max_record and can never be valid: always left)\n"
     "      --from T        only records received at or after T ...\n"
     "      --to T          ... and before T (T: 2025-09-02, 2025-09-02T10,\n"
     "                      2025-09-02T10:00:00Z)\n"
     "\n"
     "Prints, per reason, how many records were requeued and how many stay.\n"
     "Exit: 0 every record looked at was requeued (too_large aside), 1 some stay\n"
     "invalid, 2 usage or configuration error, 3 runtime failure (another\n"
     "requeue of PIPELINE running, disk error).\n"},
    {"version", cmd_version, "print weir's version and the linked DuckDB version",
     "usage: weir version\n"},
    {NULL, NULL, NULL, NULL},
};

const struct cli_cmd *cli_find(const char *name)
{
    for (const struct cli_cmd *c = cli_commands; c->name; c++)
        if (strcmp(c->name, name) == 0)
            return c;
    return NULL;
}

void cli_usage(const struct cli_cmd *cmd, FILE *f)
{
    fputs(cmd->usage, f);
}

int cli_usage_error(const char *cmd, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "weir %s: ", cmd);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\n(see 'weir %s --help')\n", cmd);
    return EXIT_USAGE;
}

static void main_usage(FILE *f)
{
    fputs("usage: weir COMMAND [OPTIONS]\n\ncommands:\n", f);
    for (const struct cli_cmd *c = cli_commands; c->name; c++)
        fprintf(f, "  %-10s %s\n", c->name, c->summary);
    fputs("\n'weir COMMAND --help' describes one command.\n", f);
}

int main(int argc, char **argv)
{
    log_setup_from_env();
    if (argc < 2) {
        main_usage(stderr);
        return EXIT_USAGE;
    }
    const char *name = argv[1];
    if (strcmp(name, "--help") == 0 || strcmp(name, "-h") == 0 ||
        strcmp(name, "help") == 0) {
        if (argc > 2 && cli_find(argv[2])) {
            cli_usage(cli_find(argv[2]), stdout);
            return EXIT_OK;
        }
        main_usage(stdout);
        return EXIT_OK;
    }
    if (strcmp(name, "--version") == 0)
        name = "version";
    const struct cli_cmd *cmd = cli_find(name);
    if (!cmd) {
        fprintf(stderr, "weir: unknown command '%s'\n\n", name);
        main_usage(stderr);
        return EXIT_USAGE;
    }
    for (int i = 2; i < argc; i++) {
        if (strcmp(argv[i], "--") == 0)
            break;
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            cli_usage(cmd, stdout);
            return EXIT_OK;
        }
    }
    return cmd->run(argc - 1, argv + 1);
}
