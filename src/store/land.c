/*
 * land.c - validate, time, file or quarantine one record; see land.h.
 *
 * Records that a writer cannot take right now (it is at max_pending, or
 * has no partition slot while the disk fails) are parked in a bounded
 * queue, in arrival order, and every later record goes behind them until
 * the queue drains, so what lands from one connection is always a prefix
 * of what it sent. The source pauses long before the queue could fill
 * (land_pressure), so the bound is never reached by design; if it were,
 * the record is counted in `overflow` and logged, never silently lost.
 */
#include "store/land.h"
#include "core/buf.h"
#include "core/limits.h"
#include "core/log.h"
#include "core/wtime.h"
#include "schema/json.h"
#include "schema/validate.h"
#include "store/partition.h"
#include "store/segment.h"

#include <assert.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Segments that late records reopened in closed partitions are sealed
 * once late records have stopped for LATE_IDLE_NS, and at least every
 * LATE_SEAL_NS while they keep coming. Sealing them every second, as a
 * partition that just closed is, made a replay of old data cut a new
 * segment for every hour it touched every second (360 segments instead of
 * 30 for 5 s over 30 hours); each is a file to list, compact and commit.
 * A burst of late records (a sender catching up) is sealed 2 s after it
 * ends, so compaction sees it soon. */
#define LATE_IDLE_NS (2 * WTIME_NS_PER_S)
#define LATE_SEAL_NS (60 * WTIME_NS_PER_S)

/* A parked record: header then bytes. */
struct park_hdr {
    uint8_t quarantine; /* 1: bytes are a formatted quarantine line */
    int64_t part_start;
    uint32_t len;
};

struct lander {
    const struct weir_config *cfg;
    const struct config_pipeline *p;
    struct validator *v;
    struct seg_writer *raw;
    struct quar_writer *quar;
    enum part_grain grain;
    size_t max_record;
    size_t high_water;      /* pause above this many pending bytes */
    int disk_error;         /* sticky until a tick finds the writers healthy */
    struct buf park;        /* parked records, in order */
    size_t park_off;        /* first unconsumed byte of park */
    struct buf qline;       /* scratch for formatting quarantine lines */
    struct buf splice;      /* a record with a source's members added */
    int64_t last_seal_ns;   /* last look for partitions to seal */
    int64_t last_late_ns;   /* last seal of every closed partition */
    int64_t late_rec_ns;    /* arrival of the last late record */
    int late_open;          /* late records went to closed partitions since */
    int64_t closed_upto;    /* partitions ending at or before this are closed */
    land_tap_fn *tap;       /* land_set_tap */
    void *tap_ctx;
    struct land_stats st;
    const void *orig;       /* land_quarantine_bytes, for the next record */
    size_t orig_len;
    const void *q_orig;     /* ... taken by the record being landed */
    size_t q_orig_len;
};

/* The lander's thread is the only writer of its counters: a relaxed load
 * and store (plain moves) instead of a locked add, which was 1 % of the
 * samples of a Kafka or TCP ingest profile at 4 counters a record. Other
 * threads read them with relaxed loads (land_counts). */
#define ADD(field, n)                                                             \
    atomic_store_explicit(&l->st.field,                                           \
                          atomic_load_explicit(&l->st.field, memory_order_relaxed) + \
                              (n),                                                \
                          memory_order_relaxed)
#define INC(field) ADD(field, 1)

static enum seg_sync sync_of(enum config_fsync f)
{
    switch (f) {
    /* always: the writers commit in groups like group, and the source
     * calls land_read_end after each read, which fsyncs what it landed
     * (one fdatasync per read instead of per record; land.h). */
    case CONFIG_FSYNC_ALWAYS: return SEG_SYNC_GROUP;
    case CONFIG_FSYNC_NEVER: return SEG_SYNC_NEVER;
    default: return SEG_SYNC_GROUP;
    }
}

