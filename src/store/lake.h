/*
 * lake.h - one pipeline's dataset as the lake's readers and writers see it:
 * its columns (typed from the schema), the SQL that reads raw segments and
 * Parquet files with those types, the schema evolution check, and a
 * reader's consistent view (committed Parquet + raw segments not absorbed).
 *
 * Columns (docs/lake.md has the full mapping table):
 *
 *   - one column per top-level property of the schema, typed from its shape
 *     (schema/shape.h): BIGINT, DOUBLE, VARCHAR, BOOLEAN, STRUCT(...), T[],
 *     or JSON; nested objects become STRUCTs when their properties can be
 *     STRUCT fields, else JSON;
 *   - `_extra JSON`: the record's top-level properties that are not
 *     columns (undeclared ones, when the schema allows them, and declared
 *     ones that cannot be a column: a name like a partition column, like
 *     _extra, empty, or equal to another one but for case), as one JSON
 *     object; NULL when there are none. Absent when the schema's root has
 *     additionalProperties: false and every property is a column;
 *   - for a Kafka pipeline, the metadata columns weir adds to its records
 *     (_kafka_topic, _kafka_partition, ...: store/kmeta.h), after the
 *     schema's; NULL when a record has no such member, never in _extra.
 *     lake_table_new refuses (WEIR_ESCHEMA) a schema that declares one;
 *   - `date DATE` and, for hourly pipelines, `hour INTEGER`: the partition,
 *     from the Hive-style path (date=2025-09-02/hour=10), never stored in
 *     the Parquet files themselves.
 *
 * A view of a dataset (lake_view_open) is what `weir query` reads. Its
 * consistency argument (docs/query.md, "Consistency"):
 *
 *   1. take the snapshot of the latest version V of the table log;
 *   2. list the raw segments until two listings agree (a listing racing
 *      a seal's rename may miss a file for that instant, never twice in a
 *      row for the same file);
 *   3. pin every segment not absorbed at V: a hard link in a private
 *      directory for a sealed one (the compactor may delete the original
 *      once it is absorbed; the link keeps the bytes), a copy of its
 *      complete lines for an active one (the writer keeps appending);
 *   4. read the latest version again: if it is not V, a commit may have
 *      absorbed a segment between 1 and 3, so drop the pins and start
 *      over (a bounded number of times).
 *
 * The compactor publishes a commit before deleting what it absorbed, so a
 * segment not absorbed at V was on disk until after V's successor was
 * published, which step 4 notices; and the Parquet files of V are never
 * deleted before the vacuum retention (days). A record is therefore counted
 * once: in Parquet if its segment was absorbed at V, else in raw.
 *
 * The private directory is <dataset>/_query/<pid>-<n>/ (hard links need
 * the same filesystem), held by a lock file while in use; if the dataset
 * is not writable it is a temporary directory and sealed segments are
 * copied. lake_query_dirs_clean removes directories left by a crash.
 */
#ifndef WEIR_STORE_LAKE_H
#define WEIR_STORE_LAKE_H

#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "core/error.h"
#include "store/partition.h"
#include "store/tablelog.h"

struct weir_config;
struct config_pipeline;
struct schema;
struct shape;

/* The name of the column holding undeclared properties. */
#define LAKE_EXTRA_COLUMN "_extra"

/* One typed column of the table. */
struct lake_col {
    char *name;                 /* the property name */
    char *type;                 /* DuckDB type text: "BIGINT", "STRUCT(...)" */
    char *json_type;            /* the same as a json_transform structure */
    const struct shape *shape;  /* into lake_table.shape */
};

/* What the time field is, for the event-time bounds of a Parquet file. */
enum lake_time_unit { LAKE_TIME_S = 0, LAKE_TIME_MS, LAKE_TIME_US, LAKE_TIME_NS,
                      LAKE_TIME_RFC3339 };

struct lake_table {
    char *name;                 /* pipeline name: view and folder name */
    char *dir;                  /* <data_dir>/<name> */
    enum part_grain grain;
    struct shape *shape;        /* owned */
    struct lake_col *cols;      /* typed columns, in schema order */
    size_t ncols;
    int has_extra;              /* the _extra column exists */
    uint64_t max_record;        /* longest line DuckDB must accept */
    char *time_expr;            /* SQL: event time in ns over the columns
                                   (NULL when the field cannot be found) */
    int time_exact;             /* time_expr is exact (an integer field) */
};

/*
 * Build the table of pipeline p of cfg from schema s, or, when s is NULL,
 * from its schema file (or the schema-less default) loaded and compiled
 * with the pipeline's options; a server passes the schema it validates
 * with, so the lake never types records by a file edited since. The error
 * names the pipeline and the schema file. A Kafka pipeline's table has the
 * metadata columns (store/kmeta.h); a schema that declares one of their
 * names is refused here, which is how `weir check` and `weir serve`
 * refuse it at start.
 */
int lake_table_new(const struct weir_config *cfg, const struct config_pipeline *p,
                   const struct schema *s, struct lake_table **out,
                   struct weir_errmsg *e);

