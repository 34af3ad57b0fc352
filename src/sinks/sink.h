/*
 * sink.h - loading one partition of a model's rows into a warehouse.
 *
 * A sink is a connection to one table of one warehouse (PostgreSQL through
 * libpq, MySQL/MariaDB through MariaDB Connector/C), opened once and used
 * for many loads. Each load replaces one partition's rows, in one
 * transaction on the server:
 *
 *   BEGIN; (create the table if missing; check its columns)
 *   DELETE FROM table WHERE weir_partition >= start AND weir_partition < end;
 *   COPY / LOAD DATA the new rows, each with weir_partition = start;
 *   COMMIT;
 *
 * so a re-run or a backfill never duplicates, and a load that dies half-way
 * (weir or the server killed, the network cut) leaves the partition as it
 * was. docs/warehouse.md is the user's reference: the protocol, the column
 * convention, the type mapping per backend, the DSN forms, what happens on
 * failure.
 *
 * Rows arrive as text in one CSV encoding ("weir CSV", sinks/csv.h) with a
 * column list naming a small set of types. The producer (DuckDB, behind
 * src/sql/) writes that encoding; each backend re-encodes rows for its
 * server. Like curl's vtls, each backend lives in one file that alone
 * includes its vendor header (postgres.c: libpq-fe.h, mysql.c: mysql.h);
 * this header is the only way in.
 *
 * Errors: every function that can fail returns 0 or a negative WEIR_E*
 * code and fills a struct weir_errmsg naming the warehouse (its DSN with
 * any password masked by config_mask_dsn), the table and, for bad data,
 * the row and column. A password never appears in a message or a log.
 *
 * Threads: a sink is used by one thread at a time; different sinks are
 * independent.
 */
#ifndef WEIR_SINKS_SINK_H
#define WEIR_SINKS_SINK_H

#include <stddef.h>
#include <stdint.h>

#include "config/config.h"
#include "core/error.h"

/* The column weir adds to every table it loads: the start of the partition
 * a row belongs to (timestamptz in PostgreSQL, DATETIME(6) UTC in MySQL).
 * A column list may not use this name. */
#define SINK_PARTITION_COLUMN "weir_partition"

/* The types a column can have; docs/warehouse.md maps each per backend. */
enum sink_type {
    SINK_BIGINT = 0,    /* 64-bit signed integer */
    SINK_DOUBLE,        /* IEEE double; text round-trips exactly (17 digits) */
    SINK_DECIMAL,       /* exact decimal, precision and scale in the column */
    SINK_VARCHAR,       /* UTF-8 text without NUL bytes */
    SINK_BOOLEAN,
    SINK_TIMESTAMP,     /* date and time without a zone, microseconds */
    SINK_TIMESTAMPTZ,   /* an instant; stored in UTC */
    SINK_DATE,
    SINK_JSON,          /* JSON text */
};

struct sink_column {
    const char *name;   /* 1..63 bytes of UTF-8, not SINK_PARTITION_COLUMN */
    enum sink_type type;
    int precision;      /* SINK_DECIMAL only: 1..38 digits */
    int scale;          /* SINK_DECIMAL only: 0..precision */
};

/*
 * Where a load's rows come from: the column list and a pull callback that
 * yields weir CSV (sinks/csv.h) in chunks of any size; a row may span
 * chunks. read() sets *data and *len to the next chunk and returns 0;
 * *len == 0 means the end. The chunk stays valid until the next call. On
 * failure it returns a negative code and fills e (the load then rolls
 * back). The sink calls read() only from inside sink_load_partition().
 */
struct sink_rows {
    const struct sink_column *columns;
    size_t ncolumns;             /* >= 1 */
    int (*read)(void *ctx, const char **data, size_t *len, struct weir_errmsg *e);
    void *ctx;
};

/* A ready-made row source over a file descriptor (a CSV file, a pipe):
 * sink_fd_source_init(&src, fd), then rows.read = sink_fd_source_read,
 * rows.ctx = &src. The fd stays the caller's to close. */
struct sink_fd_source {
    int fd;
    uint64_t bytes;              /* read so far */
    char chunk[64 * 1024];
};
void sink_fd_source_init(struct sink_fd_source *src, int fd);
int sink_fd_source_read(void *ctx, const char **data, size_t *len, struct weir_errmsg *e);

/* A ready-made row source over bytes in memory (one chunk). */
struct sink_mem_source {
    const char *data;
    size_t len;
    int done;
};
void sink_mem_source_init(struct sink_mem_source *src, const char *data, size_t len);
int sink_mem_source_read(void *ctx, const char **data, size_t *len, struct weir_errmsg *e);

/* The partition a load replaces: rows whose weir_partition lies in
 * [start_ns, end_ns), UTC ns since the epoch, start_ns < end_ns. The new
 * rows get weir_partition = start_ns. The scheduler passes an hour or a
 * day; a different grain than earlier loads still replaces cleanly (a day
 * load removes the 24 hourly partitions it covers). */
struct sink_partition {
    int64_t start_ns;
    int64_t end_ns;
};

