/*
 * kafka_out.c - the Kafka sink and the model output to Kafka; see
 * kafka_out.h and docs/kafka.md ("Kafka sink").
 *
 * The pipeline sink's thread keeps, per raw segment of this node it knows
 * (struct tseg), three offsets in the file:
 *
 *   0 ........ confirmed ........ next ........ avail ........ size
 *   | delivered (cursor) | in the window | to read | not durable yet |
 *
 * and one FIFO of the messages produced (struct slot, the window), in
 * produce order over all segments. A delivery report marks its slot; the
 * head of the FIFO pops while its slots are confirmed, and each pop moves
 * its segment's confirmed offset to the end of that record. So the
 * cursor only ever covers a prefix in which every record was confirmed,
 * whatever order the reports of different partitions arrive in.
 */
#include "sinks/kafka_out.h"
#include "core/buf.h"
#include "core/fsio.h"
#include "core/limits.h"
#include "core/log.h"
#include "core/wtime.h"
#include "schema/json.h"
#include "store/cursor.h"
#include "store/segment.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <librdkafka/rdkafka.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Bytes read from a segment at a time (more when one record is longer). */
#define READ_CHUNK (1u << 20)

/* The same librdkafka complaint is logged at most this often. */
#define LOG_REPEAT_NS (30 * WTIME_NS_PER_S)

/* Longest key taken from a record; a longer value is cut (a key is for
 * partitioning, and the record keeps the whole value). */
#define KEY_MAX 1024

enum slot_state { SLOT_INFLIGHT = 1, SLOT_OK, SLOT_FAILED };

struct tseg {
    char stem[CURSOR_STEM_MAX];
    char *path;           /* as last listed */
    unsigned thread;
    uint64_t seq;
    int active;
    int fd;               /* -1: not open */
    uint64_t size;        /* as last listed */
    uint64_t confirmed;   /* delivered prefix (the cursor) */
    uint64_t next;        /* next byte to produce */
    uint64_t avail;       /* durable: may be read up to here */
    uint32_t refs;        /* slots of the window that point here */
    int seen;             /* listed by the last scan */
};

struct slot {
    uint64_t id;          /* produce number; the message's opaque */
    struct tseg *seg;
    uint64_t start;
    uint32_t len;         /* without the newline */
    uint8_t state;
};

struct counters {
    _Atomic uint64_t produced, delivered, failed, retried, bytes, lag;
};

struct kafka_sink {
    const struct weir_config *cfg;
    const struct config_pipeline *p;
    const struct config_kafka_sink *k;
    struct seg_writer **writers;
    unsigned nwriters;
    pthread_t thread;
    int started;
    atomic_int stop;
    int64_t stop_wait_ns;

    rd_kafka_t *rk;
    struct sink_cursor initial;  /* the cursor at start, for segments met first */

    struct tseg **segs;
    size_t nsegs, capsegs;

    struct slot *ring;           /* WEIR_KSINK_WINDOW_MESSAGES slots */
    uint64_t head, tail;         /* ids: [head, tail) are in the window */
    uint64_t inflight;           /* slots waiting for a report */
    uint64_t inflight_bytes;
    uint64_t nfailed;            /* slots failed, not produced again yet */
    int64_t retry_at;            /* mono ns: produce failed slots again */
    int64_t backoff_ns;
    int dirty;                   /* the cursor changed since saved */
    int64_t last_save, last_scan;
    int save_warned;

    struct buf rbuf;             /* segment bytes being produced */
    struct json_doc doc;         /* keys */
    char keybuf[KEY_MAX];

    uint64_t backlog0;           /* undelivered records found at start */
    uint64_t durable0;           /* writers' durable records then */

    pthread_mutex_t log_mu;      /* librdkafka logs from its threads */
    char last_log[256];
    int64_t last_log_ns;

    struct counters st;
};

#define CNT_ADD(s, f, n) atomic_fetch_add_explicit(&(s)->st.f, (n), memory_order_relaxed)
#define CNT_GET(s, f) atomic_load_explicit(&(s)->st.f, memory_order_relaxed)

/* ---- librdkafka glue (shared with the model output) --------------------- */

static void log_limited(pthread_mutex_t *mu, char *last, size_t cap, int64_t *last_ns,
                        const char *what, enum log_level lvl, const char *msg)
{
    int64_t now = wtime_mono_ns();
    pthread_mutex_lock(mu);
    int repeat = strncmp(last, msg, cap - 1) == 0 && now - *last_ns < LOG_REPEAT_NS;
    if (!repeat) {
        snprintf(last, cap, "%s", msg);
        *last_ns = now;
    }
    pthread_mutex_unlock(mu);
    if (!repeat)
        log_msg(lvl, "%s: kafka sink: %s", what, msg);
}

static int conf_set(rd_kafka_conf_t *conf, const char *k, const char *v,
                    struct weir_errmsg *e)
{
    char err[512];
    if (rd_kafka_conf_set(conf, k, v, err, sizeof err) != RD_KAFKA_CONF_OK)
        /* Not the value: it may be a password. */
        return errmsg_set(e, WEIR_ECONFIG, "kafka sink: %s: %s", k, err);
    return 0;
}

