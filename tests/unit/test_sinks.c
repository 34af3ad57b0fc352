/*
 * test_sinks.c - the warehouse sinks without a server: weir CSV (writer,
 * streaming reader at every chunk boundary), value checks and the two
 * servers' row encodings, SQL text and identifier quoting, existing-table
 * matching, MySQL DSNs, column lists.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sinks/csv.h"
#include "sinks/sink.h"
#include "sinks/wh.h"

/* --- weir CSV: writing ------------------------------------------------------ */

static void test_csv_put(void **state)
{
    struct buf b = BUF_INIT(1 << 16);
    assert_int_equal(csv_put_text(&b, "a\"b,c\nd", 7), 0);
    assert_string_equal(b.data, "\"a\"\"b,c\nd\"");
    buf_reset(&b);
    assert_int_equal(csv_put_text(&b, "", 0), 0);
    assert_int_equal(csv_put_sep(&b), 0);
    assert_int_equal(csv_put_null(&b), 0);
    assert_int_equal(csv_put_sep(&b), 0);
    assert_int_equal(csv_put_int(&b, INT64_MIN), 0);
    assert_int_equal(csv_put_sep(&b), 0);
    assert_int_equal(csv_put_bool(&b, 1), 0);
    assert_int_equal(csv_put_eol(&b), 0);
    assert_string_equal(b.data, "\"\",,-9223372036854775808,true\n");

    static const struct {
        double v;
        const char *text;
    } dbl[] = {
        {0.1, "0.1"}, {21.5, "21.5"}, {1.0 / 3, "0.3333333333333333"},
        {0.1 + 0.2, "0.30000000000000004"}, {5e-324, "4.94065645841247e-324"},
        {1e22, "1e+22"}, {-0.0, "-0"}, {1.7976931348623157e308, "1.7976931348623157e+308"},
    };
    for (size_t i = 0; i < sizeof dbl / sizeof dbl[0]; i++) {
        buf_reset(&b);
        assert_int_equal(csv_put_double(&b, dbl[i].v), 0);
        assert_string_equal(b.data, dbl[i].text);
        double back = strtod(b.data, NULL);
        assert_memory_equal(&back, &dbl[i].v, sizeof back);
    }
    buf_reset(&b);
    csv_put_double(&b, NAN);
    csv_put_sep(&b);
    csv_put_double(&b, -INFINITY);
    assert_string_equal(b.data, "nan,-inf");

    buf_reset(&b);
    csv_put_timestamp(&b, INT64_C(1756807200000000), 1); /* 2025-09-02T10:00:00Z */
    csv_put_sep(&b);
    csv_put_timestamp(&b, -1, 0);
    csv_put_sep(&b);
    csv_put_date(&b, 20333);
    assert_string_equal(b.data, "2025-09-02 10:00:00+00,1969-12-31 23:59:59.999999,2025-09-02");

    /* A value that does not fit leaves the buffer as it was. */
    struct buf small = BUF_INIT(4);
    assert_int_equal(buf_puts(&small, "ab"), 0);
    assert_int_equal(csv_put_text(&small, "xyz", 3), WEIR_ELIMIT);
    assert_string_equal(small.data, "ab");
    buf_release(&small);
    buf_release(&b);
}

/* --- weir CSV: reading -------------------------------------------------------- */

/* A source handing out its input in pieces of `step` bytes. */
struct steps {
    const char *data;
    size_t len, pos, step;
};

static int steps_read(void *ctx, const char **data, size_t *len, struct weir_errmsg *e)
{
    struct steps *s = ctx;
    (void)e;
    size_t n = s->len - s->pos < s->step ? s->len - s->pos : s->step;
    *data = s->data + s->pos;
    *len = n;
    s->pos += n;
    return 0;
}

/* Read all rows of input as "v1|v2|...;" with NULL as "~" (quoted: "[q]"
 * prefix omitted), or "ERR:<message>". */
static char *read_all(const char *input, size_t len, size_t ncol, size_t step, size_t max_row)
{
    struct steps s = {input, len, 0, step};
    struct csv_reader r;
    struct buf out = BUF_INIT(1 << 20);
    struct weir_errmsg e = {0};
    const struct csv_field *f;
    int rc;
    assert_int_equal(csv_reader_init(&r, ncol, max_row, steps_read, &s), 0);
    while ((rc = csv_reader_next(&r, &f, &e)) == 1) {
        for (size_t i = 0; i < ncol; i++) {
            if (i)
                buf_putc(&out, '|');
            if (f[i].null)
                buf_putc(&out, '~');
            else
                buf_append(&out, f[i].data, f[i].len);
            assert_int_equal(f[i].data[f[i].len], '\0');
        }
        buf_putc(&out, ';');
    }
    if (rc < 0) {
        buf_puts(&out, "ERR:");
        buf_puts(&out, e.text);
    } else {
        assert_true(r.bytes == len);
    }
    csv_reader_release(&r);
    char *str = buf_detach(&out, NULL);
    return str;
}

