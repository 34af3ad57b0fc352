/*
 * compact.h - raw segments to Parquet through the table log; optimize
 * (merge a partition's small files); retention (gc); and a background
 * compactor thread for `weir serve`. docs/lake.md describes all of it for
 * users, with the on-disk result and the crash argument.
 *
 * Compaction of one partition (an hour, or a day):
 *
 *   1. its sealed segments not absorbed yet are read by DuckDB, typed from
 *      the schema (lake.h), and written as one zstd Parquet file to a
 *      temporary name under parquet/<partition>/ (tl_tmp_file);
 *   2. the file is fsynced and renamed to part-<version>-<n>.parquet
 *      (tl_place_file): DuckDB does not fsync, weir does;
 *   3. one commit adds the file and lists the segments it absorbed
 *      (tl_commit): from this instant queries read the Parquet file and
 *      skip those segments;
 *   4. the absorbed segments are deleted.
 *
 * A crash before 3 leaves an unreferenced file, removed by the next
 * recovery (tl_recover, after its grace); a crash after 3 leaves absorbed
 * segments, which recovery deletes and queries already skip. Nothing is
 * ever counted twice or lost. A partition is "closed" when the wall clock
 * (wtime_now_ns: WEIR_FAKE_NOW works) is past its end plus the grace; late
 * records for it land in a new segment and a later compaction adds another
 * file to the partition.
 *
 * Several compactors may run at once (serve and a `weir compact`, or two
 * machines): the table log settles races (a loser gets WEIR_ECONFLICT and
 * redoes the partition from a fresh snapshot). On one machine a lock file
 * (<dataset>/_compact.lock) also makes them take turns, so no work is
 * wasted.
 *
 * Crash tests: builds with WEIR_TESTING stop the process (_exit(99), as
 * abrupt as kill -9) at a named step when WEIR_CRASH_AT names it:
 * after_parquet, after_place, after_commit, mid_delete, optimize_after_commit,
 * gc_after_commit.
 */
#ifndef WEIR_STORE_COMPACT_H
#define WEIR_STORE_COMPACT_H

#include <stddef.h>
#include <stdint.h>

#include "core/error.h"

struct weir_config;
struct config_pipeline;
struct sql_db;
struct schema;

struct compact_opts {
    int all;                   /* compact every sealed segment, closed or not */
    int64_t now_ns;            /* 0: wtime_now_ns() */
    int64_t grace_ns;          /* < 0: cfg->grace_ns */
    int64_t orphan_grace_ns;   /* for tl_recover; < 0: its default (1 h). 0
                                  only when no other compactor can run */
    int progress;              /* a progress line on stderr (a terminal) */
    const char *memory_limit;  /* DuckDB's; NULL: its default */
    int threads;               /* DuckDB's; 0: one per core */
    const char *partition;     /* optimize: only this key; NULL: all */
    const struct schema *schema; /* the pipeline's compiled schema; NULL:
                                    load its file (lake_table_new) */
    /* Stop between partitions once *stop is set (may be NULL). */
    const volatile int *stop;
    /* Called with the DuckDB database while one is open, and with NULL
     * when it closes, so another thread can sql_interrupt it. */
    void (*on_db)(void *ctx, struct sql_db *db);
    void *on_db_ctx;
    /* The background compactor's memory of partitions that failed: those
     * waiting out their backoff are skipped (NULL: try every one). */
    struct compact_backoff *backoff;
};

/*
 * Partitions whose compaction failed on their data, each with the time it
 * may be tried again: WEIR_COMPACT_BACKOFF_MIN_S after the first failure,
 * doubling up to WEIR_COMPACT_BACKOFF_MAX_S, or at once when its segments
 * change (their count or total size). One per compactor; not thread-safe.
 */
struct compact_backoff;
struct compact_backoff *compact_backoff_new(void);
void compact_backoff_free(struct compact_backoff *b);
/* 1 when partition key of pipeline may not be tried at now_ns, given the
 * fingerprint of its segments. */
int compact_backoff_wait(const struct compact_backoff *b, const char *pipeline,
                         const char *key, uint64_t fingerprint, int64_t now_ns);
/* Record a failure (the delay doubles) or a success (forgotten). */
int compact_backoff_failed(struct compact_backoff *b, const char *pipeline,
                           const char *key, uint64_t fingerprint, int64_t now_ns);
void compact_backoff_done(struct compact_backoff *b, const char *pipeline,
                          const char *key);