/* The producer settings every Kafka output of weir shares. */
static rd_kafka_conf_t *producer_conf(const struct config_kafka_sink *k,
                                      struct weir_errmsg *e)
{
    char win_msgs[32], win_kb[32], tmo[32];
    /* Room for the whole window plus retries, so the producer never says
     * "queue full" before the sink's own window does. */
    snprintf(win_msgs, sizeof win_msgs, "%u", 2u * WEIR_KSINK_WINDOW_MESSAGES);
    snprintf(win_kb, sizeof win_kb, "%u", 2u * (WEIR_KSINK_WINDOW_BYTES >> 10));
    snprintf(tmo, sizeof tmo, "%u", (unsigned)WEIR_KSINK_MESSAGE_TIMEOUT_MS);
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    if (conf_set(conf, "bootstrap.servers", k->brokers, e) ||
        conf_set(conf, "enable.idempotence", "true", e) ||
        conf_set(conf, "acks", "all", e) ||
        conf_set(conf, "message.timeout.ms", tmo, e) ||
        conf_set(conf, "linger.ms", "5", e) ||
        conf_set(conf, "compression.type", "lz4", e) ||
        conf_set(conf, "queue.buffering.max.messages", win_msgs, e) ||
        conf_set(conf, "queue.buffering.max.kbytes", win_kb, e)) {
        rd_kafka_conf_destroy(conf);
        return NULL;
    }
    /* The user's properties (TLS, SASL, timeouts) after weir's defaults,
     * so that they override them; the config refused the ones weir's
     * guarantee depends on. */
    for (size_t i = 0; i < k->noptions; i++) {
        char key[256];
        const char *eq = strchr(k->options[i], '=');
        size_t kl = eq ? (size_t)(eq - k->options[i]) : 0;
        if (!eq || kl >= sizeof key) {
            errmsg_set(e, WEIR_ECONFIG, "kafka sink: bad option %s", k->options[i]);
            rd_kafka_conf_destroy(conf);
            return NULL;
        }
        memcpy(key, k->options[i], kl);
        key[kl] = '\0';
        if (conf_set(conf, key, eq + 1, e)) {
            rd_kafka_conf_destroy(conf);
            return NULL;
        }
    }
    return conf;
}

/* The message key of a record: the value at the dotted path. */
static int record_key(struct json_doc *doc, const char *path, const char *rec,
                      size_t len, char *out, size_t cap, const char **key, size_t *klen)
{
    *key = NULL;
    *klen = 0;
    if (!path || json_scan(doc, rec, len) != JSON_OK || doc->toks[0].type != JSON_OBJECT)
        return 0;
    int i = json_lookup(doc, 0, path, strlen(path));
    if (i < 0)
        return 0;
    const struct json_tok *t = &doc->toks[i];
    if (t->type == JSON_NULL)
        return 0;
    if (t->type == JSON_STRING) {
        size_t n = json_str_decode(doc, t, out, cap);
        *key = out;
        *klen = n < cap ? n : cap;
        return 1;
    }
    *key = rec + t->off;
    *klen = t->len < KEY_MAX ? t->len : KEY_MAX;
    return 1;
}

static rd_kafka_headers_t *headers_of(const char *const *hdrs)
{
    size_t n = 0;
    while (hdrs[n])
        n += 2;
    rd_kafka_headers_t *h = rd_kafka_headers_new(n / 2 + 1);
    for (size_t i = 0; i < n; i += 2)
        rd_kafka_header_add(h, hdrs[i], -1, hdrs[i + 1], -1);
    return h;
}

/* ---- the pipeline sink: delivery reports -------------------------------- */

static void advance(struct kafka_sink *s)
{
    size_t cap = WEIR_KSINK_WINDOW_MESSAGES;
    while (s->head < s->tail) {
        struct slot *sl = &s->ring[s->head % cap];
        if (sl->state != SLOT_OK)
            break;
        struct tseg *g = sl->seg;
        uint64_t end = sl->start + sl->len + 1;
        if (end > g->confirmed)
            g->confirmed = end;
        g->refs--;
        sl->state = 0;
        s->head++;
        s->dirty = 1;
    }
}