/* The same answer whatever the chunking. */
static void expect_rows(const char *input, size_t ncol, const char *want)
{
    size_t len = strlen(input);
    size_t steps[] = {1, 2, 3, 7, len ? len : 1};
    for (size_t i = 0; i < sizeof steps / sizeof steps[0]; i++) {
        char *got = read_all(input, len, ncol, steps[i], 1 << 16);
        if (strncmp(want, "ERR:", 4) == 0 && strncmp(got, want, strlen(want)) != 0) {
            /* errors: compare the prefix given */
            const char *err = strstr(got, "ERR:");
            assert_non_null(err);
            assert_non_null(strstr(err, want + 4));
        } else if (strncmp(want, "ERR:", 4) != 0) {
            assert_string_equal(got, want);
        }
        free(got);
    }
}

static void test_csv_read(void **state)
{
    expect_rows("", 2, "");
    expect_rows("a,b\n", 2, "a|b;");
    expect_rows("a,b", 2, "a|b;");
    expect_rows("a,b\r\nc,d\r\n", 2, "a|b;c|d;");
    expect_rows(",\n\"\",\"\"\n", 2, "~|~;|;");
    expect_rows("\"a,b\",\"c\"\"d\"\n", 2, "a,b|c\"d;");
    expect_rows("\"multi\nline\r\n\",x\n", 2, "multi\nline\r\n|x;");
    expect_rows("\"\"\"\"\n", 1, "\";");
    /* Every line is a row: an empty line is a one-column NULL row. */
    expect_rows("\n\nx\n", 1, "~;~;x;");
    expect_rows("NULL,\\N\n", 2, "NULL|\\N;");
    /* Unicode passes through untouched. */
    expect_rows("\"h\xc3\xa9 \xf0\x9f\x8c\xa1\",1\n", 2, "h\xc3\xa9 \xf0\x9f\x8c\xa1|1;");
}

static void test_csv_read_errors(void **state)
{
    expect_rows("a,b,c\n", 2, "ERR:row 1: more than 2 fields");
    expect_rows("a,b\nc\n", 2, "ERR:row 2: 1 field, want 2");
    expect_rows("a\"b,c\n", 2, "ERR:row 1, field 1: a '\"' inside an unquoted field");
    expect_rows("\"a\"b,c\n", 2, "ERR:row 1, field 1: text after a closing");
    expect_rows("\"abc,d\n", 2, "ERR:the input ends inside a quoted field");
    expect_rows("a\rb\n", 1, "ERR:a CR not followed by LF");
    /* max_row bounds a runaway quoted field. */
    char big[300];
    memset(big, 'x', sizeof big);
    big[0] = '"';
    char *got = read_all(big, sizeof big, 1, 7, 100);
    assert_non_null(strstr(got, "ERR:row 1: longer than 100 bytes"));
    free(got);
}

/* Random values through the writer and back through the reader. */
static void test_csv_roundtrip(void **state)
{
    struct buf b = BUF_INIT(1 << 20);
    char vals[200][40];
    int nulls[200];
    unsigned seed = 7;
    const char alphabet[] = "ab,\"\n\r \\N'x";
    for (int i = 0; i < 200; i++) {
        seed = seed * 1103515245 + 12345;
        nulls[i] = (seed >> 16) % 7 == 0;
        size_t n = (seed >> 8) % 12;
        for (size_t k = 0; k < n; k++) {
            seed = seed * 1103515245 + 12345;
            vals[i][k] = alphabet[(seed >> 16) % (sizeof alphabet - 1)];
        }
        vals[i][n] = '\0';
        if (i % 4)
            csv_put_sep(&b);
        if (nulls[i])
            csv_put_null(&b);
        else
            csv_put_text(&b, vals[i], n);
        if (i % 4 == 3)
            csv_put_eol(&b);
    }
    for (size_t step = 1; step < 20; step += 3) {
        struct steps s = {b.data, b.len, 0, step};
        struct csv_reader r;
        struct weir_errmsg e;
        const struct csv_field *f;
        assert_int_equal(csv_reader_init(&r, 4, 1 << 16, steps_read, &s), 0);
        for (int row = 0; row < 50; row++) {
            assert_int_equal(csv_reader_next(&r, &f, &e), 1);
            for (int c = 0; c < 4; c++) {
                int i = row * 4 + c;
                assert_int_equal(f[c].null, nulls[i]);
                if (!nulls[i])
                    assert_string_equal(f[c].data, vals[i]);
            }
        }
        assert_int_equal(csv_reader_next(&r, &f, &e), 0);
        csv_reader_release(&r);
    }
    buf_release(&b);
}

