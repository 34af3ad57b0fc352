/*
 * tablelog.h - the table log of one dataset: which Parquet files make up the
 * table at each version, which raw segments they absorbed, and small
 * application state, in an append-only log of JSON commits (Delta Lake's
 * idea, at home). docs/tablelog.md has the file formats as tables.
 *
 * On disk, under the dataset directory (<data_dir>/<pipeline>):
 *
 *   _log/00000000000000000001.json            commit of version 1 (20 digits)
 *   _log/00000000000000000100.checkpoint.json the whole state at version 100
 *   _log/_last_checkpoint                     hint: {"version":100}
 *   parquet/date=2025-09-02/hour=10/part-<20 digits>-<n>.parquet
 *
 * A commit is written to a temporary name, fsynced, and published under the
 * next version number with an exclusive create (a rename that never
 * replaces, as in fsio_publish_excl): either the whole commit is visible
 * under its number or nothing is. A writer that loses the race for a
 * number re-reads the log, checks that its commit still applies, and takes
 * the next number; if it no longer applies (a file it
 * removes is gone, a segment it absorbs was absorbed by someone else), the
 * result is WEIR_ECONFLICT and the caller redoes its work from a fresh
 * snapshot. So two compactors, in two processes or on two machines sharing
 * the directory, commit safely without any lock.
 *
 * The state at version N (a snapshot) is: the live files (added and not
 * removed by versions <= N), the removed files not yet deleted from disk
 * (tombstones, for vacuum), the raw segments absorbed into Parquet (so a
 * query can leave them out of the raw side), and app entries: each commit
 * may carry a JSON object whose top-level members are merged into a map,
 * the latest value per key winning (a null value deletes the key). Models
 * keep partition states there, Kafka sources their offsets.
 *
 * The rules a writer of Parquet files follows (the compactor, optimize):
 *
 *   1. tl_tmp_file() claims a temporary name beside the final place
 *      ("part-...parquet.tmp.<pid>.<k>", created empty with O_EXCL, so two
 *      machines never share it); DuckDB writes the Parquet there.
 *   2. tl_place_file() fsyncs it and renames it, without ever replacing, to
 *      its final name "part-<version>-<n>.parquet", and fsyncs the directory.
 *   3. tl_commit() adds it (and lists the absorbed segments). tl_commit
 *      touches each added file's mtime just before publishing.
 *   4. Only after tl_commit returned 0: delete the absorbed segments.
 *      After ANY error (ECONFLICT included) delete nothing yourself: leave
 *      unreferenced Parquet to tl_recover's orphan rule, segments where they
 *      are. (An error can come after the commit became visible: a failed
 *      directory fsync. Deleting "your" files then would break the table.)
 *
 * tl_recover() (at open-for-write) removes Parquet files and temporary files
 * that no version references and whose mtime is older than a grace, and
 * absorbed segments still on disk. A Parquet file being written or placed
 * is always younger than the grace (it is written to, or touched by
 * tl_commit, moments before it is referenced), so recovery never deletes a
 * file under a running writer provided the grace is longer than the longest
 * pause in a writer's writes (default one hour). Pass a grace of 0 only
 * when no other writer can be running (tests, a single node that holds its
 * node lock and is the only compactor of the dataset).
 *
 * Checkpoints: every TL_CHECKPOINT_INTERVAL versions the committer writes
 * the whole state to <version>.checkpoint.json (atomically) and the hint,
 * so opening reads one checkpoint and at most ~100 commits, whatever the
 * length of the history.
 *
 * Vacuum (tl_vacuum): deletes from disk the files removed by versions
 * committed longer than the retention ago, and old log files, after
 * recording in a "vacuum" commit the oldest version still readable (the
 * horizon). Snapshots of versions older than the horizon are refused with
 * WEIR_ENOTFOUND ("older than the oldest kept"), never served with missing
 * files. Every version committed within the retention stays readable.
 *
 * Errors: a commit or checkpoint file that does not parse or breaks the
 * format is WEIR_ECORRUPT with the file name in the message; nothing is
 * ever silently skipped. A missing _log directory is an empty table
 * (version 0).
 *
 * Threading: a struct tablelog and the snapshots made from it belong to one
 * thread at a time. Any number of processes may use the same log at once.
 */
