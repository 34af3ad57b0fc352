/*
 * sql.h - weir's window onto DuckDB. This module (src/sql/) is the only
 * place that includes duckdb.h; everything else talks SQL through here.
 *
 * A struct sql_db is one in-memory DuckDB database with one connection,
 * opened with bounded memory and threads, no extension auto-loading (only
 * the built-in parquet, json and icu are used) and the time zone set to
 * UTC, so that a TIMESTAMPTZ prints the same on every machine.
 *
 * Statements run with sql_exec (no result) or sql_query (a result read row
 * by row, streamed: a large result never sits in memory whole). Values come
 * out as text (sql_result_text: DuckDB's rendering for scalars, JSON for
 * nested values) or as JSON (sql_result_json), or as integers and doubles.
 * sql_result_write prints a whole result as an aligned table, CSV (header
 * row first, RFC 4180 quoting) or JSON lines (one object per row); the
 * formats are described for users in docs/query.md.
 *
 * Building SQL: a name or a string that did not come from weir's own code
 * (a config value, a path, a field name from a schema) is never pasted into
 * SQL as is: sql_quote_ident and sql_quote_string append it quoted, so it
 * can only ever be one identifier or one string literal.
 *
 * Errors: a failing statement gives WEIR_ESQL (WEIR_ENOMEM for DuckDB's
 * out-of-memory, WEIR_EIO / WEIR_ENOSPC for its I/O errors) and fills the
 * weir_errmsg with DuckDB's message.
 *
 * Threading: a struct sql_db and its results belong to one thread at a
 * time, except sql_interrupt, which any thread may call.
 *
 * Every database has one function of weir's own (sql/ndjson.c), which the
 * lake reads raw segments with:
 *
 *   weir_read_ndjson(['a.ndjson', ...], columns = '{"ts":"BIGINT", ...}'
 *                    [, extra = '_extra'] [, hive = 'hour' | 'day']
 *                    [, max_line = BYTES])
 *
 * reads NDJSON files, one object a line (blank lines skipped), into the
 * columns given as a json_transform-style structure: "BIGINT", "DOUBLE",
 * "VARCHAR", "BOOLEAN", "JSON", {"field": type, ...} for a STRUCT, [type]
 * for a LIST. With extra, one more JSON column of that name holds the
 * members no column takes, as one object in the record's own text
 * (whitespace outside strings removed), NULL when there are none. hive
 * adds `date` DATE (and `hour` INTEGER) from the files' date=YYYY-MM-DD
 * and hour=HH directories. JSON values are the record's own text (1.50
 * stays 1.50), whitespace removed. A line that is not a JSON object, or a
 * value its column cannot hold exactly (12345678901234567890 for BIGINT,
 * 1.5 for BIGINT, a string for a STRUCT), fails the query with the file,
 * line and field. Each line is scanned once by weir's JSON scanner, in
 * parallel over units of the files; row order is not kept.
 */
#ifndef WEIR_SQL_SQL_H
#define WEIR_SQL_SQL_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "core/buf.h"
#include "core/error.h"
#include "core/limits.h"

/* The linked DuckDB library version, e.g. "v1.4.4". */
const char *sql_engine_version(void);

/* How a database is opened. Zero values take DuckDB's defaults. */
struct sql_opts {
    const char *memory_limit;   /* "2GB", "80%"; NULL: DuckDB's (80% of RAM) */
    int threads;                /* 0: DuckDB's (one per core) */
    const char *temp_directory; /* where DuckDB may spill; NULL: its default */
};

struct sql_db;
struct sql_result;

/* Open an in-memory database. On failure *out is NULL and e says why
 * (a bad memory_limit is named). */
int sql_open(const struct sql_opts *o, struct sql_db **out,
             struct weir_errmsg *e);

/* Close the database (NULL-safe). Results must be freed first. */
void sql_close(struct sql_db *db);

/* Run sql (one or more statements separated by ';'), discarding results. */
int sql_exec(struct sql_db *db, const char *sql, struct weir_errmsg *e);

/* A named parameter of sql_exec_params: $name in the SQL, bound as a
 * TIMESTAMPTZ (ns since the epoch, UTC; DuckDB keeps microseconds). */
struct sql_param {
    const char *name;           /* without the '$' */
    int64_t ts_ns;
};

/*
 * Run sql, ONE statement, as a prepared statement with params bound by
 * name ($start, $end in a model's SELECT). Parameters the statement does
 * not mention are ignored; one it mentions but is not given fails with
 * DuckDB's message. The result is discarded (use CREATE TABLE ... AS).
 */