/* --- values and row encodings ----------------------------------------------- */

static struct csv_field fld(const char *s)
{
    struct csv_field f = {s ? s : "", s ? strlen(s) : 0, s == NULL, 0};
    return f;
}

/* The value as d would send it, or "ERR:" + message. */
static char *value(enum wh_dialect d, enum sink_type t, const char *s)
{
    static char out[1100];
    struct sink_column c = {"c", t, 18, 3};
    struct csv_field f = fld(s);
    struct buf b = BUF_INIT(1024);
    struct weir_errmsg e = {0};
    if (wh_put_value(d, &b, &c, &f, 4, 2, &e) == 0)
        snprintf(out, sizeof out, "%s", b.data ? b.data : "");
    else
        snprintf(out, sizeof out, "ERR:%s", e.text);
    buf_release(&b);
    return out;
}

static int refused(enum wh_dialect d, enum sink_type t, const char *s)
{
    return strncmp(value(d, t, s), "ERR:", 4) == 0;
}

static void test_values(void **state)
{
    const enum wh_dialect PG = WH_POSTGRES, MY = WH_MYSQL;
    /* bigint: the full range, nothing past it */
    assert_string_equal(value(PG, SINK_BIGINT, "9223372036854775807"), "9223372036854775807");
    assert_string_equal(value(MY, SINK_BIGINT, "-9223372036854775808"), "-9223372036854775808");
    assert_true(refused(PG, SINK_BIGINT, "9223372036854775808"));
    assert_true(refused(PG, SINK_BIGINT, "-9223372036854775809"));
    assert_true(refused(PG, SINK_BIGINT, "1.0"));
    assert_true(refused(PG, SINK_BIGINT, " 1"));
    assert_true(refused(PG, SINK_BIGINT, "-"));
    assert_string_equal(value(PG, SINK_BIGINT, "12x"),
                        "ERR:row 4, column 2 (c bigint): '12x' is not an integer from "
                        "-9223372036854775808 to 9223372036854775807");
    /* double: text passes unchanged; specials only where they fit */
    assert_string_equal(value(MY, SINK_DOUBLE, "4.9406564584124654e-324"), "4.9406564584124654e-324");
    assert_string_equal(value(PG, SINK_DOUBLE, ".5"), ".5");
    assert_string_equal(value(PG, SINK_DOUBLE, "-Infinity"), "-Infinity");
    assert_string_equal(value(PG, SINK_DOUBLE, "nan"), "nan");
    assert_non_null(strstr(value(MY, SINK_DOUBLE, "nan"), "holds no NaN or infinity"));
    assert_true(refused(PG, SINK_DOUBLE, "1e400"));
    assert_true(refused(PG, SINK_DOUBLE, "1e-400"));
    assert_true(refused(PG, SINK_DOUBLE, "0x10"));
    assert_true(refused(PG, SINK_DOUBLE, "1e"));
    assert_true(refused(PG, SINK_DOUBLE, "."));
    /* decimal(18,3): no rounding, no overflow */
    assert_string_equal(value(MY, SINK_DECIMAL, "-999999999999999.999"), "-999999999999999.999");
    assert_string_equal(value(MY, SINK_DECIMAL, "0000012.5"), "0000012.5");
    assert_non_null(strstr(value(MY, SINK_DECIMAL, "0.0001"), "decimal(18,3) without rounding"));
    assert_true(refused(MY, SINK_DECIMAL, "1000000000000000"));
    assert_true(refused(MY, SINK_DECIMAL, "1e3"));
    /* boolean: MySQL gets 1/0 */
    assert_string_equal(value(PG, SINK_BOOLEAN, "TRUE"), "TRUE");
    assert_string_equal(value(MY, SINK_BOOLEAN, "TRUE"), "1");
    assert_string_equal(value(MY, SINK_BOOLEAN, "f"), "0");
    assert_true(refused(MY, SINK_BOOLEAN, "yes"));
    /* date: the calendar is checked */
    assert_string_equal(value(MY, SINK_DATE, "2024-02-29"), "2024-02-29");
    assert_true(refused(MY, SINK_DATE, "2025-02-29"));
    assert_true(refused(MY, SINK_DATE, "2025-13-01"));
    assert_true(refused(MY, SINK_DATE, "0000-01-01"));
    assert_true(refused(MY, SINK_DATE, "2025-9-2"));
    /* timestamptz: PostgreSQL reads the text; MySQL gets UTC */
    assert_string_equal(value(PG, SINK_TIMESTAMPTZ, "2025-09-02 15:30:00.5+05:30"),
                        "2025-09-02 15:30:00.5+05:30");
    assert_string_equal(value(MY, SINK_TIMESTAMPTZ, "2025-09-02 15:30:00.5+05:30"),
                        "2025-09-02 10:00:00.500000");
    assert_string_equal(value(MY, SINK_TIMESTAMPTZ, "2025-09-02T00:30:00-0100"),
                        "2025-09-02 01:30:00");
    assert_string_equal(value(MY, SINK_TIMESTAMPTZ, "2025-12-31 23:00:00-02"),
                        "2026-01-01 01:00:00");
    assert_string_equal(value(MY, SINK_TIMESTAMPTZ, "2025-09-02T10:00:00Z"), "2025-09-02 10:00:00");
    assert_string_equal(value(MY, SINK_TIMESTAMPTZ, "2025-09-02 10:00:00.9999995"),
                        "2025-09-02 10:00:01");
    assert_string_equal(value(MY, SINK_TIMESTAMPTZ, "2025-09-02 10:00:00.123456789"),
                        "2025-09-02 10:00:00.123457");
    assert_string_equal(value(MY, SINK_TIMESTAMP, "0001-01-01 00:00:00"), "0001-01-01 00:00:00");
    assert_true(refused(MY, SINK_TIMESTAMPTZ, "2025-09-02 24:00:00"));
    assert_true(refused(MY, SINK_TIMESTAMPTZ, "2025-09-02 10:00:00."));
    assert_true(refused(MY, SINK_TIMESTAMPTZ, "2025-09-02 10:00:00+5"));
    assert_true(refused(MY, SINK_TIMESTAMPTZ, "2025-09-02"));
    /* a zone on a timestamp without one: UTC only */
    assert_string_equal(value(PG, SINK_TIMESTAMP, "2025-09-02 10:00:00+00"), "2025-09-02 10:00:00+00");
    assert_non_null(strstr(value(PG, SINK_TIMESTAMP, "2025-09-02 10:00:00+02"),
                           "without a time zone"));
    /* text: UTF-8 without NUL */
    assert_string_equal(value(MY, SINK_VARCHAR, "h\xc3\xa9"), "h\xc3\xa9");
    assert_true(refused(MY, SINK_VARCHAR, "\xc3"));
    assert_true(refused(PG, SINK_JSON, "\xed\xa0\x80")); /* a surrogate */
}