#ifndef WEIR_STORE_TABLELOG_H
#define WEIR_STORE_TABLELOG_H

#include <stddef.h>
#include <stdint.h>

#include "core/error.h"
#include "core/limits.h"

/* Versions are written with this many digits ("%020llu"). */
#define TL_VERSION_DIGITS 20

/* A checkpoint is written at every version that is a multiple of this. */
#define TL_CHECKPOINT_INTERVAL 100

/* Defaults of the graces (core/limits.h gives the reasons). */
#define TL_DEFAULT_ORPHAN_GRACE_NS \
    ((int64_t)WEIR_DEFAULT_ORPHAN_GRACE_S * 1000000000LL)       /* 1 h */
#define TL_DEFAULT_RETENTION_NS \
    ((int64_t)WEIR_DEFAULT_VACUUM_RETENTION_S * 1000000000LL)   /* 7 d */

/* Longest path (relative to the dataset directory) the log accepts. */
#define TL_PATH_MAX 1024

/* ---- what a commit holds ------------------------------------------------ */

/* One column of a Parquet file as it was written: name and DuckDB type
 * ("BIGINT", "TIMESTAMP WITH TIME ZONE", "STRUCT(a DOUBLE, b VARCHAR)"). */
struct tl_column {
    const char *name;
    const char *type;
};

/*
 * A Parquet file of the table. In a commit (input) the caller owns the
 * strings; in a snapshot the snapshot owns them.
 *
 * path is relative to the dataset directory and must lie under "parquet/"
 * ("parquet/date=2025-09-02/hour=10/part-00000000000000000042-0.parquet"):
 * no "..", no "//", no leading '/', at most TL_PATH_MAX bytes, printable
 * ASCII. partition is the partition key ("date=2025-09-02/hour=10", or ""
 * for an unpartitioned table). min_time/max_time are the smallest and
 * largest event time in the file (ns since the epoch, inclusive; both 0
 * when rows is 0). bytes must be the file's size on disk when committed.
 */
struct tl_file {
    const char *path;
    const char *partition;
    uint64_t rows;
    uint64_t bytes;
    int64_t min_time;
    int64_t max_time;
    const struct tl_column *columns;
    size_t ncolumns;
    uint64_t version;     /* snapshot: the version that added it (ignored
                             in a commit) */
};

/* tl_commit.flags */
enum {
    /* Conflict if any version was committed after read_version, whatever
     * it holds (for a model's state that must move in strict sequence). */
    TL_COMMIT_STRICT = 1 << 0,
};

/*
 * A commit to make. All pointers are the caller's and only read.
 *
 * operation: "compact", "optimize", "gc", "model", ... ([a-z_]{1,32};
 *   "vacuum" is reserved for tl_vacuum).
 * read_version: the snapshot version the work was based on (0: none);
 *   recorded, and used by TL_COMMIT_STRICT and txn.
 * txn: optional idempotence key (printable ASCII, <= 128 bytes). If a
 *   commit with the same txn was published after read_version, tl_commit
 *   returns 0 and that version instead of committing again, so a caller
 *   that got an error of unknown outcome may simply call again. (It reads
 *   the commits after read_version to find out: keep read_version the
 *   snapshot the work started from, not 0.)
 * add: files added; each must exist with st_size == bytes and must not be
 *   live already.
 * remove: paths of live files removed from the table (logical delete;
 *   vacuum deletes them from disk later). Each must be live at the version
 *   the commit lands on, else WEIR_ECONFLICT.
 * absorbed: raw segments whose records are now in the added files, as paths
 *   relative to the dataset directory
 *   ("raw/date=2025-09-02/hour=10/node1-0-0000000042.ndjson"; the file name
 *   must parse as a sealed segment name). Each must still exist on disk
 *   and not be absorbed yet, else WEIR_ECONFLICT.
 * app: NULL, or the text of one JSON object (app_len bytes); its members
 *   are merged into the app map (null deletes a key). Keys: 1..256 bytes
 *   of printable ASCII without '"' or '\\'.
 */
