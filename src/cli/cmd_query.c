/*
 * cmd_query.c - `weir query`: SQL over the lake, one view per pipeline
 * named after it: its committed Parquet files plus the raw segments not
 * absorbed yet (store/lake.h pins them consistently), typed from the
 * schema. Works while `weir serve` runs: nothing here takes a lock serve
 * holds. docs/query.md is the user's guide.
 */
#include "cli/cli.h"

#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "config/config.h"
#include "core/buf.h"
#include "core/log.h"
#include "sched/models.h"
#include "sql/sql.h"
#include "store/lake.h"

#include "core/limits.h"

/* Longest SQL text accepted on the command line or stdin. */
#define QUERY_MAX_SQL WEIR_QUERY_MAX_SQL

struct as_of {
    const char *pipeline;   /* NULL: every pipeline */
    uint64_t version;
};

/* 1 if the pipeline's name occurs in sql as a word (ASCII, any case):
 * the only way a query can read a view is by naming it, and names are
 * [a-z_][a-z0-9_]*, so a miss here means the view is not read. */
static int mentions(const char *sql, const char *name)
{
    size_t n = strlen(name);
    for (const char *p = sql; *p; p++) {
        if (strncasecmp(p, name, n) != 0)
            continue;
        int before = p > sql && (isalnum((unsigned char)p[-1]) || p[-1] == '_');
        int after = isalnum((unsigned char)p[n]) || p[n] == '_';
        if (!before && !after)
            return 1;
    }
    return 0;
}

/* Signals end the query through DuckDB's interrupt, so the pins are
 * released on the way out; a thread waits for them. */
struct sigctx {
    sigset_t set;
    struct sql_db *db;
    pthread_mutex_t mu;
    int got;
};

static void *sig_main(void *arg)
{
    struct sigctx *s = arg;
    int sig;
    while (sigwait(&s->set, &sig) == 0) {
        pthread_mutex_lock(&s->mu);
        if (sig == SIGUSR2) { /* our own "stop waiting" */
            pthread_mutex_unlock(&s->mu);
            break;
        }
        s->got = sig;
        if (s->db)
            sql_interrupt(s->db);
        pthread_mutex_unlock(&s->mu);
    }
    return NULL;
}

static int add_view(struct sql_db *db, const struct weir_config *cfg,
                    const struct config_pipeline *p, const char *sql,
                    const struct as_of *as_of, size_t nas_of, struct lake_view *v,
                    struct weir_errmsg *e)
{
    struct lake_table *t = NULL;
    struct buf q = BUF_INIT(512u << 20);
    uint64_t version = 0;
    int rc;

    for (size_t i = 0; i < nas_of; i++)
        if (!as_of[i].pipeline || strcmp(as_of[i].pipeline, p->name) == 0)
            version = as_of[i].version;
    if ((rc = lake_table_new(cfg, p, NULL, &t, e)))
        goto out;
    rc = buf_puts(&q, "CREATE TEMP VIEW ");
    rc = rc ? rc : sql_quote_ident(&q, p->name);
    rc = rc ? rc : buf_puts(&q, " AS ");
    if (rc)
        goto oom;
    if (!mentions(sql, p->name)) {
        /* Not read: an empty view with the right columns, for listings. */
        rc = lake_sql_empty(t, LAKE_SQL_PARTCOLS, &q);
    } else {
        struct weir_errmsg ve = {0};
        int vrc = lake_view_open(t, version, v, &ve);
        if (vrc) {
            rc = errmsg_set(e, vrc, "pipeline %s: %s", p->name, ve.text);
            goto out;
        } else if ((rc = lake_check_columns(t, &v->snap, e))) {
            goto out;
        } else {
            rc = lake_view_sql(t, v, &q);
        }
    }
    if (rc)
        goto oom;
    rc = sql_exec(db, q.data, e);
    goto out;
oom:
    rc = errmsg_set(e, rc, "pipeline %s: the view is too large to build", p->name);
out:
    buf_release(&q);
    lake_table_free(t);
    return rc;
}

