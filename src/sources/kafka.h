/*
 * kafka.h - the Kafka source: a consumer in the pipeline's group, read in
 * micro-batches on one worker's loop, every message landed like a TCP
 * record, offsets committed only once their batch is durable.
 *
 * One consumer per Kafka pipeline per weir process, on worker
 * (pipeline index % workers): a worker validates a few hundred thousand
 * records a second, and the unit of scale-out is the consumer group, not
 * the thread: more partitions, more weir processes. librdkafka does its
 * network I/O in its own threads; this source only takes what is ready
 * from the consumer queue (an fd in the worker's loop wakes it), never
 * blocks the loop on the network except for the short offset lookups of a
 * rebalance.
 *
 * A micro-batch is the messages read since the last checkpoint; it ends at
 * batch.max_records, batch.max_bytes or batch.max_wait after its first
 * message, or earlier when the lander pushes back. Then:
 *
 *   land_sync (write + fsync the lander's raw and quarantine segments)
 *   -> checkpoint (store/offsets.h: next offset per partition + segment
 *      lengths, written atomically)
 *   -> commit the offsets to Kafka (asynchronously; synchronously when
 *      partitions are revoked)
 *
 * On assignment a partition starts at the higher of the offset committed
 * to Kafka and the highest checkpoint of any weir on the data_dir; what
 * Kafka alone would have sent again is counted as duplicates_skipped. At
 * start-up kafka_recover() cuts this node's segments back to its
 * checkpoints, so a kill -9 between landing and checkpointing leaves no
 * record twice. docs/kafka.md states exactly what is guaranteed.
 *
 * Each message is one record (payload = the JSON text; a payload with
 * CR/LF between its tokens is landed with spaces there, its value
 * unchanged). With format protobuf the payload is a binary message of
 * source.kafka.message, decoded into JSON (schema/protobuf.h) and landed
 * the same way; quarantine keeps the payload's exact bytes whether it did
 * not decode or its JSON did not validate. The record's peer, shown in
 * quarantine, is
 * "TOPIC/PARTITION@OFFSET ts=MS key=KEY" (key_b64= when the key is not
 * printable ASCII; ts and key when the message has them).
 */
#ifndef WEIR_SOURCES_KAFKA_H
#define WEIR_SOURCES_KAFKA_H

#include <stdint.h>

#include "config/config.h"
#include "core/error.h"
#include "net/loop.h"
#include "sources/source.h"
#include "store/land.h"

/*
 * A Kafka source for pipeline p (source.kind == CONFIG_SOURCE_KAFKA) on
 * loop l, landing in lander, which is the lander of worker `thread`.
 * Writes this node's initial checkpoint for that thread (so that files
 * made before it are never taken for a batch's), retires those of its
 * other threads (the consumer may have run on another worker before),
 * creates the consumer and subscribes; records flow once the group
 * assigns partitions.
 */
int kafka_source_new(struct loop *l, const struct weir_config *cfg,
                     const struct config_pipeline *p, struct lander *lander,
                     unsigned thread, struct source **out, struct weir_errmsg *e);

/*
 * Start-up, for every pipeline, holding the node lock, before
 * recover_pipeline. A Kafka pipeline: cut this node's segments back to its
 * checkpoints (offsets_rollback), dropping what a crash left of batches
 * that were never checkpointed (they are read from Kafka again), and log
 * it. Any other pipeline: retire the checkpoints a Kafka source may have
 * left (offsets_retire), so that they never cut what its source writes.
 */
int kafka_recover(const struct weir_config *cfg, const struct config_pipeline *p,
                  struct weir_errmsg *e);

/* Counters of a Kafka source (any thread). */
struct kafka_stats {
    uint64_t messages;           /* landed */
    uint64_t bytes;
    uint64_t batches;            /* made durable and checkpointed */
    uint64_t duplicates_skipped; /* redelivered offsets not landed again */
    uint64_t commits;            /* offset commits that succeeded */
    uint64_t commit_errors;
    uint64_t assigned;           /* partitions owned now */
};

/* s must be a Kafka source. */
void kafka_source_counts(const struct source *s, struct kafka_stats *out);

/* The consumer lag of one partition owned now. */
struct kafka_lag {
    const char *topic;           /* the config's string (lives as long as it) */
    int32_t partition;
    int64_t next;                /* next offset to land; -1: not known yet */
    int64_t high;                /* high watermark as last fetched; -1: not yet */
    int64_t lag;                 /* high - next (or high - low before the first
                                    message); -1: not known */
};

/*
 * Copy the lag of the partitions s owns into out[0..max) (any thread) and
 * return how many there are (may be more than max, as snprintf). Made by
 * the source's own thread every KAFKA_LAG_REFRESH_MS from the watermarks
 * librdkafka keeps from its fetches (no request to a broker), so it is at
 * most that old.
 */
#define KAFKA_LAG_REFRESH_MS 500
size_t kafka_source_lag(const struct source *s, struct kafka_lag *out, size_t max);

#endif
