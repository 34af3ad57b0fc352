/*
 * cmd_models.c - `weir models`: the dependency graph of the config's models
 * (inputs -> model -> outputs) and, per model, the last run of each
 * partition (time, status, rows, attempts, error) as recorded in its table
 * log, and how many partitions need a run now. docs/models.md.
 */
#include "cli/cli.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/config.h"
#include "core/wtime.h"
#include "sched/models.h"

static const char *output_name(const struct config_output *o)
{
    switch (o->kind) {
    case CONFIG_OUTPUT_LAKE: return "lake";
    case CONFIG_OUTPUT_POSTGRES: return "postgres";
    case CONFIG_OUTPUT_MYSQL: return "mysql";
    case CONFIG_OUTPUT_PARQUET: return "parquet";
    case CONFIG_OUTPUT_KAFKA: return "kafka";
    }
    return "?";
}

static void print_model(const struct weir_config *cfg, const struct config_model *m,
                        int64_t now, int *problems)
{
    struct weir_errmsg e = {0};
    struct model_state *v = NULL;
    int64_t *todo = NULL;
    size_t n = 0, ntodo = 0;

    printf("%s (%s):", m->name, m->grain == CONFIG_PARTITION_DAY ? "day" : "hour");
    for (size_t i = 0; i < m->ninputs; i++)
        printf(" %s%s (%s)", i ? ", " : "", m->inputs[i],
               config_pipeline(cfg, m->inputs[i]) ? "pipeline" : "model");
    printf(" -> %s ->", m->name);
    for (size_t i = 0; i < m->noutputs; i++) {
        const struct config_output *o = &m->outputs[i];
        printf("%s %s", i ? "," : "", output_name(o));
        if (o->table)
            printf(" %s", o->table);
    }
    putchar('\n');
    if (model_check(cfg, m, &e)) {
        printf("  error: %s\n", e.text);
        *problems = 1;
        return;
    }
    if (model_states(cfg, m, &v, &n, &e)) {
        printf("  error: %s\n", e.text);
        *problems = 1;
        return;
    }
    if (model_plan(cfg, m, now, &todo, &ntodo, &e) == 0)
        printf("  %zu partitions run, %zu need a run now\n", n, ntodo);
    else
        printf("  %zu partitions run; cannot plan: %s\n", n, e.text);
    if (n)
        printf("  %-24s %-20s %-7s %10s %8s  %s\n", "partition", "last run", "status",
               "rows", "attempts", "next try / error");
    for (size_t i = 0; i < n; i++) {
        char at[64], next[64];
        wtime_format_rfc3339(v[i].at_ns, 0, at, sizeof at);
        printf("  %-24s %-20s %-7s %10llu %8u", v[i].key, at, v[i].ok ? "ok" : "failed",
               (unsigned long long)v[i].rows, v[i].attempts);
        if (!v[i].ok) {
            wtime_format_rfc3339(v[i].next_try_ns, 0, next, sizeof next);
            printf("  %s: %s", next, v[i].error);
            *problems = 1;
        }
        putchar('\n');
    }
    free(todo);
    free(v);
}

int cmd_models(int argc, char **argv)
{
    static const struct option opts[] = {
        {"config", required_argument, NULL, 'c'},
        {NULL, 0, NULL, 0},
    };
    const char *path = NULL;
    struct weir_config cfg;
    int opt, problems = 0;

    optind = 1;
    while ((opt = getopt_long(argc, argv, "c:", opts, NULL)) != -1) {
        if (opt != 'c')
            return cli_usage_error("models", NULL);
        path = optarg;
    }
    if (optind != argc)
        return cli_usage_error("models", "unexpected argument '%s'", argv[optind]);
    if (cli_load_config("models", path, &cfg))
        return EXIT_USAGE;
    if (cfg.nmodels == 0)
        printf("no models in %s\n", cfg.file);
    int64_t now = wtime_now_ns();
    for (size_t i = 0; i < cfg.nmodels; i++)
        print_model(&cfg, &cfg.models[i], now, &problems);
    config_release(&cfg);
    return problems ? EXIT_PROBLEMS : EXIT_OK;
}
