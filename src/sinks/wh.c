/*
 * wh.c - SQL text, value checks and row encodings for the warehouse
 * backends, with no client library in sight (see wh.h for why).
 *
 * Values are checked here rather than left to the server for two reasons:
 * a bad value is reported with its row and column before anything is
 * sent, and MySQL's LOAD DATA LOCAL turns data errors into warnings and
 * carries on (the server cannot stop the client's stream), so what is
 * sent must already be right.
 */
#include "sinks/wh.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/wtime.h"
#include "schema/json.h"

/* --- identifiers and literals -------------------------------------------- */

static size_t utf8_chars(const char *s, size_t n)
{
    size_t c = 0;
    for (size_t i = 0; i < n; i++)
        c += ((unsigned char)s[i] & 0xC0) != 0x80;
    return c;
}

static int ident_ok(enum wh_dialect d, const char *s, size_t n)
{
    if (n == 0 || memchr(s, '\0', n) || !json_utf8_valid(s, n))
        return 0;
    return d == WH_POSTGRES ? n <= WH_PG_IDENT_MAX : utf8_chars(s, n) <= WH_MYSQL_IDENT_MAX;
}

int wh_put_ident(enum wh_dialect d, struct buf *b, const char *name)
{
    size_t n = strlen(name);
    if (!ident_ok(d, name, n))
        return WEIR_EINVAL;
    char q = d == WH_POSTGRES ? '"' : '`';
    size_t start = b->len;
    int rc = buf_putc(b, q);
    for (size_t i = 0; rc == 0 && i < n; i++) {
        if (name[i] == q)
            rc = buf_putc(b, q);
        if (rc == 0)
            rc = buf_putc(b, name[i]);
    }
    if (rc == 0)
        rc = buf_putc(b, q);
    if (rc)
        buf_truncate(b, start);
    return rc;
}

int wh_put_table(enum wh_dialect d, struct buf *b, const struct wh_table *t)
{
    int rc = 0;
    if (t->schema[0]) {
        rc = wh_put_ident(d, b, t->schema);
        if (rc == 0)
            rc = buf_putc(b, '.');
    }
    return rc ? rc : wh_put_ident(d, b, t->name);
}

int wh_put_literal(enum wh_dialect d, struct buf *b, const char *s, size_t n)
{
    size_t start = b->len;
    int rc = buf_putc(b, '\'');
    for (size_t i = 0; rc == 0 && i < n; i++) {
        if (s[i] == '\0') {
            rc = WEIR_EINVAL;
            break;
        }
        if (s[i] == '\'' || (d == WH_MYSQL && s[i] == '\\'))
            rc = buf_putc(b, s[i]);
        if (rc == 0)
            rc = buf_putc(b, s[i]);
    }
    if (rc == 0)
        rc = buf_putc(b, '\'');
    if (rc)
        buf_truncate(b, start);
    return rc;
}

/* Copy one part of a table name, removing its quotes; *pp moves past it. */
static int table_part(enum wh_dialect d, const char **pp, char *out, size_t cap)
{
    const char *p = *pp;
    size_t n = 0;
    char q = *p == '"' || *p == '`' ? *p : 0;
    if (q) {
        p++;
        for (;;) {
            if (!*p)
                return -1;
            if (*p == q) {
                if (p[1] != q)
                    break;
                p++;
            }
            if (n + 1 >= cap)
                return -1;
            out[n++] = *p++;
        }
        p++;
    } else {
        while (*p && *p != '.') {
            if (n + 1 >= cap)
                return -1;
            out[n++] = *p++;
        }
    }
    out[n] = '\0';
    *pp = p;
    return ident_ok(d, out, n) ? 0 : -1;
}

int wh_table_parse(enum wh_dialect d, const char *table, struct wh_table *t,
                   struct weir_errmsg *e)
{
    const char *p = table;
    memset(t, 0, sizeof *t);
    if (table_part(d, &p, t->name, sizeof t->name) != 0)
        goto bad;
    if (*p == '.') {
        memcpy(t->schema, t->name, sizeof t->schema);
        p++;
        if (table_part(d, &p, t->name, sizeof t->name) != 0)
            goto bad;
    }
    if (*p)
        goto bad;
    return 0;
bad:
    return errmsg_set(e, WEIR_EINVAL,
                      "table '%s': want name or %s.name, each 1 to %d %s of UTF-8 "
                      "(quote a name holding '.' with %s)",
                      table, d == WH_POSTGRES ? "schema" : "database",
                      d == WH_POSTGRES ? WH_PG_IDENT_MAX : WH_MYSQL_IDENT_MAX,
                      d == WH_POSTGRES ? "bytes" : "characters",
                      d == WH_POSTGRES ? "\"double quotes\"" : "`backticks`");
}

/* --- time ----------------------------------------------------------------- */

static const int64_t US_PER_DAY = INT64_C(86400000000);

static char *put_digits(char *p, long v, int width)
{
    for (int i = width - 1; i >= 0; i--) {
        p[i] = (char)('0' + v % 10);
        v /= 10;
    }
    return p + width;
}

/* Format us since the epoch as "YYYY-MM-DD HH:MM:SS" plus ".ffffff" when
 * frac (always 6 digits) or when there is a fraction. By hand, not with
 * snprintf: this runs twice a row on the MySQL path, and snprintf was a
 * third of the client's time there. Years are 1..9999 (parse_date). */
