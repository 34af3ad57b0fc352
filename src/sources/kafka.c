/*
 * kafka.c - the Kafka source; see kafka.h and docs/kafka.md. The only file
 * of weir that includes rdkafka.h.
 *
 * States of a source, and what moves it on:
 *
 *   reading   consume from the queue (fd event, timer), land each message;
 *             the batch ends at its bounds -> finish_batch
 *   syncing   land_sync or the checkpoint failed (disk): nothing is read,
 *             the timer retries until it succeeds
 *   paused    the lander pushes back (server.c calls pause): partitions
 *             paused in librdkafka; the queue is still served now and then
 *             so rebalances and the poll interval are honoured
 *   closing   shutdown: the batch finished, consumer closing through the
 *             queue; messages still delivered are dropped unread (their
 *             offsets were not checkpointed, so they will be read again)
 *   poisoned  partitions were lost while a batch was landed, or a batch
 *             could not be made durable when they were revoked: nothing
 *             is read or checkpointed any more and weir stops, so that the
 *             next start rolls the unacknowledged records back
 *             (kafka_recover) instead of leaving them twice in the lake
 */
#include "sources/kafka.h"
#include "core/buf.h"
#include "core/limits.h"
#include "core/log.h"
#include "core/wtime.h"
#include "schema/json.h"
#include "schema/protobuf.h"
#include "store/lake.h"
#include "store/kmeta.h"
#include "store/offsets.h"
#include "sources/transform.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <librdkafka/rdkafka.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Messages taken from the queue per call, and the longest a turn of the
 * loop reads: a worker serving TCP connections too stays responsive. */
#define CHUNK 256
#define PUMP_NS (20 * WTIME_NS_PER_MS)

/* The source's timer: batch max_wait, retries, keep-alive polls. */
#define TICK_MS 5

/* While paused, serve the queue (rebalances, max.poll.interval.ms) this
 * often, taking at most a few messages. */
#define PAUSED_POLL_NS (2 * WTIME_NS_PER_S)
#define PAUSED_POLL_MSGS 16

/* Blocking calls made on the worker's loop during a rebalance, and to
 * wake librdkafka's fetcher (nudge_fetcher). */
#define LOOKUP_TIMEOUT_MS 10000
#define NUDGE_TIMEOUT_MS 100

/* librdkafka's prefetch, for all partitions together (they share the
 * consumer queue, and librdkafka counts the shared queue for each). A
 * queued message costs about 450 bytes (payload plus librdkafka's
 * bookkeeping), so the message count is what bounds memory for small
 * records. With nudge_fetcher a small queue is enough: reading a backlog
 * of 120-byte records on the mock cluster, 50,000 messages gave the best
 * speed (~1 s a million) in ~75 MB of RSS; 10,000 was 2.5x slower, and
 * without the nudge even 250,000 read 3x slower. source.kafka.options
 * changes both bounds (docs/kafka.md). */
#define PREFETCH_KBYTES "65536"
#define PREFETCH_MESSAGES "50000"

/* The same librdkafka complaint (a broker down) is logged at most this
 * often. */
#define LOG_REPEAT_NS (30 * WTIME_NS_PER_S)

/* Longest key shown in a record's peer, and the peer text's room: topic,
 * partition, offset, timestamp, the key in base64, "...". The peer is
 * built for every message (land_record wants it before it knows whether
 * the record is quarantined), so it is plain copies into a fixed array. */
#define PEER_KEY_MAX KMETA_PEER_KEY_MAX /* its format: store/kmeta.h */
#define PEER_MAX (OFFSETS_TOPIC_MAX + 80 + PEER_KEY_MAX * 4 / 3 + 16)

struct kpart {
    const char *topic;        /* the config's string */
    int32_t partition;
    int owned;
    int64_t next;             /* next offset to land; -1: take what comes */
    int64_t committed;        /* last next offset committed; -1: none */
    int64_t dnext;            /* transform: offsets below have their rows in
                                 the derived dataset already; -1: none */
    char prefix[OFFSETS_TOPIC_MAX + 16]; /* "topic/partition@" */
    size_t prefix_len;
    char meta[KMETA_PREFIX_MAX]; /* its records' first metadata members */
    size_t meta_len;
};

struct kstats {
    _Atomic uint64_t messages, bytes, batches, duplicates_skipped, commits,
        commit_errors, assigned, paused_ns;
};

struct kafka_source {
    struct source base;
    struct loop *loop;
    const struct weir_config *cfg;
    const struct config_pipeline *p;
    struct lander *lander;
    unsigned thread;
    size_t max_record;

    rd_kafka_t *rk;
    rd_kafka_queue_t *q;
    int pipe_rd, pipe_wr;
    uint64_t timer;
    int kick;                 /* a 0 ms timer is due: more is queued */
    int64_t ns_per_msg;       /* recent cost of a message, averaged */
    size_t prefetch_min;      /* queued.min.messages in effect */
    int queue_was_full;       /* the queue neared it since the last nudge */
    size_t nudge_next;        /* partition to nudge the fetcher through */

    struct kpart *parts;
    size_t nparts, capparts;
    struct offsets ck;        /* this (node, thread)'s checkpoint */
    struct transform_stream *xf; /* the pipeline's transform, or NULL */
    int xf_done;              /* the open batch went through it */
    int no_commit;            /* tests: never commit to Kafka */

    int batch_open;
    uint64_t batch_records, batch_bytes;
    int64_t batch_t0;         /* mono ns of its first record */
    int syncing;
    int paused;
    int64_t paused_since, last_paused_poll;
    int closing, close_started, closed, poisoned;
    int64_t close_deadline;
    loop_call_fn *done;
    void *done_data;

    struct json_doc doc;      /* checks payloads that hold newlines */
    struct buf scratch;
    struct protobuf *pb;      /* format protobuf: the message type, ... */
    struct protobuf_decoder *pbd;
    struct buf pbjson;        /* ... and the JSON of the payload */
    const struct kpart *cur_kp;       /* the message being landed */
    const rd_kafka_message_t *cur_m;
    struct quar_kafka origin;         /* meta_origin's, for the lander */
    char peer[PEER_MAX];

    /* Lag of the owned partitions, made on the loop, read by /metrics. */
    pthread_mutex_t lag_mu;
    struct kafka_lag *lag;
    size_t nlag, caplag;
    int64_t lag_ns;           /* mono ns of the last refresh */

    pthread_mutex_t log_mu;   /* librdkafka logs from its own threads */
    char last_log[256];
    int64_t last_log_ns;

    struct kstats st;
};

#define INC(k, f, n) atomic_fetch_add_explicit(&(k)->st.f, (n), memory_order_relaxed)
/* The same for the counters only handle() writes, on the loop's thread:
 * no locked add per message (store/land.c says why). */
