/*
 * conn.c - accept, read, frame, deliver; see conn.h and docs/network.md.
 *
 * Reading: a readable connection gets up to READS_PER_TURN reads of one
 * chunk per loop iteration, then the loop moves on (level-triggered epoll
 * calls again if bytes remain). One chunk per turn would be fairest; a few
 * cut the epoll_wait calls per byte for a single fast sender while a
 * thousand slow ones still each get a turn within a few milliseconds.
 *
 * Counters that other threads read (struct conn_stats) are written only by
 * the loop thread, as relaxed atomic stores: no locked instruction per
 * record, and no data race for a reader on another thread.
 *
 * TLS: a read takes TLS records until the set's chunk is full or OpenSSL
 * wants more from the socket, so the framer sees the same 64 KiB pieces
 * as with plain TCP. OpenSSL reads ahead (fewer syscalls), so it may hold
 * bytes that epoll will never report; a connection that stops reading
 * with such bytes held (turns used up, paused then resumed) goes on the
 * set's redo list, read again from a 0 ms timer.
 */
#include "net/conn.h"
#include "core/limits.h"
#include "core/log.h"
#include "core/wtime.h"

#include <assert.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define READS_PER_TURN 4
/* Connections taken from one listener per iteration, so a connection storm
 * does not starve the connections already open. */
#define ACCEPTS_PER_TURN 64
/* After EMFILE/ENFILE/ENOMEM the listener rests this long: the pending
 * connection would otherwise make level-triggered epoll spin. */
#define ACCEPT_RETRY_MS 100
/* Refusals and accept errors are logged at most once per this interval. */
#define LOG_INTERVAL_MS 1000
/* TCP keepalive on accepted sockets: a sender that lost power without a
 * FIN is found dead after about IDLE + INTVL * CNT seconds (2 minutes),
 * and its slot under max_connections is given back. */
#define KEEPALIVE_IDLE_S 60
#define KEEPALIVE_INTVL_S 10
#define KEEPALIVE_CNT 6
/* The timeout sweep runs this often at most (a quarter of the shortest
 * timeout when that is shorter, but not under SWEEP_MIN_MS). */
#define SWEEP_MAX_MS 1000
#define SWEEP_MIN_MS 50

/* A message logged at most once per LOG_INTERVAL_MS, with a count. */
struct rlog {
    int64_t last_ms;
    uint64_t unlogged;
};

struct listener {
    struct conn_set *set;
    int fd;
    uint64_t retry_timer; /* resting after an accept error, or 0 */
};

struct stats {
    _Atomic uint64_t accepted, refused, accept_errors, closed, active;
    _Atomic uint64_t bytes, records, truncated, paused_ns;
    _Atomic uint64_t tls_handshakes, tls_failures, tls_timeouts, idle_closed;
    _Atomic int64_t paused_since; /* mono ns when pause_all began, or 0 */
};

struct conn_set {
    struct loop *loop;
    struct conn_config cfg;
    char *chunk;                 /* the read buffer, WEIR_READ_CHUNK bytes */
    struct listener **ls;
    size_t nls;
    struct conn *head;
    size_t count;
    int paused_all;
    int draining, freeing, done_called;
    uint64_t drain_timer, done_timer;
    loop_call_fn *done;
    void *done_data;
    int64_t refuse_log_ms, error_log_ms;
    uint64_t refused_unlogged, errors_unlogged;
    struct rlog tls_log, idle_log, tls_err_log;
    int64_t handshake_ms;
    uint64_t sweep_timer;        /* timeouts, or 0 when none apply */
    int64_t sweep_ms;
    struct conn *redo, *redo_run; /* TLS reads to redo; the batch being redone */
    uint64_t redo_timer;
    struct stats st;
};

/* Only the loop thread writes: a relaxed load and store, no lock prefix. */
#define STAT_ADD(s, field, n)                                                   \
    atomic_store_explicit(&(s)->st.field,                                       \
                          atomic_load_explicit(&(s)->st.field, memory_order_relaxed) + (n), \
                          memory_order_relaxed)

