/*
 * transform.c - a pipeline's transform on the stream; see transform.h and
 * docs/kafka.md ("Transforms and replay").
 */
#include "sources/transform.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/buf.h"
#include "core/fsio.h"
#include "core/log.h"
#include "core/wtime.h"
#include "sql/arrow.h"
#include "sql/xform.h"
#include "store/lake.h"
#include "store/partition.h"

/* ---- prepare ------------------------------------------------------------- */

void transform_prep_free(struct transform_prep *tp)
{
    if (!tp)
        return;
    xform_free(tp->x);
    lake_table_free(tp->in);
    free(tp);
}

/* Write text to path unless it holds text already. */
static int write_if_changed(const char *path, const struct buf *text, struct weir_errmsg *e)
{
    char dir[PATH_MAX];
    FILE *f = fopen(path, "rb");
    if (f) {
        struct buf old = BUF_INIT(text->len + 1);
        char chunk[4096];
        size_t n;
        int rc = 0;
        while (!rc && (n = fread(chunk, 1, sizeof chunk, f)) > 0)
            rc = buf_append(&old, chunk, n);
        fclose(f);
        int same = !rc && old.len == text->len && memcmp(old.data, text->data, text->len) == 0;
        buf_release(&old);
        if (same)
            return 0;
    }
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    if (slash)
        *slash = '\0';
    int rc = fsio_mkdir_p(dir, 0755);
    if (!rc)
        rc = fsio_write_file_atomic(path, text->data, text->len, 0644);
    if (rc)
        return errmsg_set(e, rc, "%s: %s", path, weir_strerror(rc));
    return 0;
}

int transform_prepare(const struct weir_config *cfg, const struct config_pipeline *p,
                      const struct schema *s, struct transform_prep **out,
                      struct weir_errmsg *e)
{
    struct transform_prep *tp = calloc(1, sizeof *tp);
    struct buf schema = BUF_INIT(16u << 20);
    char *sql = NULL, what[PATH_MAX + 128];
    int rc;
    *out = NULL;
    if (!tp)
        return errmsg_set(e, WEIR_ENOMEM, "out of memory");
    tp->p = p;
    tp->d = config_pipeline(cfg, p->transform_name);
    if (!tp->d || tp->d->source.kind != CONFIG_SOURCE_DERIVED) {
        rc = errmsg_set(e, WEIR_ECONFIG, "pipeline %s: transform: no dataset %s", p->name,
                        p->transform_name ? p->transform_name : "?");
        goto fail;
    }
    snprintf(what, sizeof what, "pipeline %s: transform %s", p->name, p->transform);
    if ((rc = xform_read_sql(p->transform, &sql, e)) != 0) {
        char m[sizeof e->text];
        snprintf(m, sizeof m, "%s", e->text);
        errmsg_set(e, rc, "pipeline %s: transform: %s", p->name, m);
        goto fail;
    }
    if ((rc = lake_table_new(cfg, p, s, &tp->in, e)) != 0 ||
        (rc = xform_new(tp->in, sql, p->time_field, p->time_unit == CONFIG_TIME_RFC3339,
                        what, &tp->x, e)) != 0)
        goto fail;
    if ((rc = xform_schema(tp->x, &schema)) != 0 || (rc = buf_putc(&schema, '\n')) != 0) {
        rc = errmsg_set(e, rc, "%s: its schema is too large", what);
        goto fail;
    }
    if ((rc = write_if_changed(tp->d->schema, &schema, e)) != 0)
        goto fail;
    free(sql);
    buf_release(&schema);
    *out = tp;
    return 0;
fail:
    free(sql);
    buf_release(&schema);
    transform_prep_free(tp);
    return rc;
}

/* ---- the stream ------------------------------------------------------------ */

struct tstats {
    _Atomic uint64_t batches, records, rows, errors, skipped;
};

struct transform_stream {
    const struct weir_config *cfg;
    struct transform_prep *prep;
    struct lander *p_lander, *d_lander;
    unsigned thread;
    struct arrow_builder *ab;
    int on;                   /* the next landed record belongs to the batch */
    int64_t first_part, last_part; /* partitions the batch touched */
    uint64_t build_errors;    /* records the builder refused this batch */
    struct offsets ck;        /* D's checkpoint of (node, thread) */
    struct offsets dmax;      /* D's highest positions (every checkpoint) */
    char peer[CONFIG_NAME_MAX + 32];
    int64_t now_ns;
    struct tstats st;
};

