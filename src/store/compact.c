/*
 * compact.c - compaction, optimize, retention and the background
 * compactor; see compact.h for the steps and the crash argument, and
 * docs/lake.md for users.
 */
#include "store/compact.h"
#include "store/cursor.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config/config.h"
#include "core/buf.h"
#include "core/fsio.h"
#include "core/limits.h"
#include "core/log.h"
#include "core/wtime.h"
#include "sql/sql.h"
#include "store/lake.h"
#include "store/offsets.h"
#include "store/partition.h"
#include "store/segment.h"
#include "store/tablelog.h"

/* Most redo rounds after lost races before compaction gives up this run. */
#define COMPACT_MAX_CONFLICTS 20

static void crash_point(const char *step)
{
#ifdef WEIR_TESTING
    const char *w = getenv("WEIR_CRASH_AT");
    if (w && strcmp(w, step) == 0) {
        fprintf(stderr, "weir: WEIR_CRASH_AT=%s: stopping here\n", step);
        _exit(99);
    }
#else
    (void)step;
#endif
}

/* Everything one run over one pipeline holds. */
struct run {
    const struct weir_config *cfg;
    const struct config_pipeline *p;
    const struct compact_opts *o;
    struct lake_table *t;
    struct tablelog *tl;
    struct sql_db *db;
    int lock_fd;
    int64_t start_mono;
    int progress;
};

/* Put "pipeline P: partition K: " in front of e's message. */
static int prefix_err(struct weir_errmsg *e, int rc, const char *pipeline,
                      const char *key, const char *what)
{
    char was[sizeof e->text];
    snprintf(was, sizeof was, "%s", e->text);
    return errmsg_set(e, rc, "pipeline %s: partition %s: %s%s", pipeline, key, what,
                      was);
}

static int64_t now_of(const struct compact_opts *o)
{
    return o->now_ns ? o->now_ns : wtime_now_ns();
}

static int stopped(const struct compact_opts *o)
{
    return o->stop && *o->stop;
}

static void run_close(struct run *r)
{
    if (r->db && r->o->on_db)
        r->o->on_db(r->o->on_db_ctx, NULL);
    sql_close(r->db);
    tl_free(r->tl);
    lake_table_free(r->t);
    if (r->lock_fd >= 0)
        close(r->lock_fd);
    memset(r, 0, sizeof *r);
    r->lock_fd = -1;
}

/* Open the table for writing: the lock, recovery, and DuckDB if need_db.
 * 1 when the dataset does not exist (nothing to do). */
static int run_open(struct run *r, const struct weir_config *cfg,
                    const struct config_pipeline *p, const struct compact_opts *o,
                    int need_db, struct weir_errmsg *e)
{
    char path[PATH_MAX];
    struct stat st;
    int rc;

    memset(r, 0, sizeof *r);
    r->lock_fd = -1;
    r->cfg = cfg;
    r->p = p;
    r->o = o;
    r->start_mono = wtime_mono_ns();
    r->progress = o->progress && isatty(STDERR_FILENO);
    if ((rc = lake_table_new(cfg, p, o->schema, &r->t, e)))
        return rc;
    if (stat(r->t->dir, &st) != 0)
        return errno == ENOENT ? 1
                               : errmsg_set(e, weir_from_errno(errno), "%s: %s",
                                            r->t->dir, strerror(errno));
    if ((size_t)snprintf(path, sizeof path, "%s/_compact.lock", r->t->dir) >= sizeof path)
        return errmsg_set(e, WEIR_ELIMIT, "%s: path too long", r->t->dir);
    for (int waited = 0;; waited++) {
        rc = fsio_lock_file(path, &r->lock_fd);
        if (rc != WEIR_ECONFLICT)
            break;
        if (waited == 0)
            log_info("pipeline %s: waiting for another compactor on this machine",
                     p->name);
        if (stopped(o))
            return errmsg_set(e, WEIR_EAGAIN, "pipeline %s: stopped", p->name);
        usleep(100000);
    }
    if (rc)
        return errmsg_set(e, rc, "%s: cannot take the lock: %s", path, strerror(errno));
    if ((rc = tl_open(r->t->dir, &r->tl, e)))
        return rc;
    struct tl_recover_opts ro = {
        .orphan_grace_ns = o->orphan_grace_ns < 0 ? TL_DEFAULT_ORPHAN_GRACE_NS
                                                  : o->orphan_grace_ns,
        .absorbed_grace_ns = 0, /* queries pin what they read (lake.h) */
    };
    struct tl_recover_stats rs = {0};
    if ((rc = tl_recover(r->tl, &ro, &rs, e)))
        return rc;
    if (rs.orphans_removed || rs.tmp_removed || rs.absorbed_removed)
        log_info("pipeline %s: recovery removed %lu unreferenced Parquet files, %lu "
                 "temporary files, %lu absorbed segments", p->name, rs.orphans_removed,
                 rs.tmp_removed, rs.absorbed_removed);
    if (!need_db)
        return 0;
    /* DuckDB spills (rarely, for a COPY) under the dataset, not into the
     * working directory of whoever runs the compactor. */
    if ((size_t)snprintf(path, sizeof path, "%s/_duckdb.tmp", r->t->dir) >= sizeof path)
        return errmsg_set(e, WEIR_ELIMIT, "%s: path too long", r->t->dir);
    struct sql_opts so = {.memory_limit = o->memory_limit, .threads = o->threads,
                          .temp_directory = path};
    if ((rc = sql_open(&so, &r->db, e)))
        return rc;
    if (o->on_db)
        o->on_db(o->on_db_ctx, r->db);
    /* Row order inside a file means nothing here; not keeping it lets
     * DuckDB stream the COPY in parallel with less memory. */
    return sql_exec(r->db, "SET preserve_insertion_order = false", e);
}

static void show_progress(struct run *r, const char *what, unsigned long done,
                          unsigned long total, uint64_t bytes, int last)
{
    if (!r->progress)
        return;
    double s = (double)(wtime_mono_ns() - r->start_mono) / 1e9;
    fprintf(stderr, "\r%s %s: %lu/%lu partitions, %.1f MB/s%s", what, r->p->name,
            done, total, s > 0 ? (double)bytes / 1e6 / s : 0.0, last ? "\n" : "");
    fflush(stderr);
}

