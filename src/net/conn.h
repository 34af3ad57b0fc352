/*
 * conn.h - accepted connections: read, frame, hand records to the owner.
 *
 * A conn_set belongs to one event loop (one worker thread). It owns that
 * loop's listening sockets, accepts connections from them, reads each
 * connection into the set's one read buffer (WEIR_READ_CHUNK bytes,
 * shared by all of the loop's connections), frames the bytes into NDJSON
 * records (net/framing.h) and calls the owner's on_record for each. The
 * owner (the pipeline: validation, storage) never touches a socket.
 *
 * Memory per connection is the struct plus the framer's buffer for a
 * record spanning reads (at most max_record + 1 bytes, usually nothing):
 * whatever senders do, a set holds at most one read chunk plus that per
 * connection.
 *
 * Backpressure: conn_pause / conn_set_pause_all stop reading (EPOLLIN
 * off), so the kernel's receive buffer fills, the TCP window closes and
 * the sender's writes block: nothing is dropped and nothing piles up in
 * weir. Records already read when the pause is asked (the rest of the
 * current chunk, at most WEIR_READ_CHUNK bytes) are still delivered, so
 * on_record never has to refuse one.
 *
 * Shutdown (conn_set_shutdown): close the listeners, keep reading the
 * connected senders until each closes its side or the drain time runs
 * out, then close what is left. Bytes of an unfinished last record are
 * never dropped: when a connection ends (EOF, error, drain timeout) they
 * are delivered as a record with FRAME_AT_EOF before on_close.
 *
 * TLS (conn_config.tls): every accepted connection first does a
 * non-blocking handshake (net/tls.h) on the loop; records flow only after
 * it. A handshake that fails or takes longer than handshake_ms closes
 * the connection (counted in tls_failures). Pause and resume apply to
 * the records, not to the handshake. Bytes OpenSSL already took off the
 * socket are read without waiting for epoll (it cannot see them).
 *
 * Timeouts (idle_ms, handshake_ms) are checked by one sweep timer per
 * set (every second, or a quarter of the shortest timeout), not by a
 * timer per connection: a read only stores the loop's clock.
 *
 * Everything here runs on the set's loop thread, except struct conn_limit
 * (shared by all sets, atomic) and conn_set_stats (any thread).
 * docs/network.md describes the whole.
 */
#ifndef WEIR_NET_CONN_H
#define WEIR_NET_CONN_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "core/error.h"
#include "net/framing.h"
#include "net/listen.h"
#include "net/loop.h"
#include "net/tls.h"

struct conn;
struct conn_set;

/* Why a connection ended (passed to on_close). */
enum conn_close_reason {
    CONN_EOF = 0,   /* the peer closed its side: everything it sent was read */
    CONN_ERROR,     /* read failed (reset by peer, keepalive timeout, ...) */
    CONN_SHUTDOWN,  /* shutdown's drain time ran out, or the set was freed */
    CONN_LOCAL,     /* the owner called conn_close */
    CONN_NOMEM,     /* the framer's buffer could not grow */
    CONN_IDLE,      /* nothing arrived for idle_ms */
    CONN_TLS,       /* the TLS handshake failed or timed out (no record was read) */
};

/* "eof", "error", "shutdown", "local", "nomem", "idle", "tls". */
const char *conn_close_reason_name(enum conn_close_reason why);

/* The owner's callbacks. Each receives the connection; c->user is the
 * owner's, c->set's user pointer is conn_set_user(c->set). */
struct conn_ops {
    /* A new connection, before its first read (optional). */
    void (*on_open)(struct conn *c);
    /* One record: rec->data, rec->len, rec->flags (FRAME_TRUNCATED,
     * FRAME_AT_EOF), rec->line (1-based, per connection). rec->data is
     * valid only during the call. May call conn_pause, conn_close,
     * conn_set_pause_all. */
    void (*on_record)(struct conn *c, const struct frame *rec);
    /* The connection is ending; c is freed when this returns (optional). */
    void (*on_close)(struct conn *c, enum conn_close_reason why);
    /* After a turn of reading c that delivered records, before c reads
     * again (and before on_close when the turn ended c): where an owner
     * that must make records durable before reading more does so
     * (optional). */
    void (*on_read_end)(struct conn *c);
};

/* The process-wide connection limit, shared by every set (every loop). */
struct conn_limit {
    atomic_uint active; /* connections open now, over all sets */
    unsigned max;       /* 0: no limit */
};

static inline void conn_limit_init(struct conn_limit *lim, unsigned max)
{
    atomic_init(&lim->active, 0);
    lim->max = max;
}

struct conn_config {
    const struct conn_ops *ops;
    void *user;               /* the set's user pointer */
    size_t max_record;        /* 0: WEIR_DEFAULT_MAX_RECORD */
    struct conn_limit *limit; /* NULL: no limit */
    const char *name;         /* for log lines (e.g. the pipeline); may be NULL */
    struct tls_ctx *tls;      /* NULL: plain TCP; else TLS (not owned, outlives the set) */
    int64_t handshake_ms;     /* TLS: longest handshake; 0: WEIR_DEFAULT_TLS_HANDSHAKE_MS */
    int64_t idle_ms;          /* close a connection silent this long (reading); 0: never */
};