static const char *set_name(const struct conn_set *s)
{
    return s->cfg.name ? s->cfg.name : "tcp";
}

const char *conn_close_reason_name(enum conn_close_reason why)
{
    switch (why) {
    case CONN_EOF: return "eof";
    case CONN_ERROR: return "error";
    case CONN_SHUTDOWN: return "shutdown";
    case CONN_LOCAL: return "local";
    case CONN_NOMEM: return "nomem";
    case CONN_IDLE: return "idle";
    case CONN_TLS: return "tls";
    }
    return "unknown";
}

/* --- reading ------------------------------------------------------------ */

static void on_io(struct loop *l, int fd, void *data, int mask);
static void schedule_done(struct conn_set *s);
static void redo_add(struct conn *c);

/* 1 if msg should be logged now; counts it either way. */
static int rlog_due(struct conn_set *s, struct rlog *r)
{
    int64_t now = loop_now_ms(s->loop);
    r->unlogged++;
    if (r->last_ms != 0 && now - r->last_ms < LOG_INTERVAL_MS)
        return 0;
    r->last_ms = now;
    return 1;
}

/* Watch c's fd for what it needs now: nothing while closing or paused
 * (a handshake is never paused: it yields no records), else readable,
 * or writable when TLS must write before it can go on. */
static void update_io(struct conn *c)
{
    struct conn_set *s = c->set;
    int active = !c->closing && (c->handshaking || (!c->paused && !s->paused_all));
    int want_r = active && !c->want_write, want_w = active && c->want_write;
    int rc = 0;

    if (want_w != (int)c->writing) {
        if (want_w)
            rc = loop_fd_add(s->loop, c->fd, LOOP_WRITABLE, on_io, c);
        else
            loop_fd_del(s->loop, c->fd, LOOP_WRITABLE);
        if (rc == 0)
            c->writing = (unsigned)want_w;
    }
    if (rc == 0 && want_r != (int)c->reading) {
        if (want_r)
            rc = loop_fd_add(s->loop, c->fd, LOOP_READABLE, on_io, c);
        else
            loop_fd_del(s->loop, c->fd, LOOP_READABLE);
        if (rc == 0) {
            c->reading = (unsigned)want_r;
            if (want_r) {
                /* Time paused is not time idle. */
                c->active_ms = loop_now_ms(s->loop);
                if (c->tls && !c->handshaking && tls_pending(c->tls))
                    redo_add(c);
            }
        }
    }
    if (rc) {
        /* Only ENOMEM can get here; the connection stays paused and
         * its sender blocked, which loses nothing. */
        log_error("%s: %s: cannot resume reading: %s", set_name(s), c->peer,
                  weir_strerror(rc));
    }
}

static void deliver(struct conn *c, const struct frame *fr)
{
    struct conn_set *s = c->set;
    c->records++;
    STAT_ADD(s, records, 1);
    if (fr->flags & FRAME_TRUNCATED)
        STAT_ADD(s, truncated, 1);
    s->cfg.ops->on_record(c, fr);
}

static void list_remove(struct conn **head, struct conn *c)
{
    for (struct conn **p = head; *p; p = &(*p)->qnext)
        if (*p == c) {
            *p = c->qnext;
            return;
        }
}