static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    struct kafka_sink *s = opaque;
    uint64_t id = (uint64_t)(uintptr_t)m->_private;
    struct slot *sl = &s->ring[id % WEIR_KSINK_WINDOW_MESSAGES];
    if (sl->id != id || sl->state != SLOT_INFLIGHT) {
        log_error("%s: kafka sink: a delivery report for an unknown message; "
                  "this is a bug, please report it", s->p->name);
        return;
    }
    s->inflight--;
    s->inflight_bytes -= sl->len;
    if (m->err) {
        sl->state = SLOT_FAILED;
        s->nfailed++;
        /* Purged at shutdown: not a broker's failure, the next start
         * delivers it. */
        if (m->err == RD_KAFKA_RESP_ERR__PURGE_QUEUE ||
            m->err == RD_KAFKA_RESP_ERR__PURGE_INFLIGHT)
            return;
        CNT_ADD(s, failed, 1);
        int64_t now = wtime_mono_ns();
        if (s->retry_at <= now) {
            s->retry_at = now + s->backoff_ns;
            char msg[256];
            snprintf(msg, sizeof msg, "delivery failed: %s; producing again from the "
                     "cursor in %.0f s", rd_kafka_err2str(m->err),
                     (double)s->backoff_ns / 1e9);
            log_limited(&s->log_mu, s->last_log, sizeof s->last_log, &s->last_log_ns,
                        s->p->name, LOG_WARN, msg);
            s->backoff_ns *= 2;
            if (s->backoff_ns > (int64_t)WEIR_KSINK_BACKOFF_MAX_MS * WTIME_NS_PER_MS)
                s->backoff_ns = (int64_t)WEIR_KSINK_BACKOFF_MAX_MS * WTIME_NS_PER_MS;
        }
        return;
    }
    sl->state = SLOT_OK;
    CNT_ADD(s, delivered, 1);
    CNT_ADD(s, bytes, sl->len);
    if (s->nfailed == 0)
        s->backoff_ns = (int64_t)WEIR_KSINK_BACKOFF_MIN_MS * WTIME_NS_PER_MS;
    advance(s);
}

static void on_log(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
    struct kafka_sink *s = rd_kafka_opaque(rk);
    if (s)
        log_limited(&s->log_mu, s->last_log, sizeof s->last_log, &s->last_log_ns,
                    s->p->name, LOG_DEBUG, buf); /* on_error says it once */
}

static void on_error(rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
    struct kafka_sink *s = opaque;
    char msg[512];
    snprintf(msg, sizeof msg, "%s%s", err == RD_KAFKA_RESP_ERR__FATAL ? "fatal: " : "",
             reason);
    log_limited(&s->log_mu, s->last_log, sizeof s->last_log, &s->last_log_ns,
                s->p->name, LOG_WARN, msg);
}

/* ---- the pipeline sink: segments ---------------------------------------- */

static struct tseg *seg_find(struct kafka_sink *s, const char *stem, size_t hint)
{
    if (hint < s->nsegs && strcmp(s->segs[hint]->stem, stem) == 0)
        return s->segs[hint];
    for (size_t i = 0; i < s->nsegs; i++)
        if (strcmp(s->segs[i]->stem, stem) == 0)
            return s->segs[i];
    return NULL;
}

static void tseg_free(struct tseg *g)
{
    if (!g)
        return;
    if (g->fd >= 0)
        fsio_close(g->fd);
    free(g->path);
    free(g);
}

/* The file of g still exists under one of its two names. */
static int tseg_exists(const struct tseg *g)
{
    struct stat st;
    char other[PATH_MAX];
    if (fsio_stat(g->path, &st) == 0)
        return 1;
    size_t n = strlen(g->path);
    if (g->active && n > 5 && n < sizeof other) {
        memcpy(other, g->path, n - 5); /* drop ".open" */
        other[n - 5] = '\0';
        return fsio_stat(other, &st) == 0;
    }
    return 0;
}

/*
 * List this node's raw segments, in seg_list order (partition, name), and
 * refresh what each may deliver. A segment no longer listed is forgotten
 * once it is really gone (compacted) and nothing in the window points at
 * it; a readdir that missed a file being renamed keeps it.
 */