static void test_rows(void **state)
{
    struct sink_column cols[] = {
        {"id", SINK_BIGINT, 0, 0}, {"s", SINK_VARCHAR, 0, 0},
        {"ok", SINK_BOOLEAN, 0, 0}, {"at", SINK_TIMESTAMPTZ, 0, 0},
    };
    struct csv_field f[4] = {fld("1"), fld("a \"q\",\n"), fld("true"), fld("2025-09-02 12:00:00+02")};
    struct buf b = BUF_INIT(4096);
    struct weir_errmsg e;
    assert_int_equal(wh_put_row(WH_POSTGRES, &b, cols, 4, f, "2025-09-02 10:00:00+00", 1, &e), 0);
    assert_string_equal(b.data, "1,\"a \"\"q\"\",\n\",true,2025-09-02 12:00:00+02,2025-09-02 10:00:00+00\n");
    buf_reset(&b);
    assert_int_equal(wh_put_row(WH_MYSQL, &b, cols, 4, f, NULL, 1, &e), 0);
    assert_string_equal(b.data, "1,\"a \"\"q\"\",\n\",1,2025-09-02 10:00:00\n");
    /* NULL, "", the string NULL */
    struct csv_field g[4] = {fld(NULL), fld(""), fld(NULL), fld(NULL)};
    buf_reset(&b);
    assert_int_equal(wh_put_row(WH_POSTGRES, &b, cols, 4, g, "P", 1, &e), 0);
    assert_string_equal(b.data, ",\"\",,,P\n");
    buf_reset(&b);
    assert_int_equal(wh_put_row(WH_MYSQL, &b, cols, 4, g, NULL, 1, &e), 0);
    assert_string_equal(b.data, "NULL,\"\",NULL,NULL\n");
    struct csv_field h[4] = {fld("2"), fld("NULL"), fld(NULL), fld(NULL)};
    buf_reset(&b);
    assert_int_equal(wh_put_row(WH_MYSQL, &b, cols, 4, h, NULL, 1, &e), 0);
    assert_string_equal(b.data, "2,\"NULL\",NULL,NULL\n");
    /* A bad value leaves the buffer as it was and names row and column. */
    buf_reset(&b);
    buf_puts(&b, "kept");
    struct csv_field bad[4] = {fld("1"), fld("x"), fld("maybe"), fld(NULL)};
    assert_int_equal(wh_put_row(WH_MYSQL, &b, cols, 4, bad, NULL, 9, &e), WEIR_EPARSE);
    assert_string_equal(b.data, "kept");
    assert_non_null(strstr(e.text, "row 9, column 3 (ok boolean): 'maybe'"));
    buf_release(&b);
}

