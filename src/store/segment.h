/*
 * segment.h - append-only segment files: one writer set per (pipeline, kind,
 * worker thread), and a lister for the readers.
 *
 * A segment is a file of records, one per line, each ending in '\n', under
 *
 *   <data_dir>/<pipeline>/<kind>/<partition key>/<node>-<thread>-<seq>.ndjson
 *
 * where kind is "raw" (valid records by event time) or "quarantine"
 * (rejected records by arrival time, see quarantine.h). While it is being
 * written its name ends in ".ndjson.open" (active); sealing fsyncs it and
 * renames it to ".ndjson" (sealed), after which nobody changes it again:
 * sealed files are what compaction absorbs. docs/storage.md has the layout,
 * the naming and the durability rules in numbers.
 *
 * Names never repeat, also across restarts and after old segments were
 * compacted away: <seq> comes from a counter per (node, thread) kept in
 * <kind>/_seq/<node>-<thread>, reserved in blocks of SEG_SEQ_BLOCK with an
 * atomic file write, so a crash only skips numbers. Files are created with
 * O_EXCL and sealed with a rename that refuses to replace, so even a lost
 * counter file can never make a restart overwrite or truncate data.
 *
 * Threading: a writer belongs to one thread (the worker that owns the
 * connections); nothing on the write path takes a lock. seg_stats() and
 * seg_pending() may be called from any thread (metrics, status).
 *
 * Durability (struct seg_config.sync):
 *
 *   policy  a record is durable (fsynced)              seg_append returns 0
 *   ------  -----------------------------------------  ---------------------
 *   group   within fsync_interval of being taken (at    once buffered
 *           the next seg_tick after that), or as soon
 *           as fsync_bytes are pending, or at seal
 *   always  before seg_append returns 0                 once fsynced
 *   never   at seal only (handed to the OS every        once buffered
 *           128 KiB and at each tick after the
 *           interval)
 *
 * Bytes taken but not yet durable stay in the writer's buffer (bounded by
 * max_pending) until their fsync succeeded, so that a failed write or fsync
 * can be retried from memory: the file is cut back (ftruncate) to its last
 * durable record, nothing is lost, no segment ever holds a torn record
 * except after a crash (which recovery cuts, recover.h). The price is that
 * memory holds up to fsync_bytes of already-written data per writer.
 *
 * Write order follows append order across partitions: before the first
 * record for another partition, the previous partition's unwritten bytes
 * go to the OS. After a process crash what landed is therefore a prefix of
 * what was appended, with no hole, also across an hour boundary.
 *
 * Return values of seg_append (and quar_append), the backpressure contract:
 *
 *   code                  record  meaning, what the caller does
 *   --------------------  ------  ----------------------------------------
 *   0                     taken   go on (always: it is durable now)
 *   WEIR_ENOSPC, WEIR_EIO taken   kept in memory, the disk failed: stop
 *   (any other)                   reading sockets, call seg_flush() (or let
 *                                 seg_tick retry) until it returns 0; with
 *                                 always, count the record as written only
 *                                 then
 *   WEIR_EAGAIN           NOT     no room: max_pending reached or no
 *                                 partition slot while the disk fails; stop
 *                                 reading, seg_flush() later, append again
 *   WEIR_EINVAL, ENOMEM   NOT     a bad argument (start not a partition
 *                                 start, a '\n' inside, longer than
 *                                 max_pending) or out of memory
 *
 * seg_taken(rc) tells the two groups apart.
 */
#ifndef WEIR_STORE_SEGMENT_H
#define WEIR_STORE_SEGMENT_H

#include <stddef.h>
#include <stdint.h>

#include "core/error.h"
#include "store/partition.h"

enum seg_sync { SEG_SYNC_GROUP = 0, SEG_SYNC_ALWAYS, SEG_SYNC_NEVER };

/* "group" / "always" / "never", and back (-1 if none). */
const char *seg_sync_name(enum seg_sync s);
int seg_sync_parse(const char *s);

/* Sequence numbers reserved per write of the _seq counter file. */
#define SEG_SEQ_BLOCK 1024

