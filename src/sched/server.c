/*
 * server.c - `weir serve`: workers, sources, landers, signals, metrics;
 * see server.h.
 *
 * Threads: the main thread runs a small loop for signals (signalfd) and
 * the HTTP endpoints; each worker thread runs its own loop with one source
 * and one lander per pipeline. The main thread only talks to workers by
 * posting functions to their loops (loop_post), and reads their counters,
 * which are relaxed atomics, so the record path takes no lock.
 */
#include "sched/server.h"
#include "core/buf.h"
#include "core/limits.h"
#include "core/log.h"
#include "core/version.h"
#include "core/wtime.h"
#include "net/conn.h"
#include "net/listen.h"
#include "net/loop.h"
#include "net/tls.h"
#include "obs/http.h"
#include "obs/metrics.h"
#include "schema/schema.h"
#include "sinks/kafka_out.h"
#include "sources/kafka.h"
#include "sources/transform.h"
#include "sources/tcp.h"
#include "sched/scheduler.h"
#include "store/compact.h"
#include "store/lake.h"
#include "store/land.h"
#include "store/quarantine.h"
#include "store/recover.h"

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <unistd.h>

#define TICK_MS 10
#define CLOSE_RETRY_MS 200

struct server;
struct worker;

struct wpipe {
    struct worker *w;
    const struct config_pipeline *p;
    struct lander *land;
    struct source *src;          /* NULL: no source on this worker */
    int paused;
};

struct worker {
    struct server *s;
    unsigned id;
    struct loop *loop;
    pthread_t thread;
    int started;
    struct wpipe *pipes;
    int sources_left;            /* sources still draining */
    int closing;
    int64_t close_deadline;      /* mono ns */
    int close_warned;            /* the first failed close was logged */
    int rc;                      /* 0, or EXIT code 3 */
};

struct server {
    const struct weir_config *cfg;
    struct schema **schemas;
    struct transform_prep **preps; /* by pipeline: its compiled transform */
    struct tls_ctx **tls;        /* per pipeline, NULL: plain TCP */
    char **source_text;
    int lock_fd;
    unsigned nworkers;
    struct worker *workers;
    struct conn_limit limit;
    struct loop *main;
    struct http_server *http;
    int sigfd;
    int64_t started_ns;
    atomic_int draining;
    unsigned workers_exited;
    struct compactor *compactor; /* compacts closed hours, applies retention */
    struct scheduler *sched;     /* runs models when their inputs are ready */
    int64_t last_closed;         /* start of the last partition seen closed */
    uint64_t last_sealed;        /* raw segments sealed, over all landers */
    struct kafka_sink **sinks;   /* per pipeline; NULL: no sink */
};

/* ---- worker ------------------------------------------------------------- */

static int64_t worker_tick(struct loop *l, uint64_t id, void *data)
{
    struct worker *w = data;
    int64_t now = wtime_now_ns(), mono = wtime_mono_ns();
    for (size_t i = 0; i < w->s->cfg->npipelines; i++) {
        struct wpipe *wp = &w->pipes[i];
        land_tick(wp->land, now, mono);
        int pressure = land_pressure(wp->land);
        if (!wp->src)
            continue;
        if (pressure) {
            wp->src->ops->pause(wp->src);
            if (!wp->paused)
                log_debug("%s: worker %u: writing fell behind, not reading",
                          wp->p->name, w->id);
            wp->paused = 1;
        } else {
            /* Always, not only when this tick paused it: the source also
             * pauses itself the moment a record crosses the high-water
             * mark, and the land_tick above may have cleared that before
             * this tick ever saw the pressure. Resuming only what the tick
             * had paused left such a source paused for good. */
            wp->src->ops->resume(wp->src);
            wp->paused = 0;
        }
    }
    return TICK_MS;
}

