/*
 * cmd_replay.c - `weir replay PIPELINE --from T --to T`: rebuild the
 * dataset a pipeline's transform derives, partition by partition, from
 * the pipeline's committed Parquet, through the same runner the stream
 * uses (sql/xform.h). docs/kafka.md, "Transforms and replay", is the
 * user's guide.
 *
 * Per partition of the range (in time order):
 *
 *   1. settled? closed (end + grace passed) and compacted (no raw segment
 *      of P left unabsorbed); otherwise skipped, with the reason;
 *   2. P's live Parquet files of the partition are read by DuckDB and go,
 *      as Arrow batches of batch.max_records rows, through the transform;
 *   3. each output row is validated by D's schema and timed like a
 *      landed record; rows that fail are counted and reported, not
 *      written (the stream would have quarantined them), rows whose event
 *      time falls in another partition too (the stream would have landed
 *      them there; replay that partition's source instead);
 *   4. one commit of D's table log removes D's files of the partition,
 *      absorbs D's raw segments of it written before the replay started,
 *      and adds one file with the new rows (compact_replace_partition).
 *
 * So replay is idempotent (a second run replaces the same rows with the
 * same rows) and runs beside `weir serve`: rows the stream adds to D after
 * the start are in segments the commit does not absorb.
 */
#include "cli/cli.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config/config.h"
#include "core/buf.h"
#include "core/fsio.h"
#include "core/log.h"
#include "core/wtime.h"
#include "schema/schema.h"
#include "schema/validate.h"
#include "sources/transform.h"
#include "sql/sql.h"
#include "sql/xform.h"
#include "store/compact.h"
#include "store/lake.h"
#include "store/land.h"
#include "store/partition.h"
#include "store/segment.h"
#include "store/tablelog.h"

/* Tries of a partition's commit while D's segments are busy or another
 * writer wins the race. */
#define REPLAY_TRIES 20

struct out {
    const struct config_pipeline *d;
    struct validator *v;
    FILE *f;
    int64_t part;
    enum part_grain grain;
    uint64_t written, refused, moved;
    char first_refusal[1100];
    int io_error;
};

/* One output row: validated and timed as D would land it, then written. */
static int put_row(void *ctx, const char *rec, size_t len)
{
    struct out *o = ctx;
    struct verdict vd;
    char why[256];
    int64_t ts, start;
    int ok = validator_check(o->v, rec, len, &vd);
    if (ok <= 0) {
        if (o->refused++ == 0)
            snprintf(o->first_refusal, sizeof o->first_refusal, "%s: %s",
                     vd.path[0] ? vd.path : "/", ok < 0 ? "cannot validate" : vd.message);
        return 0;
    }
    if (land_event_time(o->d, validator_doc(o->v), &ts, why, sizeof why)) {
        if (o->refused++ == 0)
            snprintf(o->first_refusal, sizeof o->first_refusal, "%s", why);
        return 0;
    }
    if (part_start(ts, o->grain, &start) || start != o->part) {
        o->moved++;
        return 0;
    }
    size_t n;
    const char *text = validator_output(o->v, &n);
    if (fwrite(text, 1, n, o->f) != n || putc('\n', o->f) == EOF) {
        o->io_error = errno ? errno : EIO;
        return WEIR_EIO;
    }
    o->written++;
    return 0;
}

struct run {
    const struct weir_config *cfg;
    const struct config_pipeline *p, *d;
    struct transform_prep *prep;
    struct schema *dschema;
    struct validator *v;
    struct sql_db *db;
    char tmp[PATH_MAX];
    int tty;
    uint64_t in, out, refused, moved;
    size_t done, skipped, failed;
    struct compact_stats st;
};