static size_t format_us(int64_t us, int frac, char *out, size_t cap)
{
    int64_t days = us / US_PER_DAY, rem = us % US_PER_DAY;
    if (rem < 0) {
        rem += US_PER_DAY;
        days--;
    }
    /* Rows of a partition share their day: remember the last one. */
    static _Thread_local int64_t last_days = INT64_MIN;
    static _Thread_local int y, m, d;
    if (days != last_days) {
        wtime_civil_from_days(days, &y, &m, &d);
        last_days = days;
    }
    int64_t secs = rem / 1000000, f = rem % 1000000;
    char tmp[32], *p = tmp;
    if (y < 0 || y > 9999)
        return 0;
    p = put_digits(p, y, 4);
    *p++ = '-';
    p = put_digits(p, m, 2);
    *p++ = '-';
    p = put_digits(p, d, 2);
    *p++ = ' ';
    p = put_digits(p, (long)(secs / 3600), 2);
    *p++ = ':';
    p = put_digits(p, (long)(secs / 60 % 60), 2);
    *p++ = ':';
    p = put_digits(p, (long)(secs % 60), 2);
    if (frac || f) {
        *p++ = '.';
        p = put_digits(p, (long)f, 6);
    }
    size_t n = (size_t)(p - tmp);
    if (n >= cap)
        return 0;
    memcpy(out, tmp, n);
    out[n] = '\0';
    return n;
}

size_t wh_format_partition(enum wh_dialect d, int64_t ns, char *out, size_t cap)
{
    /* Partitions start on whole seconds (hours, days): ns / 1000 is exact. */
    int64_t us = ns / 1000;
    if (d == WH_MYSQL)
        return format_us(us, 1, out, cap);
    size_t n = format_us(us, 0, out, cap);
    if (n + 3 < cap) {
        memcpy(out + n, "+00", 4);
        n += 3;
    }
    return n;
}

static int digits(const char *s, int n, int *v)
{
    int x = 0;
    for (int i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return 0;
        x = x * 10 + (s[i] - '0');
    }
    *v = x;
    return 1;
}

