/*
 * wh.h - the warehouse backends' shared, vendor-free half: SQL text, value
 * checks and per-server row encodings, MySQL DSNs.
 *
 * postgres.c and mysql.c talk to their client libraries; everything that
 * can be decided without a server lives here, so tests/unit/test_sinks.c
 * checks it without one. Nothing outside src/sinks/ should need this
 * header (use sink.h).
 *
 * Quoting: identifiers are quoted here, not by PQescapeIdentifier or
 * mysql_real_escape_string, so the SQL built can be tested without a
 * connection. It is exact because both backends fix the connection's
 * character set to UTF-8 (client_encoding UTF8, utf8mb4) and an identifier
 * must be valid UTF-8 without NUL: then doubling '"' (PostgreSQL) or '`'
 * (MySQL) is the whole of quoting. MySQL string literals also double
 * backslashes: the MySQL backend sets its own sql_mode, without
 * NO_BACKSLASH_ESCAPES.
 */
#ifndef WEIR_SINKS_WH_H
#define WEIR_SINKS_WH_H

#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "core/error.h"
#include "sinks/csv.h"
#include "sinks/sink.h"

enum wh_dialect { WH_POSTGRES = 0, WH_MYSQL };

/* Longest identifier: PostgreSQL's NAMEDATALEN - 1 bytes (it would
 * silently truncate a longer one); MySQL allows 64 characters. */
#define WH_PG_IDENT_MAX 63
#define WH_MYSQL_IDENT_MAX 64

/* A table name split into its optional schema (MySQL: database) and name,
 * both unquoted, as in the config ("name" or "schema.name"). */
struct wh_table {
    char schema[256];   /* "" when not given */
    char name[256];
};

/* Parse "name" or "schema.name" (a '.' inside "double quotes" or
 * `backticks` belongs to the name, and the quotes are removed). Checks
 * length and UTF-8. Returns 0 or WEIR_EINVAL with a message. */
int wh_table_parse(enum wh_dialect d, const char *table, struct wh_table *t,
                   struct weir_errmsg *e);

/* Append name quoted for d. WEIR_EINVAL for invalid UTF-8, NUL or a name
 * too long. */
int wh_put_ident(enum wh_dialect d, struct buf *b, const char *name);
/* Append the table, schema-qualified when it has one. */
int wh_put_table(enum wh_dialect d, struct buf *b, const struct wh_table *t);
/* Append s as a string literal of d ('...'). */
int wh_put_literal(enum wh_dialect d, struct buf *b, const char *s, size_t n);

/* Format a partition start as the server reads it: PostgreSQL
 * "2025-09-02 10:00:00+00", MySQL "2025-09-02 10:00:00.000000" (UTC). */
size_t wh_format_partition(enum wh_dialect d, int64_t ns, char *out, size_t cap);

/* The column's SQL type in d (docs/warehouse.md has the table). */
int wh_put_type(enum wh_dialect d, struct buf *b, const struct sink_column *c);

/* Statement texts. Each appends one complete statement, without ';'. */
int wh_sql_create(enum wh_dialect d, struct buf *b, const struct wh_table *t,
                  const struct sink_column *cols, size_t n);
/* PostgreSQL only: the index on weir_partition that makes DELETE cheap
 * (MySQL's CREATE TABLE has it inline). */
int wh_sql_create_index(struct buf *b, const struct wh_table *t);
int wh_sql_delete(enum wh_dialect d, struct buf *b, const struct wh_table *t,
                  const struct sink_partition *part);
/* PostgreSQL: COPY t (cols..., weir_partition) FROM STDIN (FORMAT csv). */
int wh_sql_copy(struct buf *b, const struct wh_table *t, const struct sink_column *cols,
                size_t n);
/* MySQL: LOAD DATA LOCAL INFILE ... (cols...) SET weir_partition = start. */
int wh_sql_load_data(struct buf *b, const struct wh_table *t,
                     const struct sink_column *cols, size_t n, int64_t start_ns);
