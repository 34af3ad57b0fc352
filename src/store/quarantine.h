/*
 * quarantine.h - where rejected records go, with the reason, so that
 * nothing a sender gave us is lost and it can be re-run after a fix.
 *
 * A quarantine writer is a segment writer (segment.h) of kind "quarantine",
 * partitioned by hour of ARRIVAL (not event time, which a rejected record
 * may not have), one per (pipeline, worker thread):
 *
 *   <data_dir>/<pipeline>/quarantine/date=YYYY-MM-DD/hour=HH/<node>-<thread>-<seq>.ndjson
 *
 * Each line is one JSON object (docs/storage.md has this table too):
 *
 *   field        type     present  meaning
 *   -----------  -------  -------  -------------------------------------------
 *   received_at  string   always   arrival, RFC 3339 UTC with ms
 *                                  ("2025-09-02T10:00:00.123Z")
 *   peer         string   always   "127.0.0.1:5555", or null if unknown
 *   pipeline     string   always   the pipeline's name
 *   reason       string   always   invalid | too_large | truncated |
 *                                  time_missing | time_unparsable |
 *                                  time_out_of_range | torn
 *   path         string   always   JSON pointer of the offending value
 *                                  ("/measurement/unit", "" for the root), or
 *                                  null
 *   error        string   always   a sentence for a person, or null
 *   raw          string   one of   the original bytes, when valid UTF-8
 *   raw_b64      string   the two  base64 of the original bytes otherwise
 *                                  (always for binary payloads: Protobuf)
 *   truncated    true     if cut   the record was cut at max_record ...
 *   size         number   if cut   ... and this was its full size in bytes
 *                         and known (absent when the source cut the
 *                         record before its end arrived, as TCP does)
 *   kafka        object   Kafka    where the message was (struct quar_kafka):
 *                         records  {"topic":"m","partition":0,"offset":5,
 *                                  "key":"k" | "key_b64":"..",
 *                                  "timestamp":1756803600123}; key when the
 *                                  key is valid UTF-8, key_b64 otherwise,
 *                                  neither without a key; timestamp when
 *                                  the message has one. Exact (the peer cuts
 *                                  long keys), so that requeue can add the
 *                                  metadata members (kmeta.h) a Kafka source
 *                                  adds. Absent in lines written before it
 *                                  existed, and when the line would be
 *                                  longer than the writer takes with it.
 *
 * peer, path and error are cut to 4 KiB and any invalid UTF-8 in them is
 * replaced by U+FFFD; raw/raw_b64 and kafka are exact.
 */
#ifndef WEIR_STORE_QUARANTINE_H
#define WEIR_STORE_QUARANTINE_H

#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "core/error.h"
#include "store/segment.h"

enum quar_reason {
    QUAR_INVALID = 0,        /* failed schema validation or not JSON */
    QUAR_TOO_LARGE,          /* longer than max_record (kept: the first
                                max_record bytes, truncated:true) */
    QUAR_TRUNCATED,          /* the connection closed mid-record */
    QUAR_TIME_MISSING,       /* no time_field */
    QUAR_TIME_UNPARSABLE,    /* time_field not a time in time_unit */
    QUAR_TIME_OUT_OF_RANGE,  /* past time_max_ahead / time_max_age */
    QUAR_TORN,               /* a torn line cut from a segment at recovery */
    QUAR__COUNT
};

/* "invalid", "too_large", ...; and back (-1 if unknown). */
const char *quar_reason_name(enum quar_reason r);
int quar_reason_parse(const char *s);

/* Where a rejected Kafka message was: its quarantine line's "kafka". */
struct quar_kafka {
    const char *topic;
    int32_t partition;
    int64_t offset;
    const void *key;         /* NULL: the message has no key ("" is a key) */
    size_t key_len;
    int64_t timestamp_ms;    /* < 0: the message has no timestamp */
};

/* One rejected record. Strings may be NULL (written as null). */
struct quar_record {
    int64_t received_at_ns;
    const char *peer;
    enum quar_reason reason;
    const char *path;        /* JSON pointer */
    const char *error;
    const void *raw;
    size_t raw_len;
    int binary;              /* raw is a binary payload: raw_b64 always */
    int truncated;           /* raw is the first raw_len bytes of ... */
    uint64_t size;           /* ... a record this long (0: unknown) */
    const struct quar_kafka *kafka; /* NULL: not from Kafka, no "kafka" */
};

/* Longest peer/path/error kept, in bytes. */
#define QUAR_TEXT_MAX 4096

struct quar_writer;

/* A quarantine writer with the settings of cfg except kind ("quarantine")
 * and grain (hour). */
int quar_writer_new(const struct seg_config *cfg, struct quar_writer **out,
                    struct weir_errmsg *e);

/* Free without flushing (seal first: seg_close_all(quar_seg(q))). */
void quar_writer_free(struct quar_writer *q);

/* Append one rejected record. Same return contract as seg_append. */
int quar_append(struct quar_writer *q, const struct quar_record *r);

/* The segment writer underneath, for seg_tick, seg_flush, seg_seal_before,
 * seg_close_all, seg_pending, seg_stats. */
struct seg_writer *quar_seg(struct quar_writer *q);

/* Append the JSON line for r (no newline) to out; used by quar_append,
 * and by tests and tools that want the exact format. */
int quar_format(struct buf *out, const char *pipeline,
                const struct quar_record *r);

#endif