static int days_in_month(int y, int m)
{
    static const int dm[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (m == 2 && y % 4 == 0 && (y % 100 != 0 || y % 400 == 0))
        return 29;
    return dm[m - 1];
}

/* "YYYY-MM-DD" with year 0001..9999. */
static int parse_date(const char *s, size_t n, int64_t *days)
{
    int y, m, d;
    if (n != 10 || s[4] != '-' || s[7] != '-' || !digits(s, 4, &y) ||
        !digits(s + 5, 2, &m) || !digits(s + 8, 2, &d))
        return 0;
    if (y < 1 || m < 1 || m > 12 || d < 1 || d > days_in_month(y, m))
        return 0;
    *days = wtime_days_from_civil(y, m, d);
    return 1;
}

/*
 * "YYYY-MM-DD[ T]HH:MM:SS[.f{1,9}][Z|+HH|+HH:MM|+HHMM]" into us since the
 * epoch, UTC (the offset applied, the fraction rounded half up to us).
 * *zoned says whether an offset (or Z) was given, *off_min its size.
 */
static int parse_timestamp(const char *s, size_t n, int64_t *us, int *zoned, int *off_min)
{
    int64_t days;
    int hh, mi, ss;
    if (n < 19 || !parse_date(s, 10, &days) || (s[10] != ' ' && s[10] != 'T') ||
        s[13] != ':' || s[16] != ':' || !digits(s + 11, 2, &hh) || !digits(s + 14, 2, &mi) ||
        !digits(s + 17, 2, &ss) || hh > 23 || mi > 59 || ss > 59)
        return 0;
    size_t i = 19;
    int64_t frac_ns = 0;
    if (i < n && s[i] == '.') {
        int nd = 0;
        int64_t scale = 100000000;
        for (i++; i < n && s[i] >= '0' && s[i] <= '9'; i++, nd++) {
            if (nd >= 9)
                return 0;
            frac_ns += (s[i] - '0') * scale;
            scale /= 10;
        }
        if (nd == 0)
            return 0;
    }
    int off = 0;
    *zoned = 0;
    if (i < n) {
        *zoned = 1;
        if ((s[i] == 'Z' || s[i] == 'z') && i + 1 == n) {
            i++;
        } else if (s[i] == '+' || s[i] == '-') {
            int sign = s[i] == '-' ? -1 : 1, oh, om = 0;
            size_t rest = n - i - 1;
            const char *o = s + i + 1;
            if (!(rest == 2 || (rest == 5 && o[2] == ':') || rest == 4) || !digits(o, 2, &oh))
                return 0;
            if (rest == 5 && !digits(o + 3, 2, &om))
                return 0;
            if (rest == 4 && !digits(o + 2, 2, &om))
                return 0;
            if (oh > 15 || om > 59)
                return 0;
            off = sign * (oh * 60 + om);
            i = n;
        } else {
            return 0;
        }
    }
    *off_min = off;
    *us = days * US_PER_DAY + ((int64_t)hh * 3600 + mi * 60 + ss) * 1000000 +
          (frac_ns + 500) / 1000 - (int64_t)off * 60000000;
    return 1;
}

/* --- values --------------------------------------------------------------- */

static int is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static int check_bigint(const char *s, size_t n)
{
    size_t i = 0;
    int neg = 0;
    if (i < n && (s[i] == '-' || s[i] == '+'))
        neg = s[i++] == '-';
    if (i == n)
        return 0;
    unsigned long long v = 0, lim = neg ? (unsigned long long)LLONG_MAX + 1 : LLONG_MAX;
    for (; i < n; i++) {
        if (!is_digit(s[i]))
            return 0;
        unsigned dg = (unsigned)(s[i] - '0');
        if (v > (lim - dg) / 10)
            return 0;
        v = v * 10 + dg;
    }
    return 1;
}

/* A plain decimal number: [+-]digits[.digits] | [+-].digits; counts the
 * digits before (without leading zeros) and after the point. */
static int decimal_shape(const char *s, size_t n, size_t *idig, size_t *fdig, size_t *end)
{
    size_t i = 0, lead = 1;
    *idig = *fdig = 0;
    if (i < n && (s[i] == '-' || s[i] == '+'))
        i++;
    size_t any = 0;
    for (; i < n && is_digit(s[i]); i++, any++) {
        if (lead && s[i] == '0')
            continue;
        lead = 0;
        (*idig)++;
    }
    if (i < n && s[i] == '.') {
        for (i++; i < n && is_digit(s[i]); i++, any++)
            (*fdig)++;
    }
    *end = i;
    return any > 0;
}

/* 1: a finite double; 2: nan or inf; 0: not a double. */
static int check_double(const char *s, size_t n)
{
    size_t i, idig, fdig;
    const char *p = s + (n && (s[0] == '-' || s[0] == '+'));
    size_t rest = n - (size_t)(p - s);
    if ((rest == 3 && (!strncasecmp(p, "nan", 3) || !strncasecmp(p, "inf", 3))) ||
        (rest == 8 && !strncasecmp(p, "infinity", 8)))
        return 2;
    if (!decimal_shape(s, n, &idig, &fdig, &i))
        return 0;
    int exp = i < n && (s[i] == 'e' || s[i] == 'E');
    if (exp) {
        i++;
        if (i < n && (s[i] == '-' || s[i] == '+'))
            i++;
        size_t ed = 0;
        for (; i < n && is_digit(s[i]); i++)
            ed++;
        if (ed == 0)
            return 0;
    }
    if (i != n)
        return 0;
    /* Without an exponent and with a few hundred digits at most, the
     * value cannot leave a double's range: skip strtod, the costliest
     * check of a row. */
    if (!exp && idig <= 300 && fdig <= 300)
        return 1;
    /* Out of range: past DBL_MAX, or a non-zero value that reads as 0
     * (both servers refuse it; say so here with the row). */
    errno = 0;
    double v = strtod(s, NULL); /* s is NUL-terminated after n (csv.h) */
    if (errno == ERANGE && (isinf(v) || v == 0))
        return 0;
    return 1;
}

static int parse_bool(const char *s, size_t n, int *v)
{
    static const struct {
        const char *text;
        int v;
    } words[] = {{"true", 1}, {"false", 0}, {"t", 1}, {"f", 0}, {"1", 1}, {"0", 0}};
    for (size_t i = 0; i < sizeof words / sizeof words[0]; i++)
        if (strlen(words[i].text) == n && !strncasecmp(s, words[i].text, n)) {
            *v = words[i].v;
            return 1;
        }
    return 0;
}

static int text_ok(const char *s, size_t n)
{
    return !memchr(s, '\0', n) && json_utf8_valid(s, n);
}

static int bad_value(struct weir_errmsg *e, const struct sink_column *c, uint64_t row,
                     size_t col, const struct csv_field *f, const char *want)
{
    /* Show a bounded, printable prefix of the value. */
    char shown[48];
    size_t k = 0;
    for (size_t i = 0; i < f->len && k + 4 < sizeof shown; i++)
        shown[k++] = (unsigned char)f->data[i] < 0x20 ? '?' : f->data[i];
    if (k < f->len)
        shown[k++] = '.', shown[k++] = '.', shown[k++] = '.';
    shown[k] = '\0';
    return errmsg_set(e, WEIR_EPARSE, "row %llu, column %zu (%s %s): '%s' is not %s",
                      (unsigned long long)row, col, c->name, sink_type_name(c->type), shown,
                      want);
}

int wh_put_value(enum wh_dialect d, struct buf *b, const struct sink_column *c,
                 const struct csv_field *f, uint64_t row, size_t col, struct weir_errmsg *e)
{
    const char *s = f->data;
    size_t n = f->len;
    size_t idig, fdig, end;
    int64_t us, days;
    int zoned, off, v;
    char tmp[64];
    switch (c->type) {
    case SINK_BIGINT:
        if (!check_bigint(s, n))
            return bad_value(e, c, row, col, f, "an integer from -9223372036854775808 to 9223372036854775807");
        break;
    case SINK_DOUBLE:
        switch (check_double(s, n)) {
        case 0:
            return bad_value(e, c, row, col, f, "a double (digits, '.', exponent, nan, inf) in range");
        case 2:
            if (d == WH_MYSQL)
                return bad_value(e, c, row, col, f, "a finite number (MySQL's DOUBLE holds no NaN or infinity)");
            break;
        }
        break;
    case SINK_DECIMAL:
        if (!decimal_shape(s, n, &idig, &fdig, &end) || end != n)
            return bad_value(e, c, row, col, f, "a decimal number (digits and '.')");
        if (fdig > (size_t)c->scale || idig > (size_t)(c->precision - c->scale)) {
            snprintf(tmp, sizeof tmp, "a decimal(%d,%d) without rounding", c->precision, c->scale);
            return bad_value(e, c, row, col, f, tmp);
        }
        break;
    case SINK_VARCHAR:
    case SINK_JSON:
        if (!text_ok(s, n))
            return bad_value(e, c, row, col, f, "UTF-8 text without NUL bytes");
        break;
    case SINK_BOOLEAN:
        if (!parse_bool(s, n, &v))
            return bad_value(e, c, row, col, f, "a boolean (true, false, t, f, 1, 0)");
        if (d == WH_MYSQL)
            return buf_putc(b, v ? '1' : '0');
        break;
    case SINK_DATE:
        if (!parse_date(s, n, &days))
            return bad_value(e, c, row, col, f, "a date YYYY-MM-DD (years 1 to 9999)");
        break;
    case SINK_TIMESTAMP:
    case SINK_TIMESTAMPTZ:
        if (!parse_timestamp(s, n, &us, &zoned, &off))
            return bad_value(e, c, row, col, f, "a timestamp YYYY-MM-DD HH:MM:SS[.ffffff][+HH[:MM]]");
        /* A zone on a timestamp without one: PostgreSQL would drop it
         * silently, MySQL would not; refuse all but UTC. */
        if (c->type == SINK_TIMESTAMP && off != 0)
            return bad_value(e, c, row, col, f, "a timestamp without a time zone (or in UTC)");
        if (d == WH_MYSQL) {
            size_t k = format_us(us, 0, tmp, sizeof tmp);
            return buf_append(b, tmp, k);
        }
        break;
    }
    return buf_append(b, s, n);
}

int wh_put_row(enum wh_dialect d, struct buf *b, const struct sink_column *cols, size_t n,
               const struct csv_field *f, const char *partition, uint64_t row,
               struct weir_errmsg *e)
{
    size_t start = b->len;
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        if (i)
            rc = buf_putc(b, ',');
        if (rc)
            break;
        if (f[i].null) {
            if (d == WH_MYSQL)
                rc = buf_append(b, "NULL", 4);
            continue;
        }
        if (cols[i].type == SINK_VARCHAR || cols[i].type == SINK_JSON) {
            if (!text_ok(f[i].data, f[i].len))
                rc = bad_value(e, &cols[i], row, i + 1, &f[i], "UTF-8 text without NUL bytes");
            else
                rc = csv_put_text(b, f[i].data, f[i].len);
        } else {
            rc = wh_put_value(d, b, &cols[i], &f[i], row, i + 1, e);
        }
    }
    if (rc == 0 && d == WH_POSTGRES) {
        rc = buf_putc(b, ',');
        if (rc == 0)
            rc = buf_puts(b, partition);
    }
    if (rc == 0)
        rc = buf_putc(b, '\n');
    if (rc) {
        buf_truncate(b, start);
        if (rc == WEIR_ELIMIT || rc == WEIR_ENOMEM)
            errmsg_set(e, rc, "row %llu: %s", (unsigned long long)row, weir_strerror(rc));
    }
    return rc;
}