#define BUMP(k, f, n)                                                              \
    atomic_store_explicit(&(k)->st.f,                                              \
                          atomic_load_explicit(&(k)->st.f, memory_order_relaxed) + (n), \
                          memory_order_relaxed)

static void pump(struct kafka_source *k);
static void poison(struct kafka_source *k, const char *why);

/* ---- partitions --------------------------------------------------------- */

static struct kpart *part_find(struct kafka_source *k, const char *topic, int32_t partition)
{
    for (size_t i = 0; i < k->nparts; i++)
        if (k->parts[i].partition == partition && strcmp(k->parts[i].topic, topic) == 0)
            return &k->parts[i];
    return NULL;
}

/* The config's own string for topic (messages only come from those). */
static const char *topic_of(struct kafka_source *k, const char *topic)
{
    const struct config_kafka_source *ks = &k->p->source.kafka;
    for (size_t i = 0; i < ks->ntopics; i++)
        if (strcmp(ks->topics[i], topic) == 0)
            return ks->topics[i];
    return NULL;
}

static struct kpart *part_get(struct kafka_source *k, const char *topic, int32_t partition)
{
    struct kpart *kp = part_find(k, topic, partition);
    if (kp)
        return kp;
    const char *t = topic_of(k, topic);
    if (!t || partition < 0)
        return NULL;
    if (k->nparts == k->capparts) {
        size_t cap = k->capparts ? k->capparts * 2 : 16;
        struct kpart *v = realloc(k->parts, cap * sizeof *v);
        if (!v)
            return NULL;
        k->parts = v;
        k->capparts = cap;
    }
    kp = &k->parts[k->nparts++];
    memset(kp, 0, sizeof *kp);
    kp->topic = t;
    kp->partition = partition;
    kp->next = -1;
    kp->committed = -1;
    kp->dnext = -1;
    int n = snprintf(kp->prefix, sizeof kp->prefix, "%s/%" PRId32 "@", t, partition);
    kp->prefix_len = n > 0 && (size_t)n < sizeof kp->prefix ? (size_t)n : 0;
    kp->meta_len = kmeta_prefix(kp->meta, sizeof kp->meta, t, partition);
    assert(kp->meta_len > 0); /* a config topic is at most 249 characters */
    return kp;
}

/* ---- logging from librdkafka -------------------------------------------- */

static void log_limited(struct kafka_source *k, enum log_level lvl, const char *msg)
{
    int64_t now = wtime_mono_ns();
    pthread_mutex_lock(&k->log_mu);
    int repeat = strncmp(k->last_log, msg, sizeof k->last_log - 1) == 0 &&
                 now - k->last_log_ns < LOG_REPEAT_NS;
    if (!repeat) {
        snprintf(k->last_log, sizeof k->last_log, "%s", msg);
        k->last_log_ns = now;
    }
    pthread_mutex_unlock(&k->log_mu);
    if (!repeat)
        log_msg(lvl, "%s: kafka: %s", k->p->name, msg);
}

static void on_log(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
    struct kafka_source *k = rd_kafka_opaque(rk);
    if (!k)
        return;
    log_limited(k, level <= 4 ? LOG_WARN : LOG_DEBUG, buf);
}

static void on_error(rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
    struct kafka_source *k = opaque;
    char msg[512];
    char fatal[256];
    if (err == RD_KAFKA_RESP_ERR__FATAL &&
        rd_kafka_fatal_error(rk, fatal, sizeof fatal) != RD_KAFKA_RESP_ERR_NO_ERROR) {
        /* The consumer cannot go on (fenced by a newer member with the
         * same group.instance.id, say): nothing it reads may be trusted
         * to be ours any more. */
        log_error("%s: kafka: fatal error: %s", k->p->name, fatal);
        poison(k, "the Kafka client hit a fatal error");
        return;
    }
    snprintf(msg, sizeof msg, "%s", reason);
    log_limited(k, LOG_WARN, msg);
}

static void on_commit(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                      rd_kafka_topic_partition_list_t *offsets, void *opaque)
{
    struct kafka_source *k = opaque;
    if (err == RD_KAFKA_RESP_ERR__NO_OFFSET)
        return;
    if (err) {
        INC(k, commit_errors, 1);
        log_debug("%s: kafka: offset commit failed: %s (harmless: the checkpoint "
                  "has the offsets)", k->p->name, rd_kafka_err2str(err));
    } else {
        INC(k, commits, 1);
    }
}

/* ---- poison ------------------------------------------------------------- */

static void poison(struct kafka_source *k, const char *why)
{
    if (k->poisoned)
        return;
    k->poisoned = 1;
    log_error("%s: kafka: %s; stopping weir: when it starts again the records "
              "landed since the last checkpoint are rolled back and read again, "
              "so none is in the lake twice", k->p->name, why);
    kill(getpid(), SIGTERM);
}

/* ---- batches ------------------------------------------------------------ */

static int checkpoint(struct kafka_source *k)
{
    int rc = offsets_capture(&k->ck, land_raw_writer(k->lander),
                             land_quarantine_writer(k->lander));
    for (size_t i = 0; i < k->nparts && rc == 0; i++)
        if (k->parts[i].next >= 0)
            rc = offsets_set(&k->ck, k->parts[i].topic, k->parts[i].partition,
                             k->parts[i].next);
    if (rc)
        return rc;
    struct weir_errmsg e = {0};
    /* The derived dataset's first (transform.h): at most one batch ahead. */
    if (k->xf)
        rc = transform_stream_checkpoint(k->xf, &k->ck, &e);
#ifdef WEIR_TESTING
    /* The crash the ordering is for: D's checkpoint has the batch, P's not. */
    const char *crash = getenv("WEIR_CRASH_AT");
    if (rc == 0 && k->xf && crash && strcmp(crash, "kafka_after_derived_checkpoint") == 0) {
        fprintf(stderr, "weir: WEIR_CRASH_AT=%s: stopping here\n", crash);
        _exit(99);
    }
#endif
    if (rc == 0)
        rc = offsets_write(k->cfg->data_dir, k->p->name, k->cfg->node, &k->ck, &e);
    if (rc && !k->syncing)
        log_warn("%s: kafka: %s; retrying, not reading meanwhile", k->p->name, e.text);
    return rc;
}

/* Commit the positions of owned partitions that moved; sync waits. */
static void commit(struct kafka_source *k, int sync)
{
    if (k->no_commit || k->closed)
        return;
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(8);
    for (size_t i = 0; i < k->nparts; i++) {
        struct kpart *kp = &k->parts[i];
        if (!kp->owned || kp->next < 0 || kp->next == kp->committed)
            continue;
        rd_kafka_topic_partition_list_add(l, kp->topic, kp->partition)->offset = kp->next;
        kp->committed = kp->next;
    }
    /* on_commit counts the result, of synchronous commits too. */
    if (l->cnt > 0)
        rd_kafka_commit(k->rk, l, !sync);
    rd_kafka_topic_partition_list_destroy(l);
}