/* --- SQL text ------------------------------------------------------------------ */

static char *sql_of(int rc, struct buf *b)
{
    static char out[2048];
    assert_int_equal(rc, 0);
    snprintf(out, sizeof out, "%s", b->data);
    buf_reset(b);
    return out;
}

static void test_identifiers(void **state)
{
    struct buf b = BUF_INIT(4096);
    struct wh_table t;
    struct weir_errmsg e;
    assert_string_equal(sql_of(wh_put_ident(WH_POSTGRES, &b, "a\"b"), &b), "\"a\"\"b\"");
    assert_string_equal(sql_of(wh_put_ident(WH_MYSQL, &b, "a`b\"c"), &b), "`a``b\"c`");
    assert_int_equal(wh_put_ident(WH_POSTGRES, &b, ""), WEIR_EINVAL);
    assert_int_equal(wh_put_ident(WH_POSTGRES, &b, "\xff"), WEIR_EINVAL);
    char longname[80];
    memset(longname, 'a', 64);
    longname[64] = '\0';
    assert_int_equal(wh_put_ident(WH_POSTGRES, &b, longname), WEIR_EINVAL);
    assert_int_equal(wh_put_ident(WH_MYSQL, &b, longname), 0);
    buf_reset(&b);
    /* MySQL counts characters: 64 two-byte characters fit. */
    char wide[140];
    for (int i = 0; i < 64; i++)
        memcpy(wide + 2 * i, "\xc3\xa9", 2);
    wide[128] = '\0';
    assert_int_equal(wh_put_ident(WH_MYSQL, &b, wide), 0);
    buf_reset(&b);

    assert_string_equal(sql_of(wh_put_literal(WH_MYSQL, &b, "it's a \\", 8), &b), "'it''s a \\\\'");
    assert_string_equal(sql_of(wh_put_literal(WH_POSTGRES, &b, "it's a \\", 8), &b), "'it''s a \\'");
    assert_int_equal(wh_put_literal(WH_MYSQL, &b, "a\0b", 3), WEIR_EINVAL);
    assert_int_equal(b.len, 0);

    assert_int_equal(wh_table_parse(WH_POSTGRES, "hourly", &t, &e), 0);
    assert_string_equal(t.schema, "");
    assert_string_equal(t.name, "hourly");
    assert_string_equal(sql_of(wh_put_table(WH_POSTGRES, &b, &t), &b), "\"hourly\"");
    assert_int_equal(wh_table_parse(WH_POSTGRES, "wh.hourly", &t, &e), 0);
    assert_string_equal(sql_of(wh_put_table(WH_POSTGRES, &b, &t), &b), "\"wh\".\"hourly\"");
    assert_int_equal(wh_table_parse(WH_POSTGRES, "\"odd schema\".\"we.ird \"\"t\"\"\"", &t, &e), 0);
    assert_string_equal(t.schema, "odd schema");
    assert_string_equal(t.name, "we.ird \"t\"");
    assert_string_equal(sql_of(wh_put_table(WH_POSTGRES, &b, &t), &b),
                        "\"odd schema\".\"we.ird \"\"t\"\"\"");
    assert_int_equal(wh_table_parse(WH_MYSQL, "`a``b`.c", &t, &e), 0);
    assert_string_equal(sql_of(wh_put_table(WH_MYSQL, &b, &t), &b), "`a``b`.`c`");
    assert_int_equal(wh_table_parse(WH_POSTGRES, "a.b.c", &t, &e), WEIR_EINVAL);
    assert_non_null(strstr(e.text, "want name or schema.name"));
    assert_int_equal(wh_table_parse(WH_POSTGRES, "", &t, &e), WEIR_EINVAL);
    assert_int_equal(wh_table_parse(WH_POSTGRES, "a.", &t, &e), WEIR_EINVAL);
    assert_int_equal(wh_table_parse(WH_POSTGRES, "\"open", &t, &e), WEIR_EINVAL);
    assert_int_equal(wh_table_parse(WH_MYSQL, "`a`b", &t, &e), WEIR_EINVAL);
    buf_release(&b);
}