static int scan(struct kafka_sink *s)
{
    struct seg_list l = {0};
    struct weir_errmsg e = {0};
    int rc = seg_list(s->cfg->data_dir, s->p->name, "raw", &l, &e);
    if (rc) {
        log_warn("%s: kafka sink: %s", s->p->name, e.text);
        return rc;
    }
    struct tseg **nv = calloc(l.n + s->nsegs + 1, sizeof *nv);
    if (!nv) {
        seg_list_release(&l);
        return WEIR_ENOMEM;
    }
    size_t n = 0;
    for (size_t i = 0; i < s->nsegs; i++)
        s->segs[i]->seen = 0;
    for (size_t i = 0; i < l.n; i++) {
        const struct seg_entry *x = &l.v[i];
        char stem[CURSOR_STEM_MAX];
        if (!seg_name_is_node(x->name, s->cfg->node) ||
            cursor_stem(x->name, stem, sizeof stem) != 0)
            continue;
        struct tseg *g = seg_find(s, stem, n);
        if (!g) {
            if (!(g = calloc(1, sizeof *g))) {
                rc = WEIR_ENOMEM;
                break;
            }
            memcpy(g->stem, stem, sizeof stem);
            g->fd = -1;
            g->thread = x->sn.thread;
            g->seq = x->sn.seq;
            uint64_t off = 0;
            cursor_get(&s->initial, stem, &off);
            g->confirmed = g->next = off;
        }
        if (!g->path || strcmp(g->path, x->path) != 0) {
            char *p = strdup(x->path);
            if (!p) {
                if (!g->path)
                    free(g);
                rc = WEIR_ENOMEM;
                break;
            }
            free(g->path);
            g->path = p;
        }
        g->active = x->active;
        g->size = x->size;
        uint64_t len;
        if (!x->active)
            len = x->size;
        else if (g->thread < s->nwriters && s->writers[g->thread] &&
                 seg_durable_len(s->writers[g->thread], g->seq, &len))
            ;
        else
            len = g->avail;
        if (len > g->avail)
            g->avail = len;
        if (!x->active && g->confirmed > g->size) {
            /* Cut back below what was delivered: only a Kafka source's
             * rollback does that (its records are landed again in a new
             * segment and delivered from there). */
            log_warn("%s: kafka sink: %s is shorter (%" PRIu64 " bytes) than what "
                     "was delivered of it (%" PRIu64 "): it was cut back after a "
                     "crash; its records landed again are delivered again",
                     s->p->name, x->name, g->size, g->confirmed);
            g->confirmed = g->size;
            s->dirty = 1;
        }
        if (g->next < g->confirmed)
            g->next = g->confirmed;
        if (g->avail > g->size && !x->active)
            g->avail = g->size;
        g->seen = 1;
        nv[n++] = g;
    }
    seg_list_release(&l);
    /* Known but not listed: keep unless gone for good. */
    for (size_t i = 0; i < s->nsegs; i++) {
        struct tseg *g = s->segs[i];
        if (g->seen)
            continue;
        if (rc == 0 && g->refs == 0 && !tseg_exists(g)) {
            tseg_free(g);
            s->dirty = 1;
        } else {
            nv[n++] = g;
        }
    }
    if (rc) { /* nothing dropped then, only new ones lost: keep the old */
        for (size_t i = 0; i < n; i++) {
            int old = 0;
            for (size_t j = 0; j < s->nsegs && !old; j++)
                old = s->segs[j] == nv[i];
            if (!old)
                tseg_free(nv[i]);
        }
        free(nv);
        return rc;
    }
    free(s->segs);
    s->segs = nv;
    s->nsegs = n;
    s->capsegs = n;
    return 0;
}

static int tseg_open(struct kafka_sink *s, struct tseg *g)
{
    if (g->fd >= 0)
        return 0;
    g->fd = fsio_open(g->path, O_RDONLY | O_CLOEXEC, 0);
    if (g->fd < 0 && errno == ENOENT && g->active) {
        char other[PATH_MAX];
        size_t n = strlen(g->path);
        if (n > 5 && n < sizeof other) {
            memcpy(other, g->path, n - 5);
            other[n - 5] = '\0';
            g->fd = fsio_open(other, O_RDONLY | O_CLOEXEC, 0);
        }
    }
    if (g->fd < 0) {
        if (errno != ENOENT)
            log_warn("%s: kafka sink: %s: %s", s->p->name, g->path, strerror(errno));
        return weir_from_errno(errno);
    }
    return 0;
}

/* Produce one record of g (bytes rec[0..len) at file offset start) into
 * the next slot. 0, or WEIR_EAGAIN when the producer is full. */
static int produce(struct kafka_sink *s, struct tseg *g, uint64_t start,
                   const char *rec, size_t len, struct slot *reuse)
{
    const char *key;
    size_t klen;
    char where[CURSOR_STEM_MAX + 24];
    snprintf(where, sizeof where, "%s:%" PRIu64, g->stem, start);
    record_key(&s->doc, s->k->key, rec, len, s->keybuf, sizeof s->keybuf, &key, &klen);
    const char *const hdrs[] = {"weir_pipeline", s->p->name, "weir_node", s->cfg->node,
                                "weir_record", where, NULL};
    rd_kafka_headers_t *h = headers_of(hdrs);
    uint64_t id = reuse ? reuse->id : s->tail;
    rd_kafka_resp_err_t err = rd_kafka_producev(
        s->rk, RD_KAFKA_V_TOPIC(s->k->topic), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
        RD_KAFKA_V_VALUE((void *)rec, len), RD_KAFKA_V_KEY((void *)key, klen),
        RD_KAFKA_V_HEADERS(h), RD_KAFKA_V_OPAQUE((void *)(uintptr_t)id), RD_KAFKA_V_END);
    if (err) {
        rd_kafka_headers_destroy(h);
        if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL)
            log_limited(&s->log_mu, s->last_log, sizeof s->last_log, &s->last_log_ns,
                        s->p->name, LOG_WARN, rd_kafka_err2str(err));
        return WEIR_EAGAIN;
    }
    struct slot *sl = reuse ? reuse : &s->ring[s->tail % WEIR_KSINK_WINDOW_MESSAGES];
    if (!reuse) {
        sl->id = id;
        sl->seg = g;
        sl->start = start;
        sl->len = (uint32_t)len;
        g->refs++;
        s->tail++;
    }
    sl->state = SLOT_INFLIGHT;
    s->inflight++;
    s->inflight_bytes += len;
    CNT_ADD(s, produced, 1);
    return 0;
}