int land_new(const struct weir_config *cfg, const struct config_pipeline *p,
             const struct schema *schema, unsigned thread, struct lander **out,
             struct weir_errmsg *e)
{
    struct lander *l = calloc(1, sizeof *l);
    int rc;
    if (!l)
        return errmsg_set(e, WEIR_ENOMEM, "out of memory");
    l->cfg = cfg;
    l->p = p;
    l->grain = p->partition == CONFIG_PARTITION_DAY ? PART_DAY : PART_HOUR;
    l->max_record = p->max_record ? p->max_record : cfg->limits.max_record;
    size_t max_pending = cfg->limits.max_pending ? cfg->limits.max_pending
                                                 : WEIR_DEFAULT_MAX_PENDING;
    /* Room for what a source still delivers after it pauses: a read chunk
     * and one spanning record per connection being read. */
    size_t margin = 2 * l->max_record + WEIR_READ_CHUNK;
    l->high_water = max_pending > 2 * margin ? max_pending - margin : max_pending / 2;
    buf_init(&l->park, max_pending);
    buf_init(&l->qline, l->max_record * 2 + 64 * 1024);
    /* A record and a source's members (a Kafka key is at most a record
     * long, escaped at most 6 bytes a byte: store/kmeta.h). */
    buf_init(&l->splice, l->max_record * 8 + 64 * 1024);

    l->v = validator_new(schema);
    if (!l->v) {
        rc = errmsg_set(e, WEIR_ENOMEM, "out of memory");
        goto fail;
    }
    struct seg_config sc = {
        .data_dir = cfg->data_dir,
        .pipeline = p->name,
        .kind = "raw",
        .node = cfg->node,
        .thread = thread,
        .grain = l->grain,
        .sync = sync_of(p->fsync),
        .fsync_interval_ns = p->fsync_interval_ns,
        .fsync_bytes = (size_t)p->fsync_bytes,
        .segment_bytes = p->segment_bytes,
        .max_open_partitions = (unsigned)cfg->limits.max_open_partitions,
        .max_pending = max_pending,
    };
    if ((rc = seg_writer_new(&sc, &l->raw, e)) != 0)
        goto fail;
    sc.kind = "quarantine";
    sc.grain = PART_HOUR;
    if ((rc = quar_writer_new(&sc, &l->quar, e)) != 0)
        goto fail;
    *out = l;
    return 0;
fail:
    land_free(l);
    return rc;
}

void land_free(struct lander *l)
{
    if (!l)
        return;
    validator_free(l->v);
    seg_writer_free(l->raw);
    quar_writer_free(l->quar);
    buf_release(&l->park);
    buf_release(&l->qline);
    buf_release(&l->splice);
    free(l);
}

/* ---- event time --------------------------------------------------------- */

static int64_t unit_ns(enum config_time_unit u)
{
    switch (u) {
    case CONFIG_TIME_S: return WTIME_NS_PER_S;
    case CONFIG_TIME_MS: return WTIME_NS_PER_MS;
    case CONFIG_TIME_US: return 1000;
    default: return 1;
    }
}

static int time_from_number(double d, int64_t mult, int64_t *ns)
{
    double v = d * (double)mult;
    /* Beyond +/- 2^62 ns (year 2116) nothing is a plausible event time,
     * and the bound keeps the conversion defined. */
    if (!isfinite(v) || v > 4.6e18 || v < -4.6e18)
        return -1;
    *ns = (int64_t)v;
    return 0;
}

int land_event_time(const struct config_pipeline *p, const struct json_doc *doc,
                    int64_t *ns, char *why, size_t cap)
{
    const char *field = p->time_field;
    if (doc->ntoks == 0 || doc->toks[0].type != JSON_OBJECT) {
        snprintf(why, cap, "the record is not an object, so it has no \"%s\"", field);
        return QUAR_TIME_MISSING;
    }
    int i = json_lookup(doc, 0, field, strlen(field));
    if (i < 0) {
        snprintf(why, cap, "missing time field \"%s\"", field);
        return QUAR_TIME_MISSING;
    }
    const struct json_tok *t = &doc->toks[i];
    if (p->time_unit == CONFIG_TIME_RFC3339) {
        char tmp[64];
        if (t->type != JSON_STRING || t->len - 2 >= sizeof tmp) {
            snprintf(why, cap, "time field \"%s\" is not an RFC 3339 string", field);
            return QUAR_TIME_UNPARSABLE;
        }
        size_t n = json_str_decode(doc, t, tmp, sizeof tmp);
        if (wtime_parse_rfc3339(tmp, n, ns) != 0) {
            snprintf(why, cap, "time field \"%s\": \"%.*s\" is not an RFC 3339 time",
                     field, (int)n, tmp);
            return QUAR_TIME_UNPARSABLE;
        }
        return 0;
    }
    int64_t mult = unit_ns(p->time_unit), iv;
    if (t->type == JSON_NUMBER) {
        if (json_num_int64(doc, t, &iv) && iv <= INT64_MAX / mult &&
            iv >= INT64_MIN / mult) {
            *ns = iv * mult;
            return 0;
        }
        if (time_from_number(json_num_double(doc, t), mult, ns) == 0)
            return 0;
    }
    snprintf(why, cap, "time field \"%s\" is not a number of %s since the epoch",
             field, config_time_unit_name(p->time_unit));
    return QUAR_TIME_UNPARSABLE;
}