struct compact_stats {
    unsigned long partitions;      /* compacted (or optimized) */
    unsigned long partitions_todo; /* found to work on */
    unsigned long files_added;
    unsigned long files_removed;
    unsigned long segments;        /* absorbed */
    unsigned long partitions_deferred; /* failed before, waiting out a backoff */
    unsigned long conflicts;       /* commits lost to another writer, redone */
    unsigned long partitions_failed; /* refused by DuckDB (compact_failure) */
    uint64_t rows;
    uint64_t bytes_in;             /* raw bytes read (compact) or Parquet (optimize) */
    uint64_t bytes_out;            /* Parquet bytes written */
    uint64_t version;              /* the table version at the end */
    int64_t elapsed_ns;
};

/*
 * Compact the closed partitions of pipeline p (every sealed segment with
 * o->all). Adds to *st (zero it first). Errors name the pipeline, the
 * partition and the file; a schema change that would make old Parquet
 * unreadable is WEIR_ESCHEMA and compacts nothing.
 *
 * A partition whose segments DuckDB refuses (a line that is not JSON, a
 * value its column cannot hold: the message names the segment, the line
 * and the field) does not stop the others: it is logged (log_error), left
 * raw (a query that reads it fails on the same line, naming it), counted in
 * st->partitions_failed and recorded for `weir status`
 * (compact_failures_read); the run goes on with the next partition and
 * returns WEIR_ESQL at the end, e naming the first failure. The record is
 * cleared when the partition compacts, or its segments are gone.
 */
int compact_pipeline(const struct weir_config *cfg, const struct config_pipeline *p,
                     const struct compact_opts *o, struct compact_stats *st,
                     struct weir_errmsg *e);

/* A partition whose last compaction failed on its data. */
struct compact_failure {
    char partition[32];        /* date=2025-09-02/hour=10 */
    int64_t since_ns;          /* when it first failed with this reason */
    char reason[1024];         /* the message: segment, line, field */
};

/*
 * The partitions of pipeline p whose compaction failed on their data, as
 * the last compactions recorded them (<dataset>/_compact.failed: one line
 * per partition, "<partition> TAB <since, ns> TAB <reason>", replaced
 * atomically). *out (free() it) gets *n entries; none is 0 entries.
 */
int compact_failures_read(const struct weir_config *cfg, const struct config_pipeline *p,
                          struct compact_failure **out, size_t *n,
                          struct weir_errmsg *e);

/* Merge, per partition (o->partition: only that one), the live Parquet
 * files of a partition that has two or more into one file, in one commit
 * (add the new file, remove the old ones; vacuum deletes them later). */
int compact_optimize(const struct weir_config *cfg, const struct config_pipeline *p,
                     const struct compact_opts *o, struct compact_stats *st,
                     struct weir_errmsg *e);

struct gc_stats {
    unsigned long parquet_expired;     /* files removed from the table */
    unsigned long parquet_deleted;     /* files deleted by vacuum */
    unsigned long raw_deleted;         /* expired raw segments deleted */
    unsigned long quarantine_deleted;  /* expired quarantine segments */
    unsigned long orphans_removed;     /* by recovery */
    unsigned long query_dirs_removed;  /* left by crashed queries */
    uint64_t bytes_deleted;
};

/*
 * Retention for pipeline p (config retention.raw / parquet / quarantine,
 * each by partition time; "off" keeps forever): expired Parquet files
 * leave the table by one commit and are deleted by the vacuum after its
 * retention (TL_DEFAULT_RETENTION_NS), raw and quarantine segments of
 * expired partitions are deleted. Also runs recovery and the vacuum, and
 * removes private directories of crashed queries. Adds to *st.
 */
int compact_gc(const struct weir_config *cfg, const struct config_pipeline *p,
               const struct compact_opts *o, struct gc_stats *st,
               struct weir_errmsg *e);

/* ---- the background compactor of `weir serve` ------------------------- */

/* How often the compactor looks, its DuckDB limits: core/limits.h,
 * WEIR_COMPACTOR_*. */

struct compactor;

/*
 * Start a thread that compacts the pipelines of cfg whose compaction is
 * auto, every WEIR_COMPACTOR_INTERVAL_S and at each compactor_kick, and
 * runs compact_gc for every pipeline every WEIR_COMPACTOR_GC_INTERVAL_S (first at
 * start). schemas (may be NULL: each run loads the files) holds the
 * compiled schema of each pipeline of cfg, by index: the ones the server
 * validates with. cfg and schemas must outlive the compactor. Errors are
 * logged and retried at the next round.
 */
int compactor_start(const struct weir_config *cfg,
                    struct schema *const *schemas, struct compactor **out,
                    struct weir_errmsg *e);

/* Look now (an hour just closed). Any thread. */
void compactor_kick(struct compactor *c);

/* Interrupt the running statement, wait for the thread, free (NULL-safe). */
void compactor_stop(struct compactor *c);

#endif
