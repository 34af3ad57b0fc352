/*
 * cmd_requeue.c - `weir requeue [-c FILE] PIPELINE [--dry-run] [--reason R]
 * [--from T] [--to T]`: re-validate a pipeline's quarantined records against
 * the current config and file the ones now valid (store/requeue.h; the
 * protocol is in docs/storage.md, "Requeue").
 */
#include "cli/cli.h"
#include "config/config.h"
#include "core/log.h"
#include "core/wtime.h"
#include "schema/schema.h"
#include "store/lake.h"
#include "store/requeue.h"

#include <getopt.h>
#include <inttypes.h>
#include <stdint.h>
#include <string.h>

/* Add the reasons of a comma-separated list to *mask; -1 on a bad name. */
static int parse_reasons(const char *s, unsigned *mask)
{
    char one[32];
    while (*s) {
        size_t n = strcspn(s, ",");
        if (n == 0 || n >= sizeof(one))
            return -1;
        memcpy(one, s, n);
        one[n] = '\0';
        int r = quar_reason_parse(one);
        if (r < 0)
            return -1;
        *mask |= 1u << r;
        s += n;
        if (*s == ',')
            s++;
    }
    return 0;
}

static struct schema *load_schema(const struct weir_config *cfg,
                                  const struct config_pipeline *p)
{
    struct weir_errmsg e = {0};
    /* As serve validates (a protobuf pipeline: its derived schema). */
    struct schema *s = lake_load_schema(cfg, p, &e);
    if (!s)
        fprintf(stderr, "weir requeue: %s\n", e.text);
    return s;
}

static void print_report(const char *pipeline, const struct requeue_opts *o,
                         const struct requeue_counts *c)
{
    const char *would = o->dry_run ? "would be " : "";
    if (c->finished)
        printf("finished %lu interrupted requeue%s first (%" PRIu64
               " records moved to raw)\n",
               c->finished, c->finished == 1 ? "" : "s", c->finished_records);
    if (c->discarded)
        printf("removed %lu staging file%s an interrupted requeue left\n",
               c->discarded, c->discarded == 1 ? "" : "s");
    if (c->pending)
        printf("%lu interrupted requeue%s pending: the next run without "
               "--dry-run finishes %s\n",
               c->pending, c->pending == 1 ? " is" : "s are",
               c->pending == 1 ? "it" : "them");
    printf("requeue %s%s: %lu sealed quarantine segment%s read, %lu %srewritten, "
           "%lu raw segment%s %swritten\n",
           pipeline, o->dry_run ? " (dry run: nothing changed)" : "",
           c->segments, c->segments == 1 ? "" : "s", c->rewritten, would,
           c->raw_segments, c->raw_segments == 1 ? "" : "s", would);
    printf("%-20s %12s %12s\n", "reason", o->dry_run ? "would requeue" : "requeued",
           "stay");
    for (int i = 0; i < QUAR__COUNT; i++) {
        if (!c->requeued[i] && !c->stay[i])
            continue;
        printf("%-20s %12" PRIu64 " %12" PRIu64, quar_reason_name(i),
               c->requeued[i], c->stay[i]);
        if (i == QUAR_TOO_LARGE)
            printf("  (cut at max_record: can never be valid, left as they are)");
        else if (c->reverdict[i])
            printf("  (%" PRIu64 " with a new verdict)", c->reverdict[i]);
        printf("\n");
    }
    printf("%-20s %12" PRIu64 " %12" PRIu64 "\n", "total",
           requeue_total(c->requeued), requeue_total(c->stay));
    uint64_t cut_other = c->cut - c->stay[QUAR_TOO_LARGE];
    if (cut_other)
        printf("%" PRIu64 " of them cut at max_record (truncated): can never "
               "be valid, left as they are\n",
               cut_other);
    if (c->unreadable)
        printf("%" PRIu64 " line%s that %s not quarantine records left as they are\n",
               c->unreadable, c->unreadable == 1 ? "" : "s",
               c->unreadable == 1 ? "is" : "are");
    if (c->skipped)
        printf("%" PRIu64 " record%s outside --reason/--from/--to left as they are\n",
               c->skipped, c->skipped == 1 ? "" : "s");
    if (c->active)
        printf("%lu active quarantine segment%s not read (a server writes %s; "
               "sealed when %s hour closes)\n",
               c->active, c->active == 1 ? "" : "s",
               c->active == 1 ? "it" : "them", c->active == 1 ? "its" : "their");
}

