/*
 * land.h - where a record lands: validate it, find its event time, and
 * file it in a raw segment of its hour, or in quarantine with the reason.
 *
 * One lander per (pipeline, worker thread). Every source (TCP connections,
 * Kafka batches, file replay) hands records to land_record(); what happens
 * next is the same whatever the source, so a record validates and lands
 * the same way from `weir send` as from a Kafka topic.
 *
 *   record -> too large?              -> quarantine (too_large, truncated)
 *          -> validator (schema)      -> quarantine (invalid / truncated at EOF)
 *          -> time_field / time_unit  -> quarantine (time_missing,
 *                                        time_unparsable, time_out_of_range)
 *          -> raw segment of the event's hour (or day)
 *
 * Nothing is dropped: land_record always takes the record. The writers
 * underneath hold at most max_pending bytes; land_pressure() tells the
 * source to stop reading (TCP flow control then slows the senders) well
 * before that bound, leaving room for the records a source has already
 * read when it pauses (one read chunk and one record per connection).
 * docs/ingest.md has the whole path and the counters.
 *
 * Threading: a lander belongs to one thread. land_stats() may be read from
 * any thread (the counters are relaxed atomics).
 */
#ifndef WEIR_STORE_LAND_H
#define WEIR_STORE_LAND_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "config/config.h"
#include "core/buf.h"
#include "core/error.h"
#include "schema/schema.h"
#include "store/quarantine.h"

/* Flags of land_record (the framer's FRAME_* values, net/framing.h). */
#define LAND_TRUNCATED 0x1u /* rec is the first max_record bytes of a longer one */
#define LAND_AT_EOF 0x2u    /* the stream ended after rec without a newline */
#define LAND_BINARY 0x4u    /* rec is a binary payload (Protobuf): quarantine
                               keeps it as raw_b64 even when it is UTF-8 */

/* Counters of one lander; land_stats_add sums several. */
struct land_stats {
    _Atomic uint64_t records;       /* handed to land_record */
    _Atomic uint64_t bytes;         /* their bytes */
    _Atomic uint64_t valid;         /* filed in raw */
    _Atomic uint64_t valid_bytes;
    _Atomic uint64_t coerced;       /* valid after lax coercion */
    _Atomic uint64_t late;          /* valid, for a partition already closed */
    _Atomic uint64_t rejected[QUAR__COUNT]; /* quarantined, by reason */
    _Atomic uint64_t write_errors;  /* disk failures seen (retried) */
    _Atomic uint64_t overflow;      /* records parked because a writer was full */
    _Atomic unsigned open_partitions; /* raw partitions open, as of the last tick */
};

/* A plain copy of the counters. */
struct land_counts {
    uint64_t records, bytes, valid, valid_bytes, coerced, late;
    uint64_t rejected[QUAR__COUNT];
    uint64_t rejected_total;
    uint64_t write_errors, overflow;
    uint64_t durable;               /* valid records fsynced in raw segments
                                       (never policy: handed to the OS) */
    uint64_t pending;               /* bytes not durable yet, now */
    unsigned open_partitions;
    uint64_t sealed;                /* raw segments sealed (compaction can take them) */
};

struct lander;

/*
 * A lander for pipeline p of cfg on worker thread `thread`, validating
 * with schema (shared, read-only, outlives the lander). Creates the raw
 * and quarantine writers; run recovery for this node first.
 */
int land_new(const struct weir_config *cfg, const struct config_pipeline *p,
             const struct schema *schema, unsigned thread, struct lander **out,
             struct weir_errmsg *e);

/* Free without flushing (call land_close first). NULL-safe. */
void land_free(struct lander *l);

/*
 * Land one record (no newline) that arrived at now_ns (wall clock) from
 * peer (may be NULL). flags: LAND_*. Always takes the record; returns 0,
 * or the writers' sticky disk error (WEIR_ENOSPC, WEIR_EIO) as a signal to
 * pause: the record is kept in memory and written when the disk recovers.
 */
int land_record(struct lander *l, const char *rec, size_t len, unsigned flags,
                const char *peer, int64_t now_ns);

/*
 * For sources that decode what arrives (Protobuf payloads): the bytes as
 * they arrived, orig[0..len) (not copied: they must stay valid until the
 * next land_record returns). The next land_record (or land_record_meta)
 * validates the decoded record it is given, but if it quarantines it,
 * quarantine keeps orig instead, as binary (LAND_BINARY), so that what a sender sent is what
 * quarantine holds (path and error then refer to the decoded record).
 * Applies to that one call only.
 */
void land_quarantine_bytes(struct lander *l, const void *orig, size_t len);

/*
 * Quarantine rec[0..len) with reason, path (a JSON pointer, may be NULL)
 * and error, without validating it: for records a source could not decode
 * (Protobuf). Counted like a record land_record quarantines. Same return
 * contract as land_record.
 */
int land_reject(struct lander *l, enum quar_reason reason, const char *path,
                const char *error, const void *rec, size_t len, unsigned flags,
                const char *peer, int64_t now_ns);

/*
 * Members a source adds to each of its valid records (Kafka's metadata,
 * store/kmeta.h), written on demand, so that a quarantined record costs
 * nothing here. Spliced after validation, before the record object's
 * closing brace, so a schema with additionalProperties: false still
 * validates the record as sent.
 */