/* --- statements ----------------------------------------------------------- */

int wh_put_type(enum wh_dialect d, struct buf *b, const struct sink_column *c)
{
    int pg = d == WH_POSTGRES;
    switch (c->type) {
    case SINK_BIGINT: return buf_puts(b, pg ? "bigint" : "BIGINT");
    case SINK_DOUBLE: return buf_puts(b, pg ? "double precision" : "DOUBLE");
    case SINK_DECIMAL:
        return buf_appendf(b, pg ? "numeric(%d,%d)" : "DECIMAL(%d,%d)", c->precision, c->scale);
    case SINK_VARCHAR: return buf_puts(b, pg ? "text" : "LONGTEXT");
    case SINK_BOOLEAN: return buf_puts(b, pg ? "boolean" : "BOOLEAN");
    case SINK_TIMESTAMP: return buf_puts(b, pg ? "timestamp" : "DATETIME(6)");
    case SINK_TIMESTAMPTZ: return buf_puts(b, pg ? "timestamptz" : "DATETIME(6)");
    case SINK_DATE: return buf_puts(b, pg ? "date" : "DATE");
    case SINK_JSON: return buf_puts(b, pg ? "jsonb" : "JSON");
    }
    return WEIR_EINVAL;
}

static int put_columns(enum wh_dialect d, struct buf *b, const struct sink_column *cols,
                       size_t n, int with_partition)
{
    int rc = buf_putc(b, '(');
    for (size_t i = 0; rc == 0 && i < n; i++) {
        if (i)
            rc = buf_puts(b, ", ");
        if (rc == 0)
            rc = wh_put_ident(d, b, cols[i].name);
    }
    if (rc == 0 && with_partition) {
        rc = n ? buf_puts(b, ", ") : 0;
        if (rc == 0)
            rc = wh_put_ident(d, b, SINK_PARTITION_COLUMN);
    }
    return rc ? rc : buf_putc(b, ')');
}