/*
 * Make the open batch durable, checkpoint it, commit its offsets. 0 when
 * done (or no batch was open); the error otherwise, and the source stays
 * in the syncing state (no reading) until a later call succeeds.
 */
static int finish_batch(struct kafka_source *k, int sync_commit)
{
    if (k->poisoned)
        return WEIR_EIO;
    if (!k->batch_open)
        return 0;
    if (k->xf && !k->xf_done) {
        transform_stream_run(k->xf, wtime_now_ns());
        k->xf_done = 1;
    }
    int rc = land_sync(k->lander);
    if (rc == 0 && k->xf)
        rc = transform_stream_sync(k->xf);
    if (rc) {
        log_debug("%s: kafka: land_sync: %s", k->p->name, weir_strerror(rc));
        if (!k->syncing && rc != WEIR_EAGAIN)
            log_warn("%s: kafka: cannot make a batch durable: %s; not reading "
                     "until it is", k->p->name, weir_strerror(rc));
        k->syncing = 1;
        return rc;
    }
    if ((rc = checkpoint(k)) != 0) {
        k->syncing = 1;
        return rc;
    }
    if (k->syncing)
        log_info("%s: kafka: batch durable, reading again", k->p->name);
    log_debug("%s: kafka: batch of %" PRIu64 " records (%" PRIu64 " bytes) durable "
              "%.1f ms after its first record", k->p->name, k->batch_records,
              k->batch_bytes, (double)(wtime_mono_ns() - k->batch_t0) / 1e6);
    k->syncing = 0;
    k->batch_open = 0;
    k->xf_done = 0;
    k->batch_records = k->batch_bytes = 0;
    INC(k, batches, 1);
    commit(k, sync_commit);
    return 0;
}

/* ---- one message -------------------------------------------------------- */

static size_t put_u64(char *out, uint64_t v)
{
    char tmp[24];
    size_t n = 0;
    do {
        tmp[sizeof tmp - 1 - n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    memcpy(out, tmp + sizeof tmp - n, n);
    return n;
}

static int key_printable(const unsigned char *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i] < 0x21 || p[i] > 0x7e)
            return 0;
    return 1;
}

static size_t put_base64(char *out, const unsigned char *p, size_t n)
{
    static const char tab[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t o = 0;
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)p[i] << 16;
        if (i + 1 < n)
            v |= (uint32_t)p[i + 1] << 8;
        if (i + 2 < n)
            v |= p[i + 2];
        out[o++] = tab[(v >> 18) & 63];
        out[o++] = tab[(v >> 12) & 63];
        out[o++] = i + 1 < n ? tab[(v >> 6) & 63] : '=';
        out[o++] = i + 2 < n ? tab[v & 63] : '=';
    }
    return o;
}

/* "topic/partition@offset ts=MS key=K" into k->peer (NUL-terminated). */
static const char *peer_of(struct kafka_source *k, const struct kpart *kp,
                           const rd_kafka_message_t *m)
{
    char *o = k->peer;
    memcpy(o, kp->prefix, kp->prefix_len);
    o += kp->prefix_len;
    o += put_u64(o, (uint64_t)m->offset);
    rd_kafka_timestamp_type_t tt;
    int64_t ts = rd_kafka_message_timestamp(m, &tt);
    if (ts >= 0) {
        memcpy(o, " ts=", 4);
        o += 4;
        o += put_u64(o, (uint64_t)ts);
    }
    if (m->key && m->key_len > 0) {
        size_t n = m->key_len > PEER_KEY_MAX ? PEER_KEY_MAX : m->key_len;
        if (key_printable(m->key, n)) {
            memcpy(o, " key=", 5);
            memcpy(o + 5, m->key, n);
            o += 5 + n;
        } else {
            memcpy(o, " key_b64=", 9);
            o += 9;
            o += put_base64(o, m->key, n);
        }
        if (n < m->key_len) {
            memcpy(o, "...", 3);
            o += 3;
        }
    }
    *o = '\0';
    assert(o < k->peer + sizeof k->peer);
    return k->peer;
}

/*
 * The record to land for a payload. A raw CR or LF can only stand between
 * the tokens of a JSON text (strings may not hold them), so a payload with
 * them that scans as JSON means the same with spaces there, and a segment
 * line cannot hold a newline. A payload that is not JSON is landed as it
 * is: the validator refuses it, and quarantine keeps its exact bytes.
 */
static const char *record_of(struct kafka_source *k, const char *p, size_t *len)
{
    size_t n = *len;
    if (!memchr(p, '\n', n) && !memchr(p, '\r', n))
        return p;
    if (json_scan(&k->doc, p, n) != JSON_OK)
        return p;
    buf_reset(&k->scratch);
    if (buf_append(&k->scratch, p, n) != 0)
        return p;
    for (size_t i = 0; i < n; i++)
        if (k->scratch.data[i] == '\n' || k->scratch.data[i] == '\r')
            k->scratch.data[i] = ' ';
    return k->scratch.data;
}

/* land_meta's callbacks, for the message being landed (cur_kp, cur_m). */
static int meta_members(void *ctx, struct buf *b)
{
    struct kafka_source *k = ctx;
    const rd_kafka_message_t *m = k->cur_m;
    rd_kafka_timestamp_type_t tt;
    return kmeta_format(b, k->cur_kp->meta, k->cur_kp->meta_len, m->offset, m->key,
                        m->key_len, rd_kafka_message_timestamp(m, &tt));
}

static const char *meta_peer(void *ctx)
{
    struct kafka_source *k = ctx;
    return peer_of(k, k->cur_kp, k->cur_m);
}

/* The exact origin, for quarantine's "kafka" (requeue adds the members
 * from it: the peer cuts long keys). */
static const struct quar_kafka *meta_origin(void *ctx)
{
    struct kafka_source *k = ctx;
    const rd_kafka_message_t *m = k->cur_m;
    rd_kafka_timestamp_type_t tt;
    k->origin = (struct quar_kafka){
        .topic = k->cur_kp->topic,
        .partition = k->cur_kp->partition,
        .offset = m->offset,
        .key = m->key,
        .key_len = m->key_len,
        .timestamp_ms = rd_kafka_message_timestamp(m, &tt),
    };
    return &k->origin;
}

/*
 * A Protobuf payload: decoded into JSON and landed like a JSON payload; if
 * it does not decode, or its JSON is quarantined, quarantine keeps the
 * payload's exact bytes (base64) with the error.
 */