/* ---- writing, parking --------------------------------------------------- */

static int park(struct lander *l, int quarantine, int64_t part_start,
                const void *rec, size_t len)
{
    struct park_hdr h = {(uint8_t)quarantine, part_start, (uint32_t)len};
    if (l->park_off && l->park.len + sizeof h + len > l->park.max) {
        buf_consume(&l->park, l->park_off);
        l->park_off = 0;
    }
    if (buf_reserve(&l->park, sizeof h + len) != 0) {
        INC(overflow);
        log_error("%s: a record could not be kept: the write queue is full "
                  "(%zu bytes); this is a bug in backpressure, please report it",
                  l->p->name, l->park.len);
        return WEIR_ELIMIT;
    }
    buf_append(&l->park, &h, sizeof h);
    buf_append(&l->park, rec, len);
    return 0;
}

static struct seg_writer *writer_of(struct lander *l, int quarantine)
{
    return quarantine ? quar_seg(l->quar) : l->raw;
}

/* Write parked records in order; 0 when the queue is empty. */
static int unpark(struct lander *l)
{
    while (l->park_off < l->park.len) {
        struct park_hdr h;
        memcpy(&h, l->park.data + l->park_off, sizeof h);
        const char *rec = l->park.data + l->park_off + sizeof h;
        int rc = seg_append(writer_of(l, h.quarantine), h.part_start, rec, h.len);
        if (!seg_taken(rc))
            return rc;
        l->park_off += sizeof h + h.len;
        if (rc)
            l->disk_error = rc;
    }
    buf_reset(&l->park);
    l->park_off = 0;
    return 0;
}

static int parked(const struct lander *l)
{
    return l->park_off < l->park.len;
}

/* Append to a writer, or park; records the sticky disk error. */
static int put(struct lander *l, int quarantine, int64_t part_start,
               const void *rec, size_t len)
{
    if (!parked(l)) {
        int rc = seg_append(writer_of(l, quarantine), part_start, rec, len);
        if (seg_taken(rc)) {
            if (rc) {
                l->disk_error = rc;
                INC(write_errors);
            }
            return rc;
        }
        if (rc != WEIR_EAGAIN) {
            log_error("%s: cannot write a record: %s", l->p->name, weir_strerror(rc));
            INC(overflow);
            return rc;
        }
    }
    return park(l, quarantine, part_start, rec, len);
}

/* The peer to quarantine with: the one given, else meta's, made now. */
static const char *who(const char *peer, const struct land_meta *meta)
{
    return peer || !meta || !meta->peer ? peer : meta->peer(meta->ctx);
}

static int quarantine(struct lander *l, enum quar_reason reason, const char *path,
                      const char *msg, const char *rec, size_t len, unsigned flags,
                      const char *peer, int64_t now_ns, const struct land_meta *meta)
{
    struct quar_record q = {
        .received_at_ns = now_ns,
        .peer = who(peer, meta),
        .kafka = meta && meta->origin ? meta->origin(meta->ctx) : NULL,
        .reason = reason,
        .path = path,
        .error = msg,
        .raw = l->q_orig ? l->q_orig : rec,
        .raw_len = l->q_orig ? l->q_orig_len : len,
        .binary = l->q_orig || (flags & LAND_BINARY),
        .truncated = (flags & LAND_TRUNCATED) != 0,
    };
    INC(rejected[reason]);
    if (!parked(l)) {
        int rc = quar_append(l->quar, &q);
        if (seg_taken(rc)) {
            if (rc) {
                l->disk_error = rc;
                INC(write_errors);
            }
            return rc;
        }
    }
    int64_t start;
    part_start(now_ns, PART_HOUR, &start);
    buf_reset(&l->qline);
    int rc = quar_format(&l->qline, l->p->name, &q);
    if (rc == 0)
        rc = park(l, 1, start, l->qline.data, l->qline.len);
    return rc;
}