int wh_sql_create(enum wh_dialect d, struct buf *b, const struct wh_table *t,
                  const struct sink_column *cols, size_t n)
{
    int pg = d == WH_POSTGRES;
    /* PostgreSQL: a plain CREATE under the load's advisory lock, so weir
     * knows it made the table; MySQL commits DDL at once and has no such
     * lock, so IF NOT EXISTS makes two first loads safe. */
    int rc = buf_puts(b, pg ? "CREATE TABLE " : "CREATE TABLE IF NOT EXISTS ");
    if (rc == 0)
        rc = wh_put_table(d, b, t);
    if (rc == 0)
        rc = buf_puts(b, " (");
    for (size_t i = 0; rc == 0 && i < n; i++) {
        rc = wh_put_ident(d, b, cols[i].name);
        if (rc == 0)
            rc = buf_putc(b, ' ');
        if (rc == 0)
            rc = wh_put_type(d, b, &cols[i]);
        if (rc == 0)
            rc = buf_puts(b, ", ");
    }
    if (rc == 0)
        rc = wh_put_ident(d, b, SINK_PARTITION_COLUMN);
    if (rc == 0)
        rc = buf_puts(b, pg ? " timestamptz NOT NULL)" : " DATETIME(6) NOT NULL, KEY ");
    if (rc == 0 && !pg) {
        rc = wh_put_ident(d, b, SINK_PARTITION_COLUMN);
        if (rc == 0)
            rc = buf_putc(b, ' ');
        if (rc == 0)
            rc = put_columns(d, b, cols, 0, 1);
        if (rc == 0)
            rc = buf_puts(b, ") ENGINE=InnoDB DEFAULT CHARSET=utf8mb4");
    }
    return rc;
}

int wh_sql_create_index(struct buf *b, const struct wh_table *t)
{
    /* Unnamed: PostgreSQL picks a free name (table_weir_partition_idx). */
    int rc = buf_puts(b, "CREATE INDEX ON ");
    if (rc == 0)
        rc = wh_put_table(WH_POSTGRES, b, t);
    if (rc == 0)
        rc = buf_puts(b, " (");
    if (rc == 0)
        rc = wh_put_ident(WH_POSTGRES, b, SINK_PARTITION_COLUMN);
    return rc ? rc : buf_putc(b, ')');
}

int wh_sql_delete(enum wh_dialect d, struct buf *b, const struct wh_table *t,
                  const struct sink_partition *part)
{
    char from[40], to[40];
    wh_format_partition(d, part->start_ns, from, sizeof from);
    wh_format_partition(d, part->end_ns, to, sizeof to);
    int rc = buf_puts(b, "DELETE FROM ");
    if (rc == 0)
        rc = wh_put_table(d, b, t);
    if (rc == 0)
        rc = buf_puts(b, " WHERE ");
    if (rc == 0)
        rc = wh_put_ident(d, b, SINK_PARTITION_COLUMN);
    if (rc == 0)
        rc = buf_appendf(b, " >= '%s' AND ", from);
    if (rc == 0)
        rc = wh_put_ident(d, b, SINK_PARTITION_COLUMN);
    if (rc == 0)
        rc = buf_appendf(b, " < '%s'", to);
    return rc;
}

int wh_sql_copy(struct buf *b, const struct wh_table *t, const struct sink_column *cols,
                size_t n)
{
    int rc = buf_puts(b, "COPY ");
    if (rc == 0)
        rc = wh_put_table(WH_POSTGRES, b, t);
    if (rc == 0)
        rc = buf_putc(b, ' ');
    if (rc == 0)
        rc = put_columns(WH_POSTGRES, b, cols, n, 1);
    return rc ? rc : buf_puts(b, " FROM STDIN (FORMAT csv)");
}

int wh_sql_load_data(struct buf *b, const struct wh_table *t,
                     const struct sink_column *cols, size_t n, int64_t start_ns)
{
    char part[40];
    wh_format_partition(WH_MYSQL, start_ns, part, sizeof part);
    /* The file name is a label: the local-infile handler serves the rows
     * from memory and never opens a file, whatever the server asks for. */
    int rc = buf_puts(b, "LOAD DATA LOCAL INFILE 'weir-rows' INTO TABLE ");
    if (rc == 0)
        rc = wh_put_table(WH_MYSQL, b, t);
    if (rc == 0)
        rc = buf_puts(b, " CHARACTER SET utf8mb4 FIELDS TERMINATED BY ',' ENCLOSED BY '\"'"
                         " ESCAPED BY '' LINES TERMINATED BY '\\n' STARTING BY '' ");
    if (rc == 0)
        rc = put_columns(WH_MYSQL, b, cols, n, 0);
    if (rc == 0)
        rc = buf_puts(b, " SET ");
    if (rc == 0)
        rc = wh_put_ident(WH_MYSQL, b, SINK_PARTITION_COLUMN);
    if (rc == 0)
        rc = buf_appendf(b, " = '%s'", part);
    return rc;
}

