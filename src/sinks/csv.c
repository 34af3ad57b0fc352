/*
 * csv.c - weir CSV: the writer's field encoders and a streaming reader.
 *
 * The reader is a byte state machine that survives chunk boundaries (a
 * row, a field, even a '""' pair may be split between two reads), and
 * decodes each row into one buffer so a backend can re-encode values
 * without caring how they were quoted. See csv.h for the encoding.
 */
#include "sinks/csv.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/wtime.h"

/* --- writing ------------------------------------------------------------ */

int csv_put_null(struct buf *b)
{
    (void)b;
    return 0;
}

int csv_put_text(struct buf *b, const char *s, size_t n)
{
    size_t start = b->len;
    int rc = buf_putc(b, '"');
    const char *end = s + n;
    while (rc == 0 && s < end) {
        const char *q = memchr(s, '"', (size_t)(end - s));
        size_t span = q ? (size_t)(q - s) + 1 : (size_t)(end - s);
        rc = buf_append(b, s, span);
        if (rc == 0 && q)
            rc = buf_putc(b, '"');
        s += span;
    }
    if (rc == 0)
        rc = buf_putc(b, '"');
    if (rc)
        buf_truncate(b, start);
    return rc;
}

int csv_put_int(struct buf *b, int64_t v)
{
    return buf_appendf(b, "%lld", (long long)v);
}

int csv_put_double(struct buf *b, double v)
{
    if (isnan(v))
        return buf_puts(b, "nan");
    if (isinf(v))
        return buf_puts(b, v < 0 ? "-inf" : "inf");
    /* %.15g gives the shortest text of every double that has one of 15
     * or fewer digits (v then sits on the 15-digit grid; %g drops the
     * trailing zeros); 16 or 17 digits cover the rest. Each candidate is
     * checked by reading it back, so the text is always exact; only
     * subnormals may get more digits than they need. */
    char tmp[40];
    for (int prec = 15; prec <= 17; prec++) {
        snprintf(tmp, sizeof tmp, "%.*g", prec, v);
        if (prec == 17 || strtod(tmp, NULL) == v)
            break;
    }
    return buf_puts(b, tmp);
}

int csv_put_bool(struct buf *b, int v)
{
    return buf_puts(b, v ? "true" : "false");
}

int csv_put_date(struct buf *b, int64_t days)
{
    int y, m, d;
    wtime_civil_from_days(days, &y, &m, &d);
    return buf_appendf(b, "%04d-%02d-%02d", y, m, d);
}

int csv_put_timestamp(struct buf *b, int64_t us, int tz)
{
    const int64_t us_day = INT64_C(86400000000);
    int64_t days = us / us_day, rem = us % us_day;
    if (rem < 0) {
        rem += us_day;
        days--;
    }
    int y, m, d;
    wtime_civil_from_days(days, &y, &m, &d);
    int64_t secs = rem / 1000000, frac = rem % 1000000;
    int rc = buf_appendf(b, "%04d-%02d-%02d %02d:%02d:%02d", y, m, d, (int)(secs / 3600),
                         (int)(secs / 60 % 60), (int)(secs % 60));
    if (rc == 0 && frac)
        rc = buf_appendf(b, ".%06lld", (long long)frac);
    if (rc == 0 && tz)
        rc = buf_puts(b, "+00");
    return rc;
}

int csv_put_sep(struct buf *b)
{
    return buf_putc(b, ',');
}

int csv_put_eol(struct buf *b)
{
    return buf_putc(b, '\n');
}

/* --- reading ------------------------------------------------------------ */

enum {
    ST_FIELD = 0, /* at the start of a field */
    ST_BARE,      /* inside an unquoted field */
    ST_QUOTED,    /* inside a quoted field */
    ST_QUOTE,     /* inside a quoted field, just after a '"' */
    ST_CR,        /* after a CR that ended a row, expecting LF */
};

int csv_reader_init(struct csv_reader *r, size_t ncolumns, size_t max_row,
                    csv_read_fn *read, void *ctx)
{
    memset(r, 0, sizeof *r);
    r->read = read;
    r->ctx = ctx;
    r->ncolumns = ncolumns;
    r->max_row = max_row;
    /* Each value is followed by a NUL: room for those beside max_row. */
    buf_init(&r->vals, max_row + ncolumns + 1);
    r->offs = calloc(ncolumns + 1, sizeof *r->offs);
    r->fields = calloc(ncolumns ? ncolumns : 1, sizeof *r->fields);
    if (!r->offs || !r->fields) {
        csv_reader_release(r);
        return WEIR_ENOMEM;
    }
    return 0;
}

void csv_reader_release(struct csv_reader *r)
{
    buf_release(&r->vals);
    free(r->offs);
    free(r->fields);
    r->offs = NULL;
    r->fields = NULL;
}

static int too_long(struct csv_reader *r, int rc, struct weir_errmsg *e)
{
    if (rc == WEIR_ELIMIT)
        return errmsg_set(e, rc, "row %llu: longer than %zu bytes",
                          (unsigned long long)r->row + 1, r->max_row);
    return errmsg_set(e, rc, "row %llu: %s", (unsigned long long)r->row + 1,
                      weir_strerror(rc));
}

/* Close the current field: NUL-terminate its value, record its end. */
static int end_field(struct csv_reader *r, struct weir_errmsg *e)
{
    if (r->nfield >= r->ncolumns)
        return errmsg_set(e, WEIR_EPARSE, "row %llu: more than %zu fields",
                          (unsigned long long)r->row + 1, r->ncolumns);
    int rc = buf_putc(&r->vals, '\0');
    if (rc)
        return too_long(r, rc, e);
    struct csv_field *f = &r->fields[r->nfield];
    f->quoted = r->quoted;
    f->null = !r->quoted && r->vals.len - 1 == r->offs[r->nfield];
    r->nfield++;
    r->offs[r->nfield] = r->vals.len;
    r->quoted = 0;
    return 0;
}

