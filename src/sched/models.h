/*
 * models.h - SQL models: one partition of a model computed by DuckDB from
 * its inputs (pipelines or other models, as views limited to the
 * partition) and the config's dimension tables, then loaded into each of
 * its outputs (the lake, PostgreSQL, MySQL, a Parquet folder), idempotently; and each
 * partition's run state, kept in data_dir. docs/models.md is the user's
 * guide; the scheduler (sched/scheduler.h) and `weir run` call this.
 *
 * The model's dataset is <data_dir>/<model>/, laid out like a pipeline's
 * (parquet/<partition>/part-*.parquet, _log/) without raw segments. Its
 * table log holds, whatever the outputs, one app entry per partition run:
 *
 *   "run:date=2025-09-02/hour=10": {"status":"ok","at":"<RFC 3339>",
 *       "rows":3,"attempts":0,"next_try":"<RFC 3339>",
 *       "inputs":"telemetry=9f3c...;","error":""}
 *
 * A run of [start, end):
 *   1. take <model>/_run.lock (one run of a model at a time per machine);
 *   2. DuckDB: a view per dimension, a view per input holding only the
 *      input's committed Parquet files of the partitions overlapping
 *      [start, end), then CREATE TEMP TABLE AS the model's SELECT with
 *      $start / $end bound as TIMESTAMPTZ;
 *   3. lake output: the result as one Parquet file (also when empty, so
 *      the columns are known), placed under parquet/<partition>/;
 *   4. postgres / mysql outputs: the result as weir CSV, sink_load_partition
 *      (one transaction that replaces the partition); parquet outputs: the
 *      result replaces <path>/<partition>/<model>.parquet atomically
 *      (sinks/parquet_out.h);
 *   5. one table-log commit: add the new file, remove the partition's
 *      previous files, set the run state (ok, or failed with the error,
 *      attempts and the time of the next try).
 *
 * Readiness: an input is settled for a model partition when every input
 * partition overlapping it is closed (the wall clock is past its end plus
 * the config's grace) and has no raw segment that its table log has not
 * absorbed; a model input is settled when its state for each overlapping
 * partition is "ok". A partition is ready when every input is settled and
 * at least one has data (committed files). Each input's version is a
 * digest of the paths of its live files in those partitions (paths carry
 * the committing version, so late data, which adds a file, changes it).
 * A partition needs a run when it is ready and: it never ran, or the
 * digests differ from the last run's, or the last run failed and its
 * next_try has come.
 */
#ifndef WEIR_SCHED_MODELS_H
#define WEIR_SCHED_MODELS_H

#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "core/error.h"

struct weir_config;
struct config_model;

/* The app-map key prefix of a partition's run state. */
#define MODEL_STATE_PREFIX "run:"

/* Longest input-digest text kept in a state ("name=16 hex;" per input). */
#define MODEL_INPUTS_MAX 2048

/* One partition's last run, as recorded. */
struct model_state {
    int64_t start_ns;             /* the partition */
    char key[32];                 /* its key, date=.../hour=.. */
    int ok;                       /* 1: the last run succeeded */
    int64_t at_ns;                /* when it ended */
    uint64_t rows;
    unsigned attempts;            /* failed runs in a row (0 after ok) */
    int64_t next_try_ns;          /* failed: not retried before */
    char inputs[MODEL_INPUTS_MAX];/* the input digests it ran with */
    char error[1024];             /* failed: why */
};

/* Retry backoff after n failures in a row: MODEL_RETRY_BASE_S * 2^(n-1),
 * at most MODEL_RETRY_MAX_S (core/limits.h). */
int64_t model_backoff_ns(unsigned failures);

/* Options of a run. */
struct model_run_opts {
    int64_t now_ns;               /* 0: wtime_now_ns() */
    int wait_lock;                /* 1: wait for another run of the model;
                                     0: WEIR_EAGAIN when one is running */
    const volatile int *stop;     /* set: give up waiting (may be NULL) */
    const char *memory_limit;     /* DuckDB's; NULL: its default */
    int threads;                  /* DuckDB's; 0: its default */
};

/* What a run did. */
struct model_run_result {
    uint64_t rows;
    int lake;                     /* 1: a lake file was committed */
    unsigned loads;               /* warehouse loads done */
    uint64_t version;             /* the model table's version after */
};

/*
 * Check model m of cfg: its grain and inputs can be run (a model input
 * must have a lake output; an input's partitions must not be coarser
 * than the model's). WEIR_ECONFIG naming the model.
 */
int model_check(const struct weir_config *cfg, const struct config_model *m,
                struct weir_errmsg *e);

/*
 * Run partition [start_ns, start_ns + grain) of m, whatever its state, and
 * record the outcome in its table log (see the top). Returns 0 when every
 * output succeeded; otherwise the first error (recorded as a failed run
 * when the state could be written). WEIR_EAGAIN: another run holds the
 * model's lock (wait_lock 0 or stopped).
 */
int model_run_partition(const struct weir_config *cfg, const struct config_model *m,
                        int64_t start_ns, const struct model_run_opts *o,
                        struct model_run_result *res, struct weir_errmsg *e);

/* Readiness of one partition (see the top). */
struct model_ready {
    int settled;                  /* every input closed and compacted */
    int has_data;                 /* some input has committed files */
    char inputs[MODEL_INPUTS_MAX];/* the digests now */
};
int model_partition_ready(const struct weir_config *cfg, const struct config_model *m,
                          int64_t start_ns, int64_t now_ns, struct model_ready *r,
                          struct weir_errmsg *e);

/*
 * The partitions of m that need a run now (ready, and new, changed, or
 * failed with next_try due), ascending, into *starts (malloc'ed, free()
 * it); *n their number.
 */
int model_plan(const struct weir_config *cfg, const struct config_model *m,
               int64_t now_ns, int64_t **starts, size_t *n, struct weir_errmsg *e);

/* Every recorded state of m, ascending by partition, into *v (free()). */
int model_states(const struct weir_config *cfg, const struct config_model *m,
                 struct model_state **v, size_t *n, struct weir_errmsg *e);

/* Create one view per dimension of cfg in db (read_csv or read_parquet of
 * its file, header row expected), named after it. Used by model runs and
 * by `weir query`. */
struct sql_db;
int model_dimension_views(const struct weir_config *cfg, struct sql_db *db,
                          struct weir_errmsg *e);

/* 1 if m has a lake output. */
int model_has_lake(const struct config_model *m);

/*
 * Append a SELECT of the model's lake dataset (every committed file, with
 * date/hour from the paths, columns unified by name) to b: what `weir
 * query` shows under the model's name. A model without files yet is an
 * empty view with only the partition columns.
 */
int model_lake_view_sql(const struct weir_config *cfg, const struct config_model *m,
                        struct buf *b, struct weir_errmsg *e);

#endif