int cmd_requeue(int argc, char **argv)
{
    static const struct option opts[] = {
        {"config", required_argument, NULL, 'c'},
        {"dry-run", no_argument, NULL, 'n'},
        {"reason", required_argument, NULL, 'r'},
        {"from", required_argument, NULL, 'f'},
        {"to", required_argument, NULL, 't'},
        {NULL, 0, NULL, 0},
    };
    const char *path = NULL;
    struct requeue_opts o = {0};
    int have_from = 0, have_to = 0;
    int64_t from = INT64_MIN, to = INT64_MAX;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "c:n", opts, NULL)) != -1) {
        switch (c) {
        case 'c':
            path = optarg;
            break;
        case 'n':
            o.dry_run = 1;
            break;
        case 'r':
            if (parse_reasons(optarg, &o.reasons) != 0)
                return cli_usage_error(
                    "requeue",
                    "--reason '%s': not one of invalid, too_large, truncated, "
                    "time_missing, time_unparsable, time_out_of_range, torn",
                    optarg);
            break;
        case 'f':
        case 't':
            if (wtime_parse_point(optarg, c == 'f' ? &from : &to) != 0)
                return cli_usage_error("requeue",
                                       "--%s '%s': not a time (2025-09-02, "
                                       "2025-09-02T10, 2025-09-02T10:00:00Z)",
                                       c == 'f' ? "from" : "to", optarg);
            if (c == 'f')
                have_from = 1;
            else
                have_to = 1;
            break;
        default:
            return cli_usage_error("requeue", "unknown option");
        }
    }
    if (optind >= argc)
        return cli_usage_error("requeue", "which pipeline? (weir requeue PIPELINE)");
    if (optind + 1 < argc)
        return cli_usage_error("requeue", "unexpected argument '%s'",
                               argv[optind + 1]);
    const char *name = argv[optind];
    if ((have_from || have_to) && from >= to)
        return cli_usage_error("requeue", "--from must be before --to");
    o.range = have_from || have_to;
    o.from_ns = from;
    o.to_ns = to;

    struct weir_config cfg;
    if (cli_load_config("requeue", path, &cfg) != 0)
        return EXIT_USAGE;
    log_setup(cfg.log_level, cfg.log_format);
    log_setup_from_env();
    int rc = EXIT_USAGE;
    struct schema *schema = NULL;
    const struct config_pipeline *p = config_pipeline(&cfg, name);
    if (!p) {
        fprintf(stderr, "weir requeue: %s: no pipeline '%s' there; it has:",
                cfg.file, name);
        for (size_t i = 0; i < cfg.npipelines; i++)
            fprintf(stderr, " %s", cfg.pipelines[i].name);
        fprintf(stderr, "\n");
        goto done;
    }
    if (!(schema = load_schema(&cfg, p)))
        goto done;
    struct requeue_counts counts = {0};
    struct weir_errmsg e = {0};
    int err = requeue_run(&cfg, p, schema, &o, &counts, &e);
    print_report(p->name, &o, &counts);
    fflush(stdout);
    if (err) {
        fprintf(stderr, "weir requeue: %s\n", e.text[0] ? e.text : weir_strerror(err));
        fprintf(stderr, "weir requeue: stopped; what was done is complete, and "
                        "the next run goes on from there\n");
        rc = EXIT_RUNTIME;
        goto done;
    }
    uint64_t left = requeue_total(counts.stay) - counts.cut + counts.unreadable;
    rc = left ? EXIT_PROBLEMS : EXIT_OK;
done:
    schema_free(schema);
    config_release(&cfg);
    return rc;
}