/* End c for why: deliver an unfinished record, tell the owner, free. */
static void conn_end(struct conn *c, enum conn_close_reason why)
{
    struct conn_set *s = c->set;
    struct frame fr;

    c->closing = 1;
    if (c->queued) {
        list_remove(&s->redo, c);
        list_remove(&s->redo_run, c);
        c->queued = 0;
    }
    if (why != CONN_LOCAL && why != CONN_NOMEM && framer_finish(&c->fr, &fr) > 0) {
        deliver(c, &fr);
        if (s->cfg.ops->on_read_end)
            s->cfg.ops->on_read_end(c);
    }
    loop_fd_del(s->loop, c->fd, LOOP_READABLE | LOOP_WRITABLE);
    c->reading = 0;
    c->writing = 0;
    if (c->prev)
        c->prev->next = c->next;
    else
        s->head = c->next;
    if (c->next)
        c->next->prev = c->prev;
    s->count--;
    if (s->cfg.limit)
        atomic_fetch_sub(&s->cfg.limit->active, 1);
    STAT_ADD(s, closed, 1);
    STAT_ADD(s, active, (uint64_t)-1);
    log_debug("%s: %s: closed (%s) after %llu bytes, %llu records", set_name(s),
              c->peer, conn_close_reason_name(why), (unsigned long long)c->bytes,
              (unsigned long long)c->records);
    if (s->cfg.ops->on_close)
        s->cfg.ops->on_close(c, why);
    /* Our close_notify tells a TLS sender the end is deliberate; after an
     * error or a failed handshake there is nobody to tell. */
    if (c->tls && !c->handshaking && why != CONN_ERROR && why != CONN_TLS)
        tls_close(c->tls);
    close(c->fd);
    tls_free(c->tls);
    framer_release(&c->fr);
    free(c);
    if (s->draining && s->count == 0)
        schedule_done(s);
}

/*
 * Read what c has into the set's chunk: > 0 bytes (*drained set when the
 * socket seems empty), 0 at the end of the stream, WEIR_EAGAIN when
 * nothing is there, WEIR_EIO on an error (logged).
 */
static ssize_t read_some(struct conn *c, int *drained)
{
    struct conn_set *s = c->set;
    if (!c->tls) {
        for (;;) {
            ssize_t n = read(c->fd, s->chunk, WEIR_READ_CHUNK);
            if (n > 0) {
                *drained = (size_t)n < WEIR_READ_CHUNK;
                return n;
            }
            if (n == 0)
                return 0;
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                return WEIR_EAGAIN;
            log_debug("%s: %s: read: %s", set_name(s), c->peer, strerror(errno));
            return WEIR_EIO;
        }
    }
    /* TLS: TLS records (16 KiB at most) until the chunk is full. An end
     * met after some bytes is reported by the next call. */
    size_t len = 0;
    int end = 0;
    while (len < WEIR_READ_CHUNK) {
        int want = 0;
        ssize_t r = tls_read(c->tls, s->chunk + len, WEIR_READ_CHUNK - len, &want);
        if (r > 0) {
            len += (size_t)r;
            continue;
        }
        if (r == WEIR_EAGAIN) {
            c->want_write = want == LOOP_WRITABLE;
            *drained = 1;
        } else {
            end = r == 0 ? 1 : -1;
            if (end < 0 && rlog_due(s, &s->tls_err_log)) {
                log_info("%s: %s: TLS error after the handshake: %s (%llu such error(s) "
                         "since the last such message)", set_name(s), c->peer,
                         tls_error(c->tls), (unsigned long long)s->tls_err_log.unlogged);
                s->tls_err_log.unlogged = 0;
            }
        }
        break;
    }
    if (len > 0) {
        /* OpenSSL answers the same end again on the next call. */
        return (ssize_t)len;
    }
    return end == 0 ? WEIR_EAGAIN : end > 0 ? 0 : WEIR_EIO;
}