static int64_t worker_close(struct loop *l, uint64_t id, void *data)
{
    struct worker *w = data;
    int failed = 0;
    int64_t now = wtime_mono_ns();
    for (size_t i = 0; i < w->s->cfg->npipelines; i++) {
        int rc = land_close(w->pipes[i].land);
        if (rc) {
            failed = 1;
            /* Once: a retry every 200 ms would flood the log. */
            if (!w->close_warned)
                log_warn("%s: worker %u: cannot finish writing yet: %s; retrying "
                         "for up to %lld s", w->pipes[i].p->name, w->id,
                         weir_strerror(rc),
                         (long long)((w->close_deadline - now) / WTIME_NS_PER_S));
        }
    }
    w->close_warned |= failed;
    if (failed && now < w->close_deadline)
        return CLOSE_RETRY_MS;
    if (failed) {
        for (size_t i = 0; i < w->s->cfg->npipelines; i++) {
            size_t lost = land_unwritten(w->pipes[i].land);
            if (lost)
                log_error("%s: worker %u: gave up writing at shutdown: %zu bytes "
                          "of records taken were not written (the disk still "
                          "fails); they are lost", w->pipes[i].p->name, w->id, lost);
        }
        w->rc = 3;
    } else if (w->close_warned) {
        log_info("worker %u: everything written after all", w->id);
    }
    loop_stop(l);
    return LOOP_TIMER_DONE;
}

static void worker_source_done(struct loop *l, void *data)
{
    struct worker *w = data;
    if (--w->sources_left > 0)
        return;
    /* Give a full disk the drain time again to come back. */
    w->close_deadline = wtime_mono_ns() + w->s->cfg->drain_timeout_ns + 10 * WTIME_NS_PER_S;
    loop_timer_add(l, 0, worker_close, w);
}

static void worker_shutdown(struct loop *l, void *data)
{
    struct worker *w = data;
    if (w->closing)
        return;
    w->closing = 1;
    int64_t drain_ms = w->s->cfg->drain_timeout_ns / WTIME_NS_PER_MS;
    w->sources_left = 1; /* held until every source was asked */
    for (size_t i = 0; i < w->s->cfg->npipelines; i++) {
        struct wpipe *wp = &w->pipes[i];
        if (!wp->src)
            continue;
        w->sources_left++;
        wp->src->ops->shutdown(wp->src, drain_ms, worker_source_done, w);
    }
    worker_source_done(l, w);
}

static void main_worker_exited(struct loop *l, void *data)
{
    struct server *s = data;
    if (++s->workers_exited == s->nworkers)
        loop_stop(l);
}

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    loop_run(w->loop);
    loop_post(w->s->main, main_worker_exited, w->s);
    return NULL;
}

/*
 * The main loop's clock for the batch side: when an hour closes (its end
 * plus grace has passed) the compactor is told at once, and the scheduler
 * (models) right after; both also look by themselves every minute or so,
 * which covers day partitions and late data.
 */
#define CLOSE_CHECK_MS 1000

static int64_t main_hour_check(struct loop *l, uint64_t id, void *data)
{
    struct server *s = data;
    int64_t closed = wtime_now_ns() - s->cfg->grace_ns;
    closed -= ((closed % WTIME_NS_PER_HOUR) + WTIME_NS_PER_HOUR) % WTIME_NS_PER_HOUR;
    /* Segments of closed hours are sealed by the workers a little after
     * the hour (or after late records stop): that is when compaction can
     * take them. */
    uint64_t sealed = 0;
    for (unsigned k = 0; k < s->nworkers; k++)
        for (size_t i = 0; i < s->cfg->npipelines; i++) {
            struct land_counts lc;
            land_counts(s->workers[k].pipes[i].land, &lc);
            sealed += lc.sealed;
        }
    if (closed != s->last_closed || sealed != s->last_sealed) {
        s->last_closed = closed;
        s->last_sealed = sealed;
        compactor_kick(s->compactor);
        sched_kick(s->sched);
    }
    return CLOSE_CHECK_MS;
}

/* ---- snapshot and HTTP -------------------------------------------------- */

/* A Kafka pipeline's consumer counters and lag (one consumer per pipeline;
 * a lag array that cannot be made is left out, the counters are not). */
static void kafka_part(struct pipeline_snapshot *ps, const struct source *src)
{
    struct kafka_lag none;
    ps->kafka = 1;
    kafka_source_counts(src, &ps->ks);
    size_t n = kafka_source_lag(src, &none, 0);
    free(ps->lag);
    ps->lag = n ? calloc(n, sizeof *ps->lag) : NULL;
    ps->nlag = ps->lag ? kafka_source_lag(src, ps->lag, n) : 0;
    if (ps->nlag > n)
        ps->nlag = n; /* a rebalance in between: the first n */
    kafka_source_transform_counts(src, &ps->xs);
}

