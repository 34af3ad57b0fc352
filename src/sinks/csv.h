/*
 * csv.h - "weir CSV", the one text encoding rows travel in to a warehouse.
 *
 * A producer (DuckDB's result, a test file) writes rows with the csv_put_*
 * functions below, or as DuckDB's own CSV writer does by default
 * (HEADER false); the sinks read them back with struct csv_reader and
 * re-encode each value for their server. The encoding is RFC 4180 with
 * one rule added so NULL and the empty string stay apart:
 *
 *   - UTF-8, no header, no byte order mark;
 *   - a row ends with LF (CRLF is accepted); the last LF may be missing;
 *     every line is a row, an empty line too (a one-column row whose value
 *     is NULL);
 *   - fields are separated by ',';
 *   - a field that starts with '"' is quoted: it ends at the next '"' not
 *     doubled, and may hold ',', '"' (written '""'), CR and LF; after the
 *     closing quote comes ',' or the end of the row;
 *   - an unquoted field holds no ',', '"', CR or LF;
 *   - NULL is an unquoted empty field; the empty string is "" (quoted).
 *
 * Both sides of the exact round trip: PostgreSQL's COPY ... (FORMAT csv)
 * reads this encoding unchanged; MySQL's LOAD DATA cannot tell an unquoted
 * empty field from "", so the MySQL sink writes NULL as the bare word NULL
 * and quotes every string (docs/warehouse.md). csv_put_text always quotes,
 * so a writer never has to decide.
 *
 * Values by type (what csv_put_* write; the reader checks them per column
 * type in sinks/wh.h): integers in decimal; doubles with 15, 16 or 17
 * significant digits, the fewest that read back to the same bits (nan,
 * inf, -inf for the specials; any text strtod reads exactly is accepted);
 * booleans true/false; dates YYYY-MM-DD; timestamps
 * "YYYY-MM-DD HH:MM:SS[.ffffff]", with "+00" for timestamptz.
 */
#ifndef WEIR_SINKS_CSV_H
#define WEIR_SINKS_CSV_H

#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "core/error.h"

/* --- writing ------------------------------------------------------------ */

/* Each appends one field's text to b (no separator): call csv_put_sep
 * between fields and csv_put_eol after the last. Return 0 or the buf's
 * WEIR_ELIMIT / WEIR_ENOMEM. */
int csv_put_null(struct buf *b);                       /* nothing: NULL */
int csv_put_text(struct buf *b, const char *s, size_t n); /* always quoted */
int csv_put_int(struct buf *b, int64_t v);
int csv_put_double(struct buf *b, double v);
int csv_put_bool(struct buf *b, int v);
int csv_put_date(struct buf *b, int64_t days);         /* days since 1970-01-01 */
/* us since the epoch, UTC; tz 1 adds "+00". */
int csv_put_timestamp(struct buf *b, int64_t us, int tz);
int csv_put_sep(struct buf *b);
int csv_put_eol(struct buf *b);

/* --- reading ------------------------------------------------------------ */

/* One field of the current row: data is the value with quotes removed and
 * '""' undone, NUL-terminated (len bytes before the NUL); null is 1 for an
 * unquoted empty field (data is then ""); quoted is 1 when it was quoted. */
struct csv_field {
    const char *data;
    size_t len;
    int null;
    int quoted;
};

/* The pull callback, as struct sink_rows' read (sinks/sink.h). */
typedef int csv_read_fn(void *ctx, const char **data, size_t *len, struct weir_errmsg *e);

/*
 * A reader of rows of exactly ncolumns fields from chunks pulled with
 * read(ctx, ...). Memory: one row at a time, at most max_row bytes of
 * decoded values (longer rows fail with WEIR_ELIMIT), plus the field
 * array. Fields are valid until the next csv_reader_next.
 */
struct csv_reader {
    csv_read_fn *read;
    void *ctx;
    size_t ncolumns;
    size_t max_row;
    const char *p, *end;      /* unread part of the current chunk */
    int eof;
    uint64_t row;             /* 1-based number of the row last returned */
    uint64_t bytes;           /* input bytes consumed */
    /* private: the parse state between chunks */
    int state;
    size_t nfield;            /* fields completed in the current row */
    int row_started;
    int quoted;               /* the current field began with '"' */
    struct buf vals;          /* decoded values of the row, NUL after each */
    size_t *offs;             /* value offsets in vals, ncolumns + 1 */
    struct csv_field *fields; /* ncolumns */
};

/* Returns 0 or WEIR_ENOMEM. */
int csv_reader_init(struct csv_reader *r, size_t ncolumns, size_t max_row,
                    csv_read_fn *read, void *ctx);
void csv_reader_release(struct csv_reader *r);

/*
 * Read the next row into *fields (an array of ncolumns). Returns 1 for a
 * row, 0 at the end of the input, or a negative code: WEIR_EPARSE for bad
 * CSV or a row with the wrong number of fields (the message names the row),
 * WEIR_ELIMIT for a row over max_row, or the read callback's error.
 */
int csv_reader_next(struct csv_reader *r, const struct csv_field **fields,
                    struct weir_errmsg *e);

#endif
