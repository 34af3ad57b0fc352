/*
 * metrics.h - counters of a running server, as Prometheus text and JSON.
 *
 * The server takes a snapshot (plain numbers, summed over its workers) and
 * these functions render it: Prometheus exposition format for /metrics,
 * one JSON object for /status (what `weir status` prints). Metric names
 * and their meaning are listed in docs/operations.md.
 */
#ifndef WEIR_OBS_METRICS_H
#define WEIR_OBS_METRICS_H

#include <stdint.h>

#include "core/buf.h"
#include "sinks/kafka_out.h"
#include "sources/kafka.h"
#include "sources/transform.h"
#include "store/land.h"

struct pipeline_snapshot {
    const char *name;
    const char *source;          /* "tcp 127.0.0.1:7601", "kafka ..." */
    struct land_counts land;     /* records, verdicts, writes */
    uint64_t conns_active;
    uint64_t conns_accepted;
    uint64_t conns_refused;      /* over max_connections or not allowed */
    uint64_t bytes_read;
    uint64_t backpressure_ns;    /* time spent not reading, summed over workers */
    uint64_t tls_handshakes;     /* TLS handshakes completed */
    uint64_t tls_failures;       /* TLS handshakes failed or timed out */
    uint64_t tls_timeouts;       /* of which timed out */
    uint64_t idle_closed;        /* connections closed by source.idle_timeout */
    int has_sink;                /* a Kafka sink runs: sink is set */
    struct kafka_sink_counts sink;
    int has_transform;           /* a transform runs: xs is set */
    struct transform_stats xs;
    int kafka;                   /* a Kafka pipeline: the fields below are set */
    struct kafka_stats ks;       /* its consumer's counters */
    struct kafka_lag *lag;       /* per owned partition (owned by the snapshot) */
    size_t nlag;
};

struct server_snapshot {
    const char *node;
    const char *version;
    int64_t started_ns;          /* wall clock */
    int64_t now_ns;
    int draining;                /* shutdown in progress */
    size_t npipelines;
    struct pipeline_snapshot *pipelines;
};

/* Free what a snapshot's pipelines own (the lag arrays), not the array
 * of pipelines itself. */
void metrics_snapshot_release(struct server_snapshot *s);

/* Append the Prometheus text for s to out. */
int metrics_prometheus(const struct server_snapshot *s, struct buf *out);

/* Append the /status JSON for s to out. */
int metrics_status_json(const struct server_snapshot *s, struct buf *out);

#endif