/* Replay one settled partition; 0, or an error for this partition. */
static int replay_partition(struct run *r, int64_t ps, const char *const *files, size_t nf,
                            struct weir_errmsg *e)
{
    enum part_grain g = r->p->partition == CONFIG_PARTITION_DAY ? PART_DAY : PART_HOUR;
    struct buf sel = BUF_INIT(512u << 20);
    struct out o = {.d = r->d, .v = r->v, .part = ps, .grain = g};
    uint64_t in = 0, outn = 0;
    int rc;
    int64_t cutoff = wtime_now_ns();
    if (!(o.f = fopen(r->tmp, "w")))
        return errmsg_set(e, weir_from_errno(errno), "%s: %s", r->tmp, strerror(errno));
    rc = buf_puts(&sel, "SELECT * FROM (");
    rc = rc ? rc : lake_sql_empty(r->prep->in, LAKE_SQL_PARTCOLS, &sel);
    if (!rc && nf) {
        rc = buf_puts(&sel, " UNION ALL BY NAME ");
        rc = rc ? rc : lake_sql_parquet(r->prep->in, files, nf, LAKE_SQL_PARTCOLS, &sel);
    }
    rc = rc ? rc : buf_putc(&sel, ')');
    if (rc) {
        rc = errmsg_set(e, rc, "the query is too large");
        goto out;
    }
    uint64_t batch = r->p->source.kafka.batch.max_records;
    rc = xform_run_select(r->prep->x, r->db, sel.data, batch ? batch : 10000, put_row, &o,
                          &in, &outn, e);
    if (fclose(o.f) != 0 && !rc)
        rc = errmsg_set(e, WEIR_EIO, "%s: %s", r->tmp, strerror(errno));
    o.f = NULL;
    if (o.io_error && !rc)
        rc = errmsg_set(e, WEIR_EIO, "%s: %s", r->tmp, strerror(o.io_error));
    if (rc)
        goto out;
    const char *paths[] = {r->tmp};
    struct compact_opts co = {.grace_ns = -1, .orphan_grace_ns = -1};
    for (int t = 0;; t++) {
        rc = compact_replace_partition(r->cfg, r->d, &co, ps, cutoff, paths,
                                       o.written ? 1 : 0, &r->st, e);
        if ((rc != WEIR_EAGAIN && rc != WEIR_ECONFLICT) || t + 1 >= REPLAY_TRIES)
            break;
        usleep(rc == WEIR_EAGAIN ? 500000 : 50000);
    }
    if (rc)
        goto out;
    r->in += in;
    r->out += o.written;
    r->refused += o.refused;
    r->moved += o.moved;
    if (o.refused || o.moved) {
        char key[PART_KEY_MAX];
        part_key_format(ps, g, key, sizeof key);
        if (o.refused)
            fprintf(stderr, "%sweir replay: %s: %" PRIu64 " rows refused by %s's schema "
                    "(the first: %s)\n", r->tty ? "\n" : "", key, o.refused, r->d->name,
                    o.first_refusal);
        if (o.moved)
            fprintf(stderr, "%sweir replay: %s: %" PRIu64 " rows have an event time "
                    "outside the partition: not written\n", r->tty ? "\n" : "", key, o.moved);
    }
out:
    if (o.f)
        fclose(o.f);
    unlink(r->tmp);
    buf_release(&sel);
    return rc;
}