/* Write the result of select into a new Parquet file of partition key and
 * describe it in *f (strings in the caller's bufs). */
struct newfile {
    char tmp[PATH_MAX];
    char rel[TL_PATH_MAX];
    struct tl_file f;
    struct tl_column *cols;
    char **names, **types;
    size_t ncols;
};

static void newfile_release(struct newfile *nf)
{
    for (size_t i = 0; i < nf->ncols; i++) {
        free(nf->names[i]);
        free(nf->types[i]);
    }
    free(nf->names);
    free(nf->types);
    free(nf->cols);
    memset(nf, 0, sizeof *nf);
}

static int describe_file(struct run *r, struct newfile *nf, struct weir_errmsg *e)
{
    struct buf q = BUF_INIT(1 << 20);
    struct sql_result *res = NULL;
    int rc = buf_puts(&q, "DESCRIBE SELECT * FROM read_parquet(");
    rc = rc ? rc : sql_quote_string(&q, nf->tmp);
    rc = rc ? rc : buf_puts(&q, ", hive_partitioning = false)");
    if (rc || (rc = sql_query(r->db, q.data, &res, e)))
        goto out;
    while ((rc = sql_result_next(res, e)) == 1) {
        struct buf n = BUF_INIT(1 << 20), t = BUF_INIT(1 << 20);
        rc = sql_result_text(res, 0, &n);
        rc = rc ? rc : sql_result_text(res, 1, &t);
        char **nn = rc ? NULL : realloc(nf->names, (nf->ncols + 1) * sizeof *nn);
        if (nn)
            nf->names = nn;
        char **nt = nn ? realloc(nf->types, (nf->ncols + 1) * sizeof *nt) : NULL;
        if (nt)
            nf->types = nt;
        if (!nn || !nt) {
            buf_release(&n);
            buf_release(&t);
            rc = errmsg_set(e, rc ? rc : WEIR_ENOMEM, "out of memory");
            goto out;
        }
        nf->names[nf->ncols] = buf_detach(&n, NULL);
        nf->types[nf->ncols] = buf_detach(&t, NULL);
        nf->ncols++;
        buf_release(&n);
        buf_release(&t);
    }
    if (rc < 0)
        goto out;
    rc = 0;
    nf->cols = calloc(nf->ncols ? nf->ncols : 1, sizeof *nf->cols);
    if (!nf->cols) {
        rc = errmsg_set(e, WEIR_ENOMEM, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < nf->ncols; i++) {
        if (!nf->names[i] || !nf->types[i]) {
            rc = errmsg_set(e, WEIR_ENOMEM, "out of memory");
            goto out;
        }
        nf->cols[i].name = nf->names[i];
        nf->cols[i].type = nf->types[i];
    }
    nf->f.columns = nf->cols;
    nf->f.ncolumns = nf->ncols;
out:
    sql_result_free(res);
    buf_release(&q);
    return rc;
}

/* Rows and event-time bounds of the new file. Unless the time field is an
 * integer, the bounds are widened by 1 µs (a DOUBLE of nanoseconds is
 * exact to 256 ns, a TIMESTAMPTZ to 1 µs); they are kept inside the
 * partition, so they always bound the file's rows. */
static int file_stats(struct run *r, struct newfile *nf, int64_t pstart, int64_t pend,
                      struct weir_errmsg *e)
{
    struct buf q = BUF_INIT(1 << 20);
    struct sql_result *res = NULL;
    int rc;
    if (r->t->time_expr)
        rc = buf_appendf(&q, "SELECT count(*), min(%s), max(%s) FROM read_parquet(",
                         r->t->time_expr, r->t->time_expr);
    else
        rc = buf_puts(&q, "SELECT count(*), NULL, NULL FROM read_parquet(");
    rc = rc ? rc : sql_quote_string(&q, nf->tmp);
    rc = rc ? rc : buf_puts(&q, ", hive_partitioning = false)");
    if (rc || (rc = sql_query(r->db, q.data, &res, e)))
        goto out;
    if ((rc = sql_result_next(res, e)) != 1) {
        if (rc == 0)
            rc = errmsg_set(e, WEIR_ESQL, "%s: no statistics", nf->tmp);
        goto out;
    }
    int64_t n = 0, lo = pstart, hi = pend - 1;
    if ((rc = sql_result_int64(res, 0, &n)))
        goto out;
    int64_t slack = r->t->time_exact ? 0 : 1000;
    if (!sql_result_is_null(res, 1) && sql_result_int64(res, 1, &lo) == 0)
        lo = lo - slack < pstart ? pstart : lo - slack;
    if (!sql_result_is_null(res, 2) && sql_result_int64(res, 2, &hi) == 0)
        hi = hi + slack > pend - 1 ? pend - 1 : hi + slack;
    if (lo > hi) {
        lo = pstart;
        hi = pend - 1;
    }
    nf->f.rows = (uint64_t)n;
    nf->f.min_time = n ? lo : 0;
    nf->f.max_time = n ? hi : 0;
out:
    sql_result_free(res);
    buf_release(&q);
    return rc;
}

/* COPY select into a temporary file of partition key, then describe it,
 * fsync and place it. */
static int write_file(struct run *r, const char *key, int64_t pstart,
                      const char *select, struct newfile *nf, struct weir_errmsg *e)
{
    struct buf q = BUF_INIT(512u << 20);
    int rc;

    memset(nf, 0, sizeof *nf);
    if ((rc = tl_tmp_file(r->tl, key, nf->tmp, sizeof nf->tmp, e)))
        goto out;
    rc = buf_puts(&q, "COPY (");
    rc = rc ? rc : buf_puts(&q, select);
    rc = rc ? rc : buf_puts(&q, ") TO ");
    rc = rc ? rc : sql_quote_string(&q, nf->tmp);
    /* USE_TMP_FILE false: the name is a temporary one already (else
     * DuckDB writes tmp_<name> and renames it, since the file exists). */
    rc = rc ? rc : buf_appendf(&q, " (FORMAT parquet, COMPRESSION zstd, "
                                   "ROW_GROUP_SIZE %d, USE_TMP_FILE false)",
                               WEIR_PARQUET_ROW_GROUP_ROWS);
    if (rc) {
        rc = errmsg_set(e, rc, "pipeline %s: the compaction query is too large",
                        r->p->name);
        goto out;
    }
    if ((rc = sql_exec(r->db, q.data, e))) {
        /* Nothing references it: remove it now rather than at the next
         * recovery's orphan grace (a partition that keeps failing would
         * leave one per try). */
        if (fsio_unlink(nf->tmp) != 0 && errno != ENOENT)
            log_warn("%s: cannot delete: %s", nf->tmp, strerror(errno));
        goto out;
    }
    crash_point("after_parquet");
    if ((rc = describe_file(r, nf, e)) ||
        (rc = file_stats(r, nf, pstart, part_end(pstart, r->t->grain), e)))
        goto out;
    uint64_t bytes = 0;
    if ((rc = tl_place_file(r->tl, nf->tmp, nf->rel, sizeof nf->rel, &bytes, e)))
        goto out;
    crash_point("after_place");
    nf->f.path = nf->rel;
    nf->f.partition = key;
    nf->f.bytes = bytes;
out:
    buf_release(&q);
    return rc;
}

/* ---- failures on record for `weir status` ---------------------------------- */

_Static_assert(sizeof ((struct compact_failure *)0)->partition >= PART_KEY_MAX,
               "compact_failure.partition holds a partition key");

static int failures_path(const struct weir_config *cfg, const struct config_pipeline *p,
                         char *out, size_t cap)
{
    return (size_t)snprintf(out, cap, "%s/%s/_compact.failed", cfg->data_dir, p->name) <
           cap ? 0 : WEIR_ELIMIT;
}

int compact_failures_read(const struct weir_config *cfg, const struct config_pipeline *p,
                          struct compact_failure **out, size_t *n,
                          struct weir_errmsg *e)
{
    char path[PATH_MAX];
    struct buf b = BUF_INIT(4u << 20);
    struct compact_failure *v = NULL;
    size_t nv = 0;
    int rc;

    *out = NULL;
    *n = 0;
    if (failures_path(cfg, p, path, sizeof path))
        return errmsg_set(e, WEIR_ELIMIT, "pipeline %s: path too long", p->name);
    if ((rc = fsio_read_file(path, &b))) {
        buf_release(&b);
        return errno == ENOENT ? 0 : errmsg_set(e, rc, "%s: %s", path, strerror(errno));
    }
    for (char *line = b.data; line && line < b.data + b.len;) {
        char *nl = memchr(line, '\n', (size_t)(b.data + b.len - line));
        if (nl)
            *nl = '\0';
        char *t1 = strchr(line, '\t'), *t2 = t1 ? strchr(t1 + 1, '\t') : NULL;
        if (t2) {
            struct compact_failure *x = realloc(v, (nv + 1) * sizeof *x);
            if (!x) {
                free(v);
                buf_release(&b);
                return errmsg_set(e, WEIR_ENOMEM, "out of memory");
            }
            v = x;
            memset(&v[nv], 0, sizeof v[nv]);
            snprintf(v[nv].partition, sizeof v[nv].partition, "%.*s", (int)(t1 - line),
                     line);
            v[nv].since_ns = strtoll(t1 + 1, NULL, 10);
            snprintf(v[nv].reason, sizeof v[nv].reason, "%s", t2 + 1);
            nv++;
        }
        line = nl ? nl + 1 : NULL;
    }
    buf_release(&b);
    *out = v;
    *n = nv;
    return 0;
}

/* One line of the record: the reason on one line, tabs and newlines (DuckDB
 * adds hints after a newline) turned into spaces. */
static int put_failure(struct buf *b, const struct compact_failure *f)
{
    int rc = buf_appendf(b, "%s\t%lld\t", f->partition, (long long)f->since_ns);
    for (const char *p = f->reason; *p && !rc; p++)
        rc = buf_putc(b, *p == '\n' || *p == '\t' || *p == '\r' ? ' ' : *p);
    return rc ? rc : buf_putc(b, '\n');
}

/*
 * Rewrite the record after a run: this run's failures, plus earlier ones
 * of partitions this run did not attempt that still have raw segments.
 * attempted[0..nattempted) are partition keys. Best effort: a record
 * that cannot be written is logged, compaction itself is not failed.
 */
static void failures_update(struct run *r, const struct compact_failure *now, size_t nnow,
                            char (*attempted)[PART_KEY_MAX], size_t nattempted)
{
    char path[PATH_MAX];
    struct compact_failure *old = NULL;
    size_t nold = 0;
    struct weir_errmsg e = {0};
    struct seg_list segs = {0};
    struct buf b = BUF_INIT(8u << 20);
    int rc = 0;

    if (failures_path(r->cfg, r->p, path, sizeof path))
        return;
    if (compact_failures_read(r->cfg, r->p, &old, &nold, &e) != 0)
        log_warn("pipeline %s: %s", r->p->name, e.text);
    if (nold == 0 && nnow == 0)
        goto out;
    if (nold && seg_list(r->cfg->data_dir, r->p->name, "raw", &segs, &e) != 0) {
        log_warn("pipeline %s: %s", r->p->name, e.text);
        goto out;
    }
    for (size_t i = 0; i < nold && !rc; i++) {
        int keep = 0;
        for (size_t k = 0; k < nattempted; k++)
            if (strcmp(old[i].partition, attempted[k]) == 0)
                goto next;
        for (size_t k = 0; k < segs.n && !keep; k++) {
            char key[PART_KEY_MAX];
            keep = !segs.v[k].active &&
                   part_key_format(segs.v[k].part_start, segs.v[k].grain, key, sizeof key) &&
                   strcmp(key, old[i].partition) == 0;
        }
        if (keep)
            rc = put_failure(&b, &old[i]);
    next:;
    }
    for (size_t i = 0; i < nnow && !rc; i++) {
        struct compact_failure f = now[i];
        /* Failing since the first time it failed with this reason. */
        for (size_t k = 0; k < nold; k++)
            if (strcmp(old[k].partition, f.partition) == 0) {
                struct buf a = BUF_INIT(sizeof f.reason * 2), c = BUF_INIT(sizeof f.reason * 2);
                if (put_failure(&a, &old[k]) == 0 && put_failure(&c, &f) == 0 &&
                    strcmp(strchr(strchr(a.data, '\t') + 1, '\t'),
                           strchr(strchr(c.data, '\t') + 1, '\t')) == 0)
                    f.since_ns = old[k].since_ns;
                buf_release(&a);
                buf_release(&c);
            }
        rc = put_failure(&b, &f);
    }
    if (rc)
        goto out;
    if (b.len == 0) {
        if (fsio_unlink(path) != 0 && errno != ENOENT)
            log_warn("%s: cannot delete: %s", path, strerror(errno));
    } else if (fsio_write_file_atomic(path, b.data, b.len, 0644) != 0) {
        log_warn("%s: cannot write the record of failed partitions: %s", path,
                 strerror(errno));
    }
out:
    seg_list_release(&segs);
    free(old);
    buf_release(&b);
}

/* ---- compaction ------------------------------------------------------------- */

/* 1 if any of the segments is gone (another compactor or gc took it). */
static int any_missing(char *const *paths, size_t n)
{
    struct stat st;
    for (size_t i = 0; i < n; i++)
        if (stat(paths[i], &st) != 0 && errno == ENOENT)
            return 1;
    return 0;
}

static int compact_partition(struct run *r, uint64_t read_version,
                             const struct seg_entry *segs, size_t n,
                             struct compact_stats *st, struct weir_errmsg *e)
{
    char key[PART_KEY_MAX];
    char **paths = calloc(n, sizeof *paths), **rel = calloc(n, sizeof *rel);
    struct buf sel = BUF_INIT(512u << 20);
    struct newfile nf = {0};
    uint64_t bytes_in = 0, version = 0;
    int rc = 0;

    if (!paths || !rel) {
        rc = errmsg_set(e, WEIR_ENOMEM, "out of memory");
        goto out;
    }
    part_key_format(segs[0].part_start, segs[0].grain, key, sizeof key);
    for (size_t i = 0; i < n; i++) {
        size_t len = strlen("raw/") + strlen(key) + 1 + strlen(segs[i].name) + 1;
        paths[i] = segs[i].path;
        rel[i] = malloc(len);
        if (!rel[i]) {
            rc = errmsg_set(e, WEIR_ENOMEM, "out of memory");
            goto out;
        }
        snprintf(rel[i], len, "raw/%s/%s", key, segs[i].name);
        bytes_in += segs[i].size;
    }
    if ((rc = lake_sql_raw(r->t, (const char *const *)paths, n, 0, &sel))) {
        rc = errmsg_set(e, rc, "pipeline %s: the compaction query is too large", r->p->name);
        goto out;
    }
    rc = write_file(r, key, segs[0].part_start, sel.data, &nf, e);
    if (rc) {
        if (any_missing(paths, n))
            rc = WEIR_ECONFLICT;
        else
            prefix_err(e, rc, r->p->name, key, "");
        goto out;
    }
    struct tl_commit c = {
        .operation = "compact",
        .read_version = read_version,
        .txn = nf.rel,
        .add = &nf.f,
        .nadd = 1,
        .absorbed = (const char *const *)rel,
        .nabsorbed = n,
    };
    if ((rc = tl_commit(r->tl, &c, &version, e))) {
        if (rc != WEIR_ECONFLICT)
            prefix_err(e, rc, r->p->name, key, "commit: ");
        goto out;
    }
    crash_point("after_commit");
    st->version = version;
    st->partitions++;
    st->files_added++;
    st->segments += n;
    st->rows += nf.f.rows;
    st->bytes_in += bytes_in;
    st->bytes_out += nf.f.bytes;
    /* The records are in the table now: the segments can go. A failure
     * here only leaves work for recovery (queries already skip them). */
    for (size_t i = 0; i < n; i++) {
        if (fsio_unlink(paths[i]) != 0 && errno != ENOENT)
            log_warn("%s: cannot delete an absorbed segment: %s (recovery will)",
                     paths[i], strerror(errno));
        if (i == 0)
            crash_point("mid_delete");
    }
    if (fsio_fsync_parent(paths[0]) != 0)
        log_warn("%s: cannot fsync its directory: %s", paths[0], strerror(errno));
out:
    for (size_t i = 0; rel && i < n; i++)
        free(rel[i]);
    free(rel);
    free(paths);
    newfile_release(&nf);
    buf_release(&sel);
    return rc;
}

/* The partitions to work on: groups of sealed segments not absorbed at s,
 * closed unless all. idx[k] is the first entry of group k, ends at idx[k+1]. */
static int plan(struct run *r, const struct tl_snapshot *s, struct seg_list *segs,
                size_t **starts, size_t *ngroups, struct weir_errmsg *e)
{
    char data_dir[PATH_MAX];
    int64_t now = now_of(r->o);
    int64_t grace = r->o->grace_ns < 0 ? r->cfg->grace_ns : r->o->grace_ns;
    size_t keep = 0;
    int rc;

    *starts = NULL;
    *ngroups = 0;
    snprintf(data_dir, sizeof data_dir, "%s", r->cfg->data_dir);
    /* A Kafka pipeline's segment holding records its offsets checkpoint
     * does not acknowledge yet may still be cut back after a crash
     * (store/offsets.h): not absorbed before the next batch settles it. */
    struct offsets_settle settle;
    if ((rc = offsets_settle_load(data_dir, r->p->name, &settle, e)))
        return rc;
    /* A pipeline with a sink: a segment is absorbed only once its sink
     * delivered all of it (store/cursor.h); an outage delays compaction. */
    struct sink_cursor sunk = {0};
    if (r->p->sink_kafka && (rc = cursor_load_all(data_dir, r->p->name, &sunk, e))) {
        offsets_settle_release(&settle);
        return rc;
    }
    if ((rc = seg_list(data_dir, r->p->name, "raw", segs, e))) {
        offsets_settle_release(&settle);
        cursor_release(&sunk);
        return rc;
    }
    /* Keep the entries to compact, in place (the list stays sorted by
     * partition then name). */
    for (size_t i = 0; i < segs->n; i++) {
        struct seg_entry *x = &segs->v[i];
        int closed = part_end(x->part_start, x->grain) + grace <= now;
        if (x->active || x->grain != r->t->grain || tl_snapshot_absorbed(s, x->name) ||
            (!r->o->all && !closed) || !offsets_settled(&settle, x->name, x->size) ||
            (r->p->sink_kafka && !cursor_delivered(&sunk, x->name, x->size))) {
            free(x->path);
            continue;
        }
        segs->v[keep++] = *x;
    }
    segs->n = keep;
    offsets_settle_release(&settle);
    cursor_release(&sunk);
    size_t *g = calloc(keep + 1, sizeof *g);
    if (!g)
        return errmsg_set(e, WEIR_ENOMEM, "out of memory");
    size_t n = 0;
    for (size_t i = 0; i < keep; i++)
        if (i == 0 || segs->v[i].part_start != segs->v[i - 1].part_start)
            g[n++] = i;
    g[n] = keep;
    *starts = g;
    *ngroups = n;
    return 0;
}

/* ---- backoff of failing partitions ------------------------------------------ */

struct backoff_entry {
    char pipeline[CONFIG_NAME_MAX + 1];
    char key[PART_KEY_MAX];
    uint64_t fingerprint;      /* of the segments that failed */
    unsigned failures;
    int64_t next_ns;           /* may be tried again from then */
};

struct compact_backoff {
    struct backoff_entry *v;
    size_t n, cap;
};

struct compact_backoff *compact_backoff_new(void)
{
    return calloc(1, sizeof(struct compact_backoff));
}

void compact_backoff_free(struct compact_backoff *b)
{
    if (b)
        free(b->v);
    free(b);
}

static struct backoff_entry *backoff_find(const struct compact_backoff *b,
                                          const char *pipeline, const char *key)
{
    for (size_t i = 0; b && i < b->n; i++)
        if (strcmp(b->v[i].pipeline, pipeline) == 0 && strcmp(b->v[i].key, key) == 0)
            return &b->v[i];
    return NULL;
}

int compact_backoff_wait(const struct compact_backoff *b, const char *pipeline,
                         const char *key, uint64_t fingerprint, int64_t now_ns)
{
    const struct backoff_entry *x = backoff_find(b, pipeline, key);
    return x && x->fingerprint == fingerprint && now_ns < x->next_ns;
}

int compact_backoff_failed(struct compact_backoff *b, const char *pipeline,
                           const char *key, uint64_t fingerprint, int64_t now_ns)
{
    struct backoff_entry *x = backoff_find(b, pipeline, key);
    if (!x) {
        if (b->n == b->cap) {
            size_t nc = b->cap ? b->cap * 2 : 8;
            struct backoff_entry *v = realloc(b->v, nc * sizeof *v);
            if (!v)
                return WEIR_ENOMEM;
            b->v = v;
            b->cap = nc;
        }
        x = &b->v[b->n++];
        memset(x, 0, sizeof *x);
        snprintf(x->pipeline, sizeof x->pipeline, "%s", pipeline);
        snprintf(x->key, sizeof x->key, "%s", key);
    }
    if (x->fingerprint != fingerprint)
        x->failures = 0; /* other data: start the delays again */
    x->fingerprint = fingerprint;
    int64_t delay = (int64_t)WEIR_COMPACT_BACKOFF_MIN_S * WTIME_NS_PER_S;
    for (unsigned i = 0; i < x->failures && delay < WEIR_COMPACT_BACKOFF_MAX_S * WTIME_NS_PER_S; i++)
        delay *= 2;
    if (delay > WEIR_COMPACT_BACKOFF_MAX_S * WTIME_NS_PER_S)
        delay = WEIR_COMPACT_BACKOFF_MAX_S * WTIME_NS_PER_S;
    x->failures++;
    x->next_ns = now_ns + delay;
    return 0;
}

void compact_backoff_done(struct compact_backoff *b, const char *pipeline, const char *key)
{
    struct backoff_entry *x = backoff_find(b, pipeline, key);
    if (x)
        *x = b->v[--b->n];
}

/* What changes when a partition's segments do: their names' count and
 * total size, mixed. */
static uint64_t segs_fingerprint(const struct seg_entry *v, size_t n)
{
    uint64_t h = 1469598103934665603ull ^ n;
    for (size_t i = 0; i < n; i++) {
        h = (h ^ v[i].size) * 1099511628211ull;
        for (const char *c = v[i].name; *c; c++)
            h = (h ^ (unsigned char)*c) * 1099511628211ull;
    }
    return h;
}

int compact_pipeline(const struct weir_config *cfg, const struct config_pipeline *p,
                     const struct compact_opts *o, struct compact_stats *st,
                     struct weir_errmsg *e)
{
    struct run r;
    int rc = run_open(&r, cfg, p, o, 1, e);
    unsigned long done = 0, total = 0;
    int first = 1, opened = 0;
    struct compact_failure *failed = NULL;
    char (*attempted)[PART_KEY_MAX] = NULL;
    size_t nfailed = 0, nattempted = 0, capattempted = 0;
    struct weir_errmsg first_failure = {0};

    if (rc == 1) {
        rc = 0;
        goto out;
    }
    if (rc)
        goto out;
    opened = 1;
    for (;;) {
        struct tl_snapshot s = {0};
        struct seg_list segs = {0};
        size_t *g = NULL, ng = 0;
        int again = 0;
        if ((rc = tl_snapshot(r.tl, 0, &s, e)))
            goto round_out;
        st->version = s.version;
        if ((rc = lake_check_columns(r.t, &s, e)) || (rc = plan(&r, &s, &segs, &g, &ng, e)))
            goto round_out;
        if (first) {
            total = ng;
            st->partitions_todo += ng;
            first = 0;
        }
        for (size_t k = 0; k < ng && !stopped(o); k++) {
            show_progress(&r, "compact", done, total, st->bytes_in, 0);
            char key[PART_KEY_MAX];
            part_key_format(segs.v[g[k]].part_start, segs.v[g[k]].grain, key, sizeof key);
            uint64_t fp = segs_fingerprint(&segs.v[g[k]], g[k + 1] - g[k]);
            if (o->backoff && compact_backoff_wait(o->backoff, p->name, key, fp, wtime_now_ns())) {
                st->partitions_deferred++;
                continue; /* its failure stays on record */
            }
            rc = compact_partition(&r, s.version, &segs.v[g[k]], g[k + 1] - g[k], st, e);
            if (o->backoff && rc == 0)
                compact_backoff_done(o->backoff, p->name, key);
            if (rc != WEIR_ECONFLICT && !stopped(o)) {
                if (nattempted == capattempted) {
                    size_t nc = capattempted ? capattempted * 2 : 16;
                    char (*x)[PART_KEY_MAX] = realloc(attempted, nc * sizeof *x);
                    if (!x) {
                        rc = errmsg_set(e, WEIR_ENOMEM, "out of memory");
                        break;
                    }
                    attempted = x;
                    capattempted = nc;
                }
                snprintf(attempted[nattempted++], PART_KEY_MAX, "%s", key);
            }
            if (rc == WEIR_ESQL && !stopped(o)) {
                /* DuckDB refused this partition's data (the message names
                 * the segment and the line): say so, keep it raw, and go
                 * on with the others, so one bad record never holds up
                 * the rest of the table. */
                struct compact_failure *x = realloc(failed, (nfailed + 1) * sizeof *x);
                if (!x) {
                    rc = errmsg_set(e, WEIR_ENOMEM, "out of memory");
                    break;
                }
                failed = x;
                memset(&failed[nfailed], 0, sizeof *x);
                snprintf(failed[nfailed].partition, sizeof failed[nfailed].partition,
                         "%s", key);
                failed[nfailed].since_ns = wtime_now_ns();
                /* The reason without the "pipeline P: partition K: " that
                 * the record says by itself. */
                const char *why = e->text;
                size_t pl = strlen("pipeline : partition : ") + strlen(p->name) +
                            strlen(key);
                if (strlen(why) > pl && strncmp(why, "pipeline ", 9) == 0)
                    why += pl;
                snprintf(failed[nfailed].reason, sizeof failed[nfailed].reason, "%s", why);
                nfailed++;
                st->partitions_failed++;
                if (o->backoff)
                    compact_backoff_failed(o->backoff, p->name, key, fp, wtime_now_ns());
                log_error("%s (its segments stay raw until fixed; the other partitions "
                          "go on)", e->text);
                if (!first_failure.text[0])
                    errmsg_set(&first_failure, rc, "%s", e->text);
                rc = 0;
                continue;
            }
            if (rc == WEIR_ECONFLICT) {
                /* Someone else committed to this table: look again. */
                st->conflicts++;
                if (st->conflicts > COMPACT_MAX_CONFLICTS) {
                    rc = errmsg_set(e, WEIR_ECONFLICT, "pipeline %s: gave up after %lu "
                                    "lost races with another writer", p->name,
                                    st->conflicts);
                    break;
                }
                rc = 0;
                again = 1;
                break;
            }
            if (rc)
                break;
            done++;
        }
    round_out:
        free(g);
        seg_list_release(&segs);
        tl_snapshot_release(&s);
        if (rc || !again || stopped(o))
            break;
    }
    show_progress(&r, "compact", done, total > done ? total : done, st->bytes_in, 1);
    if (opened)
        failures_update(&r, failed, nfailed, attempted, nattempted);
    if (rc == 0 && nfailed)
        rc = errmsg_set(e, WEIR_ESQL, "%lu partition%s could not be compacted%s %s",
                        (unsigned long)nfailed, nfailed == 1 ? "" : "s",
                        nfailed == 1 ? ":" : "; the first:", first_failure.text);
out:
    st->elapsed_ns += wtime_mono_ns() - r.start_mono;
    run_close(&r);
    free(failed);
    free(attempted);
    return rc;
}

/* ---- optimize ---------------------------------------------------------------- */

static int optimize_partition(struct run *r, const struct tl_snapshot *s,
                              const struct tl_file *files, size_t n,
                              struct compact_stats *st, struct weir_errmsg *e)
{
    char **paths = calloc(n, sizeof *paths);
    const char **removed = calloc(n, sizeof *removed);
    struct buf sel = BUF_INIT(512u << 20);
    struct newfile nf = {0};
    uint64_t bytes_in = 0, version = 0;
    int64_t lo = INT64_MAX, hi = INT64_MIN;
    int rc = 0;

    if (!paths || !removed) {
        rc = errmsg_set(e, WEIR_ENOMEM, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        size_t len = strlen(r->t->dir) + 1 + strlen(files[i].path) + 1;
        paths[i] = malloc(len);
        if (!paths[i]) {
            rc = errmsg_set(e, WEIR_ENOMEM, "out of memory");
            goto out;
        }
        snprintf(paths[i], len, "%s/%s", r->t->dir, files[i].path);
        removed[i] = files[i].path;
        bytes_in += files[i].bytes;
        if (files[i].rows && files[i].min_time < lo)
            lo = files[i].min_time;
        if (files[i].rows && files[i].max_time > hi)
            hi = files[i].max_time;
    }
    /* The table's columns first (in today's types), then any column only
     * old files have. */
    rc = buf_puts(&sel, "SELECT * FROM (");
    rc = rc ? rc : lake_sql_empty(r->t, 0, &sel);
    rc = rc ? rc : buf_puts(&sel, " UNION ALL BY NAME ");
    rc = rc ? rc : lake_sql_parquet(r->t, (const char *const *)paths, n, 0, &sel);
    rc = rc ? rc : buf_putc(&sel, ')');
    if (rc) {
        rc = errmsg_set(e, rc, "pipeline %s: the optimize query is too large", r->p->name);
        goto out;
    }
    enum part_grain g;
    int64_t pstart = 0;
    if (!part_key_parse(files[0].partition, strlen(files[0].partition), &g, &pstart))
        pstart = 0;
    if ((rc = write_file(r, files[0].partition, pstart, sel.data, &nf, e))) {
        prefix_err(e, rc, r->p->name, files[0].partition, "");
        goto out;
    }
    if (lo <= hi) {
        nf.f.min_time = lo;
        nf.f.max_time = hi;
    }
    struct tl_commit c = {
        .operation = "optimize",
        .read_version = s->version,
        .txn = nf.rel,
        .add = &nf.f,
        .nadd = 1,
        .remove = removed,
        .nremove = n,
    };
    if ((rc = tl_commit(r->tl, &c, &version, e))) {
        if (rc != WEIR_ECONFLICT)
            prefix_err(e, rc, r->p->name, files[0].partition, "commit: ");
        goto out;
    }
    crash_point("optimize_after_commit");
    st->version = version;
    st->partitions++;
    st->files_added++;
    st->files_removed += n;
    st->rows += nf.f.rows;
    st->bytes_in += bytes_in;
    st->bytes_out += nf.f.bytes;
out:
    for (size_t i = 0; paths && i < n; i++)
        free(paths[i]);
    free(paths);
    free(removed);
    newfile_release(&nf);
    buf_release(&sel);
    return rc;
}

int compact_optimize(const struct weir_config *cfg, const struct config_pipeline *p,
                     const struct compact_opts *o, struct compact_stats *st,
                     struct weir_errmsg *e)
{
    struct run r;
    struct tl_snapshot s = {0};
    int rc = run_open(&r, cfg, p, o, 1, e);
    unsigned long done = 0, total = 0;

    if (rc == 1) {
        rc = 0;
        goto out;
    }
    if (rc)
        goto out;
    for (unsigned round = 0; round < COMPACT_MAX_CONFLICTS; round++) {
        int again = 0;
        tl_snapshot_release(&s);
        if ((rc = tl_snapshot(r.tl, 0, &s, e)) || (rc = lake_check_columns(r.t, &s, e)))
            break;
        st->version = s.version;
        /* Live files are sorted by path, so a partition's files are adjacent. */
        size_t i = 0;
        if (round == 0) {
            for (size_t k = 0; k < s.nfiles; k++)
                if ((k + 1 < s.nfiles &&
                     strcmp(s.files[k].partition, s.files[k + 1].partition) == 0) &&
                    (k == 0 || strcmp(s.files[k].partition, s.files[k - 1].partition) != 0) &&
                    (!o->partition || strcmp(o->partition, s.files[k].partition) == 0))
                    total++;
            st->partitions_todo += total;
        }
        while (i < s.nfiles && !stopped(o)) {
            size_t j = i + 1;
            while (j < s.nfiles && strcmp(s.files[j].partition, s.files[i].partition) == 0)
                j++;
            if (j - i >= 2 && (!o->partition || strcmp(o->partition, s.files[i].partition) == 0)) {
                show_progress(&r, "optimize", done, total, st->bytes_in, 0);
                rc = optimize_partition(&r, &s, &s.files[i], j - i, st, e);
                if (rc == WEIR_ECONFLICT) {
                    st->conflicts++;
                    rc = 0;
                    again = 1;
                    break;
                }
                if (rc)
                    break;
                done++;
            }
            i = j;
        }
        if (rc || !again)
            break;
    }
    show_progress(&r, "optimize", done, total > done ? total : done, st->bytes_in, 1);
out:
    tl_snapshot_release(&s);
    run_close(&r);
    return rc;
}

/* ---- retention ------------------------------------------------------------------- */

/* Delete the sealed segments of kind whose partition ended before cutoff. */
static int expire_segments(struct run *r, const char *kind, int64_t cutoff,
                           unsigned long *deleted, uint64_t *bytes,
                           struct weir_errmsg *e)
{
    struct seg_list l = {0};
    struct sink_cursor sunk = {0};
    int sink = r->p->sink_kafka && strcmp(kind, "raw") == 0;
    int rc = sink ? cursor_load_all(r->cfg->data_dir, r->p->name, &sunk, e) : 0;
    if (rc == 0)
        rc = seg_list(r->cfg->data_dir, r->p->name, kind, &l, e);
    for (size_t i = 0; i < l.n && !rc; i++) {
        const struct seg_entry *x = &l.v[i];
        if (x->active || part_end(x->part_start, x->grain) > cutoff)
            continue;
        /* Not delivered by the pipeline's sink yet: kept until it is. */
        if (sink && !cursor_delivered(&sunk, x->name, x->size))
            continue;
        if (fsio_unlink(x->path) != 0) {
            if (errno != ENOENT)
                rc = errmsg_set(e, weir_from_errno(errno), "%s: cannot delete: %s",
                                x->path, strerror(errno));
            continue;
        }
        (*deleted)++;
        *bytes += x->size;
    }
    seg_list_release(&l);
    cursor_release(&sunk);
    return rc;
}

int compact_gc(const struct weir_config *cfg, const struct config_pipeline *p,
               const struct compact_opts *o, struct gc_stats *st,
               struct weir_errmsg *e)
{
    struct run r;
    struct tl_snapshot s = {0};
    const char **expired = NULL;
    int64_t now = now_of(o);
    int rc = run_open(&r, cfg, p, o, 0, e);

    if (rc == 1) {
        rc = 0;
        goto out;
    }
    if (rc)
        goto out;
    const struct config_retention *ret = &p->retention;
    if (ret->parquet_ns != CONFIG_OFF) {
        for (unsigned round = 0; round < COMPACT_MAX_CONFLICTS; round++) {
            size_t n = 0;
            tl_snapshot_release(&s);
            if ((rc = tl_snapshot(r.tl, 0, &s, e)))
                break;
            free(expired);
            expired = calloc(s.nfiles ? s.nfiles : 1, sizeof *expired);
            if (!expired) {
                rc = errmsg_set(e, WEIR_ENOMEM, "out of memory");
                break;
            }
            for (size_t i = 0; i < s.nfiles; i++) {
                enum part_grain g;
                int64_t start;
                const char *key = s.files[i].partition;
                if (part_key_parse(key, strlen(key), &g, &start) &&
                    part_end(start, g) <= now - ret->parquet_ns)
                    expired[n++] = s.files[i].path;
            }
            if (n == 0)
                break;
            struct tl_commit c = {
                .operation = "gc",
                .read_version = s.version,
                .remove = expired,
                .nremove = n,
            };
            rc = tl_commit(r.tl, &c, NULL, e);
            if (rc == WEIR_ECONFLICT) {
                rc = 0;
                continue;
            }
            if (rc == 0) {
                st->parquet_expired += n;
                crash_point("gc_after_commit");
            }
            break;
        }
        if (rc)
            goto out;
    }
    struct tl_vacuum_stats vs = {0};
    if ((rc = tl_vacuum(r.tl, -1, &vs, e)))
        goto out;
    st->parquet_deleted += vs.files_deleted;
    st->bytes_deleted += vs.bytes_deleted;
    if (ret->raw_ns != CONFIG_OFF &&
        (rc = expire_segments(&r, "raw", now - ret->raw_ns, &st->raw_deleted,
                              &st->bytes_deleted, e)))
        goto out;
    if (ret->quarantine_ns != CONFIG_OFF &&
        (rc = expire_segments(&r, "quarantine", now - ret->quarantine_ns,
                              &st->quarantine_deleted, &st->bytes_deleted, e)))
        goto out;
    unsigned q = 0;
    if ((rc = lake_query_dirs_clean(r.t->dir, 10 * 60 * WTIME_NS_PER_S, &q, e)))
        goto out;
    st->query_dirs_removed += q;
out:
    free(expired);
    tl_snapshot_release(&s);
    run_close(&r);
    return rc;
}

/* ---- the background compactor ------------------------------------------------------ */

struct compactor {
    const struct weir_config *cfg;
    struct schema *const *schemas;  /* by pipeline index, or NULL */
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int kicked;
    volatile int stop;
    struct sql_db *active;     /* under mu: the database to interrupt */
    struct compact_backoff *backoff; /* the compactor thread's own */
};

static void on_db(void *ctx, struct sql_db *db)
{
    struct compactor *c = ctx;
    pthread_mutex_lock(&c->mu);
    c->active = db;
    pthread_mutex_unlock(&c->mu);
}

static void compactor_round(struct compactor *c, int gc)
{
    const struct weir_config *cfg = c->cfg;
    struct compact_opts o = {
        .grace_ns = -1,
        .orphan_grace_ns = -1,
        .memory_limit = WEIR_COMPACTOR_MEMORY_LIMIT,
        .threads = WEIR_COMPACTOR_THREADS,
        .stop = &c->stop,
        .on_db = on_db,
        .on_db_ctx = c,
        .backoff = c->backoff,
    };
    for (size_t i = 0; i < cfg->npipelines && !c->stop; i++) {
        const struct config_pipeline *p = &cfg->pipelines[i];
        struct weir_errmsg e = {0};
        o.schema = c->schemas ? c->schemas[i] : NULL;
        if (p->compaction == CONFIG_COMPACTION_AUTO) {
            struct compact_stats st = {0};
            if (compact_pipeline(cfg, p, &o, &st, &e) != 0 && !c->stop)
                log_error("compaction of %s: %s", p->name, e.text);
            else if (st.partitions)
                log_info("pipeline %s: compacted %lu partitions, %" PRIu64 " rows, "
                         "version %" PRIu64, p->name, st.partitions, st.rows, st.version);
        }
        if (gc && !c->stop) {
            struct gc_stats gs = {0};
            if (compact_gc(cfg, p, &o, &gs, &e) != 0 && !c->stop)
                log_error("retention of %s: %s", p->name, e.text);
        }
    }
}

static void *compactor_main(void *arg)
{
    struct compactor *c = arg;
    int64_t last_gc = INT64_MIN / 2;
    pthread_mutex_lock(&c->mu);
    while (!c->stop) {
        pthread_mutex_unlock(&c->mu);
        int64_t now = wtime_mono_ns();
        int gc = now - last_gc >= WEIR_COMPACTOR_GC_INTERVAL_S * WTIME_NS_PER_S;
        if (gc)
            last_gc = now;
        compactor_round(c, gc);
        pthread_mutex_lock(&c->mu);
        if (c->stop)
            break;
        if (!c->kicked) {
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            ts.tv_sec += WEIR_COMPACTOR_INTERVAL_S;
            pthread_cond_timedwait(&c->cv, &c->mu, &ts);
        }
        c->kicked = 0;
    }
    pthread_mutex_unlock(&c->mu);
    return NULL;
}

int compactor_start(const struct weir_config *cfg,
                    struct schema *const *schemas, struct compactor **out,
                    struct weir_errmsg *e)
{
    struct compactor *c = calloc(1, sizeof *c);
    *out = NULL;
    if (!c)
        return errmsg_set(e, WEIR_ENOMEM, "out of memory");
    c->cfg = cfg;
    c->schemas = schemas;
    if (!(c->backoff = compact_backoff_new())) {
        free(c);
        return errmsg_set(e, WEIR_ENOMEM, "out of memory");
    }
    pthread_mutex_init(&c->mu, NULL);
    pthread_cond_init(&c->cv, NULL);
    int err = pthread_create(&c->thread, NULL, compactor_main, c);
    if (err) {
        pthread_mutex_destroy(&c->mu);
        pthread_cond_destroy(&c->cv);
        compact_backoff_free(c->backoff);
        free(c);
        return errmsg_set(e, weir_from_errno(err), "cannot start the compactor: %s",
                          strerror(err));
    }
    *out = c;
    return 0;
}

void compactor_kick(struct compactor *c)
{
    if (!c)
        return;
    pthread_mutex_lock(&c->mu);
    c->kicked = 1;
    pthread_cond_signal(&c->cv);
    pthread_mutex_unlock(&c->mu);
}

void compactor_stop(struct compactor *c)
{
    if (!c)
        return;
    pthread_mutex_lock(&c->mu);
    c->stop = 1;
    if (c->active)
        sql_interrupt(c->active);
    pthread_cond_signal(&c->cv);
    pthread_mutex_unlock(&c->mu);
    pthread_join(c->thread, NULL);
    pthread_mutex_destroy(&c->mu);
    pthread_cond_destroy(&c->cv);
    compact_backoff_free(c->backoff);
    free(c);
}