/* ---- a source's members ------------------------------------------------ */

/* The first of names that is a top-level key of doc's object root, or
 * NULL. Only keys starting with '_' (or escaped) are compared: the walk
 * costs a few loads per member. */
const char *land_meta_clash(const struct json_doc *d, const char *const *names)
{
    uint32_t k = 1;
    for (uint32_t m = 0; m < d->toks[0].count; m++) {
        const struct json_tok *t = &d->toks[k];
        const char *p = json_tok_ptr(d, t) + 1;
        if (t->len > 2 && (p[0] == '_' || (t->flags & JSON_F_ESCAPED))) {
            for (size_t i = 0; names[i]; i++)
                if (json_str_eq(d, t, names[i], strlen(names[i])))
                    return names[i];
        }
        k = d->toks[k + 1].next;
    }
    return NULL;
}

int land_meta_splice(struct buf *b, const struct json_doc *d, const char *rec,
                     size_t len, const struct land_meta *meta)
{
    const struct json_tok *root = &d->toks[0];
    size_t close = root->off + root->len - 1;
    assert(d->src == rec && close < len && rec[close] == '}');
    buf_reset(b);
    int rc = buf_append(b, rec, close);
    if (!rc && root->count)
        rc = buf_putc(b, ',');
    if (!rc)
        rc = meta->members(meta->ctx, b);
    if (!rc)
        rc = buf_append(b, rec + close, len - close);
    return rc;
}

/* out[0..*len) with meta's members before the root object's closing
 * brace, in l->splice; NULL when it does not fit (too_large). */
static const char *splice(struct lander *l, const struct json_doc *d, const char *out,
                          size_t *len, const struct land_meta *meta)
{
    if (land_meta_splice(&l->splice, d, out, *len, meta) != 0)
        return NULL;
    *len = l->splice.len;
    return l->splice.data;
}

int land_record(struct lander *l, const char *rec, size_t len, unsigned flags,
                const char *peer, int64_t now_ns)
{
    return land_record_meta(l, rec, len, flags, peer, now_ns, NULL);
}

