/*
 * tcp.c - the TCP source; see tcp.h and docs/ingest.md.
 */
#include "sources/tcp.h"
#include "core/log.h"
#include "core/wtime.h"
#include "net/framing.h"
#include "net/listen.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct tcp_source {
    struct source base;
    const struct config_pipeline *p;
    struct lander *lander;
    struct conn_set *cs;
    _Atomic uint64_t refused;    /* by the allow-list */
};

static void on_open(struct conn *c)
{
    struct tcp_source *t = conn_set_user(c->set);
    if (t->p->source.nallow == 0)
        return;
    struct net_addr a;
    if (net_addr_parse(&a, c->peer, NULL) != 0 ||
        !config_allow_peer(&t->p->source, (const struct sockaddr *)&a.sa)) {
        log_warn("%s: connection from %s refused: not in the allow list",
                 t->p->name, c->peer);
        atomic_fetch_add_explicit(&t->refused, 1, memory_order_relaxed);
        conn_close(c);
    }
}

static void on_record(struct conn *c, const struct frame *rec)
{
    struct tcp_source *t = conn_set_user(c->set);
    land_record(t->lander, rec->data, rec->len, rec->flags, c->peer, wtime_now_ns());
    if (land_pressure(t->lander) && !conn_set_is_paused(t->cs))
        conn_set_pause_all(t->cs);
}

/* fsync: always: what this turn read is durable before anything more is
 * read on this worker (land_read_end). */
static void on_read_end(struct conn *c)
{
    struct tcp_source *t = conn_set_user(c->set);
    land_read_end(t->lander);
    if (land_pressure(t->lander) && !conn_set_is_paused(t->cs))
        conn_set_pause_all(t->cs);
}

static const struct conn_ops tcp_conn_ops = {
    .on_open = on_open,
    .on_record = on_record,
    .on_read_end = on_read_end,
    .on_close = NULL,
};

static void tcp_pause(struct source *s)
{
    struct tcp_source *t = (struct tcp_source *)s;
    if (!conn_set_is_paused(t->cs))
        conn_set_pause_all(t->cs);
}

static void tcp_resume(struct source *s)
{
    struct tcp_source *t = (struct tcp_source *)s;
    if (conn_set_is_paused(t->cs))
        conn_set_resume_all(t->cs);
}

static void tcp_shutdown(struct source *s, int64_t drain_ms, loop_call_fn *done,
                         void *data)
{
    struct tcp_source *t = (struct tcp_source *)s;
    conn_set_shutdown(t->cs, drain_ms, done, data);
}

static void tcp_stats(const struct source *s, struct source_stats *out)
{
    const struct tcp_source *t = (const struct tcp_source *)s;
    struct conn_stats cs;
    conn_set_stats(t->cs, &cs);
    out->conns_active = cs.active;
    out->conns_accepted = cs.accepted;
    out->conns_refused = cs.refused +
                         atomic_load_explicit(&t->refused, memory_order_relaxed);
    out->bytes_read = cs.bytes;
    out->paused_ns = cs.paused_ns;
    out->tls_handshakes = cs.tls_handshakes;
    out->tls_failures = cs.tls_failures;
    out->tls_timeouts = cs.tls_timeouts;
    out->idle_closed = cs.idle_closed;
}

static void tcp_free(struct source *s)
{
    struct tcp_source *t = (struct tcp_source *)s;
    if (!t)
        return;
    conn_set_free(t->cs);
    free(t);
}

static const struct source_ops tcp_ops = {
    .name = "tcp",
    .pause = tcp_pause,
    .resume = tcp_resume,
    .shutdown = tcp_shutdown,
    .stats = tcp_stats,
    .free = tcp_free,
};

int tcp_source_new(struct loop *l, const struct weir_config *cfg,
                   const struct config_pipeline *p, int listen_fd,
                   struct lander *lander, struct conn_limit *limit,
                   struct tls_ctx *tls, struct source **out, struct weir_errmsg *e)
{
    struct tcp_source *t = calloc(1, sizeof *t);
    if (!t) {
        close(listen_fd);
        return errmsg_set(e, WEIR_ENOMEM, "out of memory");
    }
    t->base.ops = &tcp_ops;
    t->p = p;
    t->lander = lander;
    struct conn_config cc = {
        .ops = &tcp_conn_ops,
        .user = t,
        .max_record = p->max_record ? p->max_record : cfg->limits.max_record,
        .limit = limit,
        .name = p->name,
        .tls = tls,
        .handshake_ms = p->source.tls.handshake_timeout_ns / WTIME_NS_PER_MS,
        .idle_ms = p->source.idle_timeout_ns == CONFIG_OFF
                       ? 0 : p->source.idle_timeout_ns / WTIME_NS_PER_MS,
    };
    t->cs = conn_set_new(l, &cc, e);
    if (!t->cs) {
        close(listen_fd);
        free(t);
        return e ? e->code : WEIR_ENOMEM;
    }
    int rc = conn_set_listen(t->cs, listen_fd);
    if (rc) {
        tcp_free(&t->base);
        return errmsg_set(e, rc, "%s: cannot listen: %s", p->name, weir_strerror(rc));
    }
    *out = &t->base;
    return 0;
}