/* How MySQL rows travel: LOAD DATA LOCAL INFILE from memory (fast; the
 * default), or batched multi-row INSERTs through a server-side prepared
 * statement (for servers that refuse local_infile). AUTO tries LOAD DATA
 * and falls back to INSERT, for the sink's lifetime, when the server says
 * local infile is disabled. */
enum sink_mysql_method { SINK_MYSQL_AUTO = 0, SINK_MYSQL_LOAD_DATA, SINK_MYSQL_INSERT };

struct sink_options {
    int no_create;                       /* 1: a missing table is an error */
    enum sink_mysql_method mysql_method;
    size_t insert_batch_rows;            /* MySQL INSERT: rows a statement (0: 1000) */
    size_t max_row_bytes;                /* one decoded row (0: WEIR_SINK_MAX_ROW) */
};

/* What a load did, for logs, status and benchmarks. */
struct sink_load_stats {
    uint64_t rows;          /* rows loaded (checked against the server's count) */
    uint64_t deleted;       /* old rows the load replaced */
    uint64_t bytes;         /* weir CSV bytes read from the source */
    int created;            /* 1: this load created the table */
    const char *method;     /* "copy", "load data", "insert" (static) */
};

struct sink;

struct sink_ops {
    const char *name;       /* "postgres", "mysql" */
    int (*open)(const char *dsn, const char *table, const struct sink_options *opt,
                struct sink **out, struct weir_errmsg *e);
    int (*load_partition)(struct sink *s, const struct sink_partition *part,
                          const struct sink_rows *rows, struct sink_load_stats *stats,
                          struct weir_errmsg *e);
    void (*close)(struct sink *s);
};

/* Every backend's struct begins with this. */
struct sink {
    const struct sink_ops *ops;
};

extern const struct sink_ops sink_postgres_ops;
extern const struct sink_ops sink_mysql_ops;

/*
 * Connect to the warehouse of kind CONFIG_OUTPUT_POSTGRES or
 * CONFIG_OUTPUT_MYSQL at dsn (already ${ENV}-expanded, see config.h) for
 * loads into table ("name" or "schema.name"; for MySQL "db.name"). opt may
 * be NULL for the defaults. Connects at once, so a bad DSN or password is
 * reported here; the table is looked at by the first load. On success *out
 * is the sink (sink_close() it); on failure *out is NULL.
 * WEIR_EUNSUPPORTED for other kinds.
 */
int sink_open(enum config_output_kind kind, const char *dsn, const char *table,
              const struct sink_options *opt, struct sink **out, struct weir_errmsg *e);

/*
 * Replace partition part of the table with the rows of rows, in one
 * transaction (see the top of this file). stats may be NULL. Creates the
 * table from the column list when missing (unless opt.no_create), and
 * refuses, naming the differences, when an existing table's columns do not
 * match the list. A broken connection (server restarted since the last
 * load) is re-established first. On any failure the transaction is rolled
 * back (or dies with the connection) and the partition keeps its old rows;
 * calling again with the same rows is the retry.
 *   WEIR_EINVAL  bad column list or partition (nothing sent)
 *   WEIR_EPARSE  a row is not valid weir CSV or a value not valid for its
 *                column type (the message names row and column)
 *   WEIR_ESCHEMA the table exists with other columns, or is not transactional
 *   WEIR_ECLOSED the connection failed; retrying later may succeed
 *   WEIR_ESQL    the server refused a statement
 *   or the row source's own error.
 */
int sink_load_partition(struct sink *s, const struct sink_partition *part,
                        const struct sink_rows *rows, struct sink_load_stats *stats,
                        struct weir_errmsg *e);

/* Disconnect and free. NULL is safe. */
void sink_close(struct sink *s);

/* "bigint", "double", "decimal", "varchar", "boolean", "timestamp",
 * "timestamptz", "date", "json". */
const char *sink_type_name(enum sink_type t);

/*
 * Parse a type as written above, also "decimal(P,S)" (sets precision and
 * scale; plain "decimal" is decimal(38,0)) and DuckDB's names,
 * case-insensitive: BIGINT, INTEGER, SMALLINT, TINYINT, UINTEGER,
 * USMALLINT, UTINYINT (bigint); HUGEINT (decimal(38,0)), UBIGINT
 * (decimal(20,0)); DOUBLE, FLOAT, REAL (double); VARCHAR, TEXT; BOOLEAN;
 * TIMESTAMP; TIMESTAMP WITH TIME ZONE, TIMESTAMPTZ; DATE; JSON. Fills
 * col's type, precision and scale; returns 0 or WEIR_EPARSE.
 */
int sink_type_parse(const char *s, struct sink_column *col);

/* Check a column list: 1..WEIR_SINK_MAX_COLUMNS columns, names valid and
 * unique (case-insensitively, as MySQL compares them), decimal bounds.
 * Returns 0 or WEIR_EINVAL with a message. */
int sink_check_columns(const struct sink_column *cols, size_t n, struct weir_errmsg *e);

#endif