#define TINC(ts, f, n) atomic_fetch_add_explicit(&(ts)->st.f, (n), memory_order_relaxed)

static void on_landed(void *ctx, const char *rec, size_t len, int64_t part_start)
{
    struct transform_stream *ts = ctx;
    if (!ts->on) {
        TINC(ts, skipped, 1);
        return;
    }
    struct weir_errmsg e = {0};
    if (arrow_builder_add(ts->ab, rec, len, part_start, &e) != 0) {
        /* A validated record always fits its columns; if one did not, it
         * is in P, and replay shows the error. */
        if (ts->build_errors++ == 0)
            log_error("%s: transform: a record cannot enter the batch: %s (it is in %s; "
                      "its row is not in %s)", ts->prep->p->name, e.text,
                      ts->prep->p->name, ts->prep->d->name);
        return;
    }
    if (arrow_builder_rows(ts->ab) == 1 || part_start < ts->first_part)
        ts->first_part = part_start;
    if (arrow_builder_rows(ts->ab) == 1 || part_start > ts->last_part)
        ts->last_part = part_start;
    TINC(ts, records, 1);
}

void transform_stream_free(struct transform_stream *ts)
{
    if (!ts)
        return;
    if (ts->p_lander)
        land_set_tap(ts->p_lander, NULL, NULL);
    arrow_builder_free(ts->ab);
    offsets_release(&ts->ck);
    offsets_release(&ts->dmax);
    transform_prep_free(ts->prep);
    free(ts);
}

int transform_stream_reload(struct transform_stream *ts, struct weir_errmsg *e)
{
    offsets_release(&ts->dmax);
    offsets_init(&ts->dmax, ts->thread);
    return offsets_load_max(ts->cfg->data_dir, ts->prep->d->name, &ts->dmax, e);
}

int transform_stream_new(const struct weir_config *cfg, struct transform_prep *prep,
                         struct lander *p_lander, struct lander *d_lander,
                         unsigned thread, struct transform_stream **out,
                         struct weir_errmsg *e)
{
    struct transform_stream *ts = calloc(1, sizeof *ts);
    int rc;
    *out = NULL;
    if (!ts) {
        transform_prep_free(prep);
        return errmsg_set(e, WEIR_ENOMEM, "out of memory");
    }
    ts->cfg = cfg;
    ts->prep = prep;
    ts->d_lander = d_lander;
    ts->thread = thread;
    ts->on = 1;
    offsets_init(&ts->ck, thread);
    offsets_init(&ts->dmax, thread);
    snprintf(ts->peer, sizeof ts->peer, "transform of %s", prep->p->name);
    const char *d = prep->d->name;
    if ((rc = arrow_builder_new(prep->in, (uint32_t)cfg->limits.max_depth, &ts->ab, e)))
        goto fail;
    /* D's first checkpoint of this run, as kafka_source_new writes P's. */
    rc = offsets_load(cfg->data_dir, d, cfg->node, thread, &ts->ck, e);
    if (rc && rc != WEIR_ENOTFOUND)
        goto fail;
    if ((rc = land_sync(d_lander)) != 0) {
        errmsg_set(e, rc, "pipeline %s: %s", d, weir_strerror(rc));
        goto fail;
    }
    unsigned long retired = 0;
    ts->ck.retired = 0;
    if ((rc = offsets_capture(&ts->ck, land_raw_writer(d_lander),
                              land_quarantine_writer(d_lander))) != 0 ||
        (rc = offsets_write(cfg->data_dir, d, cfg->node, &ts->ck, e)) != 0 ||
        (rc = offsets_retire(cfg->data_dir, d, cfg->node, (long)thread, &retired, e)) != 0 ||
        (rc = transform_stream_reload(ts, e)) != 0)
        goto fail;
    ts->p_lander = p_lander;
    land_set_tap(p_lander, on_landed, ts);
    *out = ts;
    return 0;
fail:
    transform_stream_free(ts);
    return rc;
}