static int read_stdin(struct buf *b)
{
    char tmp[65536];
    size_t n;
    while ((n = fread(tmp, 1, sizeof tmp, stdin)) > 0)
        if (buf_append(b, tmp, n))
            return -1;
    return ferror(stdin) ? -1 : 0;
}

int cmd_query(int argc, char **argv)
{
    static const struct option opts[] = {
        {"config", required_argument, NULL, 'c'},
        {"format", required_argument, NULL, 'f'},
        {"as-of", required_argument, NULL, 'a'},
        {"memory-limit", required_argument, NULL, 'm'},
        {"threads", required_argument, NULL, 't'},
        {NULL, 0, NULL, 0},
    };
    const char *path = NULL;
    struct sql_opts so = {0};
    enum sql_format fmt = SQL_FORMAT_TABLE;
    struct as_of as_of[64];
    size_t nas_of = 0;
    struct weir_config cfg;
    struct weir_errmsg e = {0};
    struct buf sql = BUF_INIT(QUERY_MAX_SQL);
    struct sql_db *db = NULL;
    struct sql_result *res = NULL;
    struct lake_view *views = NULL;
    struct sigctx sc;
    pthread_t sig_thread;
    int have_thread = 0, opt, ex = EXIT_OK, rc;

    optind = 1;
    while ((opt = getopt_long(argc, argv, "c:f:", opts, NULL)) != -1) {
        switch (opt) {
        case 'c':
            path = optarg;
            break;
        case 'f': {
            int f = sql_format_parse(optarg);
            if (f < 0)
                return cli_usage_error("query", "--format: '%s' is not table, csv or json",
                                       optarg);
            fmt = (enum sql_format)f;
            break;
        }
        case 'a': {
            char *eq = strchr(optarg, '='), *end;
            const char *num = eq ? eq + 1 : optarg;
            errno = 0;
            unsigned long long v = strtoull(num, &end, 10);
            if (nas_of == sizeof as_of / sizeof as_of[0])
                return cli_usage_error("query", "too many --as-of");
            if (errno || *end || v == 0 || !isdigit((unsigned char)*num))
                return cli_usage_error("query", "--as-of: '%s' is not N or PIPELINE=N "
                                       "(N >= 1, a table version)", optarg);
            if (eq)
                *eq = '\0';
            as_of[nas_of].pipeline = eq ? optarg : NULL;
            as_of[nas_of++].version = v;
            break;
        }
        case 'm':
            so.memory_limit = optarg;
            break;
        case 't': {
            char *end;
            errno = 0;
            long n = strtol(optarg, &end, 10);
            if (errno || *end || n < 1 || n > 1024)
                return cli_usage_error("query", "--threads: '%s' is not 1..1024", optarg);
            so.threads = (int)n;
            break;
        }
        default:
            return cli_usage_error("query", "unknown option");
        }
    }
    if (optind + 1 != argc)
        return cli_usage_error("query", optind == argc ? "a SQL statement is required "
                                                         "('-' reads it from stdin)"
                                                       : "one SQL argument only (quote it)");
    if (strcmp(argv[optind], "-") == 0 ? read_stdin(&sql) : buf_puts(&sql, argv[optind])) {
        fprintf(stderr, "weir query: cannot read the SQL (at most %u bytes)\n", QUERY_MAX_SQL);
        return EXIT_USAGE;
    }
    if (!sql.data || !*sql.data)
        return cli_usage_error("query", "the SQL statement is empty");
    if (cli_load_config("query", path, &cfg) != 0) {
        buf_release(&sql);
        return EXIT_USAGE;
    }
    log_setup(cfg.log_level, cfg.log_format);
    log_setup_from_env();
    for (size_t i = 0; i < nas_of; i++)
        if (as_of[i].pipeline && !config_pipeline(&cfg, as_of[i].pipeline)) {
            fprintf(stderr, "weir query: --as-of: no pipeline '%s' in %s\n",
                    as_of[i].pipeline, cfg.file);
            ex = EXIT_USAGE;
            goto out;
        }

    /* Signals: handled by a thread, blocked everywhere else (DuckDB's
     * threads inherit the mask). */
    memset(&sc, 0, sizeof sc);
    pthread_mutex_init(&sc.mu, NULL);
    sigemptyset(&sc.set);
    sigaddset(&sc.set, SIGINT);
    sigaddset(&sc.set, SIGTERM);
    sigaddset(&sc.set, SIGHUP);
    sigaddset(&sc.set, SIGUSR2);
    pthread_sigmask(SIG_BLOCK, &sc.set, NULL);
    have_thread = pthread_create(&sig_thread, NULL, sig_main, &sc) == 0;

    char tmpdir[4096];
    const char *tmp = getenv("TMPDIR");
    snprintf(tmpdir, sizeof tmpdir, "%s/weir-query-%ld.tmp", tmp && *tmp ? tmp : "/tmp",
             (long)getpid());
    so.temp_directory = tmpdir;
    if ((rc = sql_open(&so, &db, &e))) {
        fprintf(stderr, "weir query: %s\n", e.text);
        ex = rc == WEIR_EINVAL ? EXIT_USAGE : EXIT_RUNTIME;
        goto out;
    }
    pthread_mutex_lock(&sc.mu);
    sc.db = db;
    pthread_mutex_unlock(&sc.mu);
    views = calloc(cfg.npipelines, sizeof *views);
    if (!views) {
        fprintf(stderr, "weir query: out of memory\n");
        ex = EXIT_RUNTIME;
        goto out;
    }
    for (size_t i = 0; i < cfg.npipelines; i++) {
        if ((rc = add_view(db, &cfg, &cfg.pipelines[i], sql.data, as_of, nas_of,
                           &views[i], &e))) {
            fprintf(stderr, "weir query: %s\n", e.text);
            ex = rc == WEIR_ESCHEMA ? EXIT_USAGE
                 : rc == WEIR_ENOTFOUND ? EXIT_PROBLEMS : EXIT_RUNTIME;
            goto out;
        }
    }
    /* Dimension tables (CSV or Parquet files of the config) are views too. */
    if ((rc = model_dimension_views(&cfg, db, &e)) != 0) {
        fprintf(stderr, "weir query: %s\n", e.text);
        ex = EXIT_RUNTIME;
        goto out;
    }
    /* Models with a lake output are datasets too, Parquet only (no raw). */
    for (size_t i = 0; i < cfg.nmodels; i++) {
        const struct config_model *m = &cfg.models[i];
        struct buf q = BUF_INIT(256u << 20);
        if (!model_has_lake(m) || !mentions(sql.data, m->name))
            continue;
        rc = buf_puts(&q, "CREATE TEMP VIEW ");
        rc = rc ? rc : sql_quote_ident(&q, m->name);
        rc = rc ? rc : buf_puts(&q, " AS ");
        if (rc)
            rc = errmsg_set(&e, rc, "model %s: the view is too large", m->name);
        else if ((rc = model_lake_view_sql(&cfg, m, &q, &e)) == 0)
            rc = sql_exec(db, q.data, &e);
        buf_release(&q);
        if (rc) {
            fprintf(stderr, "weir query: %s\n", e.text);
            ex = EXIT_RUNTIME;
            goto out;
        }
    }
    rc = sql_query(db, sql.data, &res, &e);
    if (rc == 0)
        rc = sql_result_write(res, fmt, stdout, NULL, &e);
    if (rc) {
        fprintf(stderr, "weir query: %s\n", sc.got ? "interrupted" : e.text);
        ex = rc == WEIR_ESQL ? EXIT_PROBLEMS : EXIT_RUNTIME;
    }
out:
    sql_result_free(res);
    if (have_thread) {
        pthread_mutex_lock(&sc.mu);
        sc.db = NULL;
        pthread_mutex_unlock(&sc.mu);
    }
    sql_close(db);
    for (size_t i = 0; views && i < cfg.npipelines; i++)
        lake_view_release(&views[i]);
    free(views);
    if (have_thread) {
        pthread_kill(sig_thread, SIGUSR2);
        pthread_join(sig_thread, NULL);
        pthread_mutex_destroy(&sc.mu);
    }
    config_release(&cfg);
    buf_release(&sql);
    return ex;
}