int sql_exec_params(struct sql_db *db, const char *sql,
                    const struct sql_param *params, size_t nparams,
                    struct weir_errmsg *e);

/*
 * Run sql (one or more statements; all but the last are run for their
 * effect) and return the last statement's result in *out, to be read with
 * sql_result_next and freed with sql_result_free. Errors found while
 * executing can also surface later, from sql_result_next.
 */
int sql_query(struct sql_db *db, const char *sql, struct sql_result **out,
              struct weir_errmsg *e);

/* Free a result (NULL-safe). */
void sql_result_free(struct sql_result *r);

/* Number of columns, and the name of column col. */
size_t sql_result_columns(const struct sql_result *r);
const char *sql_result_name(const struct sql_result *r, size_t col);

/* 1 if column col holds numbers (printed right-aligned in tables). */
int sql_result_is_numeric(const struct sql_result *r, size_t col);

/* Move to the next row: 1 when there is one, 0 at the end, or a negative
 * error (e filled). Before the first call there is no current row. */
int sql_result_next(struct sql_result *r, struct weir_errmsg *e);

/* 1 if the current row's value in col is NULL. */
int sql_result_is_null(const struct sql_result *r, size_t col);

/*
 * Append the current row's value in col to out as text: numbers, dates
 * and strings as DuckDB prints them ("2025-09-02 10:00:00+00" for a
 * TIMESTAMPTZ, in UTC), nested values (STRUCT, LIST, MAP) as JSON. NULL
 * appends nothing (test sql_result_is_null). Returns 0 or the buf error.
 */
int sql_result_text(const struct sql_result *r, size_t col, struct buf *out);

/* The same as a JSON value: numbers and booleans bare, NULL as null,
 * strings and dates quoted, STRUCT and MAP as objects, LIST as arrays. */
int sql_result_json(const struct sql_result *r, size_t col, struct buf *out);

/* The value as an int64 (integer columns, and DECIMAL/DOUBLE with no
 * fraction) or a double (any number). WEIR_EINVAL for NULL or another
 * type, WEIR_ELIMIT when it does not fit. */
int sql_result_int64(const struct sql_result *r, size_t col, int64_t *v);
int sql_result_double(const struct sql_result *r, size_t col, double *v);

/* Convenience: run sql and read the first column of its first row.
 * WEIR_ENOTFOUND when there is no row; NULL is WEIR_EINVAL. */
int sql_query_int64(struct sql_db *db, const char *sql, int64_t *v,
                    struct weir_errmsg *e);
/* ... appended to out as text (NULL appends nothing and returns 0). */
int sql_query_text(struct sql_db *db, const char *sql, struct buf *out,
                   struct weir_errmsg *e);

enum sql_format { SQL_FORMAT_TABLE = 0, SQL_FORMAT_CSV, SQL_FORMAT_JSON };

/* "table", "csv", "json" -> the format; -1 for anything else. */
int sql_format_parse(const char *s);

/* Rows a table keeps in memory to align its columns (core/limits.h);
 * past it, the table prints the first rows and says how to get all (csv
 * or json stream). */
#define SQL_TABLE_MAX_ROWS WEIR_QUERY_TABLE_MAX_ROWS

/*
 * Read the rest of r and print it to f:
 *   table  aligned columns with a header and a "(N rows)" footer, numbers
 *          right-aligned, NULL shown as NULL, newlines and tabs as \n, \t;
 *   csv    a header row, then one row per line; NULL is an empty field,
 *          an empty string is "" (quoted), RFC 4180 quoting otherwise;
 *   json   one object per line, {"column": value, ...}.
 * *rows (may be NULL) gets the number of rows read. Returns 0, a result
 * error, or WEIR_EIO when f failed (a closed pipe).
 */
int sql_result_write(struct sql_result *r, enum sql_format fmt, FILE *f,
                     uint64_t *rows, struct weir_errmsg *e);

/* Ask the running statement of db to stop (from any thread, or a signal
 * handler's helper thread); it then fails with an "interrupted" error. */
void sql_interrupt(struct sql_db *db);

/* ---- quoting ------------------------------------------------------------ */

/* Append s as one SQL identifier: "s" with any '"' doubled. A NUL inside
 * s[0..n) is WEIR_EINVAL (nothing appended); invalid UTF-8 is left to
 * DuckDB, which refuses the statement. */
int sql_quote_ident(struct buf *b, const char *s);
int sql_quote_ident_n(struct buf *b, const char *s, size_t n);

/* Append s as one SQL string literal: 's' with any '\'' doubled. */
int sql_quote_string(struct buf *b, const char *s);
int sql_quote_string_n(struct buf *b, const char *s, size_t n);

#endif