/* MySQL: INSERT INTO t (cols..., weir_partition) VALUES (?,..),.. nrows. */
int wh_sql_insert(struct buf *b, const struct wh_table *t, const struct sink_column *cols,
                  size_t n, size_t nrows);

/*
 * An existing table's column as the server describes it: name, and type as
 * PostgreSQL's pg_type.typname ("int8", "float8", "timestamptz", ...) or
 * MySQL's information_schema DATA_TYPE ("bigint", "datetime", ...).
 */
struct wh_existing_column {
    const char *name;
    const char *type;
};

/*
 * Whether a table with columns have (in table order) can take rows of
 * cols plus weir_partition: the same names (MySQL: case-insensitively),
 * no more and no fewer, each of a type that holds the column's values
 * exactly (docs/warehouse.md lists what is accepted). Returns 0, or
 * WEIR_ESCHEMA with a message listing every difference and the way out.
 * display is the table as shown in the message.
 */
int wh_match_columns(enum wh_dialect d, const char *display, const struct sink_column *cols,
                     size_t n, const struct wh_existing_column *have, size_t nhave,
                     struct weir_errmsg *e);

/*
 * Check one non-NULL value against its column type and append the text
 * the server of d reads for it, unquoted (MySQL's timestamps converted to
 * UTC, booleans to 1/0). The INSERT path binds this text; wh_put_row
 * wraps it for COPY and LOAD DATA. row and col (1-based) are for the
 * message. Returns 0, WEIR_EPARSE with a message for a bad value, or the
 * buf's error.
 */
int wh_put_value(enum wh_dialect d, struct buf *b, const struct sink_column *c,
                 const struct csv_field *f, uint64_t row, size_t col, struct weir_errmsg *e);

/*
 * Append one row in the load encoding of d, ending with LF:
 *   PostgreSQL COPY (FORMAT csv): weir CSV, strings always quoted, then
 *     ",<partition>" (partition as wh_format_partition);
 *   MySQL LOAD DATA (FIELDS TERMINATED BY ',' ENCLOSED BY '"' ESCAPED BY ''):
 *     NULL as the bare word NULL, strings always quoted (so the string
 *     "NULL" stays a string), other values as wh_put_value; partition is
 *     ignored (LOAD DATA's SET clause carries it).
 * On failure b is left as it was.
 */
int wh_put_row(enum wh_dialect d, struct buf *b, const struct sink_column *cols, size_t n,
               const struct csv_field *f, const char *partition, uint64_t row,
               struct weir_errmsg *e);

/* --- MySQL DSNs ---------------------------------------------------------- */

/*
 * A MySQL/MariaDB DSN, either key=value pairs separated by spaces (values
 * may be 'single quoted' with \' and \\ inside), as in the config example
 * "host=127.0.0.1 port=3306 db=wh user=weir password=${WH_PASSWORD}", or a
 * URI mysql://user:password@host:port/db?key=value&... (mariadb:// too;
 * %XX decoded). Keys:
 *   host, port, user, password (pass, pwd), db (database, dbname),
 *   socket (unix_socket), connect_timeout, read_timeout, write_timeout
 *   (seconds), ssl_mode (disabled | required | verify_identity),
 *   ssl_ca, ssl_cert, ssl_key.
 * Strings are NULL when not given; port 0 is the library default.
 */
struct wh_mysql_dsn {
    char *host, *user, *password, *db, *socket;
    char *ssl_mode, *ssl_ca, *ssl_cert, *ssl_key;
    unsigned port;
    unsigned connect_timeout, read_timeout, write_timeout;
};

/* Parse dsn into d (wh_mysql_dsn_release it, also after a failure).
 * WEIR_ECONFIG with a message naming the key, never the password. */
int wh_mysql_dsn_parse(const char *dsn, struct wh_mysql_dsn *d, struct weir_errmsg *e);
void wh_mysql_dsn_release(struct wh_mysql_dsn *d);

#endif