struct tl_commit {
    const char *operation;
    uint64_t read_version;
    unsigned flags;
    const char *txn;
    const struct tl_file *add;
    size_t nadd;
    const char *const *remove;
    size_t nremove;
    const char *const *absorbed;
    size_t nabsorbed;
    const char *app;
    size_t app_len;
};

/* ---- a snapshot: the state at one version ------------------------------- */

/* A removed file still on disk (until vacuum). */
struct tl_tombstone {
    const char *path;
    uint64_t version;     /* the version that removed it */
    int64_t timestamp;    /* that version's commit time, ns */
};

/* A raw segment whose records are in Parquet. */
struct tl_absorbed {
    const char *path;     /* "raw/date=.../hour=10/node1-0-0000000042.ndjson" */
    const char *name;     /* points at the file name inside path */
    uint64_t version;     /* the version that absorbed it */
    int64_t timestamp;    /* that version's commit time, ns */
};

/* One member of the app map. */
struct tl_app {
    const char *key;
    const char *json;     /* the value's JSON text, verbatim, NUL-terminated */
    size_t json_len;
    uint64_t version;     /* the version that last set it */
};

struct tl_snapshot {
    uint64_t version;     /* 0: the empty table (no commit yet) */
    int64_t timestamp;    /* commit time of version, ns (0 for version 0) */
    uint64_t oldest;      /* oldest version a snapshot can be taken of */
    const struct tl_file *files;          /* live, sorted by path */
    size_t nfiles;
    const struct tl_tombstone *removed;   /* sorted by path */
    size_t nremoved;
    const struct tl_absorbed *absorbed;   /* sorted by name */
    size_t nabsorbed;
    const struct tl_app *app;             /* sorted by key */
    size_t napp;
    void *priv;           /* memory of the above; do not touch */
};

/* ---- the log ------------------------------------------------------------ */

struct tablelog;

/*
 * Open the log of the dataset directory (<data_dir>/<pipeline>). Reads
 * nothing yet (the first call that needs the state reads the newest
 * checkpoint and the commits after it) and creates nothing: a read-only
 * user such as a query never writes. A dataset without _log/ is an empty
 * table.
 */
int tl_open(const char *dataset_dir, struct tablelog **out,
            struct weir_errmsg *e);

/* Close and free. NULL-safe. Snapshots taken from t stay valid. */
void tl_free(struct tablelog *t);

/* The dataset directory given to tl_open. */
const char *tl_dir(const struct tablelog *t);

/*
 * Take the snapshot of version (0: the latest) into out, which the caller
 * releases with tl_snapshot_release (also after a failure: out is then
 * empty). A version past the latest is WEIR_ENOTFOUND ("version 12 does not
 * exist, the latest is 9"); one older than the oldest kept (vacuumed) is
 * WEIR_ENOTFOUND too, naming the oldest. Reads the newest checkpoint at or
 * below version and the commits after it.
 */
int tl_snapshot(struct tablelog *t, uint64_t version, struct tl_snapshot *out,
                struct weir_errmsg *e);

/* Free a snapshot's memory; out is zeroed. Safe on a zeroed snapshot. */
void tl_snapshot_release(struct tl_snapshot *s);

/* 1 if the segment is absorbed at s. name_or_path is a file name
 * ("node1-0-0000000042.ndjson") or any path ending in one (only the last
 * component is compared: segment names are unique forever, storage.md). */
int tl_snapshot_absorbed(const struct tl_snapshot *s, const char *name_or_path);

/* The live file with this relative path, or NULL. */
const struct tl_file *tl_snapshot_file(const struct tl_snapshot *s,
                                       const char *path);

/* The JSON text of the app entry key, or NULL. */
const struct tl_app *tl_snapshot_app(const struct tl_snapshot *s,
                                     const char *key);

/* The latest version now on disk (re-reads the log's tail); 0: empty. */
int tl_latest(struct tablelog *t, uint64_t *version, struct weir_errmsg *e);