static void land_protobuf(struct kafka_source *k, const char *p, size_t n,
                          const struct land_meta *lm, int64_t now)
{
    struct weir_errmsg e;
    if (protobuf_decode(k->pbd, p, n, &k->pbjson, &e) != 0) {
        /* The error names the message type, the field and the byte; the
         * path is the root, as for a payload that is not JSON. requeue
         * (store/requeue.c) gives the same verdict. */
        land_reject_meta(k->lander, QUAR_INVALID, "", e.text, p, n, LAND_BINARY, NULL,
                         now, lm);
        return;
    }
    land_quarantine_bytes(k->lander, p, n);
    land_record_meta(k->lander, k->pbjson.data, k->pbjson.len, 0, NULL, now, lm);
}

static void handle(struct kafka_source *k, rd_kafka_message_t *m, int64_t now)
{
    if (m->err) {
        if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF)
            log_limited(k, LOG_WARN, rd_kafka_message_errstr(m));
        return;
    }
    if (k->closing || k->poisoned)
        return; /* not checkpointed: read again after the restart */
    struct kpart *kp = part_find(k, rd_kafka_topic_name(m->rkt), m->partition);
    if (!kp || !kp->owned)
        return; /* fetched before a revoke; the new owner reads it */
    if (kp->next >= 0 && m->offset < kp->next) {
        INC(k, duplicates_skipped, 1);
        return;
    }
    if (k->xf)
        transform_stream_tap(k->xf, kp->dnext < 0 || m->offset >= kp->dnext);
    size_t len = m->len;
    const char *payload = m->payload ? m->payload : "";
    /* Members, peer and origin are made only when the lander asks: peer
     * and origin only for a quarantined record, the members only for a
     * valid one. */
    k->cur_kp = kp;
    k->cur_m = m;
    struct land_meta lm = {meta_members, meta_peer, k, kmeta_names, meta_origin};
    /* The key is stored with the record: one longer than max_record makes
     * the message too large, as a payload past it does. */
    if (len > k->max_record || (m->key && m->key_len > k->max_record)) {
        if (len > k->max_record)
            len = k->max_record;
        land_record_meta(k->lander, payload, len,
                         LAND_TRUNCATED | (k->pb ? LAND_BINARY : 0), NULL, now, &lm);
    } else {
        if (k->pb) {
            land_protobuf(k, payload, len, &lm, now);
        } else {
            const char *rec = record_of(k, payload, &len);
            land_record_meta(k->lander, rec, len, 0, NULL, now, &lm);
        }
    }
    kp->next = m->offset + 1;
    if (!k->batch_open) {
        k->batch_open = 1;
        k->batch_t0 = wtime_mono_ns();
    }
    k->batch_records++;
    k->batch_bytes += m->len;
    BUMP(k, messages, 1);
    BUMP(k, bytes, m->len);
}

/* ---- rebalances --------------------------------------------------------- */

static int64_t low_watermark(struct kafka_source *k, const char *topic, int32_t partition)
{
    int64_t lo = -1, hi = -1;
    if (rd_kafka_query_watermark_offsets(k->rk, topic, partition, &lo, &hi,
                                         LOOKUP_TIMEOUT_MS) != RD_KAFKA_RESP_ERR_NO_ERROR)
        return -1;
    return lo;
}

static void on_assign(struct kafka_source *k, rd_kafka_topic_partition_list_t *parts)
{
    struct offsets max;
    struct weir_errmsg e = {0};
    offsets_init(&max, k->thread);
    int rc = offsets_load_max(k->cfg->data_dir, k->p->name, &max, &e);
    if (rc) {
        offsets_release(&max);
        log_error("%s: kafka: %s", k->p->name, e.text);
        poison(k, "cannot read the offsets checkpoints");
        rd_kafka_assign(k->rk, NULL);
        return;
    }
    if (k->xf && (rc = transform_stream_reload(k->xf, &e)) != 0) {
        offsets_release(&max);
        log_error("%s: kafka: %s", k->p->name, e.text);
        poison(k, "cannot read the transform's offsets checkpoints");
        rd_kafka_assign(k->rk, NULL);
        return;
    }
    rd_kafka_topic_partition_list_t *committed = rd_kafka_topic_partition_list_copy(parts);
    rd_kafka_resp_err_t cerr = rd_kafka_committed(k->rk, committed, LOOKUP_TIMEOUT_MS);
    if (cerr)
        log_warn("%s: kafka: cannot read the group's committed offsets (%s): starting "
                 "from the checkpoints", k->p->name, rd_kafka_err2str(cerr));
    for (int i = 0; i < parts->cnt; i++) {
        rd_kafka_topic_partition_t *tp = &parts->elems[i];
        struct kpart *kp = part_get(k, tp->topic, tp->partition);
        int64_t j = offsets_get(&max, tp->topic, tp->partition);
        int64_t c = -1;
        if (!cerr && committed->elems[i].err == RD_KAFKA_RESP_ERR_NO_ERROR &&
            committed->elems[i].offset >= 0)
            c = committed->elems[i].offset;
        int64_t start = j > c ? j : c;
        if (j > c) {
            int64_t from = c >= 0 ? c : low_watermark(k, tp->topic, tp->partition);
            if (from >= 0 && j > from)
                INC(k, duplicates_skipped, (uint64_t)(j - from));
            log_info("%s: kafka: %s/%" PRId32 " starts at offset %" PRId64
                     " from the checkpoint (committed: %" PRId64 "): %" PRId64
                     " records already in the lake are not read again",
                     k->p->name, tp->topic, tp->partition, j, c,
                     from >= 0 && j > from ? j - from : 0);
        } else {
            log_info("%s: kafka: %s/%" PRId32 " starts at %s%" PRId64, k->p->name,
                     tp->topic, tp->partition, c >= 0 ? "committed offset " : "",
                     c >= 0 ? c : (int64_t)0);
            if (c < 0)
                log_debug("(no committed offset: auto.offset.reset=earliest)");
        }
        tp->offset = start >= 0 ? start : RD_KAFKA_OFFSET_INVALID;
        if (kp) {
            kp->owned = 1;
            kp->next = start;
            kp->committed = c;
            kp->dnext = k->xf ? transform_stream_position(k->xf, tp->topic, tp->partition)
                              : -1;
            if (kp->dnext > start && start >= 0)
                log_info("%s: kafka: %s/%" PRId32 ": the transform's dataset has the rows "
                         "of offsets below %" PRId64 " already: %" PRId64 " records are "
                         "landed again but not transformed again", k->p->name, tp->topic,
                         tp->partition, kp->dnext, kp->dnext - start);
        }
    }
    rd_kafka_topic_partition_list_destroy(committed);
    offsets_release(&max);
    rd_kafka_resp_err_t err = rd_kafka_assign(k->rk, parts);
    if (err)
        log_warn("%s: kafka: assign: %s", k->p->name, rd_kafka_err2str(err));
    atomic_store_explicit(&k->st.assigned, (uint64_t)parts->cnt, memory_order_relaxed);
    if (k->paused)
        rd_kafka_pause_partitions(k->rk, parts);
}

