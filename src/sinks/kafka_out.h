/*
 * kafka_out.h - the Kafka sink: a pipeline's landed records, and a
 * model's result rows, produced to a topic.
 *
 * Pipeline sink. Records are landed locally first (raw segments, fsynced
 * per the pipeline's policy) and delivered from there, so a broker outage
 * delays delivery but loses nothing, and never slows ingest:
 *
 *   raw segments of this node ──(durable part only)──> producer ──> topic
 *        ^ seg_durable_len                              │ delivery reports
 *        └──── _sink/<node>.cursor (store/cursor.h) <───┘ (confirmed prefix)
 *
 * One thread per pipeline with a sink. Every ~100 ms it lists this node's
 * raw segments (segment.h) and reads each, in order, up to what is
 * durable: the whole file once sealed, and for a file still written the
 * length its writer published at its last fsync (under fsync: never, what
 * it handed to the OS). Each line is one message: the value is the line,
 * the key the value at the configured dotted path (a string as is, any
 * other non-null value as its JSON text; missing or null: no key), the
 * headers weir_pipeline, weir_node and weir_record ("<segment stem>:<byte
 * offset>", the record's identity for ever: consumers can deduplicate on
 * it). The producer is idempotent (enable.idempotence, acks=all), so
 * librdkafka's own retries never duplicate or reorder within a partition.
 *
 * Progress: a bounded window of messages in flight (KAFKA_SINK_WINDOW_*,
 * core/limits.h); the reader stops when it is full (backpressure on the
 * reader only; ingest never waits for Kafka). Delivery reports are the
 * only thing that moves the cursor: per segment, the longest prefix whose
 * every record was confirmed, saved atomically at most every
 * KAFKA_SINK_SAVE_MS. A failed report (broker down past
 * message.timeout.ms) is counted; the reader stops, waits until nothing is
 * in flight, backs off (1 s doubling to 30 s) and produces the failed
 * records again (counted as retried), in their order; nothing is skipped.
 * Compaction and retention keep every segment that the cursor does not
 * cover whole (cursor_delivered), so nothing is deleted undelivered.
 *
 * Guarantee: every record landed in raw by this node is delivered at
 * least once, in segment order per key. A record is produced twice only
 * if weir stopped (crash, kill -9, or a shutdown that could not wait for
 * the broker) after producing it and before its delivery report was
 * saved in the cursor: the window of the last KAFKA_SINK_SAVE_MS plus
 * what was in flight. docs/kafka.md says it in full.
 *
 * Model output (kafka_produce_file): a file of NDJSON rows produced with
 * the same keying, headers weir_model and weir_partition; the call waits
 * for every delivery report (bounded) and fails unless all succeeded, so
 * the model's run fails and its retry produces the partition again.
 *
 * This file and sources/kafka.c are the two files that include rdkafka.h.
 */
#ifndef WEIR_SINKS_KAFKA_OUT_H
#define WEIR_SINKS_KAFKA_OUT_H

#include <stdint.h>

#include "config/config.h"
#include "core/error.h"

struct seg_writer;
struct kafka_sink;

/* Counters of a pipeline sink, since it started (any thread). */
struct kafka_sink_counts {
    uint64_t produced;  /* messages handed to the producer, retries included */
    uint64_t delivered; /* confirmed by the broker */
    uint64_t failed;    /* delivery reports with an error */
    uint64_t retried;   /* messages produced again after a failed report */
    uint64_t bytes;     /* value bytes delivered */
    uint64_t lag;       /* records landed (durable) and not yet delivered */
};

/*
 * Start the sink of pipeline p (p->sink_kafka != NULL) in its own thread.
 * writers[k] is the raw segment writer of worker thread k (land_raw_writer),
 * read for the durable length of the files they write; they must outlive
 * the sink. Loads the cursor (a corrupt one is an error: the sink refuses
 * to guess what was delivered) and creates the producer. 0 or an error.
 */
int kafka_sink_start(const struct weir_config *cfg, const struct config_pipeline *p,
                     struct seg_writer *const *writers, unsigned nwriters,
                     struct kafka_sink **out, struct weir_errmsg *e);

/*
 * Stop: deliver what is durable now (call it after the writers sealed
 * everything), waiting at most wait_ns for the reports, then save the
 * cursor and join the thread. What was not confirmed by then is delivered
 * by the next start. NULL-safe; the sink is freed.
 */
void kafka_sink_stop(struct kafka_sink *s, int64_t wait_ns);

/* Copy the counters (any thread). */
void kafka_sink_counts(const struct kafka_sink *s, struct kafka_sink_counts *out);

/*
 * Produce every line of the NDJSON file at path to k->topic, keyed as
 * above, with the headers hdrs (name, value, name, value, ..., NULL), and
 * wait at most wait_ns for all delivery reports. 0 when every line was
 * confirmed (*delivered = the count); otherwise an error with the first
 * failure in e (nothing is retried here: the caller re-runs).
 */
int kafka_produce_file(const struct config_kafka_sink *k, const char *path,
                       const char *const *hdrs, int64_t wait_ns, uint64_t *delivered,
                       struct weir_errmsg *e);

#endif