static void test_statements(void **state)
{
    struct buf b = BUF_INIT(1 << 16);
    struct wh_table t;
    struct weir_errmsg e;
    struct sink_column cols[] = {
        {"start_time", SINK_TIMESTAMPTZ, 0, 0}, {"sensor_id", SINK_BIGINT, 0, 0},
        {"avg_temp", SINK_DOUBLE, 0, 0},        {"amount", SINK_DECIMAL, 18, 3},
        {"name", SINK_VARCHAR, 0, 0},           {"ok", SINK_BOOLEAN, 0, 0},
        {"local", SINK_TIMESTAMP, 0, 0},        {"day", SINK_DATE, 0, 0},
        {"doc", SINK_JSON, 0, 0},
    };
    struct sink_partition p = {INT64_C(1756807200) * 1000000000, INT64_C(1756810800) * 1000000000};
    assert_int_equal(wh_table_parse(WH_POSTGRES, "wh.t", &t, &e), 0);
    assert_string_equal(sql_of(wh_sql_create(WH_POSTGRES, &b, &t, cols, 9), &b),
                        "CREATE TABLE \"wh\".\"t\" (\"start_time\" timestamptz, \"sensor_id\" bigint, "
                        "\"avg_temp\" double precision, \"amount\" numeric(18,3), \"name\" text, "
                        "\"ok\" boolean, \"local\" timestamp, \"day\" date, \"doc\" jsonb, "
                        "\"weir_partition\" timestamptz NOT NULL)");
    assert_string_equal(sql_of(wh_sql_create_index(&b, &t), &b),
                        "CREATE INDEX ON \"wh\".\"t\" (\"weir_partition\")");
    assert_string_equal(sql_of(wh_sql_delete(WH_POSTGRES, &b, &t, &p), &b),
                        "DELETE FROM \"wh\".\"t\" WHERE \"weir_partition\" >= '2025-09-02 10:00:00+00' "
                        "AND \"weir_partition\" < '2025-09-02 11:00:00+00'");
    assert_string_equal(sql_of(wh_sql_copy(&b, &t, cols, 2), &b),
                        "COPY \"wh\".\"t\" (\"start_time\", \"sensor_id\", \"weir_partition\") "
                        "FROM STDIN (FORMAT csv)");

    assert_int_equal(wh_table_parse(WH_MYSQL, "t", &t, &e), 0);
    assert_string_equal(sql_of(wh_sql_create(WH_MYSQL, &b, &t, cols, 9), &b),
                        "CREATE TABLE IF NOT EXISTS `t` (`start_time` DATETIME(6), `sensor_id` BIGINT, "
                        "`avg_temp` DOUBLE, `amount` DECIMAL(18,3), `name` LONGTEXT, `ok` BOOLEAN, "
                        "`local` DATETIME(6), `day` DATE, `doc` JSON, "
                        "`weir_partition` DATETIME(6) NOT NULL, KEY `weir_partition` "
                        "(`weir_partition`)) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4");
    assert_string_equal(sql_of(wh_sql_delete(WH_MYSQL, &b, &t, &p), &b),
                        "DELETE FROM `t` WHERE `weir_partition` >= '2025-09-02 10:00:00.000000' "
                        "AND `weir_partition` < '2025-09-02 11:00:00.000000'");
    assert_string_equal(sql_of(wh_sql_load_data(&b, &t, cols, 2, p.start_ns), &b),
                        "LOAD DATA LOCAL INFILE 'weir-rows' INTO TABLE `t` CHARACTER SET utf8mb4 "
                        "FIELDS TERMINATED BY ',' ENCLOSED BY '\"' ESCAPED BY '' LINES TERMINATED "
                        "BY '\\n' STARTING BY '' (`start_time`, `sensor_id`) SET `weir_partition` "
                        "= '2025-09-02 10:00:00.000000'");
    assert_string_equal(sql_of(wh_sql_insert(&b, &t, cols, 2, 2), &b),
                        "INSERT INTO `t` (`start_time`, `sensor_id`, `weir_partition`) VALUES "
                        "(?,?,?),(?,?,?)");
    char part[40];
    wh_format_partition(WH_POSTGRES, 0, part, sizeof part);
    assert_string_equal(part, "1970-01-01 00:00:00+00");
    buf_release(&b);
}