/* The same from parts (tests): dir is the dataset directory, time_field a
 * dotted path (NULL: none). */
int lake_table_from_schema(const char *name, const char *dir,
                           enum part_grain grain, const struct schema *s,
                           const char *time_field, enum lake_time_unit unit,
                           struct lake_table **out, struct weir_errmsg *e);

void lake_table_free(struct lake_table *t);

/* ---- SQL ------------------------------------------------------------- */

/* Flags of the SELECT builders. */
enum {
    LAKE_SQL_PARTCOLS = 1 << 0,  /* add date (and hour) from the paths */
};

/*
 * Append to b a SELECT of the typed columns (and _extra) of the NDJSON
 * files paths[0..n) (n >= 1; absolute paths, quoted by the builder). With
 * LAKE_SQL_PARTCOLS the files must lie in partition directories.
 */
int lake_sql_raw(const struct lake_table *t, const char *const *paths, size_t n,
                 unsigned flags, struct buf *b);

/* Append a SELECT * of the Parquet files paths[0..n) (n >= 1), columns
 * unified by name (a column missing in a file is NULL there). */
int lake_sql_parquet(const struct lake_table *t, const char *const *paths,
                     size_t n, unsigned flags, struct buf *b);

/* Append a SELECT of no rows with the table's columns and types. */
int lake_sql_empty(const struct lake_table *t, unsigned flags, struct buf *b);

/* ---- schema evolution -------------------------------------------------- */

/*
 * Check that the table's columns can be read together with the files of
 * snapshot s (their recorded columns): a column present in both must have
 * the same type, except that a STRUCT may gain or lose fields (the fields
 * in both are checked the same way) and a LIST's items are compared
 * likewise. New columns are fine (NULL in old files), dropped ones too
 * (they stay readable). WEIR_ESCHEMA names the pipeline, the column, both
 * types and a file.
 */
int lake_check_columns(const struct lake_table *t, const struct tl_snapshot *s,
                       struct weir_errmsg *e);

/* 1 if the DuckDB type texts old and new_ may be read together as
 * described above (exposed for the tests). */
int lake_types_compatible(const char *old, const char *new_);

/* ---- a reader's view ---------------------------------------------------- */

struct lake_view {
    uint64_t version;           /* the table version it shows */
    int as_of;                  /* 1: a past version, Parquet only */
    struct tl_snapshot snap;
    char **parquet;             /* absolute paths of the live files */
    size_t nparquet;
    char **raw;                 /* pinned segments (links or copies) */
    size_t nraw;
    uint64_t raw_bytes;
    char *pin_dir;              /* the private directory, or NULL */
    int lock_fd;
    unsigned retries;           /* times step 4 sent it back */
};

/*
 * Open a view of t. as_of 0: the latest version plus the raw segments not
 * absorbed; as_of N: version N's Parquet files only (raw segments absorbed
 * after N are gone). Release with lake_view_release (also after failure).
 */
int lake_view_open(const struct lake_table *t, uint64_t as_of,
                   struct lake_view *v, struct weir_errmsg *e);

/* Drop the pins (remove the private directory) and free. */
void lake_view_release(struct lake_view *v);

/* Append the SELECT of the view's rows: the table's columns first, then
 * columns only old files have, with date/hour. */
int lake_view_sql(const struct lake_table *t, const struct lake_view *v,
                  struct buf *b);

/*
 * Remove private directories under <dataset>/_query/ that no process
 * holds (their lock is free) and that are older than min_age_ns. Returns
 * how many were removed in *n (may be NULL).
 */
int lake_query_dirs_clean(const char *dataset_dir, int64_t min_age_ns,
                          unsigned *n, struct weir_errmsg *e);

/* Tries of lake_view_open's step 4 before it gives up (WEIR_EAGAIN:
 * commits keep landing faster than a view can be pinned). */
#define LAKE_VIEW_MAX_TRIES 50

/* ---- helpers shared with the compactor --------------------------------- */

/* Append paths as a SQL list of string literals: ['a', 'b']. */
int lake_sql_path_list(struct buf *b, const char *const *paths, size_t n);

/*
 * Load and compile the schema of pipeline p with the pipeline's options:
 * its `schema` file; else, for a Kafka source with format protobuf, the
 * schema derived from its message type (protobuf_json_schema); else the
 * schema-less default. The one place that says what a pipeline validates
 * with: serve, compaction, query and requeue all call it.
 */
struct schema *lake_load_schema(const struct weir_config *cfg,
                                const struct config_pipeline *p,
                                struct weir_errmsg *e);

/*
 * The Protobuf message type of pipeline p (source.kafka.format protobuf:
 * its descriptor_set and message, nesting bounded by limits.max_depth),
 * for decoding its payloads; *out is NULL (and 0 returned) for any other
 * pipeline. Free with protobuf_free.
 */
struct protobuf;
int lake_load_protobuf(const struct weir_config *cfg, const struct config_pipeline *p,
                       struct protobuf **out, struct weir_errmsg *e);

#endif
