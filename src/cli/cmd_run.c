/*
 * cmd_run.c - `weir run MODEL [--from T] [--to T]`: run the partitions of
 * a model that need a run, or run (backfill) every partition of a range,
 * in time order, from cron or by hand. docs/models.md is the user's guide.
 */
#include "cli/cli.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config/config.h"
#include "core/log.h"
#include "core/wtime.h"
#include "sched/models.h"
#include "sched/scheduler.h"
#include "store/partition.h"

static void progress(int on, const char *model, size_t done, size_t total,
                     size_t failed, int last)
{
    if (!on)
        return;
    fprintf(stderr, "\rrun %s: %zu/%zu partitions, %zu failed%s", model, done, total,
            failed, last ? "\n" : "");
    fflush(stderr);
}

/* One scheduler round: every model, in dependency order, the partitions
 * that need a run (what serve's scheduler does each time it looks). */
static int run_all(const char *path)
{
    struct weir_config cfg;
    struct weir_errmsg e = {0};
    struct sched_stats st = {0};
    if (cli_load_config("run", path, &cfg))
        return EXIT_USAGE;
    int rc = sched_round(&cfg, NULL, &st, &e);
    config_release(&cfg);
    if (rc) {
        fprintf(stderr, "weir run: %s\n", e.text);
        return EXIT_USAGE;
    }
    fprintf(stderr, "weir run: %llu partitions run, %llu failed\n",
            (unsigned long long)st.runs_ok, (unsigned long long)st.runs_failed);
    return st.runs_failed ? EXIT_PROBLEMS : EXIT_OK;
}

int cmd_run(int argc, char **argv)
{
    static const struct option opts[] = {
        {"config", required_argument, NULL, 'c'},
        {"from", required_argument, NULL, 'f'},
        {"to", required_argument, NULL, 't'},
        {"quiet", no_argument, NULL, 'q'},
        {"all", no_argument, NULL, 'a'},
        {NULL, 0, NULL, 0},
    };
    const char *path = NULL, *from_s = NULL, *to_s = NULL;
    int64_t from = 0, to = 0;
    int opt, quiet = 0, all = 0, ex = EXIT_OK;
    struct weir_config cfg;
    struct weir_errmsg e = {0};
    int64_t *starts = NULL;
    size_t n = 0, failed = 0;

    optind = 1;
    while ((opt = getopt_long(argc, argv, "c:q", opts, NULL)) != -1) {
        switch (opt) {
        case 'c': path = optarg; break;
        case 'f': from_s = optarg; break;
        case 't': to_s = optarg; break;
        case 'q': quiet = 1; break;
        case 'a': all = 1; break;
        default: return cli_usage_error("run", NULL);
        }
    }
    if (all) {
        if (optind != argc || from_s || to_s)
            return cli_usage_error("run", "--all takes no MODEL, --from or --to");
        return run_all(path);
    }
    if (optind + 1 != argc)
        return cli_usage_error("run", "give one MODEL (or --all)");
    if (from_s && wtime_parse_point(from_s, &from))
        return cli_usage_error("run", "--from: '%s' is not a time (2025-09-02, "
                               "2025-09-02T10, or RFC 3339)", from_s);
    if (to_s && wtime_parse_point(to_s, &to))
        return cli_usage_error("run", "--to: '%s' is not a time (2025-09-02, "
                               "2025-09-02T10, or RFC 3339)", to_s);
    if (to_s && !from_s)
        return cli_usage_error("run", "--to needs --from");
    if (cli_load_config("run", path, &cfg))
        return EXIT_USAGE;
    const struct config_model *m = config_model(&cfg, argv[optind]);
    if (!m) {
        fprintf(stderr, "weir run: %s: no such model in %s\n", argv[optind], cfg.file);
        ex = EXIT_USAGE;
        goto out;
    }
    if (model_check(&cfg, m, &e)) {
        fprintf(stderr, "weir run: %s\n", e.text);
        ex = EXIT_USAGE;
        goto out;
    }
    enum part_grain g = m->grain == CONFIG_PARTITION_DAY ? PART_DAY : PART_HOUR;
    int64_t now = wtime_now_ns();
    if (from_s) {
        /* A range: every partition that overlaps [from, to), ready or not
         * (a backfill replaces; a partition without data empties its rows). */
        if (!to_s && part_start(now, g, &to)) {
            ex = EXIT_USAGE;
            goto out;
        }
        int64_t s0;
        if (part_start(from, g, &s0) || to <= from) {
            ex = cli_usage_error("run", "--from must be before --to");
            goto out;
        }
        size_t cap = (size_t)((to - s0 + part_len_ns(g) - 1) / part_len_ns(g));
        if (cap > 1000000) {
            ex = cli_usage_error("run", "the range holds more than 1000000 partitions");
            goto out;
        }
        starts = calloc(cap ? cap : 1, sizeof *starts);
        if (!starts) {
            fprintf(stderr, "weir run: out of memory\n");
            ex = EXIT_RUNTIME;
            goto out;
        }
        for (int64_t s = s0; s < to; s += part_len_ns(g))
            starts[n++] = s;
    } else if (model_plan(&cfg, m, now, &starts, &n, &e)) {
        fprintf(stderr, "weir run: %s\n", e.text);
        ex = EXIT_RUNTIME;
        goto out;
    }
    int tty = !quiet && isatty(STDERR_FILENO);
    struct model_run_opts ro = {.now_ns = now, .wait_lock = 1};
    uint64_t rows = 0;
    for (size_t i = 0; i < n; i++) {
        struct model_run_result res;
        char key[PART_KEY_MAX];
        part_key_format(starts[i], g, key, sizeof key);
        progress(tty, m->name, i, n, failed, 0);
        int rc = model_run_partition(&cfg, m, starts[i], &ro, &res, &e);
        if (rc) {
            failed++;
            if (tty)
                fputc('\n', stderr);
            fprintf(stderr, "weir run: %s\n", e.text);
            /* The state could not be recorded: the disk or the log failed,
             * not the model; stop. */
            if (res.version == 0) {
                ex = EXIT_RUNTIME;
                goto out;
            }
        }
        rows += res.rows;
    }
    progress(tty, m->name, n, n, failed, 1);
    if (!quiet)
        fprintf(stderr, "weir run: %s: %zu partitions run, %zu failed, %llu rows\n",
                m->name, n - failed, failed, (unsigned long long)rows);
    ex = failed ? EXIT_PROBLEMS : EXIT_OK;
out:
    free(starts);
    config_release(&cfg);
    return ex;
}