void transform_stream_tap(struct transform_stream *ts, int on)
{
    ts->on = on;
}

int64_t transform_stream_position(const struct transform_stream *ts, const char *topic,
                                  int32_t partition)
{
    return offsets_get(&ts->dmax, topic, partition);
}

static int land_row(void *ctx, const char *rec, size_t len)
{
    struct transform_stream *ts = ctx;
    land_record(ts->d_lander, rec, len, 0, ts->peer, ts->now_ns);
    TINC(ts, rows, 1);
    return 0;
}

void transform_stream_run(struct transform_stream *ts, int64_t now_ns)
{
    struct weir_errmsg e = {0};
    struct arrow_batch b = {0};
    uint64_t n = arrow_builder_rows(ts->ab), rows = 0;
    ts->build_errors = 0;
    /* No records, no run: an aggregate over nothing would make a row of
     * NULLs out of an idle second. */
    if (n == 0)
        return;
    ts->now_ns = now_ns;
    int rc = arrow_builder_finish(ts->ab, &b, &e);
    if (rc == 0)
        rc = xform_run(ts->prep->x, &b, land_row, ts, &rows, &e);
    arrow_batch_release(&b);
    TINC(ts, batches, 1);
    if (rc == 0)
        return;
    TINC(ts, errors, 1);
    /* DuckDB's messages span lines (the SQL, a caret): one log line. */
    for (char *c = e.text; *c; c++)
        if (*c == '\n' || *c == '\r')
            *c = ' ';
    char from[PART_KEY_MAX], to[PART_KEY_MAX];
    enum part_grain g = ts->prep->p->partition == CONFIG_PARTITION_DAY ? PART_DAY : PART_HOUR;
    part_key_format(ts->first_part, g, from, sizeof from);
    part_key_format(ts->last_part, g, to, sizeof to);
    log_error("%s: transform failed on a batch of %" PRIu64 " records (%s .. %s): %s; "
              "the records are in %s, %s has %" PRIu64 " of the batch's rows; once those "
              "hours are compacted, `weir replay %s --from ... --to ...` rebuilds them",
              ts->prep->p->name, n, from, to, e.text, ts->prep->p->name,
              ts->prep->d->name, rows, ts->prep->p->name);
}

int transform_stream_sync(struct transform_stream *ts)
{
    return land_sync(ts->d_lander);
}

int transform_stream_checkpoint(struct transform_stream *ts, const struct offsets *pos,
                                struct weir_errmsg *e)
{
    int rc = offsets_capture(&ts->ck, land_raw_writer(ts->d_lander),
                             land_quarantine_writer(ts->d_lander));
    for (size_t i = 0; i < pos->npos && rc == 0; i++)
        rc = offsets_set(&ts->ck, pos->pos[i].topic, pos->pos[i].partition, pos->pos[i].next);
    if (rc)
        return errmsg_set(e, rc, "%s: checkpoint: %s", ts->prep->d->name, weir_strerror(rc));
    return offsets_write(ts->cfg->data_dir, ts->prep->d->name, ts->cfg->node, &ts->ck, e);
}

void transform_stream_counts(const struct transform_stream *ts, struct transform_stats *out)
{
#define LD(f) atomic_load_explicit(&ts->st.f, memory_order_relaxed)
    out->batches = LD(batches);
    out->records = LD(records);
    out->rows = LD(rows);
    out->errors = LD(errors);
    out->skipped = LD(skipped);
#undef LD
}

int transform_recover(const struct weir_config *cfg, const struct config_pipeline *p,
                      struct weir_errmsg *e)
{
    if (!p->transform || !p->transform_name)
        return 0;
    struct offsets_rollback_stats st = {0};
    int rc = offsets_rollback(cfg->data_dir, p->transform_name, cfg->node, &st, e);
    if (rc == 0 && (st.files_cut || st.files_removed))
        log_info("%s: rolled back to the last checkpoint: %lu segments cut, %lu removed, "
                 "%" PRIu64 " bytes of rows not yet acknowledged (made again from the "
                 "records read again from Kafka)", p->transform_name, st.files_cut,
                 st.files_removed, st.bytes_dropped);
    return rc;
}