/*
 * Commit c as the next version; *version_out (may be NULL) gets its number.
 * Creates _log/ if needed. Retries with the next number while others win
 * the race (up to TL_MAX_COMMIT_ATTEMPTS, then WEIR_EAGAIN), re-checking
 * that c still applies each time:
 *
 *   0               published as *version_out, durable (dir fsynced)
 *   WEIR_ECONFLICT  c no longer applies (see struct tl_commit); nothing
 *                   was published; take a new snapshot and redo the work
 *   WEIR_EINVAL     c is malformed (bad path, added file missing or of
 *                   another size, a path twice, ...): a bug in the caller
 *   WEIR_ENOSPC, WEIR_EIO, ...  the disk failed. Nothing was published,
 *                   EXCEPT if the failure was the directory fsync after the
 *                   name appeared: then *version_out is set and the commit
 *                   is visible but may not survive a power loss. Either way
 *                   the caller deletes nothing and may retry (with txn set,
 *                   a retry returns the published version).
 *
 * After publishing a version that is a multiple of TL_CHECKPOINT_INTERVAL
 * it writes the checkpoint; a failure there is logged, not returned (the
 * commit stands; the next checkpoint or tl_recover writes one).
 */
#define TL_MAX_COMMIT_ATTEMPTS 1000
int tl_commit(struct tablelog *t, const struct tl_commit *c,
              uint64_t *version_out, struct weir_errmsg *e);

/* Write the checkpoint of the latest version now (and the hint). */
int tl_checkpoint(struct tablelog *t, struct weir_errmsg *e);

/* ---- recovery and vacuum ------------------------------------------------ */

struct tl_recover_opts {
    /* Unreferenced Parquet and temporary files (parquet/, _log/) younger
     * than this are left alone: a writer may still be writing or about to
     * commit them. TL_DEFAULT_ORPHAN_GRACE_NS; 0 only with no other writer. */
    int64_t orphan_grace_ns;
    /* Absorbed segments are deleted once their absorbing version is older
     * than this (0: at once). A query that listed raw segments before the
     * absorbing commit may still read them for that long. */
    int64_t absorbed_grace_ns;
};

struct tl_recover_stats {
    unsigned long orphans_removed;     /* unreferenced part files */
    unsigned long tmp_removed;         /* temp files in parquet/ and _log/ */
    unsigned long absorbed_removed;    /* absorbed segments still on disk */
    unsigned long young_kept;          /* candidates left for being young */
    unsigned long unknown_kept;        /* files of other names, untouched */
    unsigned long failed;              /* unlink failures (first one returned) */
    int checkpoint_written;            /* 1 if a missing checkpoint was made */
};

/*
 * Finish or roll back what a crash interrupted, as described at the top:
 * removes orphans and temporary files past the grace, and absorbed segments
 * still on disk; writes the latest checkpoint if the last one is more than
 * TL_CHECKPOINT_INTERVAL versions old. Lists the files first and reads the
 * log after, so a file committed meanwhile is seen as referenced. Goes on
 * after an unlink failure and returns the first error. opts NULL: defaults.
 * Adds to *st (zero it first; may be NULL).
 */
int tl_recover(struct tablelog *t, const struct tl_recover_opts *opts,
               struct tl_recover_stats *st, struct weir_errmsg *e);

struct tl_vacuum_stats {
    uint64_t horizon;                  /* oldest readable version after */
    unsigned long files_deleted;       /* removed Parquet files deleted */
    uint64_t bytes_deleted;
    unsigned long log_files_deleted;   /* commits and checkpoints */
    unsigned long absorbed_forgotten;  /* absorbed entries dropped */
};