static void test_match(void **state)
{
    struct sink_column cols[] = {{"sensor_id", SINK_BIGINT, 0, 0}, {"avg", SINK_DOUBLE, 0, 0},
                                 {"at", SINK_TIMESTAMPTZ, 0, 0}};
    struct weir_errmsg e;
    struct wh_existing_column pg_ok[] = {
        {"at", "timestamptz"}, {"weir_partition", "timestamptz"}, {"sensor_id", "int4"},
        {"avg", "numeric"}};
    assert_int_equal(wh_match_columns(WH_POSTGRES, "t", cols, 3, pg_ok, 4, &e), 0);
    struct wh_existing_column pg_bad[] = {
        {"Sensor_id", "int8"}, {"avg", "float4"}, {"at", "timestamp"}, {"extra", "text"}};
    assert_int_equal(wh_match_columns(WH_POSTGRES, "t", cols, 3, pg_bad, 4, &e), WEIR_ESCHEMA);
    assert_non_null(strstr(e.text, "column sensor_id is missing"));
    assert_non_null(strstr(e.text, "column avg is float4, want double (one of: float8 numeric)"));
    assert_non_null(strstr(e.text, "column at is timestamp, want timestamptz"));
    assert_non_null(strstr(e.text, "column weir_partition is missing"));
    assert_non_null(strstr(e.text, "column extra is not in the model's output"));
    assert_non_null(strstr(e.text, "column Sensor_id is not in the model's output"));
    /* MySQL compares names without case. */
    struct wh_existing_column my_ok[] = {
        {"Sensor_ID", "bigint"}, {"AVG", "double"}, {"at", "datetime"}, {"weir_partition", "datetime"}};
    assert_int_equal(wh_match_columns(WH_MYSQL, "t", cols, 3, my_ok, 4, &e), 0);
    struct wh_existing_column my_bad[] = {
        {"sensor_id", "varchar"}, {"avg", "double"}, {"at", "datetime"}, {"weir_partition", "date"}};
    assert_int_equal(wh_match_columns(WH_MYSQL, "t", cols, 3, my_bad, 4, &e), WEIR_ESCHEMA);
    assert_non_null(strstr(e.text, "column sensor_id is varchar, want bigint"));
    assert_non_null(strstr(e.text, "column weir_partition is date, want the partition start"));
}

/* --- MySQL DSNs, column lists ------------------------------------------------------ */