struct conn {
    struct conn_set *set;
    int fd;
    char peer[NET_ADDR_TEXT]; /* "127.0.0.1:51234" */
    void *user;               /* the owner's, for its per-connection state */
    struct framer fr;         /* fr.line: the line being read */
    uint64_t bytes;           /* read from the socket */
    uint64_t records;         /* delivered, truncated ones included */
    int64_t opened_ms;        /* loop_now_ms at accept */
    int64_t active_ms;        /* loop_now_ms of the last read, accept or resume */
    struct tls *tls;          /* NULL: plain TCP */
    /* Internal state below: read it, do not write it. */
    unsigned paused : 1;      /* conn_pause asked */
    unsigned in_read : 1;     /* inside this connection's read callback */
    unsigned closing : 1;     /* conn_close asked during the callback */
    unsigned reading : 1;     /* EPOLLIN is on */
    unsigned writing : 1;     /* EPOLLOUT is on (TLS wants to write) */
    unsigned handshaking : 1; /* TLS handshake not finished */
    unsigned want_write : 1;  /* TLS: the last call needs the fd writable */
    unsigned queued : 1;      /* on the set's list of TLS reads to redo */
    struct conn *prev, *next; /* the set's list */
    struct conn *qnext;       /* the set's list of TLS reads to redo */
};

/* Counters of a set; conn_set_stats copies them (any thread). */
struct conn_stats {
    uint64_t accepted;        /* connections accepted (and kept) */
    uint64_t refused;         /* accepted then closed: over max_connections */
    uint64_t accept_errors;   /* accept failures (EMFILE, ...) */
    uint64_t closed;          /* connections ended */
    uint64_t active;          /* open now in this set */
    uint64_t bytes;           /* read */
    uint64_t records;         /* delivered */
    uint64_t truncated;       /* of which over max_record */
    uint64_t paused_ns;       /* time spent with the whole set paused */
    uint64_t tls_handshakes;  /* TLS handshakes completed */
    uint64_t tls_failures;    /* TLS handshakes failed or timed out */
    uint64_t tls_timeouts;    /* of which timed out (handshake_ms) */
    uint64_t idle_closed;     /* connections closed by idle_ms */
};

/* A set on loop l with the owner's callbacks; NULL with e filled. */
struct conn_set *conn_set_new(struct loop *l, const struct conn_config *cfg,
                              struct weir_errmsg *e);

/* Close every listener and connection (those with on_record/on_close as
 * for a drain timeout: CONN_SHUTDOWN) and free the set. Safe on NULL. Not
 * from inside one of the set's callbacks. */
void conn_set_free(struct conn_set *s);

/* Accept connections from the listening socket fd (listen_open); takes
 * ownership of fd (closed on failure too). 0 or a weir error. */
int conn_set_listen(struct conn_set *s, int fd);

/* Add an already connected stream fd (a socket from elsewhere, a pipe in
 * tests), peer naming it. Takes ownership of fd (closed on failure).
 * Counts toward the limit: WEIR_ELIMIT if full. *out (if not NULL) is the
 * connection, or NULL if on_open closed it at once. */
int conn_set_add(struct conn_set *s, int fd, const char *peer, struct conn **out);

/* Stop / restart reading every connection of the set (the set-wide
 * switch; a connection also paused by conn_pause stays paused). The time
 * spent paused is counted in paused_ns. */
void conn_set_pause_all(struct conn_set *s);
void conn_set_resume_all(struct conn_set *s);
int conn_set_is_paused(const struct conn_set *s);

/*
 * Begin a shutdown: close the listeners now, go on reading connections
 * until they end or drain_ms pass, then close the rest (CONN_SHUTDOWN).
 * When no connection is left, done(loop, data) runs once on the loop
 * (also when there were none). Calling it again does nothing.
 */
void conn_set_shutdown(struct conn_set *s, int64_t drain_ms, loop_call_fn *done,
                       void *data);

/* Open connections in the set. */
size_t conn_set_count(const struct conn_set *s);

/* A copy of the counters; callable from any thread. */
void conn_set_stats(const struct conn_set *s, struct conn_stats *out);

void *conn_set_user(const struct conn_set *s);
struct loop *conn_set_loop(const struct conn_set *s);

/* Stop reading c until conn_resume (records already read still arrive). */
void conn_pause(struct conn *c);
void conn_resume(struct conn *c);

/* Close c now (CONN_LOCAL; an unfinished record is dropped, as the owner
 * decided to drop the peer). From inside c's own on_record the close
 * happens when the callback returns, and no further record of c is
 * delivered. */
void conn_close(struct conn *c);

#endif