static void on_revoke(struct kafka_source *k, rd_kafka_topic_partition_list_t *parts)
{
    if (k->batch_open && rd_kafka_assignment_lost(k->rk)) {
        poison(k, "partitions were lost to the group (this weir was too slow or "
                  "cut off) while a batch was being landed");
    } else if (k->batch_open) {
        /* Hand the partitions over at a checkpoint. A failing disk gets the
         * drain time to come back; the rebalance waits for us meanwhile. */
        int64_t until = wtime_mono_ns() + (k->closing ? 0 : k->cfg->drain_timeout_ns);
        while (finish_batch(k, 1) != 0 && wtime_mono_ns() < until) {
            usleep(50 * 1000);
            land_tick(k->lander, wtime_now_ns(), wtime_mono_ns());
        }
        if (k->batch_open)
            poison(k, "a batch could not be made durable before its partitions "
                      "were revoked");
    } else if (!rd_kafka_assignment_lost(k->rk)) {
        commit(k, 1);
    }
    for (int i = 0; i < parts->cnt; i++) {
        struct kpart *kp = part_find(k, parts->elems[i].topic, parts->elems[i].partition);
        if (kp)
            kp->owned = 0;
    }
    rd_kafka_assign(k->rk, NULL);
    atomic_store_explicit(&k->st.assigned, 0, memory_order_relaxed);
    log_info("%s: kafka: %d partition%s revoked", k->p->name, parts->cnt,
             parts->cnt == 1 ? "" : "s");
}

static void on_rebalance(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                         rd_kafka_topic_partition_list_t *parts, void *opaque)
{
    struct kafka_source *k = opaque;
    if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
        if (k->poisoned || k->closing)
            rd_kafka_assign(rk, NULL);
        else
            on_assign(k, parts);
    } else if (err == RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS) {
        on_revoke(k, parts);
    } else {
        log_warn("%s: kafka: rebalance failed: %s", k->p->name, rd_kafka_err2str(err));
        on_revoke(k, parts);
    }
}

/* ---- the loop ----------------------------------------------------------- */

/* Take at most max messages from the queue; returns how many came. */
static ssize_t take(struct kafka_source *k, size_t max)
{
    rd_kafka_message_t *msgs[CHUNK];
    if (max > CHUNK)
        max = CHUNK;
    /* No more than a loop turn's worth at the recent cost per message:
     * with fsync: always a record costs a millisecond or more. */
    if (k->ns_per_msg > 0 && (int64_t)max * k->ns_per_msg > PUMP_NS)
        max = (size_t)(PUMP_NS / k->ns_per_msg) + 1;
    int64_t t0 = wtime_mono_ns();
    if (rd_kafka_queue_length(k->q) >= k->prefetch_min / 2)
        k->queue_was_full = 1;
    ssize_t n = rd_kafka_consume_batch_queue(k->q, 0, msgs, max);
    /* One arrival time per chunk: they came in one fetch anyway. */
    int64_t now = n > 0 ? wtime_now_ns() : 0;
    for (ssize_t i = 0; i < n; i++) {
        handle(k, msgs[i], now);
        rd_kafka_message_destroy(msgs[i]);
    }
    if (n > 0) {
        int64_t per = (wtime_mono_ns() - t0) / n;
        k->ns_per_msg = k->ns_per_msg ? (3 * k->ns_per_msg + per) / 4 : per;
    }
    return n;
}

/*
 * librdkafka 2.0 stops fetching when the prefetch queue is full and looks
 * again only when its broker thread next wakes up, up to a second later
 * (2.1 added fetch.queue.backoff.ms for this). Catching up with a backlog,
 * weir empties a full queue in a fraction of that second and would then
 * wait for the rest of it. A request to the partition's leader wakes its
 * broker thread, which then sees the empty queue and fetches again: so
 * once the queue has been near full and is empty now, ask for one
 * partition's watermarks (a round trip on the loop, once per fill of the
 * queue, never while the stream is slower than weir).
 */
static void nudge_fetcher(struct kafka_source *k)
{
    if (!k->queue_was_full)
        return;
    k->queue_was_full = 0;
    for (size_t i = 0; i < k->nparts; i++) {
        struct kpart *kp = &k->parts[(k->nudge_next + i) % k->nparts];
        if (!kp->owned)
            continue;
        int64_t lo, hi;
        rd_kafka_query_watermark_offsets(k->rk, kp->topic, kp->partition, &lo, &hi,
                                         NUDGE_TIMEOUT_MS);
        k->nudge_next = (k->nudge_next + i + 1) % k->nparts;
        return;
    }
}

static int64_t kick_timer(struct loop *l, uint64_t id, void *data)
{
    struct kafka_source *k = data;
    k->kick = 0;
    pump(k);
    return LOOP_TIMER_DONE;
}

static void finish_close(struct kafka_source *k)
{
    if (k->closed)
        return;
    k->closed = 1;
    struct kafka_stats s;
    kafka_source_counts(&k->base, &s);
    log_info("%s: kafka: %" PRIu64 " records (%" PRIu64 " bytes) in %" PRIu64
             " durable batches, %" PRIu64 " duplicates skipped, %" PRIu64
             " offset commits (%" PRIu64 " failed)", k->p->name, s.messages, s.bytes,
             s.batches, s.duplicates_skipped, s.commits, s.commit_errors);
    if (k->xf) {
        struct transform_stats t;
        transform_stream_counts(k->xf, &t);
        log_info("%s: transform: %" PRIu64 " batches, %" PRIu64 " records in, %" PRIu64
                 " rows out, %" PRIu64 " batches failed, %" PRIu64 " records already "
                 "transformed before a restart", k->p->name, t.batches, t.records, t.rows,
                 t.errors, t.skipped);
    }
    if (k->done)
        k->done(k->loop, k->done_data);
}

/* Shutdown, driven by the timer: make the open batch durable (retrying
 * until the deadline), then close the consumer through the queue. */