int land_record_meta(struct lander *l, const char *rec, size_t len, unsigned flags,
                     const char *peer, int64_t now_ns, const struct land_meta *meta)
{
    ADD(records, 1);
    ADD(bytes, len);
    l->q_orig = l->orig;
    l->q_orig_len = l->orig_len;
    l->orig = NULL;
    if (flags & LAND_TRUNCATED) {
        char msg[128];
        snprintf(msg, sizeof msg, "record longer than max_record (%zu bytes)",
                 l->max_record);
        return quarantine(l, QUAR_TOO_LARGE, "", msg, rec, len, flags, peer, now_ns, meta);
    }
    struct verdict vd;
    int ok = validator_check(l->v, rec, len, &vd);
    if (ok < 0) {
        return quarantine(l, QUAR_INVALID, "", weir_strerror(ok), rec, len, flags,
                          peer, now_ns, meta);
    }
    if (ok == 0) {
        enum quar_reason r = QUAR_INVALID;
        if (vd.json_error && (flags & LAND_AT_EOF)) {
            r = QUAR_TRUNCATED;
            size_t n = strlen(vd.message);
            snprintf(vd.message + n, sizeof vd.message - n,
                     " (the connection closed in the middle of this record)");
        }
        return quarantine(l, r, vd.path, vd.message, rec, len, flags, peer, now_ns, meta);
    }
    int64_t ts;
    char why[256];
    int reason = land_event_time(l->p, validator_doc(l->v), &ts, why, sizeof why);
    if (reason)
        return quarantine(l, (enum quar_reason)reason, "", why, rec, len, flags,
                          peer, now_ns, meta);
    if ((l->p->time_max_ahead_ns != CONFIG_OFF && ts > now_ns + l->p->time_max_ahead_ns) ||
        (l->p->time_max_age_ns != CONFIG_OFF && ts < now_ns - l->p->time_max_age_ns)) {
        char when[40];
        wtime_format_rfc3339(ts, 0, when, sizeof when);
        snprintf(why, sizeof why,
                 "event time %s is outside the accepted window "
                 "(time_max_ahead / time_max_age)", when);
        return quarantine(l, QUAR_TIME_OUT_OF_RANGE, "", why, rec, len, flags,
                          peer, now_ns, meta);
    }
    int64_t start;
    part_start(ts, l->grain, &start);
    if (part_end(start, l->grain) + l->cfg->grace_ns <= now_ns) {
        INC(late);
        l->late_open = 1;
        l->late_rec_ns = now_ns;
    }
    size_t outlen;
    const char *out = validator_output(l->v, &outlen);
    const struct json_doc *d = validator_doc(l->v);
    if (meta && d->toks[0].type == JSON_OBJECT) {
        const char *dup = land_meta_clash(d, meta->names);
        if (dup) {
            char path[64];
            snprintf(path, sizeof path, "/%s", dup);
            snprintf(why, sizeof why, "\"%s\" is a member weir adds to the records "
                     "of this pipeline; the record may not carry it", dup);
            return quarantine(l, QUAR_INVALID, path, why, rec, len, flags,
                              peer, now_ns, meta);
        }
        if (!(out = splice(l, d, out, &outlen, meta))) {
            snprintf(why, sizeof why, "the record with the members weir adds is "
                     "longer than the lander can hold");
            return quarantine(l, QUAR_TOO_LARGE, "", why, rec, len, flags,
                              peer, now_ns, meta);
        }
    }
    if (validator_coerced(l->v))
        INC(coerced);
    INC(valid);
    ADD(valid_bytes, outlen);
    int rc = put(l, 0, start, out, outlen);
    if (l->tap)
        l->tap(l->tap_ctx, out, outlen, start);
    return rc;
}

void land_set_tap(struct lander *l, land_tap_fn *fn, void *ctx)
{
    l->tap = fn;
    l->tap_ctx = ctx;
}

void land_quarantine_bytes(struct lander *l, const void *orig, size_t len)
{
    l->orig = orig;
    l->orig_len = len;
}

int land_reject(struct lander *l, enum quar_reason reason, const char *path,
                const char *error, const void *rec, size_t len, unsigned flags,
                const char *peer, int64_t now_ns)
{
    return land_reject_meta(l, reason, path, error, rec, len, flags, peer, now_ns,
                            NULL);
}

int land_reject_meta(struct lander *l, enum quar_reason reason, const char *path,
                     const char *error, const void *rec, size_t len, unsigned flags,
                     const char *peer, int64_t now_ns, const struct land_meta *meta)
{
    ADD(records, 1);
    ADD(bytes, len);
    l->q_orig = NULL;
    l->orig = NULL;
    return quarantine(l, reason, path, error, rec, len, flags, peer, now_ns, meta);
}

int land_pressure(const struct lander *l)
{
    if (l->disk_error || parked(l))
        return 1;
    return seg_pending(l->raw) + seg_pending(quar_seg(l->quar)) > l->high_water;
}

int land_tick(struct lander *l, int64_t now_ns, int64_t mono_ns)
{
    /* The writer's own count is not for other threads; status pages read
     * this copy. */
    atomic_store_explicit(&l->st.open_partitions, seg_open_partitions(l->raw),
                          memory_order_relaxed);
    int rc = seg_tick(l->raw, mono_ns);
    int rq = seg_tick(quar_seg(l->quar), mono_ns);
    if (now_ns - l->last_seal_ns >= WTIME_NS_PER_S) {
        l->last_seal_ns = now_ns;
        int64_t cutoff = now_ns - l->cfg->grace_ns, closed;
        /* The start of the hour holding cutoff is the end of the newest
         * closed hour (quarantine is by hour whatever the grain; a day ends
         * on an hour): when it moves, a partition just closed. */
        part_start(cutoff, PART_HOUR, &closed);
        if (closed != l->closed_upto ||
            (l->late_open && (now_ns - l->late_rec_ns >= LATE_IDLE_NS ||
                              now_ns - l->last_late_ns >= LATE_SEAL_NS))) {
            if (rc == 0)
                rc = seg_seal_before(l->raw, cutoff);
            if (rq == 0)
                rq = seg_seal_before(quar_seg(l->quar), cutoff);
            if (rc == 0 && rq == 0) { /* else: again next second */
                l->closed_upto = closed;
                l->last_late_ns = now_ns;
                l->late_open = 0;
            }
        }
    }
    if (rc == 0 && rq == 0 && parked(l))
        rc = unpark(l);
    if (rc == 0 && rq == 0) {
        if (l->disk_error)
            log_info("%s: writing again after a disk error", l->p->name);
        l->disk_error = 0;
        return 0;
    }
    return rc ? rc : rq;
}