int wh_sql_insert(struct buf *b, const struct wh_table *t, const struct sink_column *cols,
                  size_t n, size_t nrows)
{
    int rc = buf_puts(b, "INSERT INTO ");
    if (rc == 0)
        rc = wh_put_table(WH_MYSQL, b, t);
    if (rc == 0)
        rc = buf_putc(b, ' ');
    if (rc == 0)
        rc = put_columns(WH_MYSQL, b, cols, n, 1);
    if (rc == 0)
        rc = buf_puts(b, " VALUES ");
    for (size_t r = 0; rc == 0 && r < nrows; r++) {
        rc = buf_puts(b, r ? ",(" : "(");
        for (size_t i = 0; rc == 0 && i <= n; i++)
            rc = buf_puts(b, i ? ",?" : "?");
        if (rc == 0)
            rc = buf_putc(b, ')');
    }
    return rc;
}

/* --- matching an existing table ------------------------------------------- */

/* Space-separated type names that hold each sink type's values exactly. */
static const char *accepted(enum wh_dialect d, enum sink_type t)
{
    if (d == WH_POSTGRES) {
        switch (t) {
        case SINK_BIGINT: return "int8 int4 int2 numeric";
        case SINK_DOUBLE: return "float8 numeric";
        case SINK_DECIMAL: return "numeric";
        case SINK_VARCHAR: return "text varchar";
        case SINK_BOOLEAN: return "bool";
        case SINK_TIMESTAMP: return "timestamp timestamptz";
        case SINK_TIMESTAMPTZ: return "timestamptz";
        case SINK_DATE: return "date";
        case SINK_JSON: return "jsonb json text";
        }
    } else {
        switch (t) {
        case SINK_BIGINT: return "bigint int mediumint smallint tinyint decimal";
        case SINK_DOUBLE: return "double";
        case SINK_DECIMAL: return "decimal";
        case SINK_VARCHAR: return "varchar text tinytext mediumtext longtext";
        case SINK_BOOLEAN: return "tinyint";
        case SINK_TIMESTAMP:
        case SINK_TIMESTAMPTZ: return "datetime timestamp";
        case SINK_DATE: return "date";
        case SINK_JSON: return "json longtext mediumtext text";
        }
    }
    return "";
}

static int word_in(const char *word, const char *list)
{
    size_t n = strlen(word);
    for (const char *p = list; *p;) {
        const char *sp = strchr(p, ' ');
        size_t k = sp ? (size_t)(sp - p) : strlen(p);
        if (k == n && !strncasecmp(p, word, n))
            return 1;
        p += k + (sp != NULL);
    }
    return 0;
}

static int same_name(enum wh_dialect d, const char *a, const char *b)
{
    return d == WH_POSTGRES ? !strcmp(a, b) : !strcasecmp(a, b);
}

int wh_match_columns(enum wh_dialect d, const char *display, const struct sink_column *cols,
                     size_t n, const struct wh_existing_column *have, size_t nhave,
                     struct weir_errmsg *e)
{
    struct buf why = BUF_INIT(sizeof e->text);
    int bad = 0;
    const char *part_types = d == WH_POSTGRES ? "timestamptz" : "datetime timestamp";
    for (size_t i = 0; i <= n; i++) {
        const char *name = i < n ? cols[i].name : SINK_PARTITION_COLUMN;
        const char *want = i < n ? accepted(d, cols[i].type) : part_types;
        size_t j = 0;
        while (j < nhave && !same_name(d, have[j].name, name))
            j++;
        if (j == nhave) {
            buf_appendf(&why, "%scolumn %s is missing", bad++ ? "; " : "", name);
        } else if (!word_in(have[j].type, want)) {
            buf_appendf(&why, "%scolumn %s is %s, want %s (one of: %s)", bad++ ? "; " : "",
                        name, have[j].type, i < n ? sink_type_name(cols[i].type) : "the partition start",
                        want);
        }
    }
    for (size_t j = 0; j < nhave; j++) {
        size_t i = 0;
        while (i < n && !same_name(d, have[j].name, cols[i].name))
            i++;
        if (i == n && !same_name(d, have[j].name, SINK_PARTITION_COLUMN))
            buf_appendf(&why, "%scolumn %s is not in the model's output", bad++ ? "; " : "",
                        have[j].name);
    }
    int rc = 0;
    if (bad)
        rc = errmsg_set(e, WEIR_ESCHEMA,
                        "table %s does not match the rows to load: %s. Alter or drop the "
                        "table, or load into another (docs/warehouse.md, type mapping)",
                        display, why.data ? why.data : "?");
    buf_release(&why);
    return rc;
}

/* --- MySQL DSNs ----------------------------------------------------------- */

void wh_mysql_dsn_release(struct wh_mysql_dsn *d)
{
    char **strs[] = {&d->host, &d->user, &d->password, &d->db, &d->socket,
                     &d->ssl_mode, &d->ssl_ca, &d->ssl_cert, &d->ssl_key};
    for (size_t i = 0; i < sizeof strs / sizeof strs[0]; i++) {
        if (*strs[i] == d->password && d->password)
            explicit_bzero(d->password, strlen(d->password));
        free(*strs[i]);
        *strs[i] = NULL;
    }
}

static int set_uint(const char *key, const char *v, unsigned max, unsigned *out,
                    struct weir_errmsg *e)
{
    char *end;
    errno = 0;
    unsigned long x = strtoul(v, &end, 10);
    if (!*v || *end || errno || !isdigit((unsigned char)*v) || x > max)
        return errmsg_set(e, WEIR_ECONFIG, "mysql DSN: %s='%s' is not a number from 0 to %u",
                          key, v, max);
    *out = (unsigned)x;
    return 0;
}

