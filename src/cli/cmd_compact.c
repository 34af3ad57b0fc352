/*
 * cmd_compact.c - `weir compact`, and the option parsing and reporting it
 * shares with `weir optimize` and `weir gc` (cmd_optimize.c, cmd_gc.c): the
 * lake's maintenance commands, run by hand or from cron (serve runs the
 * same code in its compactor thread). docs/lake.md describes them.
 */
#include "cli/cli.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/config.h"
#include "core/log.h"
#include "core/wtime.h"
#include "store/compact.h"

static const char *const maint_name[] = {"compact", "optimize", "gc"};

static int exit_of(int rc)
{
    switch (rc) {
    case 0:
        return EXIT_OK;
    case WEIR_ESCHEMA:
    case WEIR_ECONFIG:
        return EXIT_USAGE;
    default:
        return EXIT_RUNTIME;
    }
}

static void mb(char *out, size_t cap, uint64_t bytes)
{
    snprintf(out, cap, "%.1f MB", (double)bytes / 1e6);
}

static int run_one(enum cli_maint m, const struct weir_config *cfg,
                   const struct config_pipeline *p, const struct compact_opts *o,
                   int quiet)
{
    struct weir_errmsg e = {0};
    char in[32], out[32];
    int rc;

    if (m == M_GC) {
        struct gc_stats gs = {0};
        rc = compact_gc(cfg, p, o, &gs, &e);
        if (rc == 0 && !quiet)
            fprintf(stderr, "gc %s: %lu Parquet files expired, %lu deleted; %lu raw and "
                            "%lu quarantine segments deleted; %lu query directories "
                            "removed\n",
                    p->name, gs.parquet_expired, gs.parquet_deleted, gs.raw_deleted,
                    gs.quarantine_deleted, gs.query_dirs_removed);
    } else {
        struct compact_stats st = {0};
        rc = m == M_COMPACT ? compact_pipeline(cfg, p, o, &st, &e)
                            : compact_optimize(cfg, p, o, &st, &e);
        mb(in, sizeof in, st.bytes_in);
        mb(out, sizeof out, st.bytes_out);
        /* With partitions refused on their data, the others were done:
         * say what was. */
        if ((rc == 0 || st.partitions_failed) && !quiet) {
            if (m == M_COMPACT)
                fprintf(stderr, "compact %s: %lu partition%s, %lu segment%s, %" PRIu64
                                " rows, %s raw -> %s Parquet, version %" PRIu64
                                " (%.2f s)%s\n",
                        p->name, st.partitions, st.partitions == 1 ? "" : "s",
                        st.segments, st.segments == 1 ? "" : "s", st.rows, in, out,
                        st.version, (double)st.elapsed_ns / 1e9,
                        st.partitions_failed ? "; some partitions failed" : "");
            else
                fprintf(stderr, "optimize %s: %lu partition%s, %lu files merged into %lu, "
                                "%" PRIu64 " rows, %s -> %s, version %" PRIu64 "\n",
                        p->name, st.partitions, st.partitions == 1 ? "" : "s",
                        st.files_removed, st.files_added, st.rows, in, out, st.version);
        }
    }
    if (rc)
        fprintf(stderr, "weir %s: %s\n", maint_name[m], e.text);
    return rc;
}

int cmd_maint(enum cli_maint m, int argc, char **argv)
{
    static const struct option opts[] = {
        {"config", required_argument, NULL, 'c'},
        {"all", no_argument, NULL, 'a'},
        {"partition", required_argument, NULL, 'p'},
        {"orphan-grace", required_argument, NULL, 'g'},
        {"memory-limit", required_argument, NULL, 'm'},
        {"threads", required_argument, NULL, 't'},
        {"quiet", no_argument, NULL, 'q'},
        {NULL, 0, NULL, 0},
    };
    const char *name = maint_name[m], *path = NULL;
    struct compact_opts o = {.grace_ns = -1, .orphan_grace_ns = -1, .progress = 1};
    struct weir_config cfg;
    int quiet = 0, opt, worst = EXIT_OK;

    optind = 1;
    while ((opt = getopt_long(argc, argv, "c:q", opts, NULL)) != -1) {
        switch (opt) {
        case 'c':
            path = optarg;
            break;
        case 'a':
            if (m != M_COMPACT)
                return cli_usage_error(name, "--all is an option of weir compact");
            o.all = 1;
            break;
        case 'p':
            if (m != M_OPTIMIZE)
                return cli_usage_error(name, "--partition is an option of weir optimize");
            o.partition = optarg;
            break;
        case 'g':
            if (wtime_parse_duration(optarg, &o.orphan_grace_ns) != 0)
                return cli_usage_error(name, "--orphan-grace: '%s' is not a duration",
                                       optarg);
            break;
        case 'm':
            o.memory_limit = optarg;
            break;
        case 't': {
            char *end;
            errno = 0;
            long n = strtol(optarg, &end, 10);
            if (errno || *end || n < 1 || n > 1024)
                return cli_usage_error(name, "--threads: '%s' is not 1..1024", optarg);
            o.threads = (int)n;
            break;
        }
        case 'q':
            quiet = 1;
            o.progress = 0;
            break;
        default:
            return cli_usage_error(name, "unknown option");
        }
    }
    if (cli_load_config(name, path, &cfg) != 0)
        return EXIT_USAGE;
    log_setup(cfg.log_level, cfg.log_format);
    log_setup_from_env();
    for (int i = optind; i < argc; i++) {
        if (!config_pipeline(&cfg, argv[i])) {
            fprintf(stderr, "weir %s: no pipeline '%s' in %s\n", name, argv[i], cfg.file);
            config_release(&cfg);
            return EXIT_USAGE;
        }
    }
    for (size_t i = 0; i < cfg.npipelines; i++) {
        const struct config_pipeline *p = &cfg.pipelines[i];
        int wanted = optind == argc;
        for (int k = optind; k < argc && !wanted; k++)
            wanted = strcmp(argv[k], p->name) == 0;
        if (!wanted)
            continue;
        int ex = exit_of(run_one(m, &cfg, p, &o, quiet));
        if (ex > worst)
            worst = ex;
    }
    config_release(&cfg);
    return worst;
}

int cmd_compact(int argc, char **argv)
{
    return cmd_maint(M_COMPACT, argc, argv);
}