struct land_meta {
    /* Append the members to b: `"name":value,...`, no braces, no leading
     * comma. 0, or an error (the record is then quarantined as too_large:
     * b's bound is the lander's). */
    int (*members)(void *ctx, struct buf *b);
    /* The record's peer, called only when the record is quarantined and
     * land_record_meta's peer is NULL (building it for every record
     * costs as much as the members); may be NULL. */
    const char *(*peer)(void *ctx);
    void *ctx;
    const char *const *names;   /* the names members() writes, NULL-terminated */
    /* Where the record came from, written with it when it is quarantined
     * (quarantine's "kafka", so that requeue can add the members exactly:
     * store/requeue.h); called only then; may be NULL. The struct must
     * stay valid until the call that landed the record returns. */
    const struct quar_kafka *(*origin)(void *ctx);
};

/*
 * land_record, then, for a valid record whose root is an object, add
 * meta's members to what is stored (NULL meta: land_record). A record
 * that already has a top-level member of one of meta->names is
 * quarantined as invalid (its path names the member): both would be on
 * the stored line. A record whose root is not an object gets no members.
 * Quarantined records are stored as they came, without the members.
 * Costs a copy of the record into a buffer kept by the lander (no
 * allocation once it has grown) and a walk over its top-level keys.
 */
int land_record_meta(struct lander *l, const char *rec, size_t len, unsigned flags,
                     const char *peer, int64_t now_ns, const struct land_meta *meta);

/* land_reject, with meta's origin (NULL meta: land_reject; its peer when
 * peer is NULL). */
int land_reject_meta(struct lander *l, enum quar_reason reason, const char *path,
                     const char *error, const void *rec, size_t len, unsigned flags,
                     const char *peer, int64_t now_ns, const struct land_meta *meta);

/*
 * The two steps of land_record_meta, for requeue, which files records
 * itself and must store what the server would have: the first of names
 * that is a top-level member of d's object root (NULL: none); and
 * rec[0..len) (d's source, an object) with meta's members spliced before
 * its closing brace, into b (reset first): 0, or WEIR_ELIMIT when b's
 * bound is too small, or members()'s error.
 */
struct json_doc;
const char *land_meta_clash(const struct json_doc *d, const char *const *names);
int land_meta_splice(struct buf *b, const struct json_doc *d, const char *rec,
                     size_t len, const struct land_meta *meta);

/*
 * 1 when the source should stop reading: the writers hold more than the
 * high-water mark, a disk error is pending, or records are parked. The
 * source resumes when land_pressure() returns 0 again (after land_tick).
 */
int land_pressure(const struct lander *l);

/*
 * The timer, every few ms: group commit, retries after disk errors,
 * writing parked records, sealing partitions whose end + grace has passed
 * (wall clock now_ns). Returns 0 when healthy.
 */
int land_tick(struct lander *l, int64_t now_ns, int64_t mono_ns);

/* Shutdown: write everything, fsync, seal every segment. 0 or the error
 * (then call again later: nothing was dropped). */
int land_close(struct lander *l);

/* Bytes taken and not yet durable, the parked records included: what a
 * shutdown that gives up on a failing disk loses. Owner thread only. */
size_t land_unwritten(const struct lander *l);

/*
 * Make every record landed so far durable now, whatever the time since
 * the last group commit: write parked records, then flush and fsync the
 * raw and quarantine writers (fsync never: write them to the OS only).
 * 0 when nothing taken is pending any more; WEIR_EAGAIN when records are
 * still parked (the writers are full: call again after land_tick); or the
 * writers' disk error. Nothing is lost either way: the records stay in
 * memory until a later call succeeds. For sources that acknowledge
 * upstream only what is durable (Kafka offsets, sources/kafka.h).
 */
int land_sync(struct lander *l);

/*
 * A tap sees every record filed in raw, as stored (the validator's output),
 * with the start of its partition, right after land_record took it (also
 * when it was parked: it will be written). A pipeline's transform collects
 * its micro-batch this way (sources/transform.h). fn NULL removes it.
 */
typedef void land_tap_fn(void *ctx, const char *rec, size_t len, int64_t part_start_ns);
void land_set_tap(struct lander *l, land_tap_fn *fn, void *ctx);

/*
 * The end of one read by a source (a TCP connection's read turn: up to a
 * few read chunks). Under fsync: always, land_sync now, so that every
 * record is durable before the worker reads anything more: the guarantee
 * of one fdatasync per record, at the cost of one per read. Otherwise a
 * no-op. Same return as land_sync; a failure leaves the records in
 * memory (land_pressure then says stop reading).
 */
int land_read_end(struct lander *l);

/* The lander's raw and quarantine segment writers, for seg_marks() after
 * a successful land_sync (a checkpoint of what the files hold). */
struct seg_writer;
struct seg_writer *land_raw_writer(struct lander *l);
struct seg_writer *land_quarantine_writer(struct lander *l);

/* Copy the counters (any thread). */
void land_counts(const struct lander *l, struct land_counts *out);

/* out += in, for summing the landers of one pipeline. */
void land_counts_add(struct land_counts *out, const struct land_counts *in);

/*
 * The event time of a record: the value at p->time_field in doc (the
 * validated record), in p->time_unit. 0 and *ns, or the quarantine reason
 * (QUAR_TIME_MISSING / QUAR_TIME_UNPARSABLE) with a message in why.
 * Exposed for tests and for other sources.
 */
struct json_doc;
int land_event_time(const struct config_pipeline *p, const struct json_doc *doc,
                    int64_t *ns, char *why, size_t why_cap);

#endif