/* Thread numbers in segment names: the server's workers are 0..1023 (the
 * config caps `workers` at 1024); this one is `weir requeue`'s (requeue.h),
 * so its segments can never take a name a server writer could take. */
#define SEG_THREAD_REQUEUE 1000000u

/* Writes to the file are batched to this size (group and never). */
#define SEG_WRITE_CHUNK (128u << 10)

/* Settings of a writer. Zero values take the defaults of core/limits.h.
 * The strings are copied by seg_writer_new. */
struct seg_config {
    const char *data_dir;        /* trusted: from the config file */
    const char *pipeline;        /* must pass fsio_name_valid */
    const char *kind;            /* "raw" or "quarantine" (fsio_name_valid) */
    const char *node;            /* this machine's name (fsio_name_valid) */
    unsigned thread;             /* worker index */
    enum part_grain grain;
    enum seg_sync sync;
    int64_t fsync_interval_ns;   /* group/never: 100 ms */
    size_t fsync_bytes;          /* group: 4 MiB */
    uint64_t segment_bytes;      /* roll size: 256 MiB */
    unsigned max_open_partitions;/* 64 */
    size_t max_pending;          /* bytes taken but not durable: 16 MiB */
};

/* Counters, since the writer was created. */
struct seg_stats {
    uint64_t records;          /* taken by seg_append */
    uint64_t bytes;            /* taken, newlines included */
    uint64_t records_durable;  /* fsynced (never policy: written) */
    uint64_t fsyncs;           /* fdatasync calls on segments that succeeded */
    uint64_t write_errors;     /* failed open/write/fsync/rename attempts */
    uint64_t segments_opened;
    uint64_t segments_sealed;
    uint64_t pending;          /* bytes taken, not durable yet (now) */
};

struct seg_writer;

/*
 * Create a writer; reads (or creates) its _seq counter, so the directory
 * <data_dir>/<pipeline>/<kind>/_seq is created. Run recovery (recover.h)
 * for this node before creating writers. At most one writer may exist per
 * (data_dir, pipeline, kind, node, thread), in one process (recover.h's
 * recover_lock_node keeps other processes out).
 */
int seg_writer_new(const struct seg_config *cfg, struct seg_writer **out,
                   struct weir_errmsg *e);

/* Close files and free memory WITHOUT flushing or sealing (as a crash
 * would, minus the page cache): call seg_close_all first. NULL-safe. */
void seg_writer_free(struct seg_writer *w);

/* Append one record (a '\n' is added) to the active segment of the
 * partition starting at part_start_ns, opening it on first write. See the
 * table above for the return codes. */
int seg_append(struct seg_writer *w, int64_t part_start_ns, const void *rec,
               size_t len);

/* 1 if seg_append's rc means the writer now holds the record. */
static inline int seg_taken(int rc)
{
    return rc != WEIR_EAGAIN && rc != WEIR_EINVAL && rc != WEIR_ENOMEM;
}

/*
 * The timer: call every few ms (at least every fsync_interval / 10) with a
 * monotonic now in ns. Group: fsyncs when the oldest pending record has
 * waited fsync_interval. Never: writes pending bytes to the OS after the
 * same interval. After a failure, retries (at most once per interval) and
 * returns the current state: 0 once the writer is healthy again.
 */
int seg_tick(struct seg_writer *w, int64_t now_ns);

/* Write and fsync everything taken so far and finish interrupted seals
 * (never policy: write, no fsync). 0 when all is durable; the error
 * otherwise (the writer keeps everything and stays failed). */
int seg_flush(struct seg_writer *w);

/* seg_flush, but fsync also under the never policy: for records that must
 * be durable whatever the policy (recovery's torn lines). */
int seg_sync(struct seg_writer *w);

/* Seal the segments of every partition whose end is <= cutoff_ns (the
 * caller passes now - grace). A later record for such a partition opens a
 * new segment. 0, or the error (the seal is retried by seg_flush/seg_tick). */
int seg_seal_before(struct seg_writer *w, int64_t cutoff_ns);

/* Shutdown: flush, fsync and seal every segment. May be called again after
 * an error. */
int seg_close_all(struct seg_writer *w);

/* Bytes taken but not durable; readable from any thread. */
size_t seg_pending(const struct seg_writer *w);