static int window_full(const struct kafka_sink *s)
{
    return s->tail - s->head >= WEIR_KSINK_WINDOW_MESSAGES ||
           s->inflight_bytes >= WEIR_KSINK_WINDOW_BYTES;
}

/* Produce what g has durable beyond next, while the window has room.
 * 1 if g is not finished (window full or the producer pushed back). */
static int pump_seg(struct kafka_sink *s, struct tseg *g)
{
    while (g->next < g->avail) {
        if (window_full(s))
            return 1;
        if (tseg_open(s, g) != 0)
            return 0; /* renamed or gone: the next scan knows */
        uint64_t want = g->avail - g->next;
        if (want > READ_CHUNK)
            want = READ_CHUNK;
        for (;;) {
            buf_reset(&s->rbuf);
            if (buf_reserve(&s->rbuf, want) != 0)
                return 0;
            size_t got = 0;
            if (fsio_pread_all(g->fd, s->rbuf.data, want, (off_t)g->next, &got) != 0) {
                log_warn("%s: kafka sink: %s: read: %s", s->p->name, g->path,
                         strerror(errno));
                return 0;
            }
            s->rbuf.len = got;
            if (memchr(s->rbuf.data, '\n', got) || got < want ||
                want >= g->avail - g->next || want >= s->rbuf.max)
                break;
            /* One record longer than the chunk: read it whole. */
            want = want * 2 < g->avail - g->next ? want * 2 : g->avail - g->next;
            if (want > s->rbuf.max)
                want = s->rbuf.max;
        }
        const char *p = s->rbuf.data, *end = p + s->rbuf.len;
        int progressed = 0;
        while (p < end) {
            const char *nl = memchr(p, '\n', (size_t)(end - p));
            if (!nl)
                break;
            if (window_full(s) ||
                produce(s, g, g->next, p, (size_t)(nl - p), NULL) != 0)
                return 1;
            g->next += (uint64_t)(nl - p) + 1;
            p = nl + 1;
            progressed = 1;
        }
        if (!progressed) {
            /* No whole record below avail: cannot happen with writers
             * that publish record boundaries; wait for more. */
            return 0;
        }
    }
    if (!g->active && g->next >= g->size && g->fd >= 0 && g->refs == 0) {
        fsio_close(g->fd);
        g->fd = -1;
    }
    return 0;
}

static void pump(struct kafka_sink *s)
{
    if (s->nfailed)
        return; /* failed records go first, in order: retry_failed */
    for (size_t i = 0; i < s->nsegs; i++)
        if (pump_seg(s, s->segs[i]))
            return;
}

/* Produce the failed slots again, in window order, once nothing else is
 * in flight and the backoff has passed. */
static void retry_failed(struct kafka_sink *s)
{
    if (!s->nfailed || s->inflight || wtime_mono_ns() < s->retry_at)
        return;
    size_t cap = WEIR_KSINK_WINDOW_MESSAGES;
    for (uint64_t id = s->head; id < s->tail; id++) {
        struct slot *sl = &s->ring[id % cap];
        if (sl->state != SLOT_FAILED)
            continue;
        struct tseg *g = sl->seg;
        size_t got = 0;
        buf_reset(&s->rbuf);
        if (tseg_open(s, g) != 0 || buf_reserve(&s->rbuf, (size_t)sl->len + 1) != 0 ||
            fsio_pread_all(g->fd, s->rbuf.data, sl->len, (off_t)sl->start, &got) != 0 ||
            got != sl->len) {
            log_error("%s: kafka sink: %s: cannot read a record to produce it again; "
                      "retrying later", s->p->name, g->path);
            s->retry_at = wtime_mono_ns() + s->backoff_ns;
            return;
        }
        if (produce(s, g, sl->start, s->rbuf.data, sl->len, sl) != 0) {
            s->retry_at = wtime_mono_ns() + s->backoff_ns;
            return;
        }
        s->nfailed--;
        CNT_ADD(s, retried, 1);
    }
}

/* ---- the pipeline sink: the cursor and the lag -------------------------- */

static int save(struct kafka_sink *s)
{
    struct sink_cursor c = {0};
    struct weir_errmsg e = {0};
    int rc = 0;
    for (size_t i = 0; i < s->nsegs && rc == 0; i++)
        rc = cursor_add(&c, s->segs[i]->stem, s->segs[i]->confirmed);
    if (rc == 0)
        rc = cursor_save(s->cfg->data_dir, s->p->name, s->cfg->node, &c, &e);
    else
        errmsg_set(&e, rc, "%s", weir_strerror(rc));
    cursor_release(&c);
    s->last_save = wtime_mono_ns();
    if (rc) {
        if (!s->save_warned)
            log_warn("%s: kafka sink: cannot save the cursor: %s; retrying (a restart "
                     "now would deliver again what was confirmed since)", s->p->name,
                     e.text);
        s->save_warned = 1;
        return rc;
    }
    if (s->save_warned)
        log_info("%s: kafka sink: the cursor is saved again", s->p->name);
    s->save_warned = 0;
    s->dirty = 0;
    return 0;
}