static int snapshot(struct server *s, struct server_snapshot *snap)
{
    const struct weir_config *cfg = s->cfg;
    memset(snap, 0, sizeof *snap);
    snap->node = cfg->node;
    snap->version = WEIR_VERSION;
    snap->started_ns = s->started_ns;
    snap->now_ns = wtime_now_ns();
    snap->draining = atomic_load(&s->draining);
    snap->npipelines = cfg->npipelines;
    snap->pipelines = calloc(cfg->npipelines, sizeof *snap->pipelines);
    if (!snap->pipelines)
        return WEIR_ENOMEM;
    for (size_t i = 0; i < cfg->npipelines; i++) {
        struct pipeline_snapshot *ps = &snap->pipelines[i];
        ps->name = cfg->pipelines[i].name;
        ps->source = s->source_text[i];
        for (unsigned k = 0; k < s->nworkers; k++) {
            struct wpipe *wp = &s->workers[k].pipes[i];
            struct land_counts lc;
            if (wp->land) {
                land_counts(wp->land, &lc);
                land_counts_add(&ps->land, &lc);
            }
            if (wp->src) {
                struct source_stats ss = {0};
                wp->src->ops->stats(wp->src, &ss);
                ps->conns_active += ss.conns_active;
                ps->conns_accepted += ss.conns_accepted;
                ps->conns_refused += ss.conns_refused;
                ps->bytes_read += ss.bytes_read;
                ps->backpressure_ns += ss.paused_ns;
                ps->tls_handshakes += ss.tls_handshakes;
                ps->tls_failures += ss.tls_failures;
                ps->tls_timeouts += ss.tls_timeouts;
                ps->idle_closed += ss.idle_closed;
                if (cfg->pipelines[i].source.kind == CONFIG_SOURCE_KAFKA)
                    kafka_part(ps, wp->src);
                if (cfg->pipelines[i].transform)
                    ps->has_transform = 1;
            }
        }
        if (s->sinks && s->sinks[i]) {
            ps->has_sink = 1;
            kafka_sink_counts(s->sinks[i], &ps->sink);
        }
    }
    return 0;
}

/* The Kafka consumers' table of the status page (none: nothing). */
static int kafka_page(const struct server_snapshot *snap, struct buf *out)
{
    int rc = 0, head = 0;
    for (size_t i = 0; i < snap->npipelines && rc == 0; i++) {
        const struct pipeline_snapshot *p = &snap->pipelines[i];
        if (!p->kafka)
            continue;
        if (!head++)
            rc = buf_puts(out, "<h2>Kafka</h2><table><tr><th>pipeline<th>messages"
                               "<th>bytes<th>batches<th>duplicates skipped<th>commits"
                               "<th>commit errors<th>partitions<th>lag</tr>");
        long long lag = 0;
        for (size_t j = 0; j < p->nlag; j++)
            lag += p->lag[j].lag > 0 ? p->lag[j].lag : 0;
        rc = rc ? rc : buf_appendf(out, "<tr><td>%s<td>%llu<td>%llu<td>%llu<td>%llu"
                                        "<td>%llu<td>%llu<td>%llu<td>%lld</tr>",
                                   p->name, (unsigned long long)p->ks.messages,
                                   (unsigned long long)p->ks.bytes,
                                   (unsigned long long)p->ks.batches,
                                   (unsigned long long)p->ks.duplicates_skipped,
                                   (unsigned long long)p->ks.commits,
                                   (unsigned long long)p->ks.commit_errors,
                                   (unsigned long long)p->ks.assigned, lag);
    }
    return rc || !head ? rc : buf_puts(out, "</table>\n");
}