/*
 * Delta's vacuum, with retention_ns (TL_DEFAULT_RETENTION_NS when < 0):
 *
 *   1. horizon = the newest version committed before now - retention
 *      (commit timestamps never go backwards). Versions >= horizon stay
 *      readable; every version committed within the retention is one.
 *   2. Writes the checkpoint of the horizon if there is none, then a commit
 *      {"operation":"vacuum","horizon":H} that drops the tombstones of
 *      versions <= H ("purge") and the absorbed entries <= H whose segment
 *      files are gone ("forget"), so the state stays bounded. No commit if
 *      there is nothing new.
 *   3. Deletes the purged files from disk, then the commit and checkpoint
 *      files older than the oldest readable version, oldest first (readers
 *      rely on that order, see docs/tablelog.md). A crash in between leaves
 *      files that tl_recover sees as orphans, and log files the next vacuum
 *      deletes.
 *
 * A query holding a snapshot taken within the retention never loses a
 * file under it. Adds to *st (may be NULL).
 */
int tl_vacuum(struct tablelog *t, int64_t retention_ns,
              struct tl_vacuum_stats *st, struct weir_errmsg *e);

/* ---- names -------------------------------------------------------------- */

/* "part-<version, 20 digits>-<n>.parquet" into out; its length, or 0 if
 * cap is too small. */
size_t tl_part_file_name(uint64_t version, unsigned n, char *out, size_t cap);

/* 1 if name is a final part file name; sets *version and *n (may be NULL). */
int tl_part_name_parse(const char *name, uint64_t *version, unsigned *n);

/* "_log/<version, 20 digits>.json" relative name of a commit, into out. */
size_t tl_commit_file_name(uint64_t version, char *out, size_t cap);

/*
 * Claim a temporary file for a new Parquet file of partition (a key from
 * part_key_format, or "" for none): creates <dataset>/parquet/<partition>/
 * if needed and an empty "part-<v>-0.parquet.tmp.<pid>.<k>" with O_EXCL
 * (v: the latest version + 1, a hint only). The full path goes into out.
 * DuckDB then writes (replaces) that file: COPY ... TO '<out>' (FORMAT
 * parquet, USE_TMP_FILE false) - the name is a temporary one already. (Were
 * DuckDB to use its own "tmp_<name>", recovery would still recognise that
 * name as temporary.)
 */
int tl_tmp_file(struct tablelog *t, const char *partition, char *out,
                size_t cap, struct weir_errmsg *e);

/*
 * Make the finished temporary file tmp_path durable and give it its final
 * name in the same directory: fsync it, rename it without replacing to
 * part-<v>-<n>.parquet (v: the latest version + 1, n: the first free from
 * 0), fsync the directory. rel_out gets the path relative to the dataset
 * directory (for struct tl_file.path); *bytes (may be NULL) the file size.
 */
int tl_place_file(struct tablelog *t, const char *tmp_path, char *rel_out,
                  size_t cap, uint64_t *bytes, struct weir_errmsg *e);

/* ---- for tests and the fuzzer ------------------------------------------- */

/*
 * Parse a commit (checkpoint) file's bytes, as read from name (used in
 * messages), and check them against the format: 0, or WEIR_ECORRUPT naming
 * name and what is wrong. What parses is written back, parsed and written
 * again, and the two writings must be identical: the process abort()s
 * otherwise (for the fuzzer, fuzz/fuzz_tablelog.c).
 */
int tl_parse_commit_text(const char *name, const char *text, size_t len,
                         struct weir_errmsg *e);
int tl_parse_checkpoint_text(const char *name, const char *text, size_t len,
                             struct weir_errmsg *e);

#ifdef WEIR_TESTING
/* Steps of tl_commit at which a test can make the process _exit(99): set
 * the step number in the WEIR_TL_CRASH_AT environment variable, or call
 * tl_test_crash_at(step) (0: never). */
enum tl_crash_step {
    TL_CRASH_NONE = 0,
    TL_CRASH_BEFORE_WRITE,      /* commit bytes built, nothing written */
    TL_CRASH_AFTER_PUBLISH,     /* the version is visible */
    TL_CRASH_BEFORE_CHECKPOINT, /* published, checkpoint due, not written */
    TL_CRASH_IN_VACUUM,         /* vacuum committed, files not deleted */
    TL_CRASH__COUNT
};
void tl_test_crash_at(int step);
#endif

#endif