static uint64_t durable_records(const struct kafka_sink *s)
{
    uint64_t n = 0;
    for (unsigned k = 0; k < s->nwriters; k++) {
        struct seg_stats st;
        if (!s->writers[k])
            continue;
        seg_stats(s->writers[k], &st);
        n += st.records_durable;
    }
    return n;
}

/* Records in [next, avail) of every segment: the backlog at start. */
static uint64_t count_backlog(struct kafka_sink *s)
{
    uint64_t n = 0;
    for (size_t i = 0; i < s->nsegs && !atomic_load(&s->stop); i++) {
        struct tseg *g = s->segs[i];
        uint64_t off = g->next;
        if (off >= g->avail || tseg_open(s, g) != 0)
            continue;
        while (off < g->avail) {
            uint64_t want = g->avail - off < READ_CHUNK ? g->avail - off : READ_CHUNK;
            size_t got = 0;
            buf_reset(&s->rbuf);
            if (buf_reserve(&s->rbuf, want) != 0 ||
                fsio_pread_all(g->fd, s->rbuf.data, want, (off_t)off, &got) != 0 ||
                got == 0)
                break;
            for (const char *p = s->rbuf.data, *end = p + got;
                 (p = memchr(p, '\n', (size_t)(end - p))) != NULL; p++)
                n++;
            off += got;
        }
    }
    return n;
}

static void update_lag(struct kafka_sink *s)
{
    uint64_t landed = s->backlog0 + (durable_records(s) - s->durable0);
    uint64_t done = CNT_GET(s, delivered);
    atomic_store_explicit(&s->st.lag, landed > done ? landed - done : 0,
                          memory_order_relaxed);
}

/* Everything durable is confirmed, and nothing waits. */
static int caught_up(const struct kafka_sink *s)
{
    if (s->head != s->tail || s->nfailed)
        return 0;
    for (size_t i = 0; i < s->nsegs; i++)
        if (s->segs[i]->confirmed < s->segs[i]->avail)
            return 0;
    return 1;
}

/* ---- the pipeline sink: the thread -------------------------------------- */

static int producer_new(struct kafka_sink *s, struct weir_errmsg *e)
{
    char err[512];
    rd_kafka_conf_t *conf = producer_conf(s->k, e);
    if (!conf)
        return WEIR_ECONFIG;
    rd_kafka_conf_set_opaque(conf, s);
    rd_kafka_conf_set_dr_msg_cb(conf, on_delivery);
    rd_kafka_conf_set_log_cb(conf, on_log);
    rd_kafka_conf_set_error_cb(conf, on_error);
    s->rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof err);
    if (!s->rk) {
        rd_kafka_conf_destroy(conf);
        return errmsg_set(e, WEIR_ECONFIG, "pipeline %s: kafka sink: %s", s->p->name, err);
    }
    return 0;
}

/*
 * An idempotent producer that hit a fatal error (its producer id fenced,
 * say) accepts nothing any more: hand every message back as failed
 * (purge), and start a new producer, which the failed records then go
 * through after the backoff.
 */
static void producer_reset(struct kafka_sink *s)
{
    char why[512];
    if (rd_kafka_fatal_error(s->rk, why, sizeof why) == RD_KAFKA_RESP_ERR_NO_ERROR)
        return;
    log_error("%s: kafka sink: the producer failed for good (%s); starting a new one, "
              "the records in flight are produced again", s->p->name, why);
    rd_kafka_purge(s->rk, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT |
                              RD_KAFKA_PURGE_F_NON_BLOCKING);
    int64_t until = wtime_mono_ns() + 5 * WTIME_NS_PER_S;
    while (s->inflight && wtime_mono_ns() < until)
        rd_kafka_poll(s->rk, 20);
    rd_kafka_destroy(s->rk);
    s->rk = NULL;
    /* Reports that never came: the records are produced again all the same. */
    for (uint64_t id = s->head; id < s->tail; id++) {
        struct slot *sl = &s->ring[id % WEIR_KSINK_WINDOW_MESSAGES];
        if (sl->state == SLOT_INFLIGHT) {
            sl->state = SLOT_FAILED;
            s->nfailed++;
            s->inflight--;
            s->inflight_bytes -= sl->len;
        }
    }
    s->retry_at = wtime_mono_ns() + s->backoff_ns;
    struct weir_errmsg e = {0};
    while (producer_new(s, &e) != 0 && !atomic_load(&s->stop)) {
        log_error("%s: %s; retrying in 1 s", s->p->name, e.text);
        usleep(1000 * 1000);
    }
}