int land_close(struct lander *l)
{
    int rc = 0;
    for (int tries = 0; tries < 2 && parked(l); tries++) {
        seg_flush(l->raw);
        seg_flush(quar_seg(l->quar));
        rc = unpark(l);
    }
    int r1 = seg_close_all(l->raw);
    int r2 = seg_close_all(quar_seg(l->quar));
    if (rc == 0 && parked(l))
        rc = WEIR_EAGAIN;
    return rc ? rc : r1 ? r1 : r2;
}

size_t land_unwritten(const struct lander *l)
{
    return seg_pending(l->raw) + seg_pending(quar_seg(l->quar)) +
           (l->park.len - l->park_off);
}

int land_read_end(struct lander *l)
{
    if (l->p->fsync != CONFIG_FSYNC_ALWAYS || land_unwritten(l) == 0)
        return 0;
    int rc = land_sync(l);
    if (rc && rc != WEIR_EAGAIN) {
        /* As for a failing append: stop reading until a tick finds the
         * writers healthy again. */
        if (!l->disk_error)
            INC(write_errors);
        l->disk_error = rc;
    }
    return rc;
}

int land_sync(struct lander *l)
{
    int rc = 0;
    for (int tries = 0; tries < 2 && parked(l); tries++) {
        seg_flush(l->raw);
        seg_flush(quar_seg(l->quar));
        rc = unpark(l);
    }
    if (parked(l))
        return rc && rc != WEIR_EAGAIN ? rc : WEIR_EAGAIN;
    int r1 = seg_flush(l->raw);
    int r2 = seg_flush(quar_seg(l->quar));
    return r1 ? r1 : r2;
}

struct seg_writer *land_raw_writer(struct lander *l)
{
    return l->raw;
}

struct seg_writer *land_quarantine_writer(struct lander *l)
{
    return quar_seg(l->quar);
}

void land_counts(const struct lander *l, struct land_counts *o)
{
#define LD(f) atomic_load_explicit(&l->st.f, memory_order_relaxed)
    memset(o, 0, sizeof *o);
    o->records = LD(records);
    o->bytes = LD(bytes);
    o->valid = LD(valid);
    o->valid_bytes = LD(valid_bytes);
    o->coerced = LD(coerced);
    o->late = LD(late);
    for (int i = 0; i < QUAR__COUNT; i++) {
        o->rejected[i] = LD(rejected[i]);
        o->rejected_total += o->rejected[i];
    }
    o->write_errors = LD(write_errors);
    o->overflow = LD(overflow);
    o->open_partitions = LD(open_partitions);
#undef LD
    struct seg_stats ss;
    seg_stats(l->raw, &ss);
    o->durable = ss.records_durable;
    o->sealed = ss.segments_sealed;
    o->pending = seg_pending(l->raw) + seg_pending(quar_seg(l->quar));
}

void land_counts_add(struct land_counts *o, const struct land_counts *in)
{
    o->records += in->records;
    o->bytes += in->bytes;
    o->valid += in->valid;
    o->valid_bytes += in->valid_bytes;
    o->coerced += in->coerced;
    o->late += in->late;
    for (int i = 0; i < QUAR__COUNT; i++)
        o->rejected[i] += in->rejected[i];
    o->rejected_total += in->rejected_total;
    o->write_errors += in->write_errors;
    o->overflow += in->overflow;
    o->durable += in->durable;
    o->pending += in->pending;
    o->open_partitions += in->open_partitions;
    o->sealed += in->sealed;
}
