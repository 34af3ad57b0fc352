/*
 * recover.h - start-up recovery of a pipeline's segments after a crash.
 *
 * A crash (kill -9, power loss) leaves this node's active segments
 * (".ndjson.open") behind, perhaps with a torn last line, perhaps with a
 * block of zeros where the filesystem had extended the file but not yet
 * written the data. recover_pipeline, for raw/ and quarantine/ of one
 * pipeline and ONE node (other nodes' files, on shared storage, may be in
 * use and are never touched):
 *
 *   1. finds the cut: the end of the last complete line ('\n'), or the start
 *      of the first line holding a NUL byte (records never contain one:
 *      JSON forbids raw control characters), whichever comes first;
 *   2. hands the bytes after the cut to on_torn, line by line (pieces of at
 *      most max_record bytes), which must make them durable elsewhere
 *      (recover_torn_to_quarantine: reason "torn") before returning 0;
 *   3. cuts the file there (ftruncate), fsyncs it, and seals it (rename to
 *      ".ndjson", fsync the directory), or removes it if nothing is left;
 *   4. removes this node's leftover temporary files in <kind>/_seq/ (not
 *      those of weir requeue's counters, which may be in use right now);
 *   5. finishes what an interrupted `weir requeue` of the pipeline left
 *      (requeue_recover: journals finished, staging files removed), unless
 *      a requeue is running right now. A failure there is logged, not
 *      returned: ingest does not depend on it.
 *
 * The order means a crash during recovery can only repeat step 2 (the torn
 * bytes then appear twice in quarantine, each time with the segment name
 * and offset in "error", so they can be told apart), never lose bytes.
 * Records before the cut are kept as they are: the records of a connection
 * that landed are a prefix of what it sent.
 *
 * Run it before any writer of this node starts (serve does, after taking
 * the node lock), with the torn bytes' quarantine writer created (it does
 * not write unless something is torn).
 */
#ifndef WEIR_STORE_RECOVER_H
#define WEIR_STORE_RECOVER_H

#include <stddef.h>
#include <stdint.h>

#include "core/error.h"

/* Receives one torn piece: seg_path is the segment it was cut from and
 * offset its byte offset there. Return 0 only once the bytes are durable. */
typedef int (*recover_torn_fn)(void *ctx, const char *seg_path,
                               uint64_t offset, const void *bytes,
                               size_t len);

struct recover_stats {
    unsigned long sealed;        /* active segments cut (if need be) and sealed */
    unsigned long removed;       /* active segments empty after the cut */
    unsigned long torn;          /* pieces handed to on_torn */
    uint64_t torn_bytes;
    uint64_t kept_bytes;         /* bytes of complete lines kept */
    unsigned long tmp_removed;   /* leftover temp files */
    unsigned long other_nodes;   /* active segments of other nodes, untouched */
    unsigned long failed;        /* segments left as they were after an error */
    unsigned long requeue_finished;  /* interrupted weir requeue steps finished */
    unsigned long requeue_discarded; /* ... and staging files it left, removed */
};

/*
 * Recover <data_dir>/<pipeline>/raw and .../quarantine for node. Adds to
 * *st (zero it first). Goes on after a failure with the other segments and
 * returns the first error (with e naming the file); a failed segment stays
 * active and is retried by the next recovery.
 */
int recover_pipeline(const char *data_dir, const char *pipeline,
                     const char *node, recover_torn_fn on_torn, void *ctx,
                     struct recover_stats *st, struct weir_errmsg *e);

/* The same for one kind ("raw" or "quarantine"). */
int recover_kind(const char *data_dir, const char *pipeline, const char *kind,
                 const char *node, recover_torn_fn on_torn, void *ctx,
                 struct recover_stats *st, struct weir_errmsg *e);

/* An on_torn that files each piece in quarantine: ctx is a struct
 * quar_writer *; the record has reason "torn", no peer, and an error naming
 * the segment and offset; it is fsynced (seg_sync) before returning. */
int recover_torn_to_quarantine(void *ctx, const char *seg_path,
                               uint64_t offset, const void *bytes,
                               size_t len);

/*
 * Take the lock that makes this process the only one acting as node on
 * data_dir (<data_dir>/_node-<node>.lock, flock); creates data_dir. Keep
 * *fd open for the life of the process. WEIR_ECONFLICT if another process
 * holds it.
 */
int recover_lock_node(const char *data_dir, const char *node, int *fd,
                      struct weir_errmsg *e);

#endif
