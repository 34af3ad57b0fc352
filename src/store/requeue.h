/*
 * requeue.h - `weir requeue`: re-validate quarantined records against the
 * current schema and time rules, file the ones now valid in raw segments of
 * their event hour, and take them out of quarantine, without ever losing or
 * duplicating a record, whatever instant the process dies at.
 *
 * What is read: the SEALED quarantine segments of one pipeline (any node).
 * Active ones (".ndjson.open") belong to a running server and are left
 * alone; they are sealed when their hour closes and a later run sees them.
 * So requeue may run beside `weir serve` on the same data_dir: it does not
 * take the node lock but its own, <data_dir>/_requeue-<pipeline>.lock.
 *
 * Per quarantine line (docs/storage.md, "Requeue", has the whole story):
 *
 *   line                          what happens
 *   ----------------------------  -------------------------------------------
 *   outside --reason/--from/--to  left as it is
 *   truncated:true (too_large)    left: only the first max_record bytes were
 *                                 kept, it can never be valid
 *   not a quarantine line         left, counted as unreadable
 *   valid now (schema, time       written to a raw segment of its event
 *   field, time window)           partition (in lax mode: the coerced bytes;
 *                                 a Kafka pipeline's with the _kafka_*
 *                                 members of kmeta.h, rebuilt from the line's
 *                                 "kafka", else from its peer: a key the
 *                                 peer cut is left out, never stored wrong),
 *                                 removed from quarantine
 *   still invalid                 stays, with its new verdict (reason, path,
 *                                 error); unchanged when the verdict is the
 *                                 same, or when it was "truncated"/"torn" and
 *                                 still is not JSON
 *
 * The time window (time_max_ahead, time_max_age) is measured from the
 * record's received_at, as the server measured it from its arrival, so a
 * record's fate does not depend on the day requeue runs.
 *
 * A segment in which nothing changes is not touched. Any other segment S is
 * replaced in one idempotent step:
 *
 *   1. write the new raw segment(s) and, if anything stays, the new
 *      quarantine segment (S minus what left, new verdicts) into the
 *      staging folder <data_dir>/<pipeline>/_requeue/, fsync them and it;
 *   2. publish the journal _requeue/<S's name>.journal (fsio_publish_excl:
 *      complete and durable the moment its name exists), listing S and each
 *      output with its final name, record count and size;
 *   3. rename each output to its final name (never replacing a file), fsync
 *      the directories; remove S, fsync its directory; remove the journal.
 *
 * A crash before 2 leaves only staging files, which the next run (or the
 * server's recovery) removes: nothing happened. A crash after 2 leaves a
 * journal, which the next run (or the server's recovery) finishes: step 3
 * again, where an output already renamed and a source already removed
 * count as done. Staging files are not segment names, so recovery, readers
 * and compaction never see them.
 *
 * Output segments are named <node>-SEG_THREAD_REQUEUE-<seq>.ndjson, with
 * seqs from their own counters (<kind>/_seq/<node>-1000000): no server
 * writer can ever take such a name.
 */
#ifndef WEIR_STORE_REQUEUE_H
#define WEIR_STORE_REQUEUE_H

#include <stdint.h>

#include "config/config.h"
#include "core/error.h"
#include "schema/schema.h"
#include "store/quarantine.h"

/* What to do. Zero is: every reason, every arrival time, for real. */
struct requeue_opts {
    unsigned reasons;   /* bit (1u << enum quar_reason) per reason to look at;
                           0: all */
    int range;          /* 1: only records with received_at in ... */
    int64_t from_ns;    /* ... [from_ns, */
    int64_t to_ns;      /*      to_ns) */
    int dry_run;        /* only count: nothing on disk changes */
};

/* What was done (or, in a dry run, would be done). By the reason the record
 * had in quarantine. */
struct requeue_counts {
    uint64_t requeued[QUAR__COUNT]; /* filed in raw, out of quarantine */
    uint64_t stay[QUAR__COUNT];     /* still invalid (too_large included) */
    uint64_t reverdict[QUAR__COUNT];/* of stay: with a new verdict */
    uint64_t cut;                   /* of stay: truncated:true, never valid */
    uint64_t unreadable;            /* lines that are no quarantine record: left */
    uint64_t skipped;               /* outside reasons / from / to: left */
    unsigned long segments;         /* sealed quarantine segments read */
    unsigned long rewritten;        /* ... of them replaced */
    unsigned long raw_segments;     /* raw segments written */
    unsigned long active;           /* active segments left to the server */
    unsigned long finished;         /* journals of an interrupted run finished */
    uint64_t finished_records;      /* ... the records those moved to raw */
    unsigned long discarded;        /* staging files of an interrupted run removed */
    unsigned long pending;          /* dry run: journals the next run finishes */
};

/* Sum of requeued[] or stay[] over the reasons. */
uint64_t requeue_total(const uint64_t v[QUAR__COUNT]);

/*
 * Requeue pipeline p of cfg, validating with schema (compiled from p's
 * schema with p's options, as the server does). Takes the requeue lock
 * (WEIR_ECONFLICT, with a message, if another requeue runs), finishes what
 * an interrupted run left, then does every sealed quarantine segment. Stops
 * at the first error (e names the file); what was done up to there is
 * complete and counted, and the next run goes on from there. Adds to *c
 * (zero it first).
 */
int requeue_run(const struct weir_config *cfg, const struct config_pipeline *p,
                const struct schema *schema, const struct requeue_opts *o,
                struct requeue_counts *c, struct weir_errmsg *e);

/*
 * Finish or discard what an interrupted requeue of pipeline left: finish
 * every journal, remove staging files no journal names, and requeue's
 * leftover temporary files in <kind>/_seq/. Used by requeue_run, and by
 * recover_pipeline so that `weir serve` cleans up at start. If a requeue
 * holds the lock right now, this does nothing (it is that process's work)
 * and returns 0. Adds to c->finished, finished_records and discarded.
 */
int requeue_recover(const char *data_dir, const char *pipeline,
                    struct requeue_counts *c, struct weir_errmsg *e);

#endif