/* 0 when healthy, else the sticky error of the last failed I/O. */
int seg_error(const struct seg_writer *w);

/* The longest record seg_append takes (max_pending - 1). */
size_t seg_max_len(const struct seg_writer *w);

/* Open partitions now (for status pages). */
unsigned seg_open_partitions(const struct seg_writer *w);

/* Copy the counters; from any thread. */
void seg_stats(const struct seg_writer *w, struct seg_stats *out);

/*
 * Reserve n consecutive sequence numbers of (data_dir, pipeline, kind,
 * node, thread) from cfg for a writer that builds its own files (weir
 * requeue): *first .. *first + n - 1, from the same _seq counter file and
 * with the same rules as seg_writer (a crash only skips numbers). The
 * caller must be the only user of that (node, thread) at the time.
 */
int seg_seq_reserve(const struct seg_config *cfg, uint64_t n, uint64_t *first,
                    struct weir_errmsg *e);

/*
 * Where the writer stands, for a source that checkpoints what its segments
 * hold (the Kafka source, store/offsets.h): one mark per segment this
 * writer has a file for, with the bytes in it, and *seq_next, the lowest
 * seq any segment it opens later can get (seqs only grow, also across
 * restarts). Fills out[0..cap) and returns the number of marks, which may
 * be more than cap (call again with room for them). Meant to be called
 * right after a successful seg_flush or seg_sync, when len is every byte
 * taken so far and all of it durable (under the never policy: written).
 */
struct seg_mark {
    uint64_t seq;
    uint64_t len;
};
size_t seg_marks(const struct seg_writer *w, struct seg_mark *out, size_t cap,
                 uint64_t *seq_next);

/*
 * The durable length of the file with sequence number seq, if this writer
 * has it open: 1 and *len (bytes fsynced; under the never policy, bytes
 * handed to the OS), or 0 when it has no such file (not opened yet, or
 * sealed: a sealed file is durable whole). From any thread: the writer
 * publishes the length under a lock at each fsync, never per record. For
 * readers that must not get ahead of durability (the Kafka sink,
 * sinks/kafka_out.h).
 */
int seg_durable_len(struct seg_writer *w, uint64_t seq, uint64_t *len);

/* ---- names -------------------------------------------------------------- */

/* A segment file name, split. */
struct seg_name {
    size_t node_len;     /* the node is name[0..node_len) */
    unsigned thread;
    uint64_t seq;
    int active;          /* 1: ".ndjson.open", 0: ".ndjson" */
};

/* Parse a segment file name (no directory part); 0 or WEIR_EINVAL. */
int seg_name_parse(const char *name, struct seg_name *out);

/* 1 if name is a segment of node (active or sealed). */
int seg_name_is_node(const char *name, const char *node);

/* ---- readers ------------------------------------------------------------ */

struct seg_entry {
    char *path;            /* full path, owned by the list */
    const char *name;      /* the file name inside path */
    enum part_grain grain;
    int64_t part_start;    /* partition start, ns */
    int active;            /* 1: still written; read with seg_complete_len */
    uint64_t size;         /* st_size when listed */
    struct seg_name sn;
};

struct seg_list {
    struct seg_entry *v;
    size_t n, cap;
};

/*
 * List the segments of <data_dir>/<pipeline>/<kind>, sealed and active, of
 * every node, sorted by partition then name; a missing directory is an
 * empty list. Only partition directories (strict keys) and segment names
 * are listed; temporary files and _seq are skipped. If a rename happens
 * while listing and both names show up, the sealed one is kept.
 */
int seg_list(const char *data_dir, const char *pipeline, const char *kind,
             struct seg_list *out, struct weir_errmsg *e);
void seg_list_release(struct seg_list *l);

/*
 * The length of the file up to and including its last '\n': the part a
 * reader may use while a writer appends (a writer only ever adds whole
 * lines, and cuts back only bytes it will write again identically).
 * size is the size to look below (st_size); reads backwards from it.
 */
int seg_complete_len_fd(int fd, uint64_t size, uint64_t *len);
int seg_complete_len(const char *path, uint64_t *len);

#endif