/* The row is complete: check its width and point the fields at values. */
static int end_row(struct csv_reader *r, const struct csv_field **fields,
                   struct weir_errmsg *e)
{
    int rc = end_field(r, e);
    if (rc)
        return rc;
    if (r->nfield != r->ncolumns)
        return errmsg_set(e, WEIR_EPARSE, "row %llu: %zu field%s, want %zu",
                          (unsigned long long)r->row + 1, r->nfield,
                          r->nfield == 1 ? "" : "s", r->ncolumns);
    for (size_t i = 0; i < r->ncolumns; i++) {
        r->fields[i].data = r->vals.data + r->offs[i];
        r->fields[i].len = r->offs[i + 1] - r->offs[i] - 1;
    }
    r->row++;
    r->nfield = 0;
    r->row_started = 0;
    r->state = ST_FIELD;
    *fields = r->fields;
    return 1;
}

static int append(struct csv_reader *r, const char *p, size_t n, struct weir_errmsg *e)
{
    /* The value bytes of a row may not pass max_row; the NULs after each
     * value are the extra room csv_reader_init gave. */
    if (r->vals.len - r->nfield + n > r->max_row)
        return too_long(r, WEIR_ELIMIT, e);
    int rc = buf_append(&r->vals, p, n);
    return rc ? too_long(r, rc, e) : 0;
}

static int bad(struct csv_reader *r, const char *what, struct weir_errmsg *e)
{
    return errmsg_set(e, WEIR_EPARSE, "row %llu, field %zu: %s (weir CSV, see docs/warehouse.md)",
                      (unsigned long long)r->row + 1, r->nfield + 1, what);
}

int csv_reader_next(struct csv_reader *r, const struct csv_field **fields,
                    struct weir_errmsg *e)
{
    int rc;
    if (r->nfield == 0 && !r->row_started) {
        buf_reset(&r->vals);
        r->offs[0] = 0;
    }
    for (;;) {
        if (r->p == r->end) {
            if (r->eof)
                goto at_eof;
            const char *data = NULL;
            size_t len = 0;
            rc = r->read(r->ctx, &data, &len, e);
            if (rc)
                return rc;
            if (len == 0) {
                r->eof = 1;
                goto at_eof;
            }
            r->p = data;
            r->end = data + len;
        }
        const char *p = r->p, *end = r->end;
        switch (r->state) {
        case ST_CR:
            if (*p != '\n')
                return bad(r, "a CR not followed by LF outside quotes", e);
            r->p = p + 1;
            r->bytes++;
            r->state = ST_FIELD;
            continue;
        case ST_FIELD:
            r->row_started = 1;
            if (*p == '"') {
                r->quoted = 1;
                r->state = ST_QUOTED;
                r->p = p + 1;
                r->bytes++;
                continue;
            }
            r->state = ST_BARE;
            /* fall through */
        case ST_BARE: {
            const char *q = p;
            while (q < end && *q != ',' && *q != '\n' && *q != '\r' && *q != '"')
                q++;
            if (q > p && (rc = append(r, p, (size_t)(q - p), e)) != 0)
                return rc;
            r->bytes += (uint64_t)(q - p);
            r->p = q;
            if (q == end)
                continue;
            r->p = q + 1;
            r->bytes++;
            if (*q == '"')
                return bad(r, "a '\"' inside an unquoted field", e);
            if (*q == ',') {
                if ((rc = end_field(r, e)) != 0)
                    return rc;
                r->state = ST_FIELD;
                continue;
            }
            /* After a CR the row is returned at once; its LF is consumed
             * by the next call (ST_CR). */
            rc = end_row(r, fields, e);
            if (rc == 1 && *q == '\r')
                r->state = ST_CR;
            return rc;
        }
        case ST_QUOTED: {
            const char *q = memchr(p, '"', (size_t)(end - p));
            const char *stop = q ? q : end;
            if (stop > p && (rc = append(r, p, (size_t)(stop - p), e)) != 0)
                return rc;
            r->bytes += (uint64_t)(stop - p);
            r->p = stop;
            if (q) {
                r->p = q + 1;
                r->bytes++;
                r->state = ST_QUOTE;
            }
            continue;
        }
        case ST_QUOTE:
            r->p = p + 1;
            r->bytes++;
            if (*p == '"') {
                if ((rc = append(r, "\"", 1, e)) != 0)
                    return rc;
                r->state = ST_QUOTED;
                continue;
            }
            if (*p == ',') {
                if ((rc = end_field(r, e)) != 0)
                    return rc;
                r->state = ST_FIELD;
                continue;
            }
            if (*p == '\n' || *p == '\r') {
                rc = end_row(r, fields, e);
                if (rc == 1 && *p == '\r')
                    r->state = ST_CR;
                return rc;
            }
            r->p = p;
            r->bytes--;
            return bad(r, "text after a closing '\"' (a '\"' inside a quoted field is written '\"\"')", e);
        }
    }
at_eof:
    switch (r->state) {
    case ST_QUOTED:
        return bad(r, "the input ends inside a quoted field", e);
    case ST_CR:
        r->state = ST_FIELD;
        return 0;
    case ST_FIELD:
        if (!r->row_started && r->nfield == 0)
            return 0;
        break;
    default:
        break;
    }
    return end_row(r, fields, e);
}
