/*
 * source.h - what the server asks of a record source, whatever it is.
 *
 * A source (TCP listener and its connections, a Kafka consumer, a file
 * replay) runs on one worker's event loop and hands every record it reads
 * to that worker's lander for its pipeline (store/land.h). The server
 * drives it through this small vtable, as curl drives its TLS backends:
 * one implementation per file in src/sources/.
 */
#ifndef WEIR_SOURCES_SOURCE_H
#define WEIR_SOURCES_SOURCE_H

#include <stdint.h>

#include "net/loop.h"

struct source;

/* Counters every source reports (any thread). */
struct source_stats {
    uint64_t conns_active;
    uint64_t conns_accepted;
    uint64_t conns_refused;
    uint64_t bytes_read;
    uint64_t paused_ns;          /* time spent not reading */
    uint64_t tls_handshakes;     /* tcp with TLS: handshakes completed */
    uint64_t tls_failures;       /* ... failed or timed out */
    uint64_t tls_timeouts;       /* ... of which timed out */
    uint64_t idle_closed;        /* tcp: connections closed by idle_timeout */
};

struct source_ops {
    const char *name;            /* "tcp", "kafka" */
    /* Stop / restart reading: backpressure from the lander. */
    void (*pause)(struct source *s);
    void (*resume)(struct source *s);
    /* Stop taking new work, finish what was started (read what connected
     * senders already sent, for at most drain_ms), then call done(loop,
     * data) once, on the source's loop. */
    void (*shutdown)(struct source *s, int64_t drain_ms, loop_call_fn *done,
                     void *data);
    void (*stats)(const struct source *s, struct source_stats *out);
    void (*free)(struct source *s);
};

struct source {
    const struct source_ops *ops;
};

#endif
