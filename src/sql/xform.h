/*
 * xform.h - a pipeline's SQL transform, run over one micro-batch at a time:
 * the single code path of both the stream (a Kafka batch, before it is
 * made durable) and `weir replay` (a partition's Parquet, read back as
 * Arrow). docs/kafka.md, "Transforms and replay", is the user's view.
 *
 * The transform is one SELECT that reads a relation named `batch`. Its
 * columns are exactly the lake columns of the pipeline P (store/lake.h:
 * the typed columns, _extra, date, hour, with the types `weir query`
 * shows for P), whatever form the batch came in: the runner casts every
 * column of the incoming Arrow batch to P's lake type by name, and a
 * column the batch lacks (Parquet written before the schema gained it)
 * is NULL. So the same SQL over P's lake view in `weir query` gives the
 * same rows.
 *
 * Each result row comes out as one JSON object (a record for the derived
 * dataset D, landed and validated like any other):
 *
 *   - every output column by name, through DuckDB's to_json: numbers bare,
 *     strings, DATE/TIMESTAMP/INTERVAL/UUID as strings, JSON columns as
 *     their JSON, STRUCT as objects, LIST as arrays, NULL as null;
 *   - except `date` and `hour`, which are left out: D's partition comes
 *     from D's event time, like every dataset's;
 *   - and `_extra` (when it is a JSON column): its members are spread
 *     into the record, so that they land in D's own _extra (SELECT * FROM
 *     batch gives D the same rows as P).
 *
 * The output columns are learnt at xform_new by running the SQL on an
 * empty batch: a SQL error, two columns with one name, or an event-time
 * field missing from the output (or of a type its time_unit cannot read)
 * refuses the transform there, before any record is read. xform_schema
 * gives D's JSON Schema from those columns and types.
 *
 * DuckDB: each transform has its own in-memory database (one thread,
 * WEIR_XFORM_MEMORY), owned by the thread that runs it. The batch enters
 * it through DuckDB's Arrow C API (duckdb_schema_from_arrow,
 * duckdb_data_chunk_from_arrow: not the deprecated arrow_scan calls),
 * exposed as the table function weir_batch() whose chunks are the batch's
 * own vectors (no copy).
 */
#ifndef WEIR_SQL_XFORM_H
#define WEIR_SQL_XFORM_H

#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "core/error.h"
#include "sql/arrow.h"

struct lake_table;
struct sql_db;
struct xform;

/* An output column of the transform. */
struct xform_col {
    char *name;
    char *type;        /* DuckDB's type text: "BIGINT", "STRUCT(a DOUBLE)" */
};

/*
 * Compile the transform sql (the text of the SELECT; a trailing ';' is
 * allowed) over the columns of in (borrowed: it must outlive the
 * transform). time_field is D's event-time field (a dotted path; its first
 * step must be an output column), time_text 1 when its unit is rfc3339
 * (a string), 0 for a number. what names the transform in messages
 * ("pipeline P: transform /x/y.sql").
 */
int xform_new(const struct lake_table *in, const char *sql, const char *time_field,
              int time_text, const char *what, struct xform **out,
              struct weir_errmsg *e);

void xform_free(struct xform *x);

/* The output columns (as learnt at xform_new; date and hour included). */
const struct xform_col *xform_columns(const struct xform *x, size_t *n);

/* Append D's JSON Schema (draft 2020-12) to out: one nullable property per
 * output column but date and hour, typed from the column's type; closed
 * (additionalProperties: false) unless the output has an _extra column. */
int xform_schema(const struct xform *x, struct buf *out);

/* Called for each output row with its JSON text (no newline; valid until
 * the next call). A non-zero return stops the run and is returned. */
typedef int xform_row_fn(void *ctx, const char *rec, size_t len);

/*
 * Run the transform over batch (its arrays move into DuckDB: each is
 * released, or taken, by the time this returns; the schema is left to
 * the caller) and call fn for every output row, in the order DuckDB
 * gives them. *rows (may be NULL) gets the number of rows. A failure of
 * the SQL on this batch (a cast that fails on one value) is WEIR_ESQL
 * with DuckDB's message; rows already passed to fn stay passed.
 */
int xform_run(struct xform *x, struct arrow_batch *batch, xform_row_fn *fn, void *ctx,
              uint64_t *rows, struct weir_errmsg *e);

/*
 * Run the transform over the rows of select, a query on db (another
 * database: replay reads a partition's Parquet there), in batches of at
 * most batch_rows rows (rounded up to whole DuckDB chunks, as a stream's
 * micro-batch is bounded by batch.max_records): each chunk goes out of db
 * as Arrow (duckdb_data_chunk_to_arrow) and into xform_run, the one code
 * path of stream and replay. *rows_in and *rows_out (may be NULL) get the
 * rows read and the rows passed to fn.
 */
int xform_run_select(struct xform *x, struct sql_db *db, const char *select,
                     uint64_t batch_rows, xform_row_fn *fn, void *ctx,
                     uint64_t *rows_in, uint64_t *rows_out, struct weir_errmsg *e);

/* Read a transform's SQL file into *out (malloc'd, NUL-terminated), at
 * most WEIR_XFORM_SQL_MAX bytes. */
int xform_read_sql(const char *path, char **out, struct weir_errmsg *e);

#endif
