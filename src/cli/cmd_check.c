/*
 * cmd_check.c - `weir check`: load a config and say what is wrong with it,
 * or print the effective config (every key, defaults filled in, passwords
 * masked), so a user sees exactly what `weir serve` would run.
 *
 * The keys are documented in docs/config.md. Schemas are not compiled
 * here (that is the schema module's job at start-up); their files are
 * only checked to exist and be readable, except those of Kafka pipelines,
 * which must not declare the metadata members (store/kmeta.h). A Protobuf
 * source's descriptor set is read, and its message type must be in it.
 * TLS files are loaded as serve loads them, so a key that does not match
 * its certificate, or a CA file without a certificate, is found here too.
 */
#include "cli/cli.h"
#include "config/config.h"
#include "net/tls.h"
#include "schema/protobuf.h"
#include "store/lake.h"

#include <getopt.h>
#include <stdio.h>

/* A Kafka pipeline's schema may not declare the metadata members weir
 * adds (store/kmeta.h): its lake table refuses it, as `weir serve` does. */
static int check_kafka_schemas(const struct weir_config *cfg, struct weir_errmsg *e)
{
    for (size_t i = 0; i < cfg->npipelines; i++) {
        const struct config_pipeline *p = &cfg->pipelines[i];
        if (p->source.kind != CONFIG_SOURCE_KAFKA || !p->schema)
            continue;
        struct lake_table *t = NULL;
        int rc = lake_table_new(cfg, p, NULL, &t, e);
        lake_table_free(t);
        if (rc)
            return rc;
    }
    return 0;
}

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
    if (files && (config_check_files(&cfg, &err) != 0 || check_kafka_schemas(&cfg, &err))) {
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
    /* A Protobuf source's descriptor set is read and its message type
     * looked up, as serve would. */
    for (size_t i = 0; files && i < cfg.npipelines; i++) {
        struct protobuf *pb = NULL;
        if (lake_load_protobuf(&cfg, &cfg.pipelines[i], &pb, &err) != 0) {
            fprintf(stderr, "weir check: %s\n", err.text);
            rc = EXIT_USAGE;
            goto out;
        }
        protobuf_free(pb);
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