static void *sink_main(void *arg)
{
    struct kafka_sink *s = arg;
    scan(s);
    s->durable0 = durable_records(s);
    s->backlog0 = count_backlog(s);
    if (s->backlog0)
        log_info("%s: kafka sink: %" PRIu64 " records landed earlier are not delivered "
                 "yet; delivering them first", s->p->name, s->backlog0);
    s->last_scan = wtime_mono_ns();
    while (!atomic_load(&s->stop)) {
        int64_t now = wtime_mono_ns();
        if (now - s->last_scan >= (int64_t)WEIR_KSINK_SCAN_MS * WTIME_NS_PER_MS) {
            scan(s);
            s->last_scan = now;
        }
        producer_reset(s);
        if (!s->rk)
            break;
        retry_failed(s);
        pump(s);
        rd_kafka_poll(s->rk, 20);
        now = wtime_mono_ns();
        if (s->dirty && now - s->last_save >= (int64_t)WEIR_KSINK_SAVE_MS * WTIME_NS_PER_MS)
            save(s);
        update_lag(s);
    }

    /* Stopping: the writers have sealed everything; deliver it if the
     * broker answers, within the wait, but do not wait out a backoff. */
    int64_t deadline = wtime_mono_ns() + s->stop_wait_ns;
    if (!s->rk) { /* stopped while no producer could be made */
        save(s);
        return NULL;
    }
    scan(s);
    while (wtime_mono_ns() < deadline && !caught_up(s) && !s->nfailed) {
        pump(s);
        rd_kafka_poll(s->rk, 20);
        if (wtime_mono_ns() - s->last_scan >= (int64_t)WEIR_KSINK_SCAN_MS * WTIME_NS_PER_MS) {
            scan(s);
            s->last_scan = wtime_mono_ns();
        }
    }
    /* What was never sent is dropped now; what is on the wire gets the
     * rest of the wait for its report. */
    rd_kafka_purge(s->rk, RD_KAFKA_PURGE_F_QUEUE);
    while (s->inflight && wtime_mono_ns() < deadline)
        rd_kafka_poll(s->rk, 20);
    rd_kafka_purge(s->rk, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT |
                              RD_KAFKA_PURGE_F_NON_BLOCKING);
    rd_kafka_poll(s->rk, 0);
    update_lag(s);
    save(s);
    uint64_t lag = CNT_GET(s, lag);
    log_info("%s: kafka sink: %" PRIu64 " records delivered (%" PRIu64 " bytes), %" PRIu64
             " failed reports, %" PRIu64 " produced again%s%s", s->p->name,
             CNT_GET(s, delivered), CNT_GET(s, bytes), CNT_GET(s, failed),
             CNT_GET(s, retried), lag ? "; not delivered yet (next start): " : "",
             lag ? "some" : "");
    return NULL;
}

int kafka_sink_start(const struct weir_config *cfg, const struct config_pipeline *p,
                     struct seg_writer *const *writers, unsigned nwriters,
                     struct kafka_sink **out, struct weir_errmsg *e)
{
    int rc;
    *out = NULL;
    struct kafka_sink *s = calloc(1, sizeof *s);
    if (!s)
        return errmsg_set(e, WEIR_ENOMEM, "out of memory");
    s->cfg = cfg;
    s->p = p;
    s->k = p->sink_kafka;
    s->backoff_ns = (int64_t)WEIR_KSINK_BACKOFF_MIN_MS * WTIME_NS_PER_MS;
    s->stop_wait_ns = (int64_t)WEIR_KSINK_STOP_WAIT_S * WTIME_NS_PER_S;
    pthread_mutex_init(&s->log_mu, NULL);
    json_doc_init(&s->doc, (uint32_t)cfg->limits.max_depth);
    {
        size_t max = cfg->limits.max_pending ? cfg->limits.max_pending
                                             : WEIR_DEFAULT_MAX_PENDING;
        buf_init(&s->rbuf, max + READ_CHUNK);
    }
    s->ring = calloc(WEIR_KSINK_WINDOW_MESSAGES, sizeof *s->ring);
    s->writers = calloc(nwriters ? nwriters : 1, sizeof *s->writers);
    if (!s->ring || !s->writers) {
        rc = errmsg_set(e, WEIR_ENOMEM, "out of memory");
        goto fail;
    }
    memcpy(s->writers, writers, nwriters * sizeof *writers);
    s->nwriters = nwriters;
    if ((rc = cursor_load(cfg->data_dir, p->name, cfg->node, &s->initial, e)) != 0)
        goto fail;
    if ((rc = producer_new(s, e)) != 0)
        goto fail;
    if (pthread_create(&s->thread, NULL, sink_main, s) != 0) {
        rc = errmsg_set(e, WEIR_ENOMEM, "pipeline %s: cannot start the sink thread",
                        p->name);
        goto fail;
    }
    s->started = 1;
    *out = s;
    return 0;
fail:
    kafka_sink_stop(s, 0);
    return rc;
}

void kafka_sink_stop(struct kafka_sink *s, int64_t wait_ns)
{
    if (!s)
        return;
    if (s->started) {
        s->stop_wait_ns = wait_ns;
        atomic_store(&s->stop, 1);
        pthread_join(s->thread, NULL);
    }
    if (s->rk)
        rd_kafka_destroy(s->rk);
    for (size_t i = 0; i < s->nsegs; i++)
        tseg_free(s->segs[i]);
    free(s->segs);
    free(s->ring);
    free(s->writers);
    cursor_release(&s->initial);
    buf_release(&s->rbuf);
    json_doc_release(&s->doc);
    pthread_mutex_destroy(&s->log_mu);
    free(s);
}