/* One turn of reading c (up to READS_PER_TURN chunks). */
static void read_turn(struct conn *c)
{
    struct conn_set *s = c->set;
    enum conn_close_reason end = CONN_LOCAL;
    int ending = 0, starved = 0, delivered = 0;

    c->in_read = 1;
    c->want_write = 0;
    for (int turn = 0; turn < READS_PER_TURN && !ending; turn++) {
        int drained = 0;
        ssize_t n = read_some(c, &drained);
        if (n > 0) {
            struct frame fr;
            int rc = 0;
            c->bytes += (uint64_t)n;
            c->active_ms = loop_now_ms(s->loop);
            STAT_ADD(s, bytes, (uint64_t)n);
            framer_feed(&c->fr, s->chunk, (size_t)n);
            while (!c->closing && (rc = framer_next(&c->fr, &fr)) > 0) {
                deliver(c, &fr);
                delivered = 1;
            }
            if (c->closing) {
                ending = 1;
            } else if (rc < 0) {
                log_error("%s: %s: out of memory for a record spanning reads",
                          set_name(s), c->peer);
                end = CONN_NOMEM, ending = 1;
            } else if (drained || !c->reading) {
                starved = drained;
                break; /* drained the socket, or paused by the owner */
            }
        } else if (n == 0) {
            end = CONN_EOF, ending = 1;
        } else if (n == WEIR_EAGAIN) {
            starved = 1;
            break;
        } else {
            end = CONN_ERROR, ending = 1;
        }
    }
    c->in_read = 0;
    if (delivered && s->cfg.ops->on_read_end)
        s->cfg.ops->on_read_end(c);
    if (ending) {
        conn_end(c, end);
        return;
    }
    if (c->tls) {
        update_io(c);
        /* OpenSSL asked for more from the socket: whatever it holds is an
         * incomplete record, and epoll will report the rest. Redoing then
         * would spin until the rest arrives. */
        if (c->reading && !starved && tls_pending(c->tls))
            redo_add(c);
    }
}

static void tls_failed(struct conn *c, const char *why)
{
    struct conn_set *s = c->set;
    STAT_ADD(s, tls_failures, 1);
    if (rlog_due(s, &s->tls_log)) {
        log_warn("%s: TLS handshake with %s failed: %s (%llu failed handshake(s) since "
                 "the last such message)", set_name(s), c->peer, why,
                 (unsigned long long)s->tls_log.unlogged);
        s->tls_log.unlogged = 0;
    }
}

/* Advance c's handshake; 0 if c lives on, -1 if it was ended. */
static int handshake_step(struct conn *c)
{
    struct conn_set *s = c->set;
    int want = 0;
    int rc = tls_handshake(c->tls, &want);
    if (rc == WEIR_EAGAIN) {
        c->want_write = want == LOOP_WRITABLE;
        update_io(c);
        return 0;
    }
    if (rc != 0) {
        tls_failed(c, tls_error(c->tls));
        conn_end(c, CONN_TLS);
        return -1;
    }
    c->handshaking = 0;
    c->want_write = 0;
    c->active_ms = loop_now_ms(s->loop);
    STAT_ADD(s, tls_handshakes, 1);
    char desc[96];
    log_debug("%s: %s: TLS established (%s)", set_name(s), c->peer,
              tls_describe(c->tls, desc, sizeof desc));
    update_io(c);
    return 0;
}

static void on_io(struct loop *l, int fd, void *data, int mask)
{
    struct conn *c = data;
    if (c->handshaking && (handshake_step(c) != 0 || c->handshaking))
        return;
    /* Right after the handshake the sender's first records may already
     * be in OpenSSL's buffer: read now unless paused. */
    if (c->reading || c->writing)
        read_turn(c);
}

/* --- TLS bytes epoll cannot see, timeouts -------------------------------- */

static int64_t redo_fire(struct loop *l, uint64_t id, void *data)
{
    struct conn_set *s = data;
    s->redo_timer = 0;
    s->redo_run = s->redo;
    s->redo = NULL;
    struct conn *c;
    while ((c = s->redo_run)) {
        s->redo_run = c->qnext;
        c->queued = 0;
        if (c->reading && !c->closing)
            read_turn(c);
    }
    return LOOP_TIMER_DONE;
}

static void redo_add(struct conn *c)
{
    struct conn_set *s = c->set;
    if (c->queued)
        return;
    c->queued = 1;
    c->qnext = s->redo;
    s->redo = c;
    if (!s->redo_timer && !s->freeing) {
        s->redo_timer = loop_timer_add(s->loop, 0, redo_fire, s);
        if (!s->redo_timer)
            log_error("%s: out of memory scheduling a TLS read", set_name(s));
    }
}