static void pump_closing(struct kafka_source *k)
{
    int64_t now = wtime_mono_ns();
    if (!k->close_started) {
        if (k->batch_open && !k->poisoned && finish_batch(k, 1) != 0 &&
            now < k->close_deadline)
            return;
        if (k->batch_open)
            log_warn("%s: kafka: the last batch could not be made durable before the "
                     "drain timeout; it is read again after the restart", k->p->name);
        k->close_started = 1;
        rd_kafka_error_t *err = rd_kafka_consumer_close_queue(k->rk, k->q);
        if (err) {
            log_warn("%s: kafka: closing the consumer: %s", k->p->name,
                     rd_kafka_error_string(err));
            rd_kafka_error_destroy(err);
            finish_close(k);
            return;
        }
    }
    while (!rd_kafka_consumer_closed(k->rk) && take(k, CHUNK) > 0)
        ;
    if (rd_kafka_consumer_closed(k->rk)) {
        finish_close(k);
    } else if (now >= k->close_deadline) {
        log_warn("%s: kafka: the consumer did not close in time; the group notices "
                 "by session timeout", k->p->name);
        finish_close(k);
    }
}

static void pump(struct kafka_source *k)
{
    if (k->closed)
        return;
    if (k->closing) {
        pump_closing(k);
        return;
    }
    if (k->poisoned)
        return;
    if (k->syncing && finish_batch(k, 0) != 0)
        return;
    const struct config_batch *b = &k->p->source.kafka.batch;
    int64_t now = wtime_mono_ns();
    if (k->paused) {
        /* Rebalances and the poll interval still need the queue served. */
        if (now - k->last_paused_poll >= PAUSED_POLL_NS) {
            k->last_paused_poll = now;
            take(k, PAUSED_POLL_MSGS);
        }
    } else {
        /* At most one batch of messages and PUMP_NS per call, so that the
         * loop's other work (TCP connections, timers) keeps its turn even
         * when each record costs an fsync (fsync: always). */
        size_t budget = (size_t)b->max_records;
        int64_t until = now + PUMP_NS;
        while (budget > 0 && !k->syncing && !k->paused && !k->closing && !k->poisoned) {
            size_t room = (size_t)(b->max_records - k->batch_records);
            size_t want = room < budget ? room : budget;
            ssize_t n = want ? take(k, want) : 0;
            if (n < 0)
                break;
            budget -= (size_t)n < budget ? (size_t)n : budget;
            now = wtime_mono_ns();
            if (k->batch_records >= b->max_records || k->batch_bytes >= b->max_bytes ||
                (k->batch_open && (land_pressure(k->lander) ||
                                   now - k->batch_t0 >= b->max_wait_ns))) {
                if (finish_batch(k, 0) != 0)
                    return;
            } else if (n == 0) {
                nudge_fetcher(k);
                break; /* the queue is empty */
            }
            if (now >= until)
                break;
        }
        if ((budget == 0 || now >= until) && !k->kick) {
            k->kick = 1;
            loop_timer_add(k->loop, 0, kick_timer, k);
        }
    }
    if (k->batch_open && !k->syncing && wtime_mono_ns() - k->batch_t0 >= b->max_wait_ns)
        finish_batch(k, 0);
}

static void on_ready(struct loop *l, int fd, void *data, int mask)
{
    struct kafka_source *k = data;
    char drain[256];
    while (read(fd, drain, sizeof drain) > 0)
        ;
    if (k->paused)
        k->last_paused_poll = 0; /* a rebalance may wait in the queue */
    pump(k);
}

/* The lag of every owned partition, from the watermarks librdkafka keeps
 * (the high one is updated by each fetch response, also an empty one; the
 * low one only with statistics.interval.ms: used before the first
 * message of a partition, when it is where reading starts). */
static void refresh_lag(struct kafka_source *k)
{
    int64_t now = wtime_mono_ns();
    if (now - k->lag_ns < KAFKA_LAG_REFRESH_MS * WTIME_NS_PER_MS)
        return;
    k->lag_ns = now;
    pthread_mutex_lock(&k->lag_mu);
    if (k->caplag < k->nparts) {
        struct kafka_lag *v = realloc(k->lag, k->nparts * sizeof *v);
        if (v) {
            k->lag = v;
            k->caplag = k->nparts;
        }
    }
    k->nlag = 0;
    for (size_t i = 0; i < k->nparts && k->nlag < k->caplag; i++) {
        const struct kpart *kp = &k->parts[i];
        if (!kp->owned)
            continue;
        int64_t lo = -1, hi = -1;
        if (rd_kafka_get_watermark_offsets(k->rk, kp->topic, kp->partition, &lo, &hi) !=
            RD_KAFKA_RESP_ERR_NO_ERROR)
            lo = hi = -1;
        struct kafka_lag *g = &k->lag[k->nlag++];
        g->topic = kp->topic;
        g->partition = kp->partition;
        g->next = kp->next >= 0 ? kp->next : -1;
        g->high = hi >= 0 ? hi : -1;
        g->lag = -1;
        if (hi >= 0 && kp->next >= 0)
            g->lag = hi > kp->next ? hi - kp->next : 0;
        else if (hi >= 0 && lo >= 0)
            g->lag = hi - lo;
    }
    pthread_mutex_unlock(&k->lag_mu);
}

static int64_t on_tick(struct loop *l, uint64_t id, void *data)
{
    struct kafka_source *k = data;
    pump(k);
    if (!k->closed)
        refresh_lag(k);
    return k->closed ? LOOP_TIMER_DONE : TICK_MS;
}

/* ---- source ops --------------------------------------------------------- */

static void k_pause(struct source *s)
{
    struct kafka_source *k = (struct kafka_source *)s;
    if (k->paused)
        return;
    k->paused = 1;
    k->paused_since = wtime_mono_ns();
    k->last_paused_poll = k->paused_since;
    rd_kafka_topic_partition_list_t *a = NULL;
    if (!k->closing && rd_kafka_assignment(k->rk, &a) == RD_KAFKA_RESP_ERR_NO_ERROR && a) {
        rd_kafka_pause_partitions(k->rk, a);
    }
    if (a)
        rd_kafka_topic_partition_list_destroy(a);
}

static void k_resume(struct source *s)
{
    struct kafka_source *k = (struct kafka_source *)s;
    if (!k->paused)
        return;
    k->paused = 0;
    INC(k, paused_ns, (uint64_t)(wtime_mono_ns() - k->paused_since));
    rd_kafka_topic_partition_list_t *a = NULL;
    if (!k->closing && rd_kafka_assignment(k->rk, &a) == RD_KAFKA_RESP_ERR_NO_ERROR && a)
        rd_kafka_resume_partitions(k->rk, a);
    if (a)
        rd_kafka_topic_partition_list_destroy(a);
    if (!k->kick) {
        k->kick = 1;
        loop_timer_add(k->loop, 0, kick_timer, k);
    }
}