static int status_page(const struct server_snapshot *snap, struct buf *out)
{
    int rc = buf_appendf(out,
        "<!doctype html><meta charset=utf-8><title>weir %s</title>"
        "<style>body{font:14px sans-serif;margin:2em}td,th{padding:.2em .8em;"
        "text-align:right}th:first-child,td:first-child{text-align:left}</style>"
        "<h1>weir on %s</h1><p>version %s. <a href=/metrics>metrics</a> "
        "<a href=/status>status JSON</a></p><table><tr><th>pipeline<th>source"
        "<th>records<th>valid<th>quarantined<th>late<th>connections"
        "<th>pending bytes<th>backpressure s</tr>",
        snap->node, snap->node, snap->version);
    for (size_t i = 0; i < snap->npipelines && rc == 0; i++) {
        const struct pipeline_snapshot *p = &snap->pipelines[i];
        rc = buf_appendf(out, "<tr><td>%s<td>%s<td>%llu<td>%llu<td>%llu<td>%llu<td>%llu"
                              "<td>%llu<td>%.1f</tr>",
                         p->name, p->source, (unsigned long long)p->land.records,
                         (unsigned long long)p->land.valid,
                         (unsigned long long)p->land.rejected_total,
                         (unsigned long long)p->land.late,
                         (unsigned long long)p->conns_active,
                         (unsigned long long)p->land.pending,
                         (double)p->backpressure_ns / 1e9);
    }
    rc = rc ? rc : buf_puts(out, "</table>\n");
    return rc ? rc : kafka_page(snap, out);
}

static int http_handler(void *ctx, const char *path, struct buf *body,
                        const char **ctype)
{
    struct server *s = ctx;
    if (strcmp(path, "/health") == 0) {
        int draining = atomic_load(&s->draining);
        buf_puts(body, draining ? "draining\n" : "ok\n");
        return draining ? 503 : 200;
    }
    int is_metrics = strcmp(path, "/metrics") == 0;
    int is_status = strcmp(path, "/status") == 0;
    int is_page = strcmp(path, "/") == 0;
    if (!is_metrics && !is_status && !is_page) {
        buf_puts(body, "not found: try /metrics, /health, /status or /\n");
        return 404;
    }
    struct server_snapshot snap;
    if (snapshot(s, &snap) != 0)
        return 500;
    int rc;
    if (is_metrics) {
        *ctype = "text/plain; version=0.0.4; charset=utf-8";
        rc = metrics_prometheus(&snap, body);
    } else if (is_status) {
        *ctype = "application/json";
        rc = metrics_status_json(&snap, body);
    } else {
        *ctype = "text/html; charset=utf-8";
        rc = status_page(&snap, body);
    }
    metrics_snapshot_release(&snap);
    free(snap.pipelines);
    return rc ? 500 : 200;
}

static void on_signal(struct loop *l, int fd, void *data, int mask)
{
    struct server *s = data;
    struct signalfd_siginfo si;
    while (read(fd, &si, sizeof si) == (ssize_t)sizeof si) {
        if (si.ssi_signo == SIGHUP) {
            /* Its default would end the process like a crash when the
             * terminal of a foreground `weir serve` goes away. */
            log_warn("SIGHUP ignored: weir does not reload its config; "
                     "restart it (SIGTERM, then start) to apply a change");
            continue;
        }
        if (atomic_exchange(&s->draining, 1)) {
            log_info("shutdown already in progress (drain_timeout %lld ms)",
                     (long long)(s->cfg->drain_timeout_ns / WTIME_NS_PER_MS));
            continue;
        }
        log_info("%s: stopping: no new connections, draining connected senders",
                 strsignal((int)si.ssi_signo));
        for (unsigned k = 0; k < s->nworkers; k++)
            loop_post(s->workers[k].loop, worker_shutdown, &s->workers[k]);
    }
}

/* ---- start-up ----------------------------------------------------------- */

/* Put "what: " in front of e's message. (errmsg_set(e, .., e->text) would
 * format the message over itself.) */
static int error_prefix(struct weir_errmsg *e, int code, const char *what)
{
    char was[sizeof e->text];
    snprintf(was, sizeof was, "%s", e->text);
    return errmsg_set(e, code, "%s: %s", what, was);
}