static int64_t sweep(struct loop *l, uint64_t id, void *data)
{
    struct conn_set *s = data;
    int64_t now = loop_now_ms(l), idle = s->cfg.idle_ms;
    struct conn *next;
    for (struct conn *c = s->head; c; c = next) {
        next = c->next;
        if (c->handshaking) {
            if (now - c->opened_ms < s->handshake_ms)
                continue;
            char why[96];
            snprintf(why, sizeof why, "not completed within %lld ms",
                     (long long)s->handshake_ms);
            STAT_ADD(s, tls_timeouts, 1);
            tls_failed(c, why);
            conn_end(c, CONN_TLS);
        } else if (idle > 0 && (c->reading || c->writing) && now - c->active_ms >= idle) {
            STAT_ADD(s, idle_closed, 1);
            if (rlog_due(s, &s->idle_log)) {
                log_info("%s: %s: closed after %lld ms without data (source.idle_timeout; "
                         "%llu idle connection(s) closed since the last such message)",
                         set_name(s), c->peer, (long long)(now - c->active_ms),
                         (unsigned long long)s->idle_log.unlogged);
                s->idle_log.unlogged = 0;
            }
            conn_end(c, CONN_IDLE);
        }
    }
    return s->sweep_ms;
}

/* --- connections -------------------------------------------------------- */

static void set_keepalive(int fd)
{
    int on = 1, idle = KEEPALIVE_IDLE_S, intvl = KEEPALIVE_INTVL_S, cnt = KEEPALIVE_CNT;
    /* Best effort: fails harmlessly on a pipe or a Unix socket. */
    if (setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &on, sizeof on) == 0) {
        setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof idle);
        setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &intvl, sizeof intvl);
        setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &cnt, sizeof cnt);
    }
}

/* Start a connection on fd, already counted under the limit. */
static int conn_start(struct conn_set *s, int fd, const char *peer, struct conn **out)
{
    struct conn *c = calloc(1, sizeof *c);
    if (!c)
        return WEIR_ENOMEM;
    if (s->cfg.tls && tls_new(s->cfg.tls, fd, NULL, &c->tls) != 0) {
        free(c);
        return WEIR_ENOMEM;
    }
    c->handshaking = c->tls != NULL;
    c->set = s;
    c->fd = fd;
    snprintf(c->peer, sizeof c->peer, "%s", peer);
    framer_init(&c->fr, s->cfg.max_record);
    c->opened_ms = loop_now_ms(s->loop);
    c->active_ms = c->opened_ms;
    c->next = s->head;
    if (s->head)
        s->head->prev = c;
    s->head = c;
    s->count++;
    STAT_ADD(s, accepted, 1);
    STAT_ADD(s, active, 1);
    log_debug("%s: %s: connected", set_name(s), c->peer);
    if (s->cfg.ops->on_open) {
        /* As in a read callback, a conn_close from on_open is deferred
         * until it returns, so c stays valid here. */
        c->in_read = 1;
        s->cfg.ops->on_open(c);
        c->in_read = 0;
        if (c->closing) {
            conn_end(c, CONN_LOCAL);
            c = NULL;
        }
    }
    if (c)
        update_io(c);
    if (out)
        *out = c;
    return 0;
}

/* Take a slot under the process-wide limit; 0 if full. */
static int limit_take(struct conn_set *s)
{
    struct conn_limit *lim = s->cfg.limit;
    if (!lim)
        return 1;
    unsigned was = atomic_fetch_add(&lim->active, 1);
    if (lim->max && was >= lim->max) {
        atomic_fetch_sub(&lim->active, 1);
        return 0;
    }
    return 1;
}

static void limit_give(struct conn_set *s)
{
    if (s->cfg.limit)
        atomic_fetch_sub(&s->cfg.limit->active, 1);
}

int conn_set_add(struct conn_set *s, int fd, const char *peer, struct conn **out)
{
    if (!limit_take(s)) {
        close(fd);
        return WEIR_ELIMIT;
    }
    int rc = conn_start(s, fd, peer, out);
    if (rc) {
        limit_give(s);
        close(fd);
    }
    return rc;
}