static void k_shutdown(struct source *s, int64_t drain_ms, loop_call_fn *done, void *data)
{
    struct kafka_source *k = (struct kafka_source *)s;
    if (k->closing)
        return;
    k->done = done;
    k->done_data = data;
    k->close_deadline = wtime_mono_ns() + drain_ms * WTIME_NS_PER_MS;
    k->closing = 1;
    pump(k);
}

static void k_stats(const struct source *s, struct source_stats *out)
{
    const struct kafka_source *k = (const struct kafka_source *)s;
    memset(out, 0, sizeof *out);
    out->bytes_read = atomic_load_explicit(&k->st.bytes, memory_order_relaxed);
    out->paused_ns = atomic_load_explicit(&k->st.paused_ns, memory_order_relaxed);
}

void kafka_source_counts(const struct source *s, struct kafka_stats *out)
{
    const struct kafka_source *k = (const struct kafka_source *)s;
#define LD(f) atomic_load_explicit(&k->st.f, memory_order_relaxed)
    out->messages = LD(messages);
    out->bytes = LD(bytes);
    out->batches = LD(batches);
    out->duplicates_skipped = LD(duplicates_skipped);
    out->commits = LD(commits);
    out->commit_errors = LD(commit_errors);
    out->assigned = LD(assigned);
#undef LD
}

size_t kafka_source_lag(const struct source *s, struct kafka_lag *out, size_t max)
{
    struct kafka_source *k = (struct kafka_source *)s;
    pthread_mutex_lock(&k->lag_mu);
    size_t n = k->nlag;
    if (max)
        memcpy(out, k->lag, (n < max ? n : max) * sizeof *out);
    pthread_mutex_unlock(&k->lag_mu);
    return n;
}

static void k_free(struct source *s)
{
    struct kafka_source *k = (struct kafka_source *)s;
    if (!k)
        return;
    if (k->timer)
        loop_timer_del(k->loop, k->timer);
    if (k->q) {
        rd_kafka_queue_io_event_enable(k->q, -1, NULL, 0);
        rd_kafka_queue_destroy(k->q);
    }
    if (k->rk) {
        if (rd_kafka_consumer_closed(k->rk))
            rd_kafka_destroy(k->rk);
        else
            rd_kafka_destroy_flags(k->rk, RD_KAFKA_DESTROY_F_NO_CONSUMER_CLOSE);
    }
    if (k->pipe_rd >= 0) {
        loop_fd_del(k->loop, k->pipe_rd, LOOP_READABLE);
        close(k->pipe_rd);
    }
    if (k->pipe_wr >= 0)
        close(k->pipe_wr);
    free(k->parts);
    transform_stream_free(k->xf);
    offsets_release(&k->ck);
    json_doc_release(&k->doc);
    buf_release(&k->scratch);
    protobuf_decoder_free(k->pbd);
    protobuf_free(k->pb);
    buf_release(&k->pbjson);
    pthread_mutex_destroy(&k->log_mu);
    pthread_mutex_destroy(&k->lag_mu);
    free(k->lag);
    free(k);
}

static const struct source_ops kafka_ops = {
    .name = "kafka",
    .pause = k_pause,
    .resume = k_resume,
    .shutdown = k_shutdown,
    .stats = k_stats,
    .free = k_free,
};

/* ---- start -------------------------------------------------------------- */

static int conf_set(rd_kafka_conf_t *conf, const char *key, const char *val,
                    struct weir_errmsg *e, const char *pipeline)
{
    char err[512];
    if (rd_kafka_conf_set(conf, key, val, err, sizeof err) != RD_KAFKA_CONF_OK)
        return errmsg_set(e, WEIR_ECONFIG, "pipeline %s: source.kafka.options.%s: %s",
                          pipeline, key, err);
    return 0;
}

/* The pipeline's source.kafka.options, over weir's defaults. */
static int apply_options(rd_kafka_conf_t *conf, const struct config_pipeline *p,
                         struct weir_errmsg *e)
{
    const struct config_kafka_source *ks = &p->source.kafka;
    for (size_t i = 0; i < ks->noptions; i++) {
        char key[256];
        const char *eq = strchr(ks->options[i], '=');
        if (!eq || (size_t)(eq - ks->options[i]) >= sizeof key)
            return errmsg_set(e, WEIR_ECONFIG, "pipeline %s: source.kafka.options: bad "
                              "option", p->name);
        memcpy(key, ks->options[i], (size_t)(eq - ks->options[i]));
        key[eq - ks->options[i]] = '\0';
        int rc = conf_set(conf, key, eq + 1, e, p->name);
        if (rc)
            return rc;
    }
    return 0;
}

static int make_consumer(struct kafka_source *k, struct weir_errmsg *e)
{
    const struct config_kafka_source *ks = &k->p->source.kafka;
    char client_id[300];
    snprintf(client_id, sizeof client_id, "weir-%s-%s", k->cfg->node, k->p->name);
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    int rc;
    if ((rc = conf_set(conf, "bootstrap.servers", ks->brokers, e, k->p->name)) ||
        (rc = conf_set(conf, "group.id", ks->group, e, k->p->name)) ||
        (rc = conf_set(conf, "client.id", client_id, e, k->p->name)) ||
        (rc = conf_set(conf, "enable.auto.commit", "false", e, k->p->name)) ||
        (rc = conf_set(conf, "enable.auto.offset.store", "false", e, k->p->name)) ||
        (rc = conf_set(conf, "auto.offset.reset", "earliest", e, k->p->name)) ||
        (rc = conf_set(conf, "enable.partition.eof", "false", e, k->p->name)) ||
        (rc = conf_set(conf, "queued.max.messages.kbytes", PREFETCH_KBYTES, e,
                       k->p->name)) ||
        (rc = conf_set(conf, "queued.min.messages", PREFETCH_MESSAGES, e, k->p->name)) ||
        (rc = apply_options(conf, k->p, e))) {
        rd_kafka_conf_destroy(conf);
        return rc;
    }
    rd_kafka_conf_set_opaque(conf, k);
    rd_kafka_conf_set_log_cb(conf, on_log);
    rd_kafka_conf_set_error_cb(conf, on_error);
    rd_kafka_conf_set_rebalance_cb(conf, on_rebalance);
    rd_kafka_conf_set_offset_commit_cb(conf, on_commit);
    char err[512];
    k->rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof err);
    if (!k->rk) {
        rd_kafka_conf_destroy(conf);
        return errmsg_set(e, WEIR_ECONFIG, "pipeline %s: kafka: %s", k->p->name, err);
    }
    char qmin[32];
    size_t qlen = sizeof qmin;
    k->prefetch_min = 100000;
    if (rd_kafka_conf_get(rd_kafka_conf(k->rk), "queued.min.messages", qmin, &qlen) ==
        RD_KAFKA_CONF_OK)
        k->prefetch_min = (size_t)strtoull(qmin, NULL, 10);
    rd_kafka_poll_set_consumer(k->rk);
    k->q = rd_kafka_queue_get_consumer(k->rk);
    int fds[2];
    if (!k->q || pipe2(fds, O_NONBLOCK | O_CLOEXEC) != 0)
        return errmsg_set(e, WEIR_EIO, "pipeline %s: kafka: cannot watch the consumer "
                          "queue", k->p->name);
    k->pipe_rd = fds[0];
    k->pipe_wr = fds[1];
    rd_kafka_queue_io_event_enable(k->q, k->pipe_wr, "1", 1);
    if ((rc = loop_fd_add(k->loop, k->pipe_rd, LOOP_READABLE, on_ready, k)) != 0)
        return errmsg_set(e, rc, "pipeline %s: kafka: %s", k->p->name, weir_strerror(rc));
    rd_kafka_topic_partition_list_t *topics =
        rd_kafka_topic_partition_list_new((int)ks->ntopics);
    for (size_t i = 0; i < ks->ntopics; i++)
        rd_kafka_topic_partition_list_add(topics, ks->topics[i], RD_KAFKA_PARTITION_UA);
    rd_kafka_resp_err_t kerr = rd_kafka_subscribe(k->rk, topics);
    rd_kafka_topic_partition_list_destroy(topics);
    if (kerr)
        return errmsg_set(e, WEIR_ECONFIG, "pipeline %s: kafka: subscribe: %s", k->p->name,
                          rd_kafka_err2str(kerr));
    return 0;
}