static int load_schemas(struct server *s, struct weir_errmsg *e)
{
    const struct weir_config *cfg = s->cfg;
    for (size_t i = 0; i < cfg->npipelines; i++) {
        const struct config_pipeline *p = &cfg->pipelines[i];
        /* Loaded before anything listens: a bad file stops the start. */
        if (p->source.kind == CONFIG_SOURCE_TCP && p->source.tls.cert) {
            char what[CONFIG_NAME_MAX + 32];
            snprintf(what, sizeof what, "pipeline %s: source.tls", p->name);
            int trc = tls_ctx_new_server(p->source.tls.cert, p->source.tls.key,
                                         p->source.tls.ca, what, &s->tls[i], e);
            if (trc)
                return trc;
        }
        /* The same schema compaction and queries type the lake from. */
        if (!(s->schemas[i] = lake_load_schema(cfg, p, e)))
            return e->code ? e->code : WEIR_ESCHEMA;
        /* The lake's columns refuse a schema that clashes with them (a
         * Kafka pipeline's metadata names): at start, not at compaction. */
        struct lake_table *t = NULL;
        int rc = lake_table_new(cfg, p, s->schemas[i], &t, e);
        lake_table_free(t);
        if (rc)
            return rc;
        /* Before the derived dataset's schema is loaded (it comes after
         * every configured pipeline): the transform writes it. */
        if (p->transform && (rc = transform_prepare(cfg, p, s->schemas[i], &s->preps[i], e)))
            return rc;
    }
    return 0;
}

static int recover_all(struct server *s, struct weir_errmsg *e)
{
    const struct weir_config *cfg = s->cfg;
    for (size_t i = 0; i < cfg->npipelines; i++) {
        const struct config_pipeline *p = &cfg->pipelines[i];
        /* Kafka offsets first: cut back what no checkpoint acknowledged
         * (whole records that Kafka delivers again, not torn ones). */
        int krc = kafka_recover(cfg, p, e);
        if (krc)
            return krc;
        struct seg_config sc = {
            .data_dir = cfg->data_dir, .pipeline = p->name, .kind = "quarantine",
            .node = cfg->node, .thread = 0, .grain = PART_HOUR,
            .sync = SEG_SYNC_ALWAYS,
        };
        struct quar_writer *q = NULL;
        int rc = quar_writer_new(&sc, &q, e);
        if (rc)
            return rc;
        struct recover_stats st = {0};
        rc = recover_pipeline(cfg->data_dir, p->name, cfg->node,
                              recover_torn_to_quarantine, q, &st, e);
        int rc2 = seg_close_all(quar_seg(q));
        quar_writer_free(q);
        if (rc || rc2)
            return rc ? rc : errmsg_set(e, rc2, "%s: recovery: %s", p->name,
                                        weir_strerror(rc2));
        if (st.sealed || st.torn)
            log_info("%s: recovered after an unclean stop: %lu segments sealed, "
                     "%lu torn records (%llu bytes) moved to quarantine",
                     p->name, st.sealed, st.torn, (unsigned long long)st.torn_bytes);
    }
    return 0;
}