void conn_pause(struct conn *c)
{
    c->paused = 1;
    update_io(c);
}

void conn_resume(struct conn *c)
{
    c->paused = 0;
    update_io(c);
}

void conn_close(struct conn *c)
{
    if (c->closing)
        return;
    if (c->in_read) {
        c->closing = 1;
        update_io(c);
        return;
    }
    conn_end(c, CONN_LOCAL);
}

/* --- accepting ---------------------------------------------------------- */

static void on_accept(struct loop *l, int fd, void *data, int mask);

static int64_t listener_retry(struct loop *l, uint64_t id, void *data)
{
    struct listener *li = data;
    li->retry_timer = 0;
    if (li->fd != -1 && loop_fd_add(l, li->fd, LOOP_READABLE, on_accept, li) != 0)
        return ACCEPT_RETRY_MS; /* still no memory: try again later */
    return LOOP_TIMER_DONE;
}

static void refused(struct conn_set *s, const char *peer)
{
    int64_t now = loop_now_ms(s->loop);
    STAT_ADD(s, refused, 1);
    s->refused_unlogged++;
    if (now - s->refuse_log_ms < LOG_INTERVAL_MS && s->refuse_log_ms != 0)
        return;
    log_warn("%s: refused %llu connection(s), last from %s: %u connections open "
             "(limits.max_connections)",
             set_name(s), (unsigned long long)s->refused_unlogged, peer,
             s->cfg.limit ? s->cfg.limit->max : 0);
    s->refused_unlogged = 0;
    s->refuse_log_ms = now;
}

static void accept_failed(struct conn_set *s, struct listener *li, int err)
{
    int64_t now = loop_now_ms(s->loop);
    STAT_ADD(s, accept_errors, 1);
    s->errors_unlogged++;
    if (s->error_log_ms == 0 || now - s->error_log_ms >= LOG_INTERVAL_MS) {
        log_error("%s: accept: %s (%llu time(s)); pausing accepts for %d ms%s",
                  set_name(s), strerror(err), (unsigned long long)s->errors_unlogged,
                  ACCEPT_RETRY_MS,
                  err == EMFILE || err == ENFILE
                      ? " (raise the open files limit, ulimit -n / LimitNOFILE)" : "");
        s->errors_unlogged = 0;
        s->error_log_ms = now;
    }
    if (!li->retry_timer) {
        loop_fd_del(s->loop, li->fd, LOOP_READABLE);
        li->retry_timer = loop_timer_add(s->loop, ACCEPT_RETRY_MS, listener_retry, li);
    }
}

