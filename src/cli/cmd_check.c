/*
 * cmd_check.c - `weir check`: load a config and say what is wrong with it,
 * or print the effective config (every key, defaults filled in, passwords
 * masked), so a user sees exactly what `weir serve` would run.
 *
 * The keys are documented in docs/config.md. Schemas are not compiled
 * here (that is the schema module's job at start-up); their files are
 * only checked to exist and be readable. TLS files are loaded as serve
 * loads them, so a key that does not match its certificate, or a CA file
 * without a certificate, is found here too.
 */
#include "cli/cli.h"
#include "config/config.h"
#include "net/tls.h"

#include <getopt.h>
#include <stdio.h>

int cmd_check(int argc, char **argv)
{
    static const struct option opts[] = {
        {"config", required_argument, NULL, 'c'},
        {"no-files", no_argument, NULL, 'n'},
        {"quiet", no_argument, NULL, 'q'},
        {NULL, 0, NULL, 0},
    };
    const char *path = NULL;
    int files = 1, quiet = 0, opt, rc = EXIT_OK;
    struct weir_config cfg;
    struct weir_errmsg err = {0};
    struct buf out = BUF_INIT(64u << 20);

    optind = 1;
    while ((opt = getopt_long(argc, argv, "c:q", opts, NULL)) != -1) {
        switch (opt) {
        case 'c': path = optarg; break;
        case 'n': files = 0; break;
        case 'q': quiet = 1; break;
        default: return cli_usage_error("check", "unknown option");
        }
    }
    if (optind < argc)
        return cli_usage_error("check", "unexpected argument '%s'", argv[optind]);

    if (config_load(path, &cfg, &err) != 0) {
        fprintf(stderr, "weir check: %s\n", err.text);
        return EXIT_USAGE;
    }
    if (files && config_check_files(&cfg, &err) != 0) {
        fprintf(stderr, "weir check: %s\n", err.text);
        rc = EXIT_USAGE;
        goto out;
    }
    for (size_t i = 0; files && i < cfg.npipelines; i++) {
        const struct config_pipeline *p = &cfg.pipelines[i];
        struct tls_ctx *tls = NULL;
        char what[CONFIG_NAME_MAX + 32];
        if (p->source.kind != CONFIG_SOURCE_TCP || !p->source.tls.cert)
            continue;
        snprintf(what, sizeof what, "pipeline %s: source.tls", p->name);
        if (tls_ctx_new_server(p->source.tls.cert, p->source.tls.key, p->source.tls.ca, what,
                               &tls, &err) != 0) {
            fprintf(stderr, "weir check: %s: %s\n", cfg.file, err.text);
            rc = EXIT_USAGE;
            goto out;
        }
        tls_ctx_free(tls);
    }
    if (!quiet) {
        if (config_dump(&cfg, &out) != 0) {
            fprintf(stderr, "weir check: out of memory\n");
            rc = EXIT_RUNTIME;
            goto out;
        }
        fwrite(out.data, 1, out.len, stdout);
    }
    fprintf(stderr, "weir check: %s is valid: %zu pipeline%s, %zu model%s, %zu dimension%s\n",
            cfg.file, cfg.npipelines, cfg.npipelines == 1 ? "" : "s", cfg.nmodels,
            cfg.nmodels == 1 ? "" : "s", cfg.ndimensions, cfg.ndimensions == 1 ? "" : "s");
out:
    buf_release(&out);
    config_release(&cfg);
    return rc;
}