static int start_workers(struct server *s, struct weir_errmsg *e)
{
    const struct weir_config *cfg = s->cfg;
    size_t np = cfg->npipelines;
    int rc = 0;
    s->workers = calloc(s->nworkers, sizeof *s->workers);
    if (!s->workers)
        return errmsg_set(e, WEIR_ENOMEM, "out of memory");
    for (unsigned k = 0; k < s->nworkers; k++) {
        struct worker *w = &s->workers[k];
        w->s = s;
        w->id = k;
        w->pipes = calloc(np, sizeof *w->pipes);
        if (!w->pipes)
            return errmsg_set(e, WEIR_ENOMEM, "out of memory");
        if (!(w->loop = loop_new(e)))
            return e->code ? e->code : WEIR_ENOMEM;
        for (size_t i = 0; i < np; i++) {
            w->pipes[i].w = w;
            w->pipes[i].p = &cfg->pipelines[i];
            if ((rc = land_new(cfg, &cfg->pipelines[i], s->schemas[i], k,
                               &w->pipes[i].land, e)) != 0)
                return rc;
        }
    }
    int *fds = calloc(s->nworkers, sizeof *fds);
    if (!fds)
        return errmsg_set(e, WEIR_ENOMEM, "out of memory");
    for (size_t i = 0; i < np && rc == 0; i++) {
        const struct config_pipeline *p = &cfg->pipelines[i];
        char text[300];
        config_format_addr(&p->source.tcp, text, sizeof text);
        if (p->source.kind == CONFIG_SOURCE_KAFKA) {
            /* One consumer per pipeline, on one worker (sources/kafka.h). */
            unsigned k = (unsigned)(i % s->nworkers);
            struct wpipe *wp = &s->workers[k].pipes[i];
            rc = kafka_source_new(s->workers[k].loop, cfg, p, wp->land, k, &wp->src, e);
            snprintf(text, sizeof text, "kafka %s group %s", p->source.kafka.topics[0],
                     p->source.kafka.group);
            s->source_text[i] = strdup(text);
            if (rc == 0 && p->transform) {
                /* The transform lands in D's lander on the same worker. */
                const struct config_pipeline *d = config_pipeline(cfg, p->transform_name);
                size_t j = (size_t)(d - cfg->pipelines);
                struct transform_stream *ts = NULL;
                rc = transform_stream_new(cfg, s->preps[i], wp->land,
                                          s->workers[k].pipes[j].land, k, &ts, e);
                s->preps[i] = NULL;
                if (rc == 0) {
                    kafka_source_set_transform(wp->src, ts);
                    log_info("%s: transform %s -> %s", p->name, p->transform, d->name);
                }
            }
            if (rc == 0)
                log_info("%s: reading Kafka %s (%zu topic%s) in group %s on worker %u",
                         p->name, p->source.kafka.brokers, p->source.kafka.ntopics,
                         p->source.kafka.ntopics == 1 ? "" : "s", p->source.kafka.group, k);
            continue;
        }
        if (p->source.kind == CONFIG_SOURCE_DERIVED) {
            snprintf(text, sizeof text, "transform of %s", p->derived_from);
            s->source_text[i] = strdup(text);
            continue;
        }
        struct net_addr a, bound;
        if ((rc = net_addr_parse(&a, text, e)) != 0)
            break;
        if ((rc = listen_open_group(&a, (int)s->nworkers, 0, fds, &bound, e)) != 0) {
            char what[CONFIG_NAME_MAX + 16];
            snprintf(what, sizeof what, "pipeline %s", p->name);
            error_prefix(e, rc, what);
            break;
        }
        char src[400];
        snprintf(src, sizeof src, "%s %s", s->tls[i] ? "tls" : "tcp", bound.text);
        s->source_text[i] = strdup(src);
        log_info("%s: listening on %s%s (%u workers)", p->name, bound.text,
                 s->tls[i] ? (p->source.tls.ca ? " with TLS, client certificates required"
                                               : " with TLS") : "",
                 s->nworkers);
        for (unsigned k = 0; k < s->nworkers; k++) {
            struct worker *w = &s->workers[k];
            int fd = fds[k];
            fds[k] = -1;
            if (rc == 0)
                rc = tcp_source_new(w->loop, cfg, p, fd, w->pipes[i].land, &s->limit,
                                    s->tls[i], &w->pipes[i].src, e);
            else
                close(fd);
        }
    }
    free(fds);
    if (rc)
        return rc;
    for (unsigned k = 0; k < s->nworkers; k++) {
        struct worker *w = &s->workers[k];
        loop_timer_add(w->loop, TICK_MS, worker_tick, w);
        if (pthread_create(&w->thread, NULL, worker_main, w) != 0)
            return errmsg_set(e, WEIR_ENOMEM, "cannot start worker thread %u", k);
        w->started = 1;
    }
    return 0;
}

/* A Kafka sink per pipeline that has one, reading what the workers'
 * writers make durable (sinks/kafka_out.h). */
static int start_sinks(struct server *s, struct weir_errmsg *e)
{
    const struct weir_config *cfg = s->cfg;
    struct seg_writer **w = calloc(s->nworkers, sizeof *w);
    int rc = 0;
    if (!w)
        return errmsg_set(e, WEIR_ENOMEM, "out of memory");
    for (size_t i = 0; i < cfg->npipelines && rc == 0; i++) {
        const struct config_pipeline *p = &cfg->pipelines[i];
        if (!p->sink_kafka)
            continue;
        for (unsigned k = 0; k < s->nworkers; k++)
            w[k] = land_raw_writer(s->workers[k].pipes[i].land);
        rc = kafka_sink_start(cfg, p, w, s->nworkers, &s->sinks[i], e);
        if (rc == 0)
            log_info("%s: producing landed records to Kafka %s topic %s", p->name,
                     p->sink_kafka->brokers, p->sink_kafka->topic);
    }
    free(w);
    return rc;
}

