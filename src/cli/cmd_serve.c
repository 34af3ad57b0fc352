/*
 * cmd_serve.c - `weir serve [-c FILE]`: run the pipelines of a config.
 */
#include "cli/cli.h"
#include "config/config.h"
#include "core/log.h"
#include "sched/server.h"

#include <getopt.h>
#include <stdlib.h>

/* Load -c FILE (or the embedded default) for a subcommand; prints the
 * error and returns EXIT_USAGE on failure. Shared by the commands that
 * take -c (see cli.h). */
int cli_load_config(const char *cmd, const char *path, struct weir_config *cfg)
{
    struct weir_errmsg e = {0};
    if (config_load(path, cfg, &e) != 0) {
        fprintf(stderr, "weir %s: %s\n", cmd, e.text);
        return EXIT_USAGE;
    }
    return 0;
}

int cmd_serve(int argc, char **argv)
{
    static const struct option opts[] = {
        {"config", required_argument, NULL, 'c'},
        {NULL, 0, NULL, 0},
    };
    const char *path = NULL;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "c:", opts, NULL)) != -1) {
        if (c == 'c')
            path = optarg;
        else
            return cli_usage_error("serve", "unknown option");
    }
    if (optind < argc)
        return cli_usage_error("serve", "unexpected argument '%s'", argv[optind]);
    struct weir_config cfg;
    if (cli_load_config("serve", path, &cfg) != 0)
        return EXIT_USAGE;
    log_setup(cfg.log_level, cfg.log_format);
    log_setup_from_env();
    if (!path)
        log_info("no config file given: running the embedded default "
                 "(see docs/config.md; weir serve -c FILE to use yours)");
    int rc = server_run(&cfg);
    config_release(&cfg);
    return rc;
}