int kafka_source_new(struct loop *l, const struct weir_config *cfg,
                     const struct config_pipeline *p, struct lander *lander,
                     unsigned thread, struct source **out, struct weir_errmsg *e)
{
    struct kafka_source *k = calloc(1, sizeof *k);
    if (!k)
        return errmsg_set(e, WEIR_ENOMEM, "out of memory");
    k->base.ops = &kafka_ops;
    k->loop = l;
    k->cfg = cfg;
    k->p = p;
    k->lander = lander;
    k->thread = thread;
    k->pipe_rd = k->pipe_wr = -1;
    k->max_record = p->max_record ? p->max_record : cfg->limits.max_record;
    pthread_mutex_init(&k->log_mu, NULL);
    pthread_mutex_init(&k->lag_mu, NULL);
    json_doc_init(&k->doc, (uint32_t)cfg->limits.max_depth);
    buf_init(&k->scratch, k->max_record + 1);
    /* Decoded JSON longer than max_record is refused as the validator
     * would refuse it. */
    buf_init(&k->pbjson, k->max_record);
    offsets_init(&k->ck, thread);
#ifdef WEIR_TESTING
    k->no_commit = getenv("WEIR_TEST_KAFKA_NO_COMMIT") != NULL;
#endif
    /* The first checkpoint of this run: the positions of the last one and
     * the seq this run's writers start at, so that what recovery wrote
     * before now is never taken for a batch of this run. */
    int rc = lake_load_protobuf(cfg, p, &k->pb, e);
    if (rc)
        goto fail;
    if (k->pb && !(k->pbd = protobuf_decoder_new(k->pb))) {
        rc = errmsg_set(e, WEIR_ENOMEM, "out of memory");
        goto fail;
    }
    if (k->pb)
        log_info("%s: kafka: payloads are Protobuf %s messages (%s)%s", p->name,
                 protobuf_message_name(k->pb), p->source.kafka.descriptor_set,
                 p->schema ? "" : ", validated with the schema derived from it");
    rc = offsets_load(cfg->data_dir, p->name, cfg->node, thread, &k->ck, e);
    if (rc && rc != WEIR_ENOTFOUND)
        goto fail;
    if ((rc = land_sync(lander)) != 0) {
        errmsg_set(e, rc, "pipeline %s: kafka: %s", p->name, weir_strerror(rc));
        goto fail;
    }
    unsigned long retired = 0;
    k->ck.retired = 0;
    if ((rc = offsets_capture(&k->ck, land_raw_writer(lander),
                              land_quarantine_writer(lander))) != 0 ||
        (rc = offsets_write(cfg->data_dir, p->name, cfg->node, &k->ck, e)) != 0 ||
        (rc = offsets_retire(cfg->data_dir, p->name, cfg->node, (long)thread, &retired,
                             e)) != 0)
        goto fail;
    if (retired)
        log_info("%s: kafka: the consumer moved to worker %u; the checkpoints of "
                 "its other workers keep their positions", p->name, thread);
    if ((rc = make_consumer(k, e)) != 0)
        goto fail;
    if (!(k->timer = loop_timer_add(l, TICK_MS, on_tick, k))) {
        rc = errmsg_set(e, WEIR_ENOMEM, "out of memory");
        goto fail;
    }
    *out = &k->base;
    return 0;
fail:
    k_free(&k->base);
    return rc;
}

int kafka_recover(const struct weir_config *cfg, const struct config_pipeline *p,
                  struct weir_errmsg *e)
{
    if (p->source.kind == CONFIG_SOURCE_DERIVED)
        return 0; /* its pipeline's transform_recover cuts it back */
    if (p->source.kind != CONFIG_SOURCE_KAFKA) {
        /* Read Kafka once, reads something else now: its checkpoints must
         * never cut what the new source writes. */
        unsigned long n = 0;
        int rc = offsets_retire(cfg->data_dir, p->name, cfg->node, -1, &n, e);
        if (rc == 0 && n)
            log_info("%s: not a Kafka pipeline any more: %lu offset checkpoints of "
                     "node %s keep their positions, roll nothing back", p->name, n,
                     cfg->node);
        return rc;
    }
    struct offsets_rollback_stats st = {0};
    int rc = offsets_rollback(cfg->data_dir, p->name, cfg->node, &st, e);
    if (rc)
        return rc;
    if (st.files_cut || st.files_removed)
        log_info("%s: kafka: rolled back to the last checkpoint: %lu segments cut, "
                 "%lu removed, %" PRIu64 " bytes of records not yet acknowledged "
                 "(read again from Kafka)", p->name, st.files_cut, st.files_removed,
                 st.bytes_dropped);
    return transform_recover(cfg, p, e);
}

void kafka_source_set_transform(struct source *s, struct transform_stream *ts)
{
    struct kafka_source *k = (struct kafka_source *)s;
    transform_stream_free(k->xf);
    k->xf = ts;
}

void kafka_source_transform_counts(const struct source *s, struct transform_stats *out)
{
    const struct kafka_source *k = (const struct kafka_source *)s;
    memset(out, 0, sizeof *out);
    if (k->xf)
        transform_stream_counts(k->xf, out);
}