void kafka_sink_counts(const struct kafka_sink *s, struct kafka_sink_counts *o)
{
    memset(o, 0, sizeof *o);
    if (!s)
        return;
    o->produced = CNT_GET(s, produced);
    o->delivered = CNT_GET(s, delivered);
    o->failed = CNT_GET(s, failed);
    o->retried = CNT_GET(s, retried);
    o->bytes = CNT_GET(s, bytes);
    o->lag = CNT_GET(s, lag);
}

/* ---- the model output ---------------------------------------------------- */

struct fileprod {
    uint64_t delivered, failed;
    rd_kafka_resp_err_t first_err;
};

static void on_file_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    struct fileprod *f = opaque;
    if (m->err) {
        if (!f->failed++)
            f->first_err = m->err;
    } else {
        f->delivered++;
    }
}

static void on_file_log(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
    /* A model run reports the outcome itself; the details are for debug. */
    log_debug("kafka output: %s", buf);
}

int kafka_produce_file(const struct config_kafka_sink *k, const char *path,
                       const char *const *hdrs, int64_t wait_ns, uint64_t *delivered,
                       struct weir_errmsg *e)
{
    struct fileprod f = {0};
    struct json_doc doc;
    char err[512], keybuf[KEY_MAX];
    char *line = NULL;
    size_t cap = 0;
    uint64_t produced = 0;
    int rc = 0;
    rd_kafka_t *rk = NULL;
    FILE *in = NULL;
    int64_t deadline = wtime_mono_ns() + wait_ns;

    *delivered = 0;
    json_doc_init(&doc, 0);
    rd_kafka_conf_t *conf = producer_conf(k, e);
    if (!conf)
        return WEIR_ECONFIG;
    rd_kafka_conf_set_opaque(conf, &f);
    rd_kafka_conf_set_dr_msg_cb(conf, on_file_delivery);
    rd_kafka_conf_set_log_cb(conf, on_file_log);
    if (!(rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof err))) {
        rd_kafka_conf_destroy(conf);
        rc = errmsg_set(e, WEIR_ECONFIG, "kafka: %s", err);
        goto out;
    }
    if (!(in = fopen(path, "re"))) {
        rc = errmsg_set(e, weir_from_errno(errno), "%s: %s", path, strerror(errno));
        goto out;
    }
    ssize_t n;
    while ((n = getline(&line, &cap, in)) >= 0) {
        while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
            n--;
        if (n == 0)
            continue;
        if ((size_t)n > WEIR_SINK_MAX_ROW) {
            rc = errmsg_set(e, WEIR_ELIMIT, "a result row is longer than %u bytes",
                            WEIR_SINK_MAX_ROW);
            goto out;
        }
        const char *key;
        size_t klen;
        record_key(&doc, k->key, line, (size_t)n, keybuf, sizeof keybuf, &key, &klen);
        for (;;) {
            rd_kafka_headers_t *h = headers_of(hdrs);
            rd_kafka_resp_err_t pe = rd_kafka_producev(
                rk, RD_KAFKA_V_TOPIC(k->topic), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                RD_KAFKA_V_VALUE(line, (size_t)n), RD_KAFKA_V_KEY((void *)key, klen),
                RD_KAFKA_V_HEADERS(h), RD_KAFKA_V_END);
            if (pe == RD_KAFKA_RESP_ERR_NO_ERROR)
                break;
            rd_kafka_headers_destroy(h);
            if (pe != RD_KAFKA_RESP_ERR__QUEUE_FULL || wtime_mono_ns() >= deadline) {
                rc = errmsg_set(e, WEIR_EIO, "kafka %s: produce: %s", k->topic,
                                rd_kafka_err2str(pe));
                goto out;
            }
            rd_kafka_poll(rk, 50);
        }
        produced++;
        rd_kafka_poll(rk, 0);
    }
    if (ferror(in)) {
        rc = errmsg_set(e, WEIR_EIO, "%s: read error", path);
        goto out;
    }
    while (f.delivered + f.failed < produced && wtime_mono_ns() < deadline)
        rd_kafka_poll(rk, 50);
    if (f.failed)
        rc = errmsg_set(e, WEIR_EIO, "kafka %s: %" PRIu64 " of %" PRIu64 " rows not "
                        "delivered: %s", k->topic, f.failed, produced,
                        rd_kafka_err2str(f.first_err));
    else if (f.delivered < produced)
        rc = errmsg_set(e, WEIR_ETIMEDOUT, "kafka %s: %" PRIu64 " of %" PRIu64 " rows "
                        "not confirmed in time", k->topic, produced - f.delivered,
                        produced);
out:
    if (rk) {
        rd_kafka_purge(rk, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT |
                               RD_KAFKA_PURGE_F_NON_BLOCKING);
        rd_kafka_poll(rk, 0);
        rd_kafka_destroy(rk);
    }
    if (in)
        fclose(in);
    free(line);
    json_doc_release(&doc);
    *delivered = f.delivered;
    return rc;
}