static void stop_sinks(struct server *s)
{
    for (size_t i = 0; s->sinks && i < s->cfg->npipelines; i++) {
        kafka_sink_stop(s->sinks[i], (int64_t)WEIR_KSINK_STOP_WAIT_S * WTIME_NS_PER_S);
        s->sinks[i] = NULL;
    }
}

static int start_http(struct server *s, struct weir_errmsg *e)
{
    const struct weir_config *cfg = s->cfg;
    if (!cfg->metrics_enabled)
        return 0;
    char text[300];
    config_format_addr(&cfg->metrics, text, sizeof text);
    struct net_addr a, bound;
    int fd, rc;
    /* A group of one: it checks that nobody listens there yet, which a
     * lone SO_REUSEPORT bind would not (two servers would then share the
     * port and answer for each other). */
    if ((rc = net_addr_parse(&a, text, e)) != 0 ||
        (rc = listen_open_group(&a, 1, 64, &fd, &bound, e)) != 0)
        return error_prefix(e, rc, "metrics");
    if ((rc = http_server_new(s->main, fd, http_handler, s, &s->http, e)) != 0)
        return rc;
    log_info("metrics, health and status on http://%s/", bound.text);
    return 0;
}

static void log_final(struct server *s)
{
    struct server_snapshot snap;
    if (snapshot(s, &snap) != 0)
        return;
    for (size_t i = 0; i < snap.npipelines; i++) {
        const struct pipeline_snapshot *p = &snap.pipelines[i];
        log_info("%s: %llu records (%llu bytes): %llu valid, %llu quarantined "
                 "(%llu invalid, %llu too large, %llu truncated, %llu bad time), "
                 "%llu late, %llu connections, %.1f s of backpressure",
                 p->name, (unsigned long long)p->land.records,
                 (unsigned long long)p->land.bytes, (unsigned long long)p->land.valid,
                 (unsigned long long)p->land.rejected_total,
                 (unsigned long long)p->land.rejected[QUAR_INVALID],
                 (unsigned long long)p->land.rejected[QUAR_TOO_LARGE],
                 (unsigned long long)p->land.rejected[QUAR_TRUNCATED],
                 (unsigned long long)(p->land.rejected[QUAR_TIME_MISSING] +
                                      p->land.rejected[QUAR_TIME_UNPARSABLE] +
                                      p->land.rejected[QUAR_TIME_OUT_OF_RANGE]),
                 (unsigned long long)p->land.late,
                 (unsigned long long)p->conns_accepted,
                 (double)p->backpressure_ns / 1e9);
    }
    metrics_snapshot_release(&snap);
    free(snap.pipelines);
}

static void server_release(struct server *s)
{
    size_t np = s->cfg->npipelines;
    http_server_free(s->http);
    if (s->workers) {
        for (unsigned k = 0; k < s->nworkers; k++) {
            struct worker *w = &s->workers[k];
            if (w->pipes) {
                for (size_t i = 0; i < np; i++) {
                    if (w->pipes[i].src)
                        w->pipes[i].src->ops->free(w->pipes[i].src);
                    land_free(w->pipes[i].land);
                }
            }
            free(w->pipes);
            loop_free(w->loop);
        }
        free(s->workers);
    }
    if (s->schemas)
        for (size_t i = 0; i < np; i++)
            schema_free(s->schemas[i]);
    free(s->schemas);
    if (s->preps)
        for (size_t i = 0; i < np; i++)
            transform_prep_free(s->preps[i]);
    free(s->preps);
    /* After the workers: their connections hold references to these. */
    if (s->tls)
        for (size_t i = 0; i < np; i++)
            tls_ctx_free(s->tls[i]);
    free(s->tls);
    if (s->source_text)
        for (size_t i = 0; i < np; i++)
            free(s->source_text[i]);
    free(s->source_text);
    free(s->sinks);
    loop_free(s->main);
    if (s->sigfd >= 0)
        close(s->sigfd);
    if (s->lock_fd >= 0)
        close(s->lock_fd);
}