/* Store one key=value (v is the decoded value; it is taken). */
static int dsn_set(struct wh_mysql_dsn *d, const char *key, size_t klen, char *v,
                   struct weir_errmsg *e)
{
    static const struct {
        const char *key;
        size_t off;
    } strs[] = {
        {"host", offsetof(struct wh_mysql_dsn, host)},
        {"user", offsetof(struct wh_mysql_dsn, user)},
        {"username", offsetof(struct wh_mysql_dsn, user)},
        {"password", offsetof(struct wh_mysql_dsn, password)},
        {"pass", offsetof(struct wh_mysql_dsn, password)},
        {"pwd", offsetof(struct wh_mysql_dsn, password)},
        {"db", offsetof(struct wh_mysql_dsn, db)},
        {"database", offsetof(struct wh_mysql_dsn, db)},
        {"dbname", offsetof(struct wh_mysql_dsn, db)},
        {"socket", offsetof(struct wh_mysql_dsn, socket)},
        {"unix_socket", offsetof(struct wh_mysql_dsn, socket)},
        {"ssl_mode", offsetof(struct wh_mysql_dsn, ssl_mode)},
        {"ssl-mode", offsetof(struct wh_mysql_dsn, ssl_mode)},
        {"ssl_ca", offsetof(struct wh_mysql_dsn, ssl_ca)},
        {"ssl_cert", offsetof(struct wh_mysql_dsn, ssl_cert)},
        {"ssl_key", offsetof(struct wh_mysql_dsn, ssl_key)},
    };
    static const struct {
        const char *key;
        size_t off;
        unsigned max;
    } nums[] = {
        {"port", offsetof(struct wh_mysql_dsn, port), 65535},
        {"connect_timeout", offsetof(struct wh_mysql_dsn, connect_timeout), 86400},
        {"read_timeout", offsetof(struct wh_mysql_dsn, read_timeout), 86400},
        {"write_timeout", offsetof(struct wh_mysql_dsn, write_timeout), 86400},
    };
    char name[32];
    if (klen == 0 || klen >= sizeof name)
        goto unknown;
    memcpy(name, key, klen);
    name[klen] = '\0';
    for (size_t i = 0; i < sizeof strs / sizeof strs[0]; i++) {
        if (strcmp(name, strs[i].key))
            continue;
        char **slot = (char **)((char *)d + strs[i].off);
        if (*slot == d->password && *slot)
            explicit_bzero(*slot, strlen(*slot));
        free(*slot);
        *slot = v;
        if (slot == &d->ssl_mode && strcmp(v, "disabled") && strcmp(v, "required") &&
            strcmp(v, "verify_identity"))
            return errmsg_set(e, WEIR_ECONFIG,
                              "mysql DSN: ssl_mode='%s' is not one of disabled, required, "
                              "verify_identity", v);
        return 0;
    }
    for (size_t i = 0; i < sizeof nums / sizeof nums[0]; i++) {
        if (strcmp(name, nums[i].key))
            continue;
        int rc = set_uint(name, v, nums[i].max, (unsigned *)((char *)d + nums[i].off), e);
        free(v);
        return rc;
    }
unknown:
    free(v);
    return errmsg_set(e, WEIR_ECONFIG,
                      "mysql DSN: unknown key '%.*s' (known: host, port, user, password, db, "
                      "socket, connect_timeout, read_timeout, write_timeout, ssl_mode, ssl_ca, "
                      "ssl_cert, ssl_key)",
                      (int)(klen < 40 ? klen : 40), key);
}

static int hexval(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c = tolower(c);
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* A %XX-decoded copy of s[0..n); NULL on a bad escape or no memory. */
static char *pct_decode(const char *s, size_t n)
{
    char *out = malloc(n + 1);
    size_t k = 0;
    if (!out)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '%') {
            int hi = i + 2 < n ? hexval((unsigned char)s[i + 1]) : -1;
            int lo = i + 2 < n ? hexval((unsigned char)s[i + 2]) : -1;
            if (hi < 0 || lo < 0) {
                free(out);
                return NULL;
            }
            out[k++] = (char)(hi * 16 + lo);
            i += 2;
            continue;
        }
        out[k++] = s[i];
    }
    out[k] = '\0';
    if (memchr(out, '\0', k)) {
        free(out);
        return NULL;
    }
    return out;
}