static void on_accept(struct loop *l, int fd, void *data, int mask)
{
    struct listener *li = data;
    struct conn_set *s = li->set;

    for (int i = 0; i < ACCEPTS_PER_TURN; i++) {
        struct sockaddr_storage ss;
        socklen_t len = sizeof ss;
        int cfd = accept4(fd, (struct sockaddr *)&ss, &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (cfd == -1) {
            switch (errno) {
            case EINTR:
            case ECONNABORTED:
            case EPROTO:
                continue;
            case EAGAIN:
#if EWOULDBLOCK != EAGAIN
            case EWOULDBLOCK:
#endif
                return;
            default:
                accept_failed(s, li, errno);
                return;
            }
        }
        char peer[NET_ADDR_TEXT];
        net_addr_format((struct sockaddr *)&ss, len, peer, sizeof peer);
        if (!limit_take(s)) {
            close(cfd);
            refused(s, peer);
            continue;
        }
        set_keepalive(cfd);
        if (conn_start(s, cfd, peer, NULL) != 0) {
            limit_give(s);
            close(cfd);
            accept_failed(s, li, ENOMEM);
            return;
        }
        if (s->draining)
            return; /* on_open began a shutdown: li is gone */
    }
}

int conn_set_listen(struct conn_set *s, int fd)
{
    struct listener *li = NULL;
    struct listener **ls = realloc(s->ls, (s->nls + 1) * sizeof *ls);
    if (!ls)
        goto nomem;
    s->ls = ls;
    li = calloc(1, sizeof *li);
    if (!li)
        goto nomem;
    li->set = s;
    li->fd = fd;
    int rc = loop_fd_add(s->loop, fd, LOOP_READABLE, on_accept, li);
    if (rc) {
        free(li);
        close(fd);
        return rc;
    }
    s->ls[s->nls++] = li;
    return 0;
nomem:
    close(fd);
    return WEIR_ENOMEM;
}

static void close_listeners(struct conn_set *s)
{
    for (size_t i = 0; i < s->nls; i++) {
        struct listener *li = s->ls[i];
        if (li->retry_timer)
            loop_timer_del(s->loop, li->retry_timer);
        loop_fd_del(s->loop, li->fd, LOOP_READABLE);
        close(li->fd);
        free(li);
    }
    free(s->ls);
    s->ls = NULL;
    s->nls = 0;
}

/* --- pause, shutdown, stats --------------------------------------------- */

void conn_set_pause_all(struct conn_set *s)
{
    if (s->paused_all)
        return;
    s->paused_all = 1;
    atomic_store(&s->st.paused_since, wtime_mono_ns());
    for (struct conn *c = s->head; c; c = c->next)
        update_io(c);
}

void conn_set_resume_all(struct conn_set *s)
{
    if (!s->paused_all)
        return;
    s->paused_all = 0;
    int64_t since = atomic_exchange(&s->st.paused_since, 0);
    STAT_ADD(s, paused_ns, (uint64_t)(wtime_mono_ns() - since));
    for (struct conn *c = s->head; c; c = c->next)
        update_io(c);
}

int conn_set_is_paused(const struct conn_set *s)
{
    return s->paused_all;
}

static int64_t done_fire(struct loop *l, uint64_t id, void *data)
{
    struct conn_set *s = data;
    s->done_timer = 0;
    if (s->drain_timer) {
        loop_timer_del(l, s->drain_timer);
        s->drain_timer = 0;
    }
    if (!s->done_called) {
        s->done_called = 1;
        if (s->done)
            s->done(l, s->done_data);
    }
    return LOOP_TIMER_DONE;
}

/* Run done on the next iteration, not from inside a connection's callback. */
static void schedule_done(struct conn_set *s)
{
    if (s->freeing || s->done_called || s->done_timer)
        return;
    s->done_timer = loop_timer_add(s->loop, 0, done_fire, s);
    if (!s->done_timer)
        log_error("%s: out of memory scheduling the end of shutdown", set_name(s));
}

static int64_t drain_expired(struct loop *l, uint64_t id, void *data)
{
    struct conn_set *s = data;
    s->drain_timer = 0;
    size_t paused = 0;
    for (struct conn *c = s->head; c; c = c->next)
        paused += !c->reading;
    log_warn("%s: drain time over: closing %zu connection(s) still open "
             "(%zu of them paused; what their senders had not yet had read was not "
             "accepted)",
             set_name(s), s->count, paused);
    while (s->head)
        conn_end(s->head, CONN_SHUTDOWN);
    return LOOP_TIMER_DONE;
}

void conn_set_shutdown(struct conn_set *s, int64_t drain_ms, loop_call_fn *done, void *data)
{
    if (s->draining)
        return;
    s->draining = 1;
    s->done = done;
    s->done_data = data;
    close_listeners(s);
    if (s->count == 0) {
        schedule_done(s);
        return;
    }
    log_info("%s: shutting down: draining %zu connection(s) for up to %lld ms",
             set_name(s), s->count, (long long)drain_ms);
    s->drain_timer = loop_timer_add(s->loop, drain_ms, drain_expired, s);
    if (!s->drain_timer)
        drain_expired(s->loop, 0, s);
}

size_t conn_set_count(const struct conn_set *s)
{
    return s->count;
}

void conn_set_stats(const struct conn_set *s, struct conn_stats *o)
{
    const struct stats *st = &s->st;
    o->accepted = atomic_load_explicit(&st->accepted, memory_order_relaxed);
    o->refused = atomic_load_explicit(&st->refused, memory_order_relaxed);
    o->accept_errors = atomic_load_explicit(&st->accept_errors, memory_order_relaxed);
    o->closed = atomic_load_explicit(&st->closed, memory_order_relaxed);
    o->active = atomic_load_explicit(&st->active, memory_order_relaxed);
    o->bytes = atomic_load_explicit(&st->bytes, memory_order_relaxed);
    o->records = atomic_load_explicit(&st->records, memory_order_relaxed);
    o->truncated = atomic_load_explicit(&st->truncated, memory_order_relaxed);
    o->paused_ns = atomic_load_explicit(&st->paused_ns, memory_order_relaxed);
    o->tls_handshakes = atomic_load_explicit(&st->tls_handshakes, memory_order_relaxed);
    o->tls_failures = atomic_load_explicit(&st->tls_failures, memory_order_relaxed);
    o->tls_timeouts = atomic_load_explicit(&st->tls_timeouts, memory_order_relaxed);
    o->idle_closed = atomic_load_explicit(&st->idle_closed, memory_order_relaxed);
    int64_t since = atomic_load(&st->paused_since);
    if (since)
        o->paused_ns += (uint64_t)(wtime_mono_ns() - since);
}

void *conn_set_user(const struct conn_set *s)
{
    return s->cfg.user;
}

struct loop *conn_set_loop(const struct conn_set *s)
{
    return s->loop;
}

/* --- the set ------------------------------------------------------------ */

struct conn_set *conn_set_new(struct loop *l, const struct conn_config *cfg,
                              struct weir_errmsg *e)
{
    if (!cfg->ops || !cfg->ops->on_record) {
        errmsg_set(e, WEIR_EINVAL, "connection set: on_record is required");
        return NULL;
    }
    struct conn_set *s = calloc(1, sizeof *s);
    if (!s)
        goto nomem;
    s->loop = l;
    s->cfg = *cfg;
    if (s->cfg.max_record == 0)
        s->cfg.max_record = WEIR_DEFAULT_MAX_RECORD;
    s->chunk = malloc(WEIR_READ_CHUNK);
    if (!s->chunk)
        goto nomem;
    s->handshake_ms = s->cfg.handshake_ms > 0 ? s->cfg.handshake_ms
                                              : WEIR_DEFAULT_TLS_HANDSHAKE_MS;
    int64_t shortest = INT64_MAX;
    if (s->cfg.tls)
        shortest = s->handshake_ms;
    if (s->cfg.idle_ms > 0 && s->cfg.idle_ms < shortest)
        shortest = s->cfg.idle_ms;
    if (shortest != INT64_MAX) {
        s->sweep_ms = shortest / 4;
        s->sweep_ms = s->sweep_ms > SWEEP_MAX_MS ? SWEEP_MAX_MS
                      : s->sweep_ms < SWEEP_MIN_MS ? SWEEP_MIN_MS : s->sweep_ms;
        if (!(s->sweep_timer = loop_timer_add(l, s->sweep_ms, sweep, s)))
            goto nomem;
    }
    return s;
nomem:
    conn_set_free(s);
    errmsg_set(e, WEIR_ENOMEM, "connection set: out of memory");
    return NULL;
}

void conn_set_free(struct conn_set *s)
{
    if (!s)
        return;
    s->freeing = 1;
    if (s->drain_timer)
        loop_timer_del(s->loop, s->drain_timer);
    if (s->done_timer)
        loop_timer_del(s->loop, s->done_timer);
    if (s->sweep_timer)
        loop_timer_del(s->loop, s->sweep_timer);
    if (s->redo_timer)
        loop_timer_del(s->loop, s->redo_timer);
    close_listeners(s);
    while (s->head)
        conn_end(s->head, CONN_SHUTDOWN);
    free(s->chunk);
    free(s);
}