int server_run(const struct weir_config *cfg)
{
    struct server s = {.cfg = cfg, .lock_fd = -1, .sigfd = -1};
    struct weir_errmsg e = {0};
    int exit_code = 0, rc;
    s.started_ns = wtime_now_ns();
    s.nworkers = cfg->workers > 0 ? (unsigned)cfg->workers : 1;
    conn_limit_init(&s.limit, (unsigned)cfg->limits.max_connections);

    /* Signals go to the signalfd only: block them before any thread starts
     * so every worker inherits the mask. */
    sigset_t mask;
    sigemptyset(&mask);
    sigaddset(&mask, SIGTERM);
    sigaddset(&mask, SIGINT);
    sigaddset(&mask, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &mask, NULL);
    signal(SIGPIPE, SIG_IGN);

    s.schemas = calloc(cfg->npipelines, sizeof *s.schemas);
    s.source_text = calloc(cfg->npipelines, sizeof *s.source_text);
    s.preps = calloc(cfg->npipelines, sizeof *s.preps);
    s.tls = calloc(cfg->npipelines, sizeof *s.tls);
    s.sinks = calloc(cfg->npipelines, sizeof *s.sinks);
    if (!s.schemas || !s.source_text || !s.preps || !s.tls || !s.sinks) {
        errmsg_set(&e, WEIR_ENOMEM, "out of memory");
        exit_code = 3;
        goto done;
    }
    if ((rc = load_schemas(&s, &e)) != 0) {
        exit_code = 2;
        goto done;
    }
    if ((rc = recover_lock_node(cfg->data_dir, cfg->node, &s.lock_fd, &e)) != 0 ||
        (rc = recover_all(&s, &e)) != 0) {
        exit_code = rc == WEIR_ECONFLICT ? 2 : 3;
        goto done;
    }
    if (!(s.main = loop_new(&e))) {
        exit_code = 3;
        goto done;
    }
    s.sigfd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
    if (s.sigfd < 0 || loop_fd_add(s.main, s.sigfd, LOOP_READABLE, on_signal, &s) != 0) {
        errmsg_set(&e, WEIR_EIO, "cannot watch signals");
        exit_code = 3;
        goto done;
    }
    if ((rc = compactor_start(cfg, s.schemas, &s.compactor, &e)) != 0 ||
        (rc = sched_start(cfg, 0, &s.sched, &e)) != 0) {
        exit_code = 3;
        goto done;
    }
    if ((rc = start_http(&s, &e)) != 0 || (rc = start_workers(&s, &e)) != 0 ||
        (rc = start_sinks(&s, &e)) != 0) {
        exit_code = rc == WEIR_ENOMEM ? 3 : 2;
        /* Workers already running must be stopped before we free them. */
        for (unsigned k = 0; s.workers && k < s.nworkers; k++)
            if (s.workers[k].started)
                loop_post(s.workers[k].loop, worker_shutdown, &s.workers[k]);
        for (unsigned k = 0; s.workers && k < s.nworkers; k++)
            if (s.workers[k].started)
                pthread_join(s.workers[k].thread, NULL);
        goto done;
    }
    log_info("weir %s serving %zu pipeline%s, data in %s (node %s)", WEIR_VERSION,
             cfg->npipelines, cfg->npipelines == 1 ? "" : "s", cfg->data_dir, cfg->node);
    loop_timer_add(s.main, CLOSE_CHECK_MS, main_hour_check, &s);
    loop_run(s.main);
    for (unsigned k = 0; k < s.nworkers; k++) {
        pthread_join(s.workers[k].thread, NULL);
        if (s.workers[k].rc)
            exit_code = 3;
    }
    /* After the workers: everything landed is sealed and durable, so the
     * sinks can deliver all of it before they stop. */
    stop_sinks(&s);
    /* The batch side stops after the workers: a compaction or model run in
     * progress is interrupted and left to the next start (both are
     * idempotent, docs/lake.md and docs/models.md). */
    sched_stop(s.sched);
    s.sched = NULL;
    compactor_stop(s.compactor);
    s.compactor = NULL;
    log_final(&s);
    log_info("stopped%s", exit_code ? " with unwritten records" : " cleanly");
done:
    if (exit_code && e.text[0])
        log_error("%s", e.text);
    stop_sinks(&s);
    sched_stop(s.sched);
    compactor_stop(s.compactor);
    server_release(&s);
    return exit_code;
}