static int parse_uri(const char *dsn, const char *rest, struct wh_mysql_dsn *d,
                     struct weir_errmsg *e)
{
    const char *p = rest;
    const char *auth_end = NULL;
    /* The authority ends at the first '/', '?' or end; a '@' in it (the
     * last one) ends the user info. */
    const char *aend = p + strcspn(p, "/?");
    for (const char *q = p; q < aend; q++)
        if (*q == '@')
            auth_end = q;
    char *v;
    if (auth_end) {
        const char *colon = memchr(p, ':', (size_t)(auth_end - p));
        const char *uend = colon ? colon : auth_end;
        if (uend > p) {
            if (!(v = pct_decode(p, (size_t)(uend - p))))
                goto bad;
            int rc = dsn_set(d, "user", 4, v, e);
            if (rc)
                return rc;
        }
        if (colon) {
            if (!(v = pct_decode(colon + 1, (size_t)(auth_end - colon - 1))))
                goto bad;
            int rc = dsn_set(d, "password", 8, v, e);
            if (rc)
                return rc;
        }
        p = auth_end + 1;
    }
    /* host, [v6], :port */
    const char *hend = aend;
    if (*p == '[') {
        const char *rb = memchr(p, ']', (size_t)(aend - p));
        if (!rb)
            goto bad;
        if (!(v = pct_decode(p + 1, (size_t)(rb - p - 1))))
            goto bad;
        int rc = dsn_set(d, "host", 4, v, e);
        if (rc)
            return rc;
        p = rb + 1;
        hend = p;
    } else {
        const char *colon = memchr(p, ':', (size_t)(aend - p));
        hend = colon ? colon : aend;
        if (hend > p) {
            if (!(v = pct_decode(p, (size_t)(hend - p))))
                goto bad;
            int rc = dsn_set(d, "host", 4, v, e);
            if (rc)
                return rc;
        }
        p = hend;
    }
    if (*p == ':') {
        if (!(v = pct_decode(p + 1, (size_t)(aend - p - 1))))
            goto bad;
        int rc = dsn_set(d, "port", 4, v, e);
        if (rc)
            return rc;
    } else if (p != aend) {
        goto bad;
    }
    p = aend;
    if (*p == '/') {
        const char *dend = p + 1 + strcspn(p + 1, "?");
        if (dend > p + 1) {
            if (!(v = pct_decode(p + 1, (size_t)(dend - p - 1))))
                goto bad;
            int rc = dsn_set(d, "db", 2, v, e);
            if (rc)
                return rc;
        }
        p = dend;
    }
    if (*p == '?') {
        p++;
        while (*p) {
            const char *amp = p + strcspn(p, "&");
            const char *eq = memchr(p, '=', (size_t)(amp - p));
            if (!eq)
                goto bad;
            if (!(v = pct_decode(eq + 1, (size_t)(amp - eq - 1))))
                goto bad;
            int rc = dsn_set(d, p, (size_t)(eq - p), v, e);
            if (rc)
                return rc;
            p = *amp ? amp + 1 : amp;
        }
    }
    return 0;
bad:
    /* The DSN is not shown, even masked: masking is sure of passwords in
     * well-formed DSNs only. */
    (void)dsn;
    return errmsg_set(e, WEIR_ECONFIG,
                      "mysql DSN: a URI must read mysql://user:password@host:port/db?key=value "
                      "(%%XX for special characters)");
}

static int parse_kv(const char *dsn, struct wh_mysql_dsn *d, struct weir_errmsg *e)
{
    const char *p = dsn;
    char prev[32] = "";
    for (;;) {
        while (*p == ' ' || *p == '\t' || *p == '\n')
            p++;
        if (!*p)
            return 0;
        const char *key = p;
        while (*p && *p != '=' && *p != ' ' && *p != '\t' && *p != '\n')
            p++;
        size_t klen = (size_t)(p - key);
        while (*p == ' ' || *p == '\t')
            p++;
        /* The word itself is not shown: it may be the tail of a password
         * written with a space and no quotes. */
        if (*p != '=')
            return errmsg_set(e, WEIR_ECONFIG,
                              "mysql DSN: a word %s%s%shas no '=' (want key=value pairs; "
                              "quote a value holding spaces: key='a b')",
                              prev[0] ? "after " : "", prev, prev[0] ? "=... " : "");
        snprintf(prev, sizeof prev, "%.*s", (int)(klen < 31 ? klen : 31), key);
        p++;
        while (*p == ' ' || *p == '\t')
            p++;
        struct buf val = BUF_INIT(4096);
        int rc = 0;
        if (*p == '\'') {
            p++;
            while (rc == 0 && *p && *p != '\'') {
                if (*p == '\\' && p[1])
                    p++;
                rc = buf_putc(&val, *p++);
            }
            if (*p != '\'') {
                buf_release(&val);
                return errmsg_set(e, WEIR_ECONFIG, "mysql DSN: the value of '%.*s' has no closing quote",
                                  (int)(klen < 40 ? klen : 40), key);
            }
            p++;
            if (rc == 0 && !val.data)
                rc = buf_puts(&val, "");
        } else {
            const char *v = p;
            while (*p && *p != ' ' && *p != '\t' && *p != '\n')
                p++;
            rc = buf_append(&val, v, (size_t)(p - v));
            if (rc == 0 && !val.data)
                rc = buf_puts(&val, "");
        }
        if (rc) {
            buf_release(&val);
            return errmsg_set(e, rc, "mysql DSN: the value of '%.*s' is too long",
                              (int)(klen < 40 ? klen : 40), key);
        }
        char *v = buf_detach(&val, NULL);
        if (!v)
            return errmsg_set(e, WEIR_ENOMEM, "mysql DSN: out of memory");
        rc = dsn_set(d, key, klen, v, e);
        if (rc)
            return rc;
    }
}

int wh_mysql_dsn_parse(const char *dsn, struct wh_mysql_dsn *d, struct weir_errmsg *e)
{
    memset(d, 0, sizeof *d);
    if (!strncmp(dsn, "mysql://", 8))
        return parse_uri(dsn, dsn + 8, d, e);
    if (!strncmp(dsn, "mariadb://", 10))
        return parse_uri(dsn, dsn + 10, d, e);
    return parse_kv(dsn, d, e);
}