static void test_mysql_dsn(void **state)
{
    struct wh_mysql_dsn d;
    struct weir_errmsg e = {0};
    assert_int_equal(wh_mysql_dsn_parse("host=127.0.0.1 port=3306 db=wh user=weir password='a b\\'c'", &d, &e), 0);
    assert_string_equal(d.host, "127.0.0.1");
    assert_int_equal(d.port, 3306);
    assert_string_equal(d.db, "wh");
    assert_string_equal(d.user, "weir");
    assert_string_equal(d.password, "a b'c");
    assert_null(d.socket);
    wh_mysql_dsn_release(&d);

    assert_int_equal(wh_mysql_dsn_parse("mysql://we%40ir:p%3Ass@db.example:3307/wh?ssl_mode=required&connect_timeout=5", &d, &e), 0);
    assert_string_equal(d.user, "we@ir");
    assert_string_equal(d.password, "p:ss");
    assert_string_equal(d.host, "db.example");
    assert_int_equal(d.port, 3307);
    assert_string_equal(d.db, "wh");
    assert_string_equal(d.ssl_mode, "required");
    assert_int_equal(d.connect_timeout, 5);
    wh_mysql_dsn_release(&d);

    assert_int_equal(wh_mysql_dsn_parse("mariadb://[::1]/wh", &d, &e), 0);
    assert_string_equal(d.host, "::1");
    assert_int_equal(d.port, 0);
    wh_mysql_dsn_release(&d);

    assert_int_equal(wh_mysql_dsn_parse("host=h port=99999 password=secret", &d, &e), WEIR_ECONFIG);
    assert_non_null(strstr(e.text, "port='99999'"));
    wh_mysql_dsn_release(&d);
    assert_int_equal(wh_mysql_dsn_parse("password=secret hots=h", &d, &e), WEIR_ECONFIG);
    assert_non_null(strstr(e.text, "unknown key 'hots'"));
    assert_null(strstr(e.text, "secret"));
    wh_mysql_dsn_release(&d);
    assert_int_equal(wh_mysql_dsn_parse("user=weir password=sec ret", &d, &e), WEIR_ECONFIG);
    assert_non_null(strstr(e.text, "a word after password=... has no '='"));
    assert_null(strstr(e.text, "ret"));
    wh_mysql_dsn_release(&d);
    assert_int_equal(wh_mysql_dsn_parse("password='secret", &d, &e), WEIR_ECONFIG);
    assert_null(strstr(e.text, "secret"));
    wh_mysql_dsn_release(&d);
    assert_int_equal(wh_mysql_dsn_parse("mysql://u:secret@h:x/db", &d, &e), WEIR_ECONFIG);
    assert_null(strstr(e.text, "secret"));
    wh_mysql_dsn_release(&d);
    assert_int_equal(wh_mysql_dsn_parse("mysql://u:sec%zzret@h/db", &d, &e), WEIR_ECONFIG);
    assert_null(strstr(e.text, "sec%zzret"));
    wh_mysql_dsn_release(&d);
    assert_int_equal(wh_mysql_dsn_parse("ssl_mode=maybe", &d, &e), WEIR_ECONFIG);
    wh_mysql_dsn_release(&d);
}

static void test_columns(void **state)
{
    struct sink_column c;
    assert_int_equal(sink_type_parse("BIGINT", &c), 0);
    assert_int_equal(c.type, SINK_BIGINT);
    assert_int_equal(sink_type_parse("TIMESTAMP WITH TIME ZONE", &c), 0);
    assert_int_equal(c.type, SINK_TIMESTAMPTZ);
    assert_int_equal(sink_type_parse("decimal(18,3)", &c), 0);
    assert_int_equal(c.type, SINK_DECIMAL);
    assert_int_equal(c.precision, 18);
    assert_int_equal(c.scale, 3);
    assert_int_equal(sink_type_parse("DECIMAL", &c), 0);
    assert_int_equal(c.precision, 38);
    assert_int_equal(sink_type_parse("decimal(18)", &c), WEIR_EPARSE);
    assert_int_equal(sink_type_parse("blob", &c), WEIR_EPARSE);

    struct weir_errmsg e;
    struct sink_column ok[] = {{"a", SINK_BIGINT, 0, 0}, {"b", SINK_DECIMAL, 38, 30}};
    assert_int_equal(sink_check_columns(ok, 2, &e), 0);
    assert_int_equal(sink_check_columns(ok, 0, &e), WEIR_EINVAL);
    struct sink_column dup[] = {{"a", SINK_BIGINT, 0, 0}, {"A", SINK_DOUBLE, 0, 0}};
    assert_int_equal(sink_check_columns(dup, 2, &e), WEIR_EINVAL);
    assert_non_null(strstr(e.text, "both named 'A'"));
    struct sink_column res[] = {{"Weir_Partition", SINK_BIGINT, 0, 0}};
    assert_int_equal(sink_check_columns(res, 1, &e), WEIR_EINVAL);
    assert_non_null(strstr(e.text, "the column weir adds itself"));
    struct sink_column dec[] = {{"d", SINK_DECIMAL, 10, 11}};
    assert_int_equal(sink_check_columns(dec, 1, &e), WEIR_EINVAL);

    /* A sink of another kind is refused before anything connects. */
    struct sink *s = (struct sink *)1;
    assert_int_equal(sink_open(CONFIG_OUTPUT_LAKE, "x", "t", NULL, &s, &e), WEIR_EUNSUPPORTED);
    assert_null(s);
    sink_close(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_csv_put),
        cmocka_unit_test(test_csv_read),
        cmocka_unit_test(test_csv_read_errors),
        cmocka_unit_test(test_csv_roundtrip),
        cmocka_unit_test(test_values),
        cmocka_unit_test(test_rows),
        cmocka_unit_test(test_identifiers),
        cmocka_unit_test(test_statements),
        cmocka_unit_test(test_match),
        cmocka_unit_test(test_mysql_dsn),
        cmocka_unit_test(test_columns),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