static void progress(struct run *r, size_t total, int last)
{
    if (!r->tty)
        return;
    fprintf(stderr, "\rreplay %s -> %s: %zu/%zu partitions, %" PRIu64 " records in, %" PRIu64
            " rows out%s", r->p->name, r->d->name, r->done + r->skipped + r->failed, total,
            r->in, r->out, last ? "\n" : "");
    fflush(stderr);
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

int cmd_replay(int argc, char **argv)
{
    static const struct option opts[] = {
        {"config", required_argument, NULL, 'c'},
        {"from", required_argument, NULL, 'f'},
        {"to", required_argument, NULL, 't'},
        {"quiet", no_argument, NULL, 'q'},
        {NULL, 0, NULL, 0},
    };
    const char *path = NULL, *from_s = NULL, *to_s = NULL;
    int64_t from = 0, to = 0;
    int opt, quiet = 0, ex = EXIT_OK, rc;
    struct weir_config cfg;
    struct weir_errmsg e = {0};
    struct run r;
    struct tablelog *tl = NULL;
    struct tl_snapshot snap = {0};
    struct seg_list segs = {0};
    int64_t *starts = NULL;
    size_t nstarts = 0;
    char **files = NULL;

    memset(&r, 0, sizeof r);
    optind = 1;
    while ((opt = getopt_long(argc, argv, "c:q", opts, NULL)) != -1) {
        switch (opt) {
        case 'c': path = optarg; break;
        case 'f': from_s = optarg; break;
        case 't': to_s = optarg; break;
        case 'q': quiet = 1; break;
        default: return cli_usage_error("replay", NULL);
        }
    }
    if (optind + 1 != argc)
        return cli_usage_error("replay", "give one PIPELINE");
    if (!from_s)
        return cli_usage_error("replay", "--from is required");
    if (wtime_parse_point(from_s, &from))
        return cli_usage_error("replay", "--from: '%s' is not a time (2025-09-02, "
                               "2025-09-02T10, or RFC 3339)", from_s);
    if (to_s && wtime_parse_point(to_s, &to))
        return cli_usage_error("replay", "--to: '%s' is not a time (2025-09-02, "
                               "2025-09-02T10, or RFC 3339)", to_s);
    if (cli_load_config("replay", path, &cfg))
        return EXIT_USAGE;
    r.cfg = &cfg;
    r.p = config_pipeline(&cfg, argv[optind]);
    if (!r.p || !r.p->transform) {
        fprintf(stderr, "weir replay: %s: %s in %s\n", argv[optind],
                r.p ? "has no transform" : "no such pipeline", cfg.file);
        ex = EXIT_USAGE;
        goto out;
    }
    r.d = config_pipeline(&cfg, r.p->transform_name);
    enum part_grain g = r.p->partition == CONFIG_PARTITION_DAY ? PART_DAY : PART_HOUR;
    int64_t now = wtime_now_ns(), s0;
    if (!to_s)
        to = now;
    if (part_start(from, g, &s0) || to <= from) {
        ex = cli_usage_error("replay", "--from must be before --to");
        goto out;
    }
    /* The same compilation as serve's: a SQL error stops here, and D's
     * schema is written from the SQL as it is now. */
    if ((rc = transform_prepare(&cfg, r.p, NULL, &r.prep, &e)) ||
        !(r.dschema = lake_load_schema(&cfg, r.d, &e))) {
        fprintf(stderr, "weir replay: %s\n", e.text);
        ex = EXIT_USAGE;
        goto out;
    }
    if (!(r.v = validator_new(r.dschema))) {
        fprintf(stderr, "weir replay: out of memory\n");
        ex = EXIT_RUNTIME;
        goto out;
    }
    char ddir[PATH_MAX - 32];
    if ((size_t)snprintf(ddir, sizeof ddir, "%s/%s/_replay", cfg.data_dir, r.d->name) >=
        sizeof ddir) {
        fprintf(stderr, "weir replay: %s: path too long\n", cfg.data_dir);
        ex = EXIT_USAGE;
        goto out;
    }
    if ((rc = fsio_mkdir_p(ddir, 0755)) != 0) {
        fprintf(stderr, "weir replay: %s: %s\n", ddir, weir_strerror(rc));
        ex = EXIT_RUNTIME;
        goto out;
    }
    snprintf(r.tmp, sizeof r.tmp, "%s/%ld.ndjson", ddir, (long)getpid());
    /* P's committed state: which partitions have Parquet, which raw. */
    if ((rc = tl_open(r.prep->in->dir, &tl, &e)) || (rc = tl_snapshot(tl, 0, &snap, &e)) ||
        (rc = seg_list(cfg.data_dir, r.p->name, "raw", &segs, &e))) {
        fprintf(stderr, "weir replay: %s\n", e.text);
        ex = EXIT_RUNTIME;
        goto out;
    }
    starts = calloc(snap.nfiles + segs.n + 1, sizeof *starts);
    files = calloc(snap.nfiles + 1, sizeof *files);
    if (!starts || !files) {
        fprintf(stderr, "weir replay: out of memory\n");
        ex = EXIT_RUNTIME;
        goto out;
    }
    for (size_t i = 0; i < snap.nfiles; i++) {
        enum part_grain fg;
        int64_t st;
        const char *k = snap.files[i].partition;
        if (part_key_parse(k, strlen(k), &fg, &st) && fg == g && st >= s0 && st < to)
            starts[nstarts++] = st;
    }
    for (size_t i = 0; i < segs.n; i++)
        if (segs.v[i].grain == g && segs.v[i].part_start >= s0 && segs.v[i].part_start < to &&
            !tl_snapshot_absorbed(&snap, segs.v[i].name))
            starts[nstarts++] = segs.v[i].part_start;
    qsort(starts, nstarts, sizeof *starts, cmp_i64);
    size_t u = 0;
    for (size_t i = 0; i < nstarts; i++)
        if (u == 0 || starts[u - 1] != starts[i])
            starts[u++] = starts[i];
    nstarts = u;
    struct sql_opts so = {0};
    if ((rc = sql_open(&so, &r.db, &e))) {
        fprintf(stderr, "weir replay: %s\n", e.text);
        ex = EXIT_RUNTIME;
        goto out;
    }
    r.tty = !quiet && isatty(STDERR_FILENO);
    for (size_t k = 0; k < nstarts; k++) {
        int64_t ps = starts[k];
        char key[PART_KEY_MAX];
        part_key_format(ps, g, key, sizeof key);
        progress(&r, nstarts, 0);
        if (part_end(ps, g) + cfg.grace_ns > wtime_now_ns()) {
            fprintf(stderr, "%sweir replay: %s: skipped: not closed yet\n", r.tty ? "\n" : "",
                    key);
            r.skipped++;
            continue;
        }
        int raw = 0;
        for (size_t i = 0; i < segs.n && !raw; i++)
            raw = segs.v[i].part_start == ps && segs.v[i].grain == g &&
                  !tl_snapshot_absorbed(&snap, segs.v[i].name);
        if (raw) {
            fprintf(stderr, "%sweir replay: %s: skipped: %s has raw segments not compacted "
                    "yet (weir compact %s, or wait for serve's compactor)\n",
                    r.tty ? "\n" : "", key, r.p->name, r.p->name);
            r.skipped++;
            continue;
        }
        size_t nf = 0;
        int bad = 0;
        for (size_t i = 0; i < snap.nfiles && !bad; i++) {
            if (strcmp(snap.files[i].partition, key) != 0)
                continue;
            size_t len = strlen(r.prep->in->dir) + strlen(snap.files[i].path) + 2;
            if (!(files[nf] = malloc(len)))
                bad = 1;
            else
                snprintf(files[nf++], len, "%s/%s", r.prep->in->dir, snap.files[i].path);
        }
        if (!bad) {
            e.text[0] = '\0';
            rc = replay_partition(&r, ps, (const char *const *)files, nf, &e);
        }
        for (size_t i = 0; i < nf; i++)
            free(files[i]);
        if (bad) {
            fprintf(stderr, "weir replay: out of memory\n");
            ex = EXIT_RUNTIME;
            goto out;
        }
        if (rc) {
            fprintf(stderr, "%sweir replay: %s: %s\n", r.tty ? "\n" : "", key, e.text);
            r.failed++;
            if (rc != WEIR_ESQL && rc != WEIR_EAGAIN && rc != WEIR_ECONFLICT &&
                rc != WEIR_ESCHEMA) {
                ex = EXIT_RUNTIME;
                goto out;
            }
            continue;
        }
        r.done++;
    }
    progress(&r, nstarts, 1);
    if (!quiet)
        fprintf(stderr, "weir replay: %s -> %s: %zu partition%s replayed, %zu skipped, %zu "
                "failed; %" PRIu64 " records in, %" PRIu64 " rows out, %" PRIu64 " refused, %"
                PRIu64 " outside their partition\n", r.p->name, r.d->name, r.done,
                r.done == 1 ? "" : "s", r.skipped, r.failed, r.in, r.out, r.refused, r.moved);
    if (r.skipped || r.failed || r.refused || r.moved)
        ex = EXIT_PROBLEMS;
out:
    free(starts);
    free(files);
    seg_list_release(&segs);
    tl_snapshot_release(&snap);
    tl_free(tl);
    sql_close(r.db);
    validator_free(r.v);
    schema_free(r.dschema);
    transform_prep_free(r.prep);
    config_release(&cfg);
    return ex;
}
